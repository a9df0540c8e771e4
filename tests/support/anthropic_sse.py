"""Test helpers for the A2O stream tests: build OpenAI chunk streams, run them through the translator,
parse the Anthropic SSE that comes out, check its invariants and accumulate it into a final message.

Two accumulators: :func:`reduce_events`, a strict re-implementation of what the official Anthropic SDK
does (plus the ordering rules the SDK does not check), and :func:`sdk_final_message` /
:func:`sdk_accumulate`, which run the bytes through the installed ``anthropic`` package itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import httpx2
import orjson
from anthropic import Anthropic
from anthropic.lib.streaming._messages import accumulate_event

from rawproxy import ir, profiles
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator

# --------------------------------------------------------------------------- building OpenAI streams

DONE = b"data: [DONE]\n\n"


def ctx(**overrides: Any) -> ir.Context:
    """A context for an Anthropic client on an OpenAI upstream; keywords override the defaults."""
    profile = overrides.pop("profile", "generic")
    if isinstance(profile, str):
        profile = profiles.PROFILES[profile]
    values: dict[str, Any] = {
        "client_model": "claude-sonnet-4-6",
        "upstream_model": "gpt-4o",
        "thinking": False,
        "stop": [],
        "tool_names": {},
        "input_tokens": 0,
        "profile": profile,
    }
    values.update(overrides)
    return ir.Context(**values)


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    id: str = "chatcmpl-1",
    usage: dict[str, Any] | None = None,
    no_choices: bool = False,
    extra_choice: dict[str, Any] | None = None,
    **top: Any,
) -> bytes:
    """One ``chat.completion.chunk`` SSE frame."""
    body: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    if no_choices:
        body["choices"] = []
    else:
        choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
        choice.update(extra_choice or {})
        body["choices"] = [choice]
    if usage is not None:
        body["usage"] = usage
    body.update(top)
    return b"data: " + orjson.dumps(body) + b"\n\n"


def usage_chunk(prompt: int = 10, completion: int = 5, cached: int = 0, **kw: Any) -> bytes:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return chunk(no_choices=True, usage=usage, **kw)


def tc(index: int | None, id: str | None = None, name: str | None = None, args: Any = None) -> dict[str, Any]:
    """One entry of ``delta.tool_calls``."""
    call: dict[str, Any] = {}
    if index is not None:
        call["index"] = index
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    if function:
        call["function"] = function
    return call


def tools_delta(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(calls)}


# --------------------------------------------------------------------------- running the translator


def translate(
    stream: bytes, context: ir.Context | None = None, *, pieces: Iterable[bytes] | None = None
) -> bytes:
    """start(), feed() each piece (default: the whole stream at once), close() for EOF."""
    t = StreamTranslator(anthropic_messages, openai_chat, context or ctx())
    out = [t.start()]
    for piece in [stream] if pieces is None else pieces:
        out.append(t.feed(piece))
    out.append(t.close())
    return b"".join(out)


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


_RANDOM_IDS = re.compile(rb"(msg|toolu)_[0-9a-f]{24}")


def normalise_ids(out: bytes) -> bytes:
    """Random ids (the message id before any upstream chunk, synthesised tool ids) -> fixed text."""
    return _RANDOM_IDS.sub(rb"\1_RANDOM", out)


# --------------------------------------------------------------------------- parsing Anthropic SSE

_FRAME = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")


def parse_sse(out: bytes) -> list[dict[str, Any]]:
    """Strictly parse ``event: <type>\\ndata: <json>\\n\\n`` frames; the event name must equal the type."""
    events = []
    pos = 0
    while pos < len(out):
        m = _FRAME.match(out, pos)
        assert m is not None, f"bad SSE framing at byte {pos}: {out[pos : pos + 200]!r}"
        data = json.loads(m.group(2))
        assert data["type"] == m.group(1).decode(), (m.group(1), data)
        events.append(data)
        pos = m.end()
    return events


STOP_REASONS = {
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
}


def check_order(events: list[dict[str, Any]]) -> None:
    """The ordering rules of an Anthropic stream (A2O-S01, S05, S19, S21).

    Every block is stopped before the next starts and before ``message_delta``; the one exception is
    an ``error`` event (always the last event), which may come while a block is still open: that
    block then has no ``content_block_stop``.
    """
    types = [e["type"] for e in events]
    assert types, "no events"
    assert types[0] == "message_start", types
    assert types.count("message_start") == 1, types
    errored = types[-1] == "error"
    assert types.count("error") <= 1 and ("error" not in types or errored), types
    open_index: int | None = None
    next_index = 0
    seen_delta = False
    for e in events[1:]:
        kind = e["type"]
        if kind == "ping":
            continue
        if kind == "content_block_start":
            assert not seen_delta, "content after message_delta"
            assert open_index is None, f"block {e['index']} opened while {open_index} is open"
            assert e["index"] == next_index, f"index {e['index']}, expected {next_index}"
            open_index = e["index"]
            next_index += 1
        elif kind == "content_block_delta":
            assert open_index is not None and e["index"] == open_index, (
                f"delta for {e['index']}, open {open_index}"
            )
        elif kind == "content_block_stop":
            assert open_index is not None and e["index"] == open_index, (
                f"stop {e['index']}, open {open_index}"
            )
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "message_delta with an open block"
            assert not seen_delta, "two message_delta events"
            seen_delta = True
            assert e["delta"]["stop_reason"] in STOP_REASONS, e
            assert "stop_sequence" in e["delta"], e
            assert isinstance(e["usage"]["output_tokens"], int), e
        elif kind == "message_stop":
            assert seen_delta, "message_stop without message_delta"
        elif kind == "error":
            # A mid-stream failure leaves the block open at that moment open (no content_block_stop),
            # as Anthropic itself does; the error is the last event, so that block never gets a stop.
            pass
        else:
            raise AssertionError(f"unknown event {kind}")
    if errored:
        assert "message_stop" not in types, types
    else:
        assert types.count("message_delta") == 1, types
        assert types[-1] == "message_stop", types
        assert types.count("message_stop") == 1, types
        assert open_index is None


def reduce_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Accumulate events into the final message, as the SDK does (tool input JSON-parsed at the end).

    Checks :func:`check_order` first. An ``error`` event ends up under the ``"error"`` key; a block it
    left open keeps what its deltas gave it (a tool_use block keeps ``input == {}``, no ``raw_input``).
    """
    check_order(events)
    message: dict[str, Any] = dict(events[0]["message"])
    message["content"] = []
    message["usage"] = dict(message["usage"])
    partial: dict[int, str] = {}
    for e in events[1:]:
        kind = e["type"]
        if kind == "content_block_start":
            block = dict(e["content_block"])
            if block["type"] == "tool_use":
                assert block["input"] == {}, block
                assert block["id"] and block["name"], block
                partial[e["index"]] = ""
            message["content"].append(block)
        elif kind == "content_block_delta":
            block = message["content"][e["index"]]
            delta = e["delta"]
            if delta["type"] == "text_delta":
                assert block["type"] == "text"
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                assert block["type"] == "tool_use"
                partial[e["index"]] += delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                assert block["type"] == "thinking"
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                assert block["type"] == "thinking"
                block["signature"] = delta["signature"]
            else:
                raise AssertionError(delta)
        elif kind == "content_block_stop":
            block = message["content"][e["index"]]
            if block["type"] == "tool_use":
                raw = partial[e["index"]]
                block["raw_input"] = raw
                try:
                    block["input"] = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    # a truncated stream (error, max_tokens): tests that expect an input will fail
                    block["input"] = None
                    block["input_invalid"] = True
        elif kind == "message_delta":
            message["stop_reason"] = e["delta"]["stop_reason"]
            message["stop_sequence"] = e["delta"]["stop_sequence"]
            for key, value in e["usage"].items():
                if value is not None:
                    message["usage"][key] = value
        elif kind == "error":
            message["error"] = e["error"]
    return message


def run(
    stream: bytes, context: ir.Context | None = None, **kw: Any
) -> tuple[bytes, list[dict[str, Any]], dict[str, Any]]:
    """Translate, parse and reduce: (client bytes, events, final message)."""
    out = translate(stream, context, **kw)
    events = parse_sse(out)
    return out, events, reduce_events(events)


# --------------------------------------------------------------------------- the official SDK


def sdk_accumulate(events: list[dict[str, Any]]) -> Any:
    """Run parsed events through the SDK's own ``accumulate_event`` (pings and errors skipped)."""
    snapshot = None
    bufs: dict[int, bytes] = {}
    for e in events:
        if e["type"] in ("ping", "error"):
            continue
        snapshot = accumulate_event(event=e, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
    return snapshot


def sdk_final_message(out: bytes) -> Any:
    """Serve ``out`` as the body of a 200 text/event-stream response to the real SDK client and return
    ``MessageStream.get_final_message()``. An ``event: error`` raises the SDK's APIStatusError."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=out)

    client = Anthropic(
        api_key="test",
        base_url="http://rawproxy.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    try:
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            return stream.get_final_message()
    finally:
        client.close()
