"""A2O streams: OpenAI ``chat.completion.chunk`` SSE in, Anthropic Messages SSE out (CONFORMANCE.md A2O-S*).

Every stream goes through ``StreamTranslator(anthropic_messages, openai_chat, ctx)`` exactly as the proxy
drives it (start, feed, close at EOF), is parsed strictly, checked for the ordering rules, accumulated,
and for the main cases also handed to the official ``anthropic`` SDK (its ``MessageStream`` over a mock
transport, and its ``accumulate_event``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import anthropic
import orjson
import pytest

from rawproxy import ir, profiles
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator
from tests.support.anthropic_sse import (
    DONE,
    chunk,
    ctx,
    normalise_ids,
    parse_sse,
    reduce_events,
    run,
    sdk_accumulate,
    sdk_final_message,
    split_every,
    tc,
    tools_delta,
    translate,
    usage_chunk,
)

ROLE = chunk({"role": "assistant", "content": ""})


def _stream(*frames: bytes) -> bytes:
    return b"".join(frames)


def _summary(message: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Content blocks reduced to comparable tuples."""
    out: list[tuple[Any, ...]] = []
    for block in message["content"]:
        if block["type"] == "text":
            out.append(("text", block["text"]))
        elif block["type"] == "thinking":
            out.append(("thinking", block["thinking"], block["signature"]))
        elif block["type"] == "tool_use":
            out.append(("tool_use", block["id"], block["name"], block["input"]))
        else:
            out.append((block["type"],))
    return out


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _assert_error_with_block_open(events: list[dict[str, Any]]) -> None:
    """A mid-stream failure: the stream ends in ``error`` while its last block is still open (no
    content_block_stop for it), with no message_delta and no message_stop; earlier blocks were closed."""
    types = _types(events)
    assert types[-1] == "error", types
    assert types.count("error") == 1, types
    assert "message_delta" not in types and "message_stop" not in types, types
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts, types
    assert stops == starts[:-1], (starts, stops)
    assert types[-2] != "content_block_stop", types


# ------------------------------------------------------------------------------------------- streams

TEXT_STREAM = _stream(
    ROLE,
    chunk({"content": "Hel"}),
    chunk({"content": "lo, "}),
    chunk({"content": "world"}),
    chunk({}, "stop"),
    usage_chunk(12, 3),
    DONE,
)

TOOL_STREAM = _stream(
    ROLE,
    chunk({"content": "Let me look."}),
    chunk(tools_delta(tc(0, "call_1", "Bash", ""))),
    chunk(tools_delta(tc(0, args='{"comm'))),
    chunk(tools_delta(tc(0, args='and": "ls -la"}'))),
    chunk({}, "tool_calls"),
    usage_chunk(100, 20),
    DONE,
)

PARALLEL_STREAM = _stream(
    ROLE,
    chunk(
        tools_delta(
            tc(0, "call_a", "Read", '{"path": "a.py"}'),
            tc(1, "call_b", "Read", '{"path": "b.py"}'),
        )
    ),
    chunk({}, "tool_calls"),
    usage_chunk(),
    DONE,
)

INTERLEAVED_STREAM = _stream(
    ROLE,
    chunk(tools_delta(tc(0, "call_a", "Grep", '{"pattern": '))),
    chunk(tools_delta(tc(1, "call_b", "Glob", '{"glob": "*.py"}'))),
    chunk(tools_delta(tc(0, args='"TODO"}'))),
    chunk({}, "tool_calls"),
    usage_chunk(),
    DONE,
)

UNICODE_ARGS = '{"text": "héllo 😀 世界 🧑‍💻", "path": "/tmp/日本語.txt"}'
UNICODE_STREAM = _stream(
    ROLE,
    chunk({"content": "写入 🚀"}),
    chunk(tools_delta(tc(0, "call_u", "Write", ""))),
    chunk(tools_delta(tc(0, args=UNICODE_ARGS[:13]))),
    chunk(tools_delta(tc(0, args=UNICODE_ARGS[13:30]))),
    chunk(tools_delta(tc(0, args=UNICODE_ARGS[30:]))),
    chunk({}, "tool_calls"),
    usage_chunk(),
    DONE,
)

REASONING_STREAM = _stream(
    ROLE,
    chunk({"reasoning_content": "Think"}),
    chunk({"reasoning_content": "ing..."}),
    chunk({"content": "Answer"}),
    chunk({}, "stop"),
    usage_chunk(),
    DONE,
)


# ---------------------------------------------------------------------------------- S01 canonical


def test_a2o_s01_canonical_text_sequence() -> None:
    out, events, msg = run(TEXT_STREAM)
    assert _types(events) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [e["delta"] for e in events[2:5]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo, "},
        {"type": "text_delta", "text": "world"},
    ]
    assert events[5] == {"type": "content_block_stop", "index": 0}
    assert events[7] == {"type": "message_stop"}
    assert _summary(msg) == [("text", "Hello, world")]
    assert msg["stop_reason"] == "end_turn"
    # framing: every frame is exactly "event: <type>\ndata: <json>\n\n"
    assert out.count(b"\n\n") == len(events)
    assert out.startswith(b"event: message_start\ndata: {")
    assert out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_a2o_s01_canonical_sequence_accepted_by_official_sdk() -> None:
    out, events, _ = run(TEXT_STREAM)
    final = sdk_final_message(out)
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == "Hello, world"
    assert final.stop_reason == "end_turn"
    assert final.model == "claude-sonnet-4-6"
    assert final.usage.input_tokens == 12
    assert final.usage.output_tokens == 3
    snap = sdk_accumulate(events)
    assert snap.content[0].text == "Hello, world"


