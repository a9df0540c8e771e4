"""Every recorded OpenAI-compatible upstream transcript, through the sans-I/O core, to an Anthropic client.

Streams: each 200 SSE body goes through ``StreamTranslator(anthropic_messages, openai_chat, ctx)`` at
several chunkings (1, 7, 97 bytes and whole; every two-piece split for short bodies), which must all give
the same bytes. The output is then checked three ways:

- against a golden file in ``tests/fixtures/transcripts/expected/`` (regenerate with
  ``RAWPROXY_REGEN_GOLDEN=1``, then *read the diff*: a golden records what is right, not merely what the
  code does today);
- against invariants computed from the upstream body by an oracle written independently of the decoder
  (same text, same tool calls and arguments, usage, one stop or one error);
- with thinking on and off (upstream reasoning becomes thinking blocks only when the client asked).
  Thinking on is run only for the streams (and bodies) where the flag changes the output, found by
  translating both ways (``THINKING_STREAMS``, ``THINKING_BODIES``); for the others thinking on *is*
  thinking off, byte for byte. A stream that the flag starts to change joins the set and then fails on
  its missing ``.thinking`` golden, and one it stops changing leaves a stale golden behind.

Non-streaming bodies go through ``parse_response`` + ``build_response``, and HTTP errors through
``parse_error`` + ``build_error``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rawproxy import ir, profiles
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator
from tests.support.transcripts import HERE, Transcript, load, split_sse

CLIENT_MODEL = "claude-sonnet-4-6"
EXPECTED = HERE / "expected"
REGEN = os.environ.get("RAWPROXY_REGEN_GOLDEN") == "1"

ALL = load("openai_chat")
STREAMS = [t for t in ALL if t.is_sse and t.status == 200]
IN_BAND_ERRORS = {t.name for t in STREAMS if "in-band-error" in t.features}
REASONING_FEATURES = {"reasoning_content", "reasoning", "reasoning_details"}
JSON_OK = [t for t in ALL if not t.is_sse and t.status == 200]
HTTP_ERRORS = [t for t in ALL if t.status >= 400]

# Random ids appear only where the upstream gave none (Azure's first chunk, Gemini): normalise those.
_RANDOM_MSG = re.compile(rb'"msg_[0-9a-f]{24}"')
_RANDOM_TOOL = re.compile(rb'"toolu_[0-9a-f]{24}"')


def normalise(out: bytes) -> bytes:
    return _RANDOM_TOOL.sub(b'"toolu_RANDOM"', _RANDOM_MSG.sub(b'"msg_RANDOM"', out))


@cache
def upstream_host(name: str) -> str:
    raw = json.loads((HERE / "openai_chat" / f"{name}.json").read_text(encoding="utf-8"))
    return str(raw["source"]["upstream_host"])


def make_ctx(t: Transcript, *, thinking: bool) -> ir.Context:
    """As the proxy builds it: the client's model echoed, the upstream's model, a profile from the URL."""
    stop = t.request_body.get("stop")
    return ir.Context(
        client_model=CLIENT_MODEL,
        upstream_model=t.model,
        thinking=thinking,
        stop=[stop] if isinstance(stop, str) else list(stop or []),
        profile=profiles.guess_profile(f"https://{upstream_host(t.name)}/v1"),
    )


def translate(t: Transcript, *, thinking: bool, size: int | None = None, start: bool = False) -> bytes:
    tr = StreamTranslator(anthropic_messages, openai_chat, make_ctx(t, thinking=thinking))
    out = [tr.start()] if start else []
    body = t.body
    step = size or len(body) or 1
    for i in range(0, len(body), step):
        out.append(tr.feed(body[i : i + step]))
    out.append(tr.close())
    return b"".join(out)


def has_reasoning(t: Transcript) -> bool:
    # Magistral sends its reasoning as {"type": "thinking"} content parts, not as a reasoning field.
    return bool(REASONING_FEATURES & t.features) or b'"type":"thinking"' in t.body


def golden_path(t: Transcript, thinking: bool) -> Path:
    return EXPECTED / f"{t.name}{'.thinking' if thinking else ''}.anthropic.sse"


def translate_response(t: Transcript, *, thinking: bool) -> bytes:
    ctx = make_ctx(t, thinking=thinking)
    return anthropic_messages.build_response(openai_chat.parse_response(t.body, ctx), ctx)


@cache
def thinking_streams() -> frozenset[str]:
    """The streams whose output the thinking flag changes (translated both ways at collection time)."""
    return frozenset(
        t.name
        for t in STREAMS
        if normalise(translate(t, thinking=True)) != normalise(translate(t, thinking=False))
    )


@cache
def thinking_bodies() -> frozenset[str]:
    """The non-streaming bodies whose message the thinking flag changes."""
    return frozenset(
        t.name
        for t in JSON_OK
        if normalise(translate_response(t, thinking=True)) != normalise(translate_response(t, thinking=False))
    )


THINKING_STREAMS = thinking_streams()
THINKING_BODIES = thinking_bodies()


def stream_cases() -> Iterator[Any]:
    """Every stream plain; thinking on only where it changes the bytes (elsewhere it is the plain case)."""
    for t in STREAMS:
        modes = (False, True) if t.name in THINKING_STREAMS else (False,)
        for thinking in modes:
            yield pytest.param(t, thinking, id=f"{t.name}{'-thinking' if thinking else ''}")


def response_cases() -> Iterator[Any]:
    for t in JSON_OK:
        modes = (False, True) if t.name in THINKING_BODIES else (False,)
        for thinking in modes:
            yield pytest.param(t, thinking, id=f"{t.name}{'-thinking' if thinking else ''}")


# ------------------------------------------------------------------------------------ the oracle


@dataclass
class Upstream:
    """What an upstream stream said, read straight from its chunks (independent of the decoder)."""

    text: str = ""
    reasoning: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"}
    finish_reason: str | None = None
    refused: bool = False
    signed: bool = False  # some reasoning came with a signature (OpenRouter relaying Anthropic)
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def _reasoning_of(delta: dict[str, Any]) -> str:
    # reasoning_content (DeepSeek, Z.ai), reasoning (OpenRouter, Groq) and reasoning_details (OpenRouter)
    # are alternative spellings of one text; OpenRouter sends the same text in two of them.
    for key in ("reasoning_content", "reasoning"):
        if isinstance(delta.get(key), str) and delta[key]:
            return str(delta[key])
    details = delta.get("reasoning_details")
    if isinstance(details, list):
        return "".join(d.get("text") or d.get("summary") or "" for d in details if isinstance(d, dict))
    return ""


def read_upstream(t: Transcript) -> Upstream:
    up = Upstream()
    by_key: dict[Any, dict[str, Any]] = {}
    for ev in split_sse(t.text):
        if ev.data is None or ev.data == "[DONE]":
            continue
        chunk = json.loads(ev.data)
        if ev.event == "error" or chunk.get("error"):
            up.error = chunk["error"]
            break
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if usage:
            up.usage = usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            up.reasoning += _reasoning_of(delta)
            details = delta.get("reasoning_details")
            up.signed = up.signed or any(isinstance(d, dict) and d.get("signature") for d in details or [])
            for field_name in ("content", "refusal"):
                if isinstance(delta.get(field_name), str):
                    up.text += delta[field_name]
            if isinstance(delta.get("content"), list):  # Magistral: content parts, thinking among them
                for part in delta["content"]:
                    if part.get("type") == "text":
                        up.text += part.get("text") or ""
                    elif part.get("type") == "thinking":
                        up.reasoning += "".join(x.get("text") or "" for x in part.get("thinking") or [])
            up.refused = up.refused or bool(delta.get("refusal"))
            for pos, tc in enumerate(delta.get("tool_calls") or []):
                if isinstance(tc.get("index"), int):
                    key: Any = tc["index"]
                elif tc.get("id") and any(c["id"] == tc["id"] for c in by_key.values()):
                    key = next(k for k, c in by_key.items() if c["id"] == tc["id"])
                else:  # a whole call without an index (Mistral, Gemini, Ollama): a new call
                    key = ("noindex", len(by_key), pos)
                call = by_key.setdefault(key, {"id": None, "name": None, "arguments": ""})
                if tc.get("id") and call["id"] is None:
                    call["id"] = tc["id"]
                function = tc.get("function") or {}
                if function.get("name") and call["name"] is None:
                    call["name"] = function["name"]
                args = function.get("arguments")
                if isinstance(args, str):
                    call["arguments"] += args
                elif args is not None:
                    call["arguments"] += json.dumps(args)
            if choice.get("finish_reason") and up.finish_reason is None:
                up.finish_reason = choice["finish_reason"]
    up.calls = list(by_key.values())
    return up


# ------------------------------------------------------------------------------ output structure


@dataclass
class Block:
    type: str
    start: dict[str, Any]
    text: str = ""
    thinking: str = ""
    partial_json: str = ""
    signatures: int = 0


@dataclass
class Client:
    """What an Anthropic client accumulates from the translated stream, with the framing checked."""

    events: list[tuple[str | None, dict[str, Any]]]
    message: dict[str, Any]
    blocks: list[Block]
    left_open: Block | None = None  # the block an ``error`` event came in (it never gets a stop)

    def names(self) -> list[str]:
        return [d["type"] for _, d in self.events]

    def of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.type == kind]


_DELTA_FOR = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


def accumulate(out: bytes) -> Client:
    events = []
    for ev in split_sse(out.decode("utf-8")):
        assert ev.data is not None, ev
        data = json.loads(ev.data)
        assert ev.event == data["type"], (ev.event, data)  # the event line and the JSON type agree
        events.append((ev.event, data))
    assert events, "no output"
    assert events[0][1]["type"] == "message_start"
    message = events[0][1]["message"]
    blocks: list[Block] = []
    open_block: Block | None = None
    left_open: Block | None = None
    errored = False
    for _, data in events[1:]:
        kind = data["type"]
        assert not errored, f"{kind} after the error event"
        assert kind != "message_start", "a second message_start"
        if kind == "content_block_start":
            assert open_block is None, "content blocks interleave"
            assert data["index"] == len(blocks), "block indices are not contiguous from 0"
            open_block = Block(data["content_block"]["type"], data["content_block"])
            blocks.append(open_block)
        elif kind == "content_block_delta":
            assert open_block is not None and data["index"] == len(blocks) - 1, "delta outside its block"
            delta = data["delta"]
            assert delta["type"] in _DELTA_FOR[open_block.type], (open_block.type, delta)
            if delta["type"] == "text_delta":
                open_block.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                open_block.thinking += delta["thinking"]
            elif delta["type"] == "signature_delta":
                open_block.signatures += 1
            else:
                open_block.partial_json += delta["partial_json"]
        elif kind == "content_block_stop":
            assert open_block is not None and data["index"] == len(blocks) - 1, "stop of a closed block"
            open_block = None
        elif kind in ("message_delta", "message_stop"):
            assert open_block is None, f"{kind} while block {len(blocks) - 1} is open"
        elif kind == "error":
            # a mid-stream failure ends the stream with the block open at that moment left open,
            # as Anthropic does: no content_block_stop for it, nothing after the error
            errored = True
            left_open, open_block = open_block, None
        else:
            assert kind == "ping", kind
    assert open_block is None, "stream ended with an open block"
    return Client(events, message, blocks, left_open)


# ------------------------------------------------------------------------------------ streams


@pytest.mark.parametrize(("t", "thinking"), list(stream_cases()))
def test_stream_same_bytes_at_every_chunking(t: Transcript, thinking: bool) -> None:
    """A2O-S15: the upstream's chunk boundaries never change the client's bytes."""
    whole = normalise(translate(t, thinking=thinking))
    for size in (1, 7, 97):
        assert normalise(translate(t, thinking=thinking, size=size)) == whole, size
    if len(t.body) <= 1000:  # short bodies: every two-piece split
        for i in range(1, len(t.body)):
            tr = StreamTranslator(anthropic_messages, openai_chat, make_ctx(t, thinking=thinking))
            out = tr.feed(t.body[:i]) + tr.feed(t.body[i:]) + tr.close()
            assert normalise(out) == whole, i


@pytest.mark.parametrize(("t", "thinking"), list(stream_cases()))
def test_stream_start_first_changes_only_the_message_id(t: Transcript, thinking: bool) -> None:
    """The proxy sends ``start()`` before the first upstream byte; only the message id may differ."""
    early = translate(t, thinking=thinking, start=True)
    late = translate(t, thinking=thinking)
    msg_id = re.compile(rb'"id":"msg_[^"]*"')
    assert msg_id.sub(b'"id":"msg_X"', normalise(early), count=1) == msg_id.sub(
        b'"id":"msg_X"', normalise(late), count=1
    )
    assert early.count(b"event: message_start\n") == 1


def check_error_leaves_open_block_open(client: Client, up: Upstream) -> None:
    """A mid-stream error comes while the block open at that moment is still open: no
    content_block_stop for it (what Anthropic sends; Claude Code then retries). Only a finish_reason
    before the error (blocks are closed at the finish) leaves no block open."""
    names = client.names()
    assert names[-1] == "error", names
    stops = names.count("content_block_stop")
    if client.blocks and up.finish_reason is None:
        assert client.left_open is client.blocks[-1], names
        assert names[-2] != "content_block_stop", names
        assert stops == len(client.blocks) - 1, names
    else:
        assert client.left_open is None, names
        assert stops == len(client.blocks), names


@pytest.mark.parametrize(("t", "thinking"), list(stream_cases()))
def test_stream_invariants(t: Transcript, thinking: bool) -> None:
    up = read_upstream(t)
    client = accumulate(translate(t, thinking=thinking))
    names = client.names()

    # message_start: the client's model, an Anthropic-shaped message id, nothing yet
    message = client.message
    assert message["model"] == CLIENT_MODEL
    assert message["role"] == "assistant" and message["type"] == "message"
    assert message["content"] == [] and message["stop_reason"] is None
    assert re.fullmatch(r"msg_[A-Za-z0-9_-]+", message["id"]), message["id"]
    first = t.data_payloads()[0]
    if first.get("id"):  # the id of the chunk that started the message (Azure's first one has none)
        assert message["id"] == anthropic_messages.message_id(first["id"])

    # text: exactly the upstream's delta.content (up to an in-band error)
    assert "".join(b.text for b in client.of("text")) == up.text
    assert all(b.text for b in client.of("text")), "an empty text block"

    # reasoning: thinking blocks only when the client asked for thinking, never a made-up signature
    if thinking:
        assert "".join(b.thinking for b in client.of("thinking")) == up.reasoning
    else:
        assert client.of("thinking") == []
        if t.name not in THINKING_STREAMS:  # its thinking case is this one: nothing to think about
            assert up.reasoning == "", "upstream reasoning, yet thinking on changes nothing"
    if not up.signed:  # decision 1: a signature is never made up
        assert all(b.signatures == 0 for b in client.of("thinking"))
    if thinking and up.reasoning and client.blocks:
        assert client.blocks[0].type == "thinking", "reasoning comes first"

    # tool calls: same names, same arguments (parsed), upstream ids kept when they are valid
    tools = client.of("tool_use")
    if t.name not in IN_BAND_ERRORS:
        assert [b.start["name"] for b in tools] == [c["name"] for c in up.calls]
        for block, call in zip(tools, up.calls, strict=True):
            got = json.loads(block.partial_json)
            assert isinstance(got, dict)
            assert got == json.loads(call["arguments"] or "{}")
            assert block.start["input"] == {}
            if call["id"] and re.fullmatch(r"[A-Za-z0-9_-]+", call["id"]):
                assert block.start["id"] == call["id"]
            else:
                assert re.fullmatch(r"toolu_[A-Za-z0-9_-]+", block.start["id"])
    assert len({b.start["id"] for b in tools}) == len(tools), "duplicate tool ids"

    # the end: one message_delta + message_stop, or one error and no stop
    if t.name in IN_BAND_ERRORS:
        assert up.error is not None
        assert names.count("error") == 1 and names[-1] == "error"
        assert "message_stop" not in names and "message_delta" not in names
        check_error_leaves_open_block_open(client, up)
        error = client.events[-1][1]["error"]
        assert error["message"] == up.error["message"]
    else:
        assert up.error is None
        assert "error" not in names
        assert names.count("message_delta") == 1 and names.count("message_stop") == 1
        assert names[-2:] == ["message_delta", "message_stop"]
        delta = client.events[-2][1]
        stop_reason = delta["delta"]["stop_reason"]
        if up.calls:
            assert stop_reason == "tool_use"
        elif up.refused:  # A2O-N11: a refusal is a refusal, whatever finish_reason says ("stop")
            assert stop_reason == "refusal"
        else:
            expected = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
            assert stop_reason == expected.get(up.finish_reason or "stop", "end_turn"), up.finish_reason
        usage = delta["usage"]
        if up.usage is not None:
            assert usage["output_tokens"] == up.usage["completion_tokens"]
            assert usage["input_tokens"] + usage["cache_read_input_tokens"] == up.usage["prompt_tokens"]


def test_in_band_error_types() -> None:
    """Groq ``event: error`` (status_code 400, invalid_request_error) and OpenRouter's error chunk (code
    400) are client-side failures upstream; the client must see the same kind of error."""
    assert len(IN_BAND_ERRORS) == 3
    for t in STREAMS:
        if t.name not in IN_BAND_ERRORS:
            continue
        client = accumulate(translate(t, thinking=True))
        error = client.events[-1][1]
        assert error == {"type": "error", "error": error["error"]}
        assert error["error"]["type"] == "invalid_request_error", (t.name, error)
        check_error_leaves_open_block_open(client, read_upstream(t))


@pytest.mark.parametrize(("t", "thinking"), list(stream_cases()))
def test_stream_golden(t: Transcript, thinking: bool) -> None:
    out = normalise(translate(t, thinking=thinking))
    path = golden_path(t, thinking)
    if REGEN:
        EXPECTED.mkdir(exist_ok=True)
        path.write_bytes(out)
    assert path.exists(), f"missing golden {path.name}; run with RAWPROXY_REGEN_GOLDEN=1 and review it"
    assert out == path.read_bytes()


def test_no_stale_goldens() -> None:
    """A ``.thinking`` golden only for the streams thinking changes (elsewhere it would repeat the plain one)."""
    wanted = {
        golden_path(t, thinking).name for t in STREAMS for thinking in (False, t.name in THINKING_STREAMS)
    }
    present = {p.name for p in EXPECTED.glob("*.sse")}
    assert present - wanted == set()
    assert len(STREAMS) == 49  # PROVENANCE.md: 49 streaming 200s, 3 of them with an in-band error


def test_thinking_changes_only_streams_with_reasoning() -> None:
    """The flag matters only where the upstream reasoned (it never reshapes a plain answer)."""
    assert THINKING_STREAMS, "thinking on changes no stream at all"
    assert all(has_reasoning(t) for t in STREAMS if t.name in THINKING_STREAMS)


# Goldens reviewed by eye; the properties that made them right are pinned here too.


def _golden(name_part: str, thinking: bool = False) -> Client:
    (t,) = [t for t in STREAMS if name_part in t.name]
    return accumulate(golden_path(t, thinking).read_bytes())


def test_golden_parallel_tool_calls_are_sequential_blocks() -> None:
    client = _golden("test_decorator_return_async_parallel_function_call")
    assert [(b.type, b.start["name"]) for b in client.blocks] == [("tool_use", "plus"), ("tool_use", "minus")]
    assert [json.loads(b.partial_json) for b in client.blocks] == [{"a": 2, "b": 3}, {"a": 3, "b": 2}]
    assert client.events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_golden_reasoning_content_with_thinking_starts_with_thinking_block() -> None:
    client = _golden("test_deepseek_model_thinking_stream", thinking=True)
    assert [b.type for b in client.blocks] == ["thinking", "text"]
    assert client.blocks[0].start == {"type": "thinking", "thinking": "", "signature": ""}
    plain = _golden("test_deepseek_model_thinking_stream")
    assert [b.type for b in plain.blocks] == ["text"]
    assert plain.blocks[0].text == client.blocks[1].text


def test_golden_whole_tool_call_without_index_or_id() -> None:
    client = _golden("gemini_acomplete-Return-True")
    (block,) = client.blocks
    assert block.type == "tool_use" and block.start["name"] == "return_bool"
    assert block.start["id"] == "toolu_RANDOM"
    assert json.loads(block.partial_json) == {"value": True}
    assert client.events[-2][1]["delta"]["stop_reason"] == "tool_use"  # Gemini said "stop"


def test_golden_in_band_error_leaves_the_open_block_open() -> None:
    client = _golden("test_tool_use_failed_error_streaming_with_text", thinking=True)
    assert [b.type for b in client.blocks] == ["thinking", "text"]
    assert client.names()[-2:] == ["content_block_delta", "error"]  # no content_block_stop for the text
    assert client.names().count("content_block_stop") == 1  # only the thinking block was closed
    assert client.left_open is client.blocks[1]
    assert "message_delta" not in client.names() and "message_stop" not in client.names()


# ------------------------------------------------------------------------------ non-streaming


def _upstream_message(t: Transcript) -> tuple[dict[str, Any], dict[str, Any]]:
    data = t.json()
    choice = data["choices"][0]
    return data, choice


@pytest.mark.parametrize(("t", "thinking"), list(response_cases()))
def test_response(t: Transcript, thinking: bool) -> None:
    body = json.loads(translate_response(t, thinking=thinking))
    data, choice = _upstream_message(t)
    msg = choice.get("message") or {}  # Azure's content-filtered choice has no message
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == CLIENT_MODEL
    assert re.fullmatch(r"msg_[A-Za-z0-9_-]+", body["id"])
    blocks = body["content"]
    content = msg.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content)
    expected_text = (content or "") + (msg.get("refusal") or "")
    assert "".join(b["text"] for b in blocks if b["type"] == "text") == expected_text
    if expected_text:
        assert blocks, "the upstream had content"
    calls = list(msg.get("tool_calls") or [])
    if msg.get("function_call"):  # the legacy single call
        calls.append({"function": msg["function_call"]})
    tools = [b for b in blocks if b["type"] == "tool_use"]
    assert [b["name"] for b in tools] == [c["function"]["name"] for c in calls]
    for block, call in zip(tools, calls, strict=True):
        assert isinstance(block["input"], dict)
        args = json.loads(call["function"]["arguments"] or "{}")
        if isinstance(args, dict):
            assert block["input"] == args
        assert re.fullmatch(r"[A-Za-z0-9_-]+", block["id"])
    if calls:
        assert body["stop_reason"] == "tool_use"
    thinking_blocks = [b for b in blocks if b["type"] == "thinking"]
    if thinking and _reasoning_of(msg):
        assert blocks[0]["type"] == "thinking" and blocks[0]["thinking"]
    if not thinking:
        assert thinking_blocks == []
        if t.name not in THINKING_BODIES:  # its thinking case is this one: nothing to think about
            assert not _reasoning_of(msg), "upstream reasoning, yet thinking on changes nothing"
    usage = data.get("usage")
    if usage:
        assert body["usage"]["output_tokens"] == usage["completion_tokens"]
        assert (
            body["usage"]["input_tokens"] + body["usage"]["cache_read_input_tokens"] == usage["prompt_tokens"]
        )
    expected_stop = {
        "stop": "end_turn",
        "length": "max_tokens",
        "content_filter": "refusal",
        "tool_calls": "tool_use",
    }
    if not calls and not msg.get("refusal"):
        assert body["stop_reason"] == expected_stop.get(choice["finish_reason"], "end_turn")


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@pytest.mark.parametrize("t", HTTP_ERRORS, ids=lambda t: t.name)
def test_http_error(t: Transcript) -> None:
    status, body = anthropic_messages.build_error(openai_chat.parse_error(t.status, t.body))
    assert status == t.status
    data = json.loads(body)
    assert data == {
        "type": "error",
        "error": {"type": _ERROR_TYPES[t.status], "message": data["error"]["message"]},
    }
    error = t.json()["error"]
    raw = (error.get("metadata") or {}).get("raw")
    if raw:  # OpenRouter's real reason, read whole (RS-04): this recording has one
        provider = error["metadata"]["provider_name"]
        assert data["error"]["message"] == f"{error['message']} ({provider}): {raw}"
    else:
        assert data["error"]["message"] == error["message"]


def test_transcript_counts() -> None:
    # PROVENANCE.md: 49 streaming 200s, 54 non-streaming 200s, 9 HTTP errors.
    assert (len(STREAMS), len(JSON_OK), len(HTTP_ERRORS)) == (49, 54, 9)
