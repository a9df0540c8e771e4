"""O2A streams: Anthropic Messages SSE in, OpenAI ``chat.completion.chunk`` SSE out (CONFORMANCE.md
O2A-S01..S11, the stream halves of O2A-R23 and O2A-R26, decision 2).

Every stream goes through ``StreamTranslator(openai_chat, anthropic_messages, ctx)`` exactly as the proxy
drives it (start, feed, close at EOF), is parsed strictly (``data: <json>\\n\\n`` frames, one final
``data: [DONE]``), every chunk validated with the openai SDK's ``ChatCompletionChunk``, checked for the
stream invariants and accumulated; the main cases are also served to the real ``openai`` client.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator
from tests.support import FIXTURES_DIR
from tests.support.openai_sse import (
    DONE,
    block_stop,
    check_chunks,
    ctx,
    error_event,
    ev,
    json_delta,
    message_delta,
    message_start,
    message_stop,
    normalise,
    parse_chunks,
    ping,
    run,
    sdk_chunks,
    sdk_final_completion,
    signature_delta,
    split_every,
    text_delta,
    text_start,
    text_stream,
    thinking_delta,
    thinking_start,
    tool_start,
    translate_stream,
)

GOLDENS_OPENAI = FIXTURES_DIR / "transcripts" / "expected_openai"


def choices(frames: list[dict[str, Any]]) -> list[Any]:
    """The (delta, finish_reason) of every chunk that has a choice, in order."""
    return [(f["choices"][0]["delta"], f["choices"][0]["finish_reason"]) for f in frames if f.get("choices")]


ROLE = ({"role": "assistant", "content": ""}, None)
END = ({}, "stop")


def tool_stream() -> bytes:
    """text(0), tool(1) with streamed arguments, text(2), tool(3) with no input deltas at all."""
    return b"".join(
        [
            message_start(),
            text_start(0),
            text_delta(0, "Checking."),
            block_stop(0),
            tool_start(1, "toolu_01A", "weather"),
            json_delta(1, ""),
            json_delta(1, '{"city": "Z'),
            json_delta(1, 'ürich"}'),
            block_stop(1),
            text_start(2),
            text_delta(2, "And the time:"),
            block_stop(2),
            tool_start(3, "toolu_01B", "time"),
            block_stop(3),
            message_delta("tool_use", 40),
            message_stop(),
        ]
    )


# ----------------------------------------------------------------------------- S01 canonical sequence


def test_o2a_s01_canonical_text_sequence() -> None:
    out, final = run(text_stream("Hello", ", world"))
    frames = parse_chunks(out)
    assert choices(frames) == [ROLE, ({"content": "Hello"}, None), ({"content": ", world"}, None), END]
    assert final["content"] == "Hello, world"
    assert final["usage"] is None  # no include_usage: no usage chunk
    assert out.endswith(b"}\n\n" + DONE)


def test_o2a_s01_exact_bytes_of_a_short_stream() -> None:
    out = translate_stream(text_stream("Hi"))
    head = b'{"id":"chatcmpl-X","object":"chat.completion.chunk","created":0,"model":"gpt-4o","choices":'
    assert normalise(out) == (
        b"data: "
        + head
        + b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
        b"data: " + head + b'[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        b"data: " + head + b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_o2a_s01_role_chunk_sent_at_start_before_any_upstream_byte() -> None:
    t = StreamTranslator(openai_chat, anthropic_messages, ctx())
    first = t.start()
    assert choices(parse_chunks(first + DONE)) == [ROLE]
    assert t.start() == b""  # never twice
    rest = t.feed(text_stream("x")) + t.close()
    assert choices(parse_chunks(first + rest)) == [ROLE, ({"content": "x"}, None), END]


def test_o2a_s01_official_sdk_reads_the_stream() -> None:
    out = translate_stream(text_stream("Hello", " there"))
    chunks = sdk_chunks(out)
    assert [c.choices[0].delta.content for c in chunks] == ["", "Hello", " there", None]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1
    final = sdk_final_completion(out)
    assert final.choices[0].message.content == "Hello there"
    assert final.choices[0].finish_reason == "stop"
    assert final.model == "gpt-4o"


# ----------------------------------------------------------------------------- S02 / S03 / S04 tools


def test_o2a_s02_tool_call_index_counts_tool_blocks_only() -> None:
    out, final = run(tool_stream())
    assert choices(parse_chunks(out)) == [
        ROLE,
        ({"content": "Checking."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Z'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'ürich"}'}}]}, None),
        ({"content": "And the time:"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_01B",
                        "type": "function",
                        "function": {"name": "time", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        ({}, "tool_calls"),
    ]
    assert final["tool_calls"] == [
        {"id": "toolu_01A", "name": "weather", "arguments": '{"city": "Zürich"}'},
        {"id": "toolu_01B", "name": "time", "arguments": "{}"},
    ]
    assert final["content"] == "Checking.And the time:"


def test_o2a_s02_official_sdk_accumulates_tool_calls() -> None:
    final = sdk_final_completion(translate_stream(tool_stream()))
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        ("toolu_01A", "weather", {"city": "Zürich"}),
        ("toolu_01B", "time", {}),
    ]


def test_o2a_s02_three_parallel_tools() -> None:
    frames = [message_start()]
    for i in range(3):
        frames += [tool_start(i, f"toolu_{i}", "f"), json_delta(i, f'{{"n": {i}}}'), block_stop(i)]
    frames += [message_delta("tool_use"), message_stop()]
    _, final = run(b"".join(frames))
    assert final["tool_calls"] == [
        {"id": f"toolu_{i}", "name": "f", "arguments": f'{{"n": {i}}}'} for i in range(3)
    ]
    assert final["finish_reason"] == "tool_calls"


def test_o2a_s03_empty_partial_json_skipped() -> None:
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "f"),
            json_delta(0, ""),
            json_delta(0, '{"a"'),
            json_delta(0, ""),
            json_delta(0, ": 1}"),
            block_stop(0),
            message_delta("tool_use"),
            message_stop(),
        ]
    )
    out, final = run(stream)
    arguments = [
        d["tool_calls"][0]["function"]["arguments"]
        for d, _ in choices(parse_chunks(out))
        if "tool_calls" in d
    ]
    # code's choice: skipped, not sent as "" (both are tolerated by clients that concatenate)
    assert arguments == ["", '{"a"', ": 1}"]
    assert final["tool_calls"] == [{"id": "toolu_1", "name": "f", "arguments": '{"a": 1}'}]


@pytest.mark.parametrize("deltas", [[], [""], ["", ""]])
def test_o2a_s04_tool_with_no_input_deltas_gets_empty_object(deltas: list[str]) -> None:
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "list_files"),
            *(json_delta(0, d) for d in deltas),
            block_stop(0),
            message_delta("tool_use"),
            message_stop(),
        ]
    )
    out, final = run(stream)
    assert final["tool_calls"] == [{"id": "toolu_1", "name": "list_files", "arguments": "{}"}]
    assert json.loads(final["tool_calls"][0]["arguments"]) == {}
    sdk = sdk_final_completion(out).choices[0].message.tool_calls
    assert sdk is not None and sdk[0].function.arguments == "{}"


# ----------------------------------------------------------------------------- S05 thinking


def test_o2a_s05_thinking_delta_becomes_reasoning_content_signature_dropped() -> None:
    stream = b"".join(
        [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "Let me "),
            thinking_delta(0, "think."),
            signature_delta(0, "EqQBCkYIARgCKkCsecret"),
            block_stop(0),
            ev(
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "redacted_thinking", "data": "Em"},
                }
            ),
            block_stop(1),
            text_start(2),
            text_delta(2, "42"),
            block_stop(2),
            message_delta(),
            message_stop(),
        ]
    )
    out, final = run(stream)
    assert choices(parse_chunks(out)) == [
        ROLE,
        ({"reasoning_content": "Let me "}, None),
        ({"reasoning_content": "think."}, None),
        ({"content": "42"}, None),
        END,
    ]
    assert b"EqQBCkYIARgCKkCsecret" not in out
    assert b'"Em"' not in out
    assert final["reasoning_content"] == "Let me think."


# ----------------------------------------------------------------------------- S06 ignored events


def test_o2a_s06_ping_unknown_events_and_citations_ignored() -> None:
    stream = b"".join(
        [
            ping(),
            message_start(),
            ping(),
            ev({"type": "some_future_event", "payload": {"x": 1}}),
            text_start(0),
            text_delta(0, "A"),
            ev(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {
                        "type": "citations_delta",
                        "citation": {"type": "char_location", "cited_text": "x", "document_index": 0},
                    },
                }
            ),
            ev({"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "x": 1}}),
            text_delta(0, "B"),
            block_stop(0),
            ev(
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {},
                    },
                }
            ),
            json_delta(1, '{"query": "x"}'),
            block_stop(1),
            ev(
                {
                    "type": "content_block_start",
                    "index": 2,
                    "content_block": {
                        "type": "web_search_tool_result",
                        "tool_use_id": "srvtoolu_1",
                        "content": [],
                    },
                }
            ),
            block_stop(2),
            ping(),
            message_delta(),
            ev({"type": "message_delta_v2"}),
            message_stop(),
        ]
    )
    out, final = run(stream)
    assert choices(parse_chunks(out)) == [ROLE, ({"content": "A"}, None), ({"content": "B"}, None), END]
    assert final["tool_calls"] == []  # a server tool is not the client's tool call (O2A-N06)


def test_o2a_s06_ping_method_is_an_sse_comment() -> None:
    t = StreamTranslator(openai_chat, anthropic_messages, ctx())
    assert t.ping() == b": ping\n\n"
    out = t.start() + t.ping() + t.feed(text_stream("x")) + t.close()
    assert b"ping" not in out.replace(b": ping\n\n", b"", 1)
    assert [c.choices[0].delta.content for c in sdk_chunks(out)] == ["", "x", None]
    assert t.ping() == b""  # nothing after the end


# ----------------------------------------------------------------------------- S07 / S10 failures

OVERLOADED = {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}


@pytest.mark.parametrize("at", ["after_text", "inside_tool", "before_any_block"])
def test_o2a_s07_mid_stream_error_then_done(at: str) -> None:
    frames = [message_start()]
    if at == "after_text":
        frames += [text_start(0), text_delta(0, "partial")]
    elif at == "inside_tool":
        frames += [tool_start(0, "toolu_1", "f"), json_delta(0, '{"a": ')]
    frames += [error_event("overloaded_error", "Overloaded")]
    out, final = run(b"".join(frames))
    frames_out = parse_chunks(out)
    assert frames_out[-1] == {"error": OVERLOADED}
    assert out.endswith(
        b'data: {"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}\n\n'
        + DONE
    )
    assert final["finish_reason"] is None
    assert final["error"] == OVERLOADED


def test_o2a_s07_nothing_after_the_error() -> None:
    t = StreamTranslator(openai_chat, anthropic_messages, ctx())
    out = t.start() + t.feed(message_start() + text_start(0) + error_event())
    assert t.feed(text_delta(0, "late") + message_delta() + message_stop()) == b""
    assert t.close() == b""
    assert t.fail(ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="x")) == b""
    assert out.count(DONE) == 1


def test_o2a_s07_official_sdk_raises_on_the_error_chunk() -> None:
    out = translate_stream(b"".join([message_start(), text_start(0), text_delta(0, "x"), error_event()]))
    with pytest.raises(openai.APIError) as exc:
        sdk_chunks(out)
    assert exc.value.message == "Overloaded"
    assert exc.value.body == OVERLOADED


@pytest.mark.parametrize(
    ("etype", "message"),
    [("api_error", "Internal server error"), ("rate_limit_error", "slow down"), ("unknown_new_error", "??")],
)
def test_o2a_s07_error_types_kept(etype: str, message: str) -> None:
    out = translate_stream(message_start() + error_event(etype, message))
    # code's choice: an unknown type in a stream (HTTP 200) falls back to the type of a 500, api_error
    want = etype if etype != "unknown_new_error" else "api_error"
    assert parse_chunks(out)[-1] == {
        "error": {
            "message": message,
            "type": want,
            "param": None,
            "code": "rate_limit_exceeded" if etype == "rate_limit_error" else None,
        }
    }


def test_o2a_s07_transport_failure_via_fail() -> None:
    t = StreamTranslator(openai_chat, anthropic_messages, ctx(include_usage=True))
    out = t.start() + t.feed(message_start() + text_start(0) + text_delta(0, "x"))
    out += t.fail(ir.ErrorInfo(status=504, type=ir.ErrorType.TIMEOUT, message="upstream read timeout"))
    out += t.close()
    frames = parse_chunks(out)
    assert frames[-1] == {
        "error": {"message": "upstream read timeout", "type": "timeout_error", "param": None, "code": None}
    }
    assert [f for f in frames if "usage" in f] == []


S10_CUTS = {
    "after_message_start": [message_start()],
    "inside_text": [message_start(), text_start(0), text_delta(0, "half")],
    "inside_tool": [message_start(), tool_start(0, "toolu_1", "f"), json_delta(0, '{"a')],
    "after_message_delta": [
        message_start(),
        text_start(0),
        text_delta(0, "x"),
        block_stop(0),
        message_delta(),
    ],
    "nothing_at_all": [],
}


@pytest.mark.parametrize("cut", list(S10_CUTS))
def test_o2a_s10_eof_without_message_stop_is_error_then_done(cut: str) -> None:
    out, final = run(b"".join(S10_CUTS[cut]), ctx(include_usage=True))
    assert parse_chunks(out)[-1] == {
        "error": {
            "message": "upstream stream ended prematurely",
            "type": "api_error",
            "param": None,
            "code": None,
        }
    }
    assert final["finish_reason"] is None
    assert final["usage"] is None


def test_o2a_s10_eof_inside_an_event_is_still_an_error() -> None:
    full = text_stream("abc")
    _, final = run(full[: full.index(b"message_stop") + 20])
    assert final["error"] is not None and final["error"]["type"] == "api_error"
    assert final["finish_reason"] is None


def test_o2a_s10_garbage_event_is_an_error() -> None:
    _, final = run(message_start() + b"event: content_block_delta\ndata: {not json\n\n" + text_stream("x"))
    assert final["error"] == {
        "message": "upstream sent a stream event that is not JSON",
        "type": "api_error",
        "param": None,
        "code": None,
    }


# ----------------------------------------------------------------------------- S08 / R26 usage


def test_o2a_s08_usage_from_message_start_and_message_delta() -> None:
    stream = b"".join(
        [
            message_start(input_tokens=25, cache_read=1000, cache_creation=200, output_tokens=1),
            text_start(0),
            text_delta(0, "x"),
            block_stop(0),
            message_delta("end_turn", 77),
            message_stop(),
        ]
    )
    out, final = run(stream, ctx(include_usage=True))
    assert final["usage"] == {
        "prompt_tokens": 1225,
        "completion_tokens": 77,
        "total_tokens": 1302,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    last = parse_chunks(out)[-1]
    assert last["choices"] == []


def test_o2a_s08_newer_message_delta_repeats_input_counts() -> None:
    stream = b"".join(
        [
            message_start(input_tokens=0, output_tokens=0),
            text_start(0),
            text_delta(0, "x"),
            block_stop(0),
            message_delta(
                "end_turn", 9, input_tokens=30, cache_read_input_tokens=5, cache_creation_input_tokens=0
            ),
            message_stop(),
        ]
    )
    _, final = run(stream, ctx(include_usage=True))
    assert final["usage"] == {
        "prompt_tokens": 35,
        "completion_tokens": 9,
        "total_tokens": 44,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


def test_o2a_s08_translator_exposes_usage_for_the_access_log() -> None:
    t = StreamTranslator(openai_chat, anthropic_messages, ctx())
    t.start()
    t.feed(text_stream("x", input_tokens=11))
    t.close()
    assert t.usage == ir.Usage(input_tokens=11, output_tokens=5)


def test_o2a_r26_include_usage_final_chunk_has_empty_choices() -> None:
    out, _ = run(text_stream("Hi", input_tokens=12), ctx(include_usage=True))
    frames = parse_chunks(out)
    assert [f["choices"] for f in frames[-2:]] == [[{"index": 0, "delta": {}, "finish_reason": "stop"}], []]
    assert frames[-1]["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    chunks = sdk_chunks(out)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17
    final_sdk = sdk_final_completion(out)
    assert final_sdk.usage is not None and final_sdk.usage.prompt_tokens == 12


def test_o2a_r26_no_usage_chunk_without_include_usage() -> None:
    out = translate_stream(text_stream("Hi"))
    assert b'"usage"' not in out


# ----------------------------------------------------------------------------- S09 finish chunk

S09_STOPS = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("refusal", "content_filter"),
    ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length"),
    ("some_future_reason", "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish"), S09_STOPS)
def test_o2a_s09_finish_chunk_before_done(stop_reason: str, finish: str) -> None:
    out, final = run(text_stream("x", stop_reason=stop_reason))
    assert choices(parse_chunks(out))[-1] == ({}, finish)
    assert final["finish_reason"] == finish


def test_o2a_s09_message_stop_without_message_delta_still_finishes() -> None:
    stream = b"".join([message_start(), text_start(0), text_delta(0, "x"), block_stop(0), message_stop()])
    _, final = run(stream)
    # code's choice: a message_stop is a complete stream; with no stop reason given, "stop"
    assert final["finish_reason"] == "stop"
    assert final["error"] is None


def test_o2a_s09_max_tokens_inside_a_tool_call() -> None:
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "write"),
            json_delta(0, '{"content": "lon'),
            block_stop(0),
            message_delta("max_tokens", 100),
            message_stop(),
        ]
    )
    _, final = run(stream)
    assert final["finish_reason"] == "length"
    assert final["tool_calls"] == [{"id": "toolu_1", "name": "write", "arguments": '{"content": "lon'}]


# ----------------------------------------------------------------------------- S11 framing

CANONICAL = text_stream("Hel", "lo 日本 🎉")


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _no_event_lines(data: bytes) -> bytes:
    return b"".join(line + b"\n" for line in data.split(b"\n")[:-1] if not line.startswith(b"event:"))


def _wrong_event_lines(data: bytes) -> bytes:
    return data.replace(b"event: content_block_delta", b"event: message_delta").replace(
        b"event: message_start", b"event: ping"
    )


S11_VARIANTS = {
    "crlf": _crlf,
    "cr": lambda d: d.replace(b"\n", b"\r"),
    "no_space_after_colon": lambda d: d.replace(b"data: ", b"data:").replace(b"event: ", b"event:"),
    "no_event_lines": _no_event_lines,
    "wrong_event_lines": _wrong_event_lines,
    "comments_and_blank_lines": lambda d: b": keep-alive\n\n\n" + d.replace(b"\n\n", b"\n\n: x\n\n"),
    "padded_json": lambda d: d.replace(b"}\n\n", b"}      \n\n"),
}


@pytest.mark.parametrize("variant", list(S11_VARIANTS))
def test_o2a_s11_sse_framing_variants_give_identical_output(variant: str) -> None:
    want = normalise(translate_stream(CANONICAL))
    got = normalise(translate_stream(S11_VARIANTS[variant](CANONICAL)))
    assert got == want


@pytest.mark.parametrize("size", [1, 2, 3, 7, 97])
def test_o2a_s11_crlf_split_everywhere(size: int) -> None:
    want = normalise(translate_stream(CANONICAL))
    data = _crlf(CANONICAL)
    assert normalise(translate_stream(data, pieces=split_every(data, size))) == want


def test_o2a_s11_keyed_on_json_type_not_event_name() -> None:
    _, final = run(_wrong_event_lines(tool_stream()))
    assert final["tool_calls"][0]["arguments"] == '{"city": "Zürich"}'
    assert final["finish_reason"] == "tool_calls"


# ----------------------------------------------------------------------------- R23 json answer (stream)


def test_o2a_r23_json_answer_streams_as_content() -> None:
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "json_answer"),
            json_delta(0, ""),
            json_delta(0, '{"answer": '),
            json_delta(0, '"42"}'),
            block_stop(0),
            message_delta("tool_use"),
            message_stop(),
        ]
    )
    out, final = run(stream, ctx(json_tool="json_answer"))
    assert choices(parse_chunks(out)) == [
        ROLE,
        ({"content": '{"answer": '}, None),
        ({"content": '"42"}'}, None),
        END,
    ]
    assert final["tool_calls"] == []
    assert json.loads(final["content"]) == {"answer": "42"}
    assert sdk_final_completion(out).choices[0].message.content == '{"answer": "42"}'


def test_o2a_r23_json_answer_with_empty_input_streams_empty_object() -> None:
    """A json answer whose input is ``{}`` comes without input deltas (as a tool would, O2A-S04): the
    client must still get the JSON text ``{}``, not an empty content string."""
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "json_answer"),
            block_stop(0),
            message_delta("tool_use"),
            message_stop(),
        ]
    )
    _, final = run(stream, ctx(json_tool="json_answer"))
    assert final["content"] == "{}"
    assert final["finish_reason"] == "stop"


def test_o2a_r23_json_answer_next_to_real_tool_keeps_tool_calls() -> None:
    stream = b"".join(
        [
            message_start(),
            tool_start(0, "toolu_1", "json_answer"),
            json_delta(0, '{"a": 1}'),
            block_stop(0),
            tool_start(1, "toolu_2", "get"),
            json_delta(1, "{}"),
            block_stop(1),
            message_delta("tool_use"),
            message_stop(),
        ]
    )
    _, final = run(stream, ctx(json_tool="json_answer"))
    assert final["content"] == '{"a": 1}'
    assert final["tool_calls"] == [{"id": "toolu_2", "name": "get", "arguments": "{}"}]
    assert final["finish_reason"] == "tool_calls"


# ----------------------------------------------------------------------------- chunking invariance


HANDMADE = {
    "text": CANONICAL,
    "tools": tool_stream(),
    "error": message_start() + text_start(0) + text_delta(0, "é") + error_event(),
    "eof": message_start() + text_start(0) + text_delta(0, "日本"),
}
# The recorded streams' chunking (1, 7, 97 bytes and every two-piece split) is
# tests/dialects/transcripts/test_anthropic_messages.py's test_o2a_s01_stream_same_bytes_at_every_chunking.


@pytest.mark.parametrize("name", sorted(HANDMADE))
@pytest.mark.parametrize("size", [1, 7, 97])
def test_o2a_s11_chunking_invariance_fixed_pieces(name: str, size: int) -> None:
    stream = HANDMADE[name]
    context = ctx(include_usage=True)
    want = normalise(translate_stream(stream, context))
    assert normalise(translate_stream(stream, context, pieces=split_every(stream, size))) == want


@pytest.mark.parametrize("name", sorted(HANDMADE))
def test_o2a_s11_chunking_invariance_every_split_offset(name: str) -> None:
    stream = HANDMADE[name]
    context = ctx(include_usage=True)
    want = normalise(translate_stream(stream, context))
    for cut in range(len(stream) + 1):
        got = normalise(translate_stream(stream, context, pieces=[stream[:cut], stream[cut:]]))
        assert got == want, f"split at {cut}"


def test_o2a_s01_recorded_goldens_frame_strictly() -> None:
    """The goldens of the 40 recorded streams (the transcript tests hold the translator's bytes to them)
    meet :func:`check_chunks` too, which the transcript oracle does not spell out: the exact opening
    chunk, an empty delta on the finish chunk, the usage chunk last, no error."""
    paths = sorted(GOLDENS_OPENAI.glob("*.openai.sse"))
    assert len(paths) == 40, len(paths)
    for path in paths:
        frames = parse_chunks(path.read_bytes())
        check_chunks(frames, model="gpt-4o-compatible-client")
        assert all("error" not in f for f in frames), path.name
        assert frames[-1]["choices"] == [] and frames[-1]["usage"], path.name  # include_usage goldens


def test_o2a_s01_id_and_created_constant_within_a_stream() -> None:
    frames = parse_chunks(translate_stream(tool_stream(), ctx(include_usage=True)))
    assert len({(f["id"], f["created"]) for f in frames}) == 1