# ----------------------------------------------------------------------------- S02 message_start


def test_a2o_s02_message_start_shape_and_final_usage() -> None:
    context = ctx(input_tokens=1234, client_model="claude-opus-4-8")
    stream = _stream(
        ROLE, chunk({"content": "x"}), chunk({}, "stop"), usage_chunk(2000, 7, cached=1500), DONE
    )
    _, events, msg = run(stream, context)
    start = events[0]
    assert set(start) == {"type", "message"}
    message = start["message"]
    assert message["id"].startswith("msg_")
    assert {k: v for k, v in message.items() if k != "id"} == {
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-8",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1234,  # the estimate until the real figure arrives
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["usage"] == {
        "input_tokens": 500,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1500,
        "output_tokens": 7,
    }
    assert msg["usage"]["input_tokens"] == 500
    final = sdk_final_message(translate(stream, context))
    assert final.usage.input_tokens == 500
    assert final.usage.cache_read_input_tokens == 1500
    assert final.usage.output_tokens == 7
    assert final.id.startswith("msg_")


# --------------------------------------------------------------------------- S03 text, tool, text


def test_a2o_s03_text_tool_text() -> None:
    stream = _stream(
        ROLE,
        chunk({"content": "Checking."}),
        chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": '))),
        chunk(tools_delta(tc(0, args='"ls"}'))),
        chunk({"content": "Done."}),
        chunk({}, "tool_calls"),
        usage_chunk(),
        DONE,
    )
    out, events, msg = run(stream)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "text"),
    ]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}
    assert _summary(msg) == [
        ("text", "Checking."),
        ("tool_use", "call_1", "Bash", {"command": "ls"}),
        ("text", "Done."),
    ]
    assert msg["stop_reason"] == "tool_use"
    final = sdk_final_message(out)
    assert final.content[1].input == {"command": "ls"}


def test_a2o_s03_late_arguments_never_on_closed_index(caplog: pytest.LogCaptureFixture) -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": "ls"}'))),
        chunk({"content": "text in between"}),
        chunk(tools_delta(tc(0, args=' "late"'))),  # arguments for the already closed tool block
        chunk({}, "tool_calls"),
        usage_chunk(),
        DONE,
    )
    with caplog.at_level(logging.WARNING, "rawproxy"):
        _, events, msg = run(stream)  # check_order fails on any delta for a closed index
    assert _summary(msg) == [("tool_use", "call_1", "Bash", {"command": "ls"}), ("text", "text in between")]
    assert "late" not in json.dumps(events)


# ------------------------------------------------------------------------------ S04 parallel calls


def test_a2o_s04_parallel_tool_calls_in_one_chunk() -> None:
    out, _, msg = run(PARALLEL_STREAM)
    assert _summary(msg) == [
        ("tool_use", "call_a", "Read", {"path": "a.py"}),
        ("tool_use", "call_b", "Read", {"path": "b.py"}),
    ]
    assert msg["stop_reason"] == "tool_use"
    final = sdk_final_message(out)
    assert [(b.id, b.input) for b in final.content] == [
        ("call_a", {"path": "a.py"}),
        ("call_b", {"path": "b.py"}),
    ]


def test_a2o_s04_three_parallel_calls_split_over_chunks() -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "c0", "A", '{"i": 0}'), tc(1, "c1", "B", ""))),
        chunk(tools_delta(tc(1, args='{"i": 1}'), tc(2, "c2", "C", '{"i": 2}'))),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, _, msg = run(stream)
    assert _summary(msg) == [
        ("tool_use", "c0", "A", {"i": 0}),
        ("tool_use", "c1", "B", {"i": 1}),
        ("tool_use", "c2", "C", {"i": 2}),
    ]


# ------------------------------------------------------------------------- S05 interleaved indices


def test_a2o_s05_interleaved_tool_indices() -> None:
    out, events, msg = run(INTERLEAVED_STREAM)
    assert _summary(msg) == [
        ("tool_use", "call_a", "Grep", {"pattern": "TODO"}),
        ("tool_use", "call_b", "Glob", {"glob": "*.py"}),
    ]
    # index 1 appears only after block 0 is stopped
    first_b = next(i for i, e in enumerate(events) if e.get("index") == 1)
    stop_a = next(i for i, e in enumerate(events) if e["type"] == "content_block_stop" and e["index"] == 0)
    assert first_b > stop_a
    final = sdk_final_message(out)
    assert [b.input for b in final.content] == [{"pattern": "TODO"}, {"glob": "*.py"}]


def test_a2o_s05_second_index_arrives_first() -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(1, "call_b", "B", '{"b": 1}'))),
        chunk(tools_delta(tc(0, "call_a", "A", '{"a": 1}'))),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, _, msg = run(stream)
    assert sorted(_summary(msg)) == [
        ("tool_use", "call_a", "A", {"a": 1}),
        ("tool_use", "call_b", "B", {"b": 1}),
    ]


# ----------------------------------------------------------------------- S06 late / missing id, name


def test_a2o_s06_arguments_before_id_and_name_are_kept() -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, args='{"a"'))),
        chunk(tools_delta(tc(0, args=": 1"))),
        chunk(tools_delta(tc(0, id="call_late", name="Late", args="}"))),
        chunk({}, "tool_calls"),
        DONE,
    )
    out, events, msg = run(stream)
    assert _summary(msg) == [("tool_use", "call_late", "Late", {"a": 1})]
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"] == {"type": "tool_use", "id": "call_late", "name": "Late", "input": {}}
    assert sdk_final_message(out).content[0].input == {"a": 1}


def test_a2o_s06_no_id_ever_synthesises_toolu() -> None:
    stream = _stream(
        ROLE, chunk(tools_delta(tc(0, name="Bash", args='{"c": 1}'))), chunk({}, "tool_calls"), DONE
    )
    _, _, msg = run(stream)
    block = msg["content"][0]
    assert block["name"] == "Bash"
    assert block["input"] == {"c": 1}
    assert block["id"].startswith("toolu_") and len(block["id"]) == len("toolu_") + 24


def test_a2o_s06_no_name_ever_still_gives_a_named_block(caplog: pytest.LogCaptureFixture) -> None:
    stream = _stream(
        ROLE, chunk(tools_delta(tc(0, id="call_x", args='{"c": 1}'))), chunk({}, "tool_calls"), DONE
    )
    with caplog.at_level(logging.WARNING, "rawproxy"):
        out, _, msg = run(stream)
    block = msg["content"][0]
    assert block["name"]  # Claude Code crashes on a tool_use start without a name
    assert block["id"] == "call_x"
    assert block["input"] == {"c": 1}
    assert "never received a name" in caplog.text
    sdk_final_message(out)


# -------------------------------------------------------------------------- S07 cumulative snapshots


def test_a2o_s07_cumulative_argument_snapshots() -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "call_1", "Edit", '{"old": "a",'))),
        chunk(tools_delta(tc(0, args='{"old": "a", "new": '))),
        chunk(tools_delta(tc(0, args='{"old": "a", "new": "b"}'))),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, events, msg = run(stream)
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert fragments == ['{"old": "a",', ' "new": ', '"b"}']
    assert msg["content"][0]["input"] == {"old": "a", "new": "b"}


# -------------------------------------------------------------- S08 content and finish in one chunk


@pytest.mark.parametrize("with_usage", [False, True])
def test_a2o_s08_content_and_finish_in_same_chunk(with_usage: bool) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7} if with_usage else None
    stream = _stream(ROLE, chunk({"content": "Hi"}), chunk({"content": " there"}, "stop", usage=usage), DONE)
    out, events, msg = run(stream)
    assert _types(events)[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-4]["delta"] == {"type": "text_delta", "text": " there"}
    assert msg["content"] == [{"type": "text", "text": "Hi there"}]
    assert msg["stop_reason"] == "end_turn"
    if with_usage:
        assert msg["usage"]["output_tokens"] == 2
    assert sdk_final_message(out).content[0].text == "Hi there"


def test_a2o_s08_tool_call_and_finish_in_same_chunk() -> None:
    stream = _stream(ROLE, chunk(tools_delta(tc(0, "call_1", "Ls", "{}")), "tool_calls"), DONE)
    _, _, msg = run(stream)
    assert _summary(msg) == [("tool_use", "call_1", "Ls", {})]
    assert msg["stop_reason"] == "tool_use"


# ------------------------------------------------------------------------- S09 mixed payload chunk


def test_a2o_s09_mixed_payload_chunk_order() -> None:
    stream = _stream(
        ROLE,
        chunk(
            {
                "reasoning_content": "plan",
                "content": "I will run it.",
                "tool_calls": [tc(0, "call_1", "Bash", '{"command": "make"}')],
            }
        ),
        chunk({}, "tool_calls"),
        usage_chunk(),
        DONE,
    )
    out, _, msg = run(stream, ctx(thinking=True))
    assert _summary(msg) == [
        ("thinking", "plan", ""),
        ("text", "I will run it."),
        ("tool_use", "call_1", "Bash", {"command": "make"}),
    ]
    final = sdk_final_message(out)
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]


# ------------------------------------------------------------------------------ S10 reasoning stream


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a2o_s10_reasoning_stream_becomes_thinking(field: str) -> None:
    stream = REASONING_STREAM.replace(b'"reasoning_content"', f'"{field}"'.encode())
    out, events, msg = run(stream, ctx(thinking=True))
    assert _summary(msg) == [("thinking", "Thinking...", ""), ("text", "Answer")]
    start = events[1]
    assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert all(
        e.get("delta", {}).get("type") != "signature_delta" for e in events
    )  # decision 1: none invented
    thinking_deltas = [e for e in events if e.get("delta", {}).get("type") == "thinking_delta"]
    assert {e["index"] for e in thinking_deltas} == {0}
    # the thinking block is closed before the text block opens
    stop0 = next(i for i, e in enumerate(events) if e["type"] == "content_block_stop" and e["index"] == 0)
    start1 = next(i for i, e in enumerate(events) if e["type"] == "content_block_start" and e["index"] == 1)
    assert stop0 < start1
    final = sdk_final_message(out)
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "Thinking..."
    assert final.content[1].text == "Answer"


def test_a2o_s10_reasoning_details_stream_becomes_thinking() -> None:
    stream = _stream(
        ROLE,
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": "deep "}]}),
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": "thought"}]}),
        chunk({"content": "ok"}, "stop"),
        DONE,
    )
    _, _, msg = run(stream, ctx(thinking=True))
    assert _summary(msg) == [("thinking", "deep thought", ""), ("text", "ok")]


def test_a2o_s10_reasoning_dropped_without_client_thinking() -> None:
    _, events, msg = run(REASONING_STREAM, ctx(thinking=False))
    assert _summary(msg) == [("text", "Answer")]
    assert "thinking" not in json.dumps(events)


# ------------------------------------------------------------------------- S11 empty / role deltas


def test_a2o_s11_role_only_and_empty_deltas_emit_nothing() -> None:
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    start = t.start()
    assert _types(parse_sse(start)) == ["message_start"]
    for frame in (
        ROLE,
        chunk({"content": ""}),
        chunk({"content": None}),
        chunk({}),
        chunk({"role": "assistant"}),
        chunk({"tool_calls": []}),
    ):
        assert t.feed(frame) == b"", frame
    rest = t.feed(chunk({"content": "x"}, "stop") + DONE) + t.close()
    events = parse_sse(start + rest)
    msg = reduce_events(events)
    assert msg["content"] == [{"type": "text", "text": "x"}]


def test_a2o_s11_empty_stream_has_no_empty_text_block() -> None:
    _, events, msg = run(_stream(ROLE, chunk({}, "stop"), DONE))
    assert msg["content"] == []
    assert "content_block_start" not in _types(events)
    assert msg["stop_reason"] == "end_turn"


# ------------------------------------------------------------------------- S12 trailing usage chunk


def test_a2o_s12_trailing_usage_chunk_one_message_delta() -> None:
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    out = t.start() + t.feed(ROLE + chunk({"content": "a"}))
    held = t.feed(chunk({}, "stop"))
    # the finish closes the block but message_delta waits for the usage
    assert _types(parse_sse(held)) == ["content_block_stop"]
    tail = t.feed(usage_chunk(40, 9, cached=10))
    assert _types(parse_sse(tail)) == ["message_delta", "message_stop"]
    assert t.feed(DONE) == b""
    assert t.close() == b""
    events = parse_sse(out + held + tail)
    msg = reduce_events(events)
    assert msg["usage"] == {
        "input_tokens": 30,
        "output_tokens": 9,
        "cache_read_input_tokens": 10,
        "cache_creation_input_tokens": 0,
    }


def test_a2o_s12_usage_in_last_choice_chunk() -> None:
    stream = _stream(
        ROLE,
        chunk({"content": "a"}),
        chunk({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 1}),
        DONE,
    )
    _, events, msg = run(stream)
    assert _types(events).count("message_delta") == 1
    assert msg["usage"]["input_tokens"] == 3
    assert msg["usage"]["output_tokens"] == 1


# ------------------------------------------------------------------------- S13 premature EOF


def test_a2o_s13_eof_without_finish_is_an_error() -> None:
    stream = _stream(ROLE, chunk({"content": "partial ans"}))  # connection closes: no finish, no [DONE]
    out, events, msg = run(stream)
    assert _types(events) == [  # the text block is left open: no content_block_stop before the error
        "message_start",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    _assert_error_with_block_open(events)
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended prematurely"},
    }
    assert msg["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError):
        sdk_final_message(out)


def test_a2o_s13_eof_inside_tool_arguments_is_an_error() -> None:
    stream = _stream(ROLE, chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": "rm'))))
    _, events, msg = run(stream)
    assert _types(events)[-3:] == ["content_block_start", "content_block_delta", "error"]
    _assert_error_with_block_open(events)
    assert events[-3]["content_block"]["type"] == "tool_use"
    assert msg["content"][0]["input"] == {}  # never stopped, so the truncated arguments are never parsed
    assert "raw_input" not in msg["content"][0]
    assert msg["error"]["type"] == "api_error"


def test_a2o_s13_eof_before_any_chunk_is_an_error() -> None:
    _, events, _ = run(b"")
    assert _types(events) == ["message_start", "error"]


def test_a2o_s13_eof_mid_frame_is_an_error() -> None:
    frame = chunk({"content": "lost"})
    _, events, msg = run(_stream(ROLE, chunk({"content": "kept"}), frame[: len(frame) // 2]))
    _assert_error_with_block_open(events)
    assert msg["content"] == [{"type": "text", "text": "kept"}]


@pytest.mark.parametrize(
    ("calls", "expected"),
    [(False, "end_turn"), (True, "tool_use")],
)
def test_a2o_s13_done_without_finish_reason_completes(calls: bool, expected: str) -> None:
    body = chunk(tools_delta(tc(0, "call_1", "Ls", "{}"))) if calls else chunk({"content": "fine"})
    out, events, msg = run(_stream(ROLE, body, DONE))
    assert msg["stop_reason"] == expected
    assert _types(events)[-1] == "message_stop"
    sdk_final_message(out)


def test_a2o_s13_finish_without_done_then_eof_completes() -> None:
    out, events, msg = run(_stream(ROLE, chunk({"content": "ok"}), chunk({}, "stop")))
    assert _types(events)[-2:] == ["message_delta", "message_stop"]
    assert msg["stop_reason"] == "end_turn"
    sdk_final_message(out)


# ------------------------------------------------------------------------- S14 in-band errors


@pytest.mark.parametrize(
    ("error_frame", "etype", "message"),
    [
        (
            b'data: {"error":{"message":"Provider returned error","code":502}}\n\n',
            "api_error",
            "Provider returned error",
        ),
        (
            chunk({}, "error", error={"message": "upstream boom", "code": 500}),
            "api_error",
            "upstream boom",
        ),
        (
            b'data: {"id":"c1","error":{"message":"Rate limit exceeded","code":429}}\n\n',
            "rate_limit_error",
            "Rate limit exceeded",
        ),
        (
            b'data: {"error":{"message":"overloaded","code":503}}\n\n',
            "overloaded_error",
            "overloaded",
        ),
        (b'event: error\ndata: {"error":"groq says no"}\n\n', "api_error", "groq says no"),
    ],
)
def test_a2o_s14_in_band_upstream_error(error_frame: bytes, etype: str, message: str) -> None:
    stream = _stream(ROLE, chunk({"content": "so far"}), error_frame, chunk({"content": "ignored"}), DONE)
    out, events, msg = run(stream)
    assert _types(events) == [  # the text block is left open: no content_block_stop before the error
        "message_start",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    _assert_error_with_block_open(events)
    assert events[-1] == {"type": "error", "error": {"type": etype, "message": message}}
    assert msg["content"] == [{"type": "text", "text": "so far"}]
    with pytest.raises(anthropic.APIStatusError) as excinfo:
        sdk_final_message(out)
    assert message in str(excinfo.value)


def test_a2o_s14_finish_reason_error_without_error_object() -> None:
    _, events, _ = run(_stream(ROLE, chunk({"content": "a"}), chunk({}, "error"), DONE))
    _assert_error_with_block_open(events)
    assert _types(events)[-2:] == ["content_block_delta", "error"]
    assert events[-1]["error"]["type"] == "api_error"


def test_a2o_s14_error_is_final_even_after_more_bytes() -> None:
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    t.start()
    out = t.feed(b'data: {"error":{"message":"x","code":502}}\n\n')
    assert parse_sse(out)[-1]["type"] == "error"
    assert t.feed(chunk({"content": "more"}, "stop") + DONE) == b""
    assert t.close() == b""


def test_a2o_s14_non_json_chunk_is_an_error() -> None:
    _, events, _ = run(_stream(ROLE, chunk({"content": "a"}), b"data: {not json\n\n", DONE))
    assert _types(events)[-2:] == ["content_block_delta", "error"]
    _assert_error_with_block_open(events)
    assert events[-1]["error"]["type"] == "api_error"


# --------------------------------------------------------------------------- S15 SSE robustness


def _variant_crlf(s: bytes) -> bytes:
    return s.replace(b"\n", b"\r\n")


def _variant_cr(s: bytes) -> bytes:
    return s.replace(b"\n", b"\r")


def _variant_no_space(s: bytes) -> bytes:
    return s.replace(b"data: ", b"data:")


def _variant_comments(s: bytes) -> bytes:
    return b": OPENROUTER PROCESSING\n\n" + s.replace(b"\n\n", b"\n\n: OPENROUTER PROCESSING\n\n\n\n")


def _variant_event_lines(s: bytes) -> bytes:
    return s.replace(b"data: {", b"event: completion\nid: 7\nretry: 100\ndata: {")


def _variant_multiline_data(s: bytes) -> bytes:
    # the JSON split over two data lines; SSE joins them with "\n", which is JSON whitespace
    return s.replace(b'"object":', b'\ndata: "object":')


@pytest.mark.parametrize(
    "variant",
    [
        _variant_crlf,
        _variant_cr,
        _variant_no_space,
        _variant_comments,
        _variant_event_lines,
        _variant_multiline_data,
    ],
)
@pytest.mark.parametrize(
    "stream", [TEXT_STREAM, TOOL_STREAM, UNICODE_STREAM], ids=["text", "tool", "unicode"]
)
def test_a2o_s15_sse_parsing_robustness(stream: bytes, variant: Any) -> None:
    expected = normalise_ids(translate(stream))
    varied = variant(stream)
    assert normalise_ids(translate(varied)) == expected
    for size in (1, 7, 97):
        assert normalise_ids(translate(varied, pieces=split_every(varied, size))) == expected


def test_a2o_s15_crlf_split_between_cr_and_lf() -> None:
    s = _variant_crlf(TEXT_STREAM)
    expected = normalise_ids(translate(TEXT_STREAM))
    for i in range(len(s)):
        if s[i : i + 1] == b"\n" and s[i - 1 : i] == b"\r":
            assert normalise_ids(translate(s, pieces=[s[:i], s[i:]])) == expected


def test_a2o_s15_megabyte_tool_argument_line() -> None:
    big = "x" * (1024 * 1024)
    args = json.dumps({"content": big, "emoji": "😀"}, ensure_ascii=False)
    stream = _stream(
        ROLE, chunk(tools_delta(tc(0, "call_big", "Write", args))), chunk({}, "tool_calls"), DONE
    )
    whole = normalise_ids(translate(stream))
    assert normalise_ids(translate(stream, pieces=split_every(stream, 65536))) == whole
    assert normalise_ids(translate(stream, pieces=split_every(stream, 4099))) == whole
    msg = reduce_events(parse_sse(whole))
    assert msg["content"][0]["input"] == {"content": big, "emoji": "😀"}


# ----------------------------------------------------------------------------- S16 keepalive


def test_a2o_s16_keepalive_ping() -> None:
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    assert t.ping() == b'event: ping\ndata: {"type":"ping"}\n\n'
    out = t.start() + t.ping() + t.feed(ROLE + chunk({"content": "a"})) + t.ping()
    out += t.feed(chunk({"content": "b"}, "stop")) + t.ping() + t.feed(usage_chunk() + DONE) + t.close()
    events = parse_sse(out)
    assert _types(events).count("ping") == 3
    assert reduce_events(events)["content"] == [{"type": "text", "text": "ab"}]
    final = sdk_final_message(out)
    assert final.content[0].text == "ab"
    assert sdk_accumulate(events).content[0].text == "ab"


def test_a2o_s16_no_ping_after_message_stop() -> None:
    """message_stop is the last event of an Anthropic stream; an upstream that stalls between its usage
    chunk and [DONE] must not make the keepalive timer write past it."""
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    t.start()
    out = t.feed(chunk({"content": "a"}, "stop") + usage_chunk())
    assert _types(parse_sse(out))[-1] == "message_stop"
    assert t.ping() == b""


# ------------------------------------------------------------------ S17 nothing held back (sans-I/O)


def test_a2o_s17_output_is_immediate_and_nothing_is_buffered() -> None:
    """The proxy-level disconnect test lives elsewhere; here: each complete upstream event yields its
    client bytes in the same feed(), and the translator holds no bytes between events, so a
    cancellation loses nothing that was already received."""
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    t.start()
    frames = [ROLE, chunk({"content": "a"}), chunk({"content": "b"})]
    produced = []
    for frame in frames:
        produced.append(t.feed(frame))
        assert t._sse.buffered == 0
    assert produced[0] == b""
    assert [e["type"] for e in parse_sse(produced[1])] == ["content_block_start", "content_block_delta"]
    assert [e["type"] for e in parse_sse(produced[2])] == ["content_block_delta"]
    # half a frame is held only until its end arrives
    half = chunk({"content": "c"})
    assert t.feed(half[:10]) == b""
    assert t._sse.buffered == 10
    assert parse_sse(t.feed(half[10:]))[0]["delta"]["text"] == "c"
    assert t._sse.buffered == 0
    tool = t.feed(chunk(tools_delta(tc(0, "c1", "T", '{"a"'))))
    assert _types(parse_sse(tool)) == ["content_block_stop", "content_block_start", "content_block_delta"]
    assert t._sse.buffered == 0


def test_a2o_s17_first_token_emitted_immediately() -> None:
    """Emit immediately: the first content chunk alone already yields its text_delta."""
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    t.start()
    out = t.feed(chunk({"content": "first"}))
    assert b'"text_delta","text":"first"' in out
    t2 = StreamTranslator(anthropic_messages, openai_chat, ctx(thinking=True))
    t2.start()
    assert b'"thinking_delta","thinking":"hmm"' in t2.feed(chunk({"reasoning_content": "hmm"}))
    t3 = StreamTranslator(anthropic_messages, openai_chat, ctx())
    t3.start()
    out3 = t3.feed(chunk(tools_delta(tc(0, "call_1", "Bash", '{"com'))))
    assert b'"content_block_start"' in out3 and b'"partial_json":"{\\"com"' in out3


# ---------------------------------------------------------------- S18 error before the first byte


@pytest.mark.parametrize(
    ("status", "client_status", "etype"),
    [(429, 429, "rate_limit_error"), (500, 500, "api_error"), (503, 529, "overloaded_error")],
)
def test_a2o_s18_error_before_first_byte_is_a_json_error(status: int, client_status: int, etype: str) -> None:
    body = orjson.dumps({"error": {"message": "nope", "type": "server_error"}})
    out_status, out_body = anthropic_messages.build_error(openai_chat.parse_error(status, body))
    assert out_status == client_status
    assert orjson.loads(out_body) == {"type": "error", "error": {"type": etype, "message": "nope"}}
    assert not out_body.startswith(b"event:")


# --------------------------------------------------------------------------- S19 message_delta


@pytest.mark.parametrize(
    ("finish", "has_call", "stop_reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("stop", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("something_new", False, "end_turn"),
    ],
)
def test_a2o_s19_message_delta_contents(finish: str, has_call: bool, stop_reason: str) -> None:
    body = chunk(tools_delta(tc(0, "call_1", "Ls", "{}"))) if has_call else chunk({"content": "t"})
    out, events, _ = run(_stream(ROLE, body, chunk({}, finish), usage_chunk(8, 4), DONE))
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta == {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {
            "input_tokens": 8,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 4,
        },
    }
    raw = [line for line in out.split(b"\n\n") if line.startswith(b"event: message_delta")]
    assert raw == [
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"'
        + stop_reason.encode()
        + b'","stop_sequence":null},"usage":{"input_tokens":8,"cache_creation_input_tokens":0,'
        b'"cache_read_input_tokens":0,"output_tokens":4}}'
    ]
    final = sdk_final_message(out)
    assert final.stop_reason == stop_reason
    assert final.stop_sequence is None


def test_a2o_s19_legacy_function_call_stream() -> None:
    stream = _stream(
        ROLE,
        chunk({"function_call": {"name": "Bash", "arguments": '{"command":'}}),
        chunk({"function_call": {"arguments": ' "ls"}'}}),
        chunk({}, "function_call"),
        DONE,
    )
    _, _, msg = run(stream)
    assert msg["content"][0]["name"] == "Bash"
    assert msg["content"][0]["input"] == {"command": "ls"}
    assert msg["stop_reason"] == "tool_use"


def test_a2o_s19_stop_sequence_attribution_in_stream() -> None:
    stream = _stream(
        ROLE, chunk({"content": "abc"}), chunk({}, "stop", extra_choice={"stop_reason": "END"}), DONE
    )
    out, _, msg = run(stream, ctx(stop=["END"]))
    assert msg["stop_reason"] == "stop_sequence"
    assert msg["stop_sequence"] == "END"
    assert sdk_final_message(out).stop_sequence == "END"


# ----------------------------------------------------------------- S20 length during tool arguments


def test_a2o_s20_max_tokens_during_tool_arguments() -> None:
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "call_1", "Write", '{"path": "a.txt", "content": "abc'))),
        chunk({}, "length"),
        usage_chunk(),
        DONE,
    )
    out = translate(stream)
    events = parse_sse(out)
    types = _types(events)
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


# --------------------------------------------------------------------------- S21 duplicate finish


def test_a2o_s21_duplicate_finish_reason() -> None:
    stream = _stream(
        ROLE,
        chunk({"content": "a"}),
        chunk({}, "stop"),
        chunk({"role": "assistant"}, "stop", id="chatcmpl-other"),
        usage_chunk(),
        usage_chunk(),
        DONE,
        DONE,
    )
    out, events, msg = run(stream)
    types = _types(events)
    assert types.count("message_start") == 1
    assert types.count("message_delta") == 1
    assert types.count("message_stop") == 1
    assert msg["stop_reason"] == "end_turn"
    sdk_final_message(out)


# ---------------------------------------------------------------------- S22 invalid final tool JSON


def test_a2o_s22_invalid_tool_json_is_forwarded_as_is_by_default() -> None:
    stream = _stream(
        ROLE, chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": "ls'))), chunk({}, "tool_calls"), DONE
    )
    events = parse_sse(translate(stream))
    fragments = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert fragments == '{"command": "ls'  # streamed fragments cannot be retracted


def test_a2o_s22_buffer_tool_args_profile_repairs() -> None:
    context = ctx(profile=replace(profiles.PROFILES["generic"], buffer_tool_args=True))
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": '))),
        chunk(tools_delta(tc(0, args='"ls -la'))),
        chunk({}, "tool_calls"),
        DONE,
    )
    out, events, msg = run(stream, context)
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert len(fragments) == 1
    assert msg["content"][0]["input"] == {"command": "ls -la"}
    assert sdk_final_message(out).content[0].input == {"command": "ls -la"}


def test_a2o_s22_buffer_tool_args_profile_parallel_calls() -> None:
    """With buffering on, every block still gets exactly its own repaired arguments before its stop."""
    context = ctx(profile=replace(profiles.PROFILES["generic"], buffer_tool_args=True))
    out = translate(PARALLEL_STREAM, context)
    # the official SDK silently keeps input {} for call_a when its arguments arrive after its stop
    assert [b.input for b in sdk_final_message(out).content] == [{"path": "a.py"}, {"path": "b.py"}]
    msg = reduce_events(parse_sse(out))  # check_order: no delta on a closed index
    assert _summary(msg) == [
        ("tool_use", "call_a", "Read", {"path": "a.py"}),
        ("tool_use", "call_b", "Read", {"path": "b.py"}),
    ]


def test_a2o_s22_buffer_tool_args_profile_tool_then_text() -> None:
    context = ctx(profile=replace(profiles.PROFILES["generic"], buffer_tool_args=True))
    stream = _stream(
        ROLE,
        chunk(tools_delta(tc(0, "call_1", "Bash", '{"command": "ls"}'))),
        chunk({"content": "and then"}),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, _, msg = run(stream, context)
    assert _summary(msg) == [("tool_use", "call_1", "Bash", {"command": "ls"}), ("text", "and then")]


# -------------------------------------------------------------------------- S23 stream_options


def _stream_request() -> ir.Request:
    return anthropic_messages.parse_request(
        orjson.dumps(
            {
                "model": "claude-sonnet-4-6",
                "max_tokens": 100,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
        )
    )


@pytest.mark.parametrize(("stream_usage", "present"), [(True, True), (False, False)])
def test_a2o_s23_stream_options_follow_profile_flag(stream_usage: bool, present: bool) -> None:
    profile = replace(profiles.PROFILES["openai"], stream_usage=stream_usage)
    _, body = openai_chat.build_request(_stream_request(), ctx(profile=profile))
    data = orjson.loads(body)
    assert data["stream"] is True
    if present:
        assert data["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in data


def test_a2o_s23_guess_profile_override_removes_stream_options() -> None:
    profile = profiles.guess_profile("https://api.openai.com/v1", stream_usage=False)
    assert profile.name == "openai" and profile.stream_usage is False
    _, body = openai_chat.build_request(_stream_request(), ctx(profile=profile))
    assert "stream_options" not in orjson.loads(body)


def test_a2o_s23_usage_estimated_without_stream_usage() -> None:
    stream = _stream(ROLE, chunk({"content": "x" * 40}), chunk({}, "stop"), DONE)
    _, events, msg = run(stream, ctx(input_tokens=321))
    assert msg["usage"]["input_tokens"] == 321
    assert msg["usage"]["output_tokens"] == 10
    assert _types(events).count("message_delta") == 1


# -------------------------------------------------------------------------- chunking invariance


SHORT_STREAMS = {
    "text": _stream(chunk({"content": "Hi 👋"}), chunk({}, "stop"), DONE),
    "tool": _stream(chunk(tools_delta(tc(0, "c1", "T", '{"k": "日本"}'))), chunk({}, "tool_calls"), DONE),
    "error": _stream(chunk({"content": "a"}), b'data: {"error":{"message":"m","code":502}}\n\n'),
}


@pytest.mark.parametrize("name", list(SHORT_STREAMS))
def test_a2o_chunking_every_split_offset(name: str) -> None:
    stream = SHORT_STREAMS[name]
    expected = normalise_ids(translate(stream))
    for i in range(1, len(stream)):
        assert normalise_ids(translate(stream, pieces=[stream[:i], stream[i:]])) == expected, i
    events = parse_sse(expected)
    reduce_events(events)
    if name == "error":
        _assert_error_with_block_open(events)


LONG_STREAMS = {
    "text": TEXT_STREAM,
    "tool": TOOL_STREAM,
    "parallel": PARALLEL_STREAM,
    "interleaved": INTERLEAVED_STREAM,
    "unicode": UNICODE_STREAM,
    "reasoning": REASONING_STREAM,
}


@pytest.mark.parametrize("size", [1, 7, 97])
@pytest.mark.parametrize("name", list(LONG_STREAMS))
def test_a2o_chunking_fixed_piece_sizes(name: str, size: int) -> None:
    stream = LONG_STREAMS[name]
    context = ctx(thinking=True)
    expected = normalise_ids(translate(stream, context))
    assert normalise_ids(translate(stream, ctx(thinking=True), pieces=split_every(stream, size))) == expected


def test_x07_unicode_tool_args_split_inside_code_points() -> None:
    stream = UNICODE_STREAM
    expected = translate(stream)
    # every offset that falls strictly inside a multibyte UTF-8 sequence
    inside = [i for i in range(1, len(stream)) if stream[i] & 0xC0 == 0x80]
    assert len(inside) > 20
    for i in inside:
        assert normalise_ids(translate(stream, pieces=[stream[:i], stream[i:]])) == normalise_ids(expected)
    events = parse_sse(expected)
    msg = reduce_events(events)
    assert msg["content"][0] == {"type": "text", "text": "写入 🚀"}
    tool = msg["content"][1]
    assert tool["raw_input"] == UNICODE_ARGS  # fragments forwarded byte for byte, never re-serialised
    assert tool["input"] == json.loads(UNICODE_ARGS)
    fragments = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert fragments == [UNICODE_ARGS[:13], UNICODE_ARGS[13:30], UNICODE_ARGS[30:]]
    assert "😀".encode() in expected and "世界".encode() in expected  # raw UTF-8, not \\u escapes
    final = sdk_final_message(expected)
    assert final.content[1].input == json.loads(UNICODE_ARGS)


# ------------------------------------------------------------------------- more stream mappings


def test_a2o_n11_refusal_in_stream() -> None:
    """OpenAI streams a refusal as ``delta.refusal`` tokens, then a bare finish "stop" chunk."""
    stream = _stream(
        chunk({"role": "assistant", "refusal": ""}),
        chunk({"refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk({}, "stop"),
        usage_chunk(),
        DONE,
    )
    out, _, msg = run(stream)
    assert msg["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert msg["stop_reason"] == "refusal"
    assert sdk_final_message(out).stop_reason == "refusal"


def test_a2o_s04_other_choice_indices_ignored() -> None:
    """n > 1 upstream streams: only choice 0 reaches the client (A2O-N12 in stream form)."""
    other = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"content":"B"},"finish_reason":null}]}\n\n'
    other_finish = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}\n\n'
    stream = _stream(ROLE, chunk({"content": "A"}), other, other_finish, chunk({}, "stop"), DONE)
    _, _, msg = run(stream)
    assert msg["content"] == [{"type": "text", "text": "A"}]
    assert msg["stop_reason"] == "end_turn"


def test_a2o_s03_tool_name_mapped_back_in_stream() -> None:
    long_name = "mcp__github__" + "create_or_update_file_" * 4
    wire = "mcp__github__create_or_update_file_create_or_update_fil_0123abcd"
    stream = _stream(ROLE, chunk(tools_delta(tc(0, "call_1", wire, "{}"))), chunk({}, "tool_calls"), DONE)
    _, events, msg = run(stream, ctx(tool_names={wire: long_name}))
    assert events[1]["content_block"]["name"] == long_name
    assert msg["content"][0]["name"] == long_name
