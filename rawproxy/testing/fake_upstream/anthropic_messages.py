"""The Anthropic Messages side: a :class:`~.script.Script` rendered as a whole message or as the SSE
stream the real API sends, scripted errors in Anthropic's envelope, ``count_tokens`` and the models list.

The stream, as the real API writes it: ``message_start``; per content block (thinking, then text, then
one ``tool_use`` per call; Anthropic never interleaves blocks) a ``content_block_start``, its
``content_block_delta`` events (``thinking_delta``s then one ``signature_delta``; ``text_delta``s;
``input_json_delta``s starting with ``""``) and a ``content_block_stop``, with an ``event: ping`` after
the first block start; then ``message_delta`` (stop reason, usage) and ``message_stop``. The deltas are
the "content events" that ``error_after`` (an ``event: error``, ``overloaded_error``), ``cut_after``,
``stall`` and ``chunks_written`` count.

One script serves both dialects, so OpenAI names are mapped: ``finish_reason`` becomes the
``stop_reason`` (``length`` is ``max_tokens``...), and an OpenAI-shaped ``error_body`` is rewritten into
Anthropic's error envelope with its message (``raw`` sends bytes untouched). Every response draws a
``request-id`` from the shared sequence, and every message a ``msg_fake`` id; ``tool_use`` ids take the
message's number.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import h11
import orjson

from .anthropic_rules import refusal, thinking_shown
from .script import Script, ToolCall, arguments_input, arguments_json, split, tokens
from .state import UpstreamState
from .wire import Wire

__all__ = ["answer", "count_tokens", "message", "models"]

_PING: dict[str, Any] = {"type": "ping"}
_OVERLOADED: dict[str, Any] = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}

# HTTP status -> Anthropic error type (https://docs.anthropic.com/en/api/errors)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# OpenAI finish_reason -> Anthropic stop_reason, so one Script serves both dialects
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


# ------------------------------------------------------------------------------------- routes


async def answer(state: UpstreamState, wire: Wire, body: Any) -> bool:
    """``POST .../v1/messages``; False when the connection is done with."""
    if not isinstance(body, dict):
        return await _error(state, wire, 400, "the request body is not a JSON object")
    refused = refusal(body, state.behaves_like) if state.strict else None
    if refused is not None:  # what the real API refuses, in its words (anthropic_rules.py)
        return await _error(state, wire, 400, refused)
    script = state.choose(body)
    if not await wire.before_head(script):
        return False
    if script.raw is not None:
        return await wire.raw(script)
    if script.status >= 400:
        error = _error_bytes(script.status, script.error_body)
        return await wire.send(script.status, _headers(state, "application/json", script), error)
    if body.get("stream"):
        return await _stream(state, wire, body, script)
    payload = orjson.dumps(message(state, body, script))  # before the headers: the id comes first
    return await wire.send(200, _headers(state, "application/json", script), payload)


async def count_tokens(wire: Wire, raw_body: bytes) -> bool:
    """``POST .../v1/messages/count_tokens``: a quarter of the body's bytes, at least one."""
    return await wire.json(200, {"input_tokens": max(1, len(raw_body) // 4)})


async def models(state: UpstreamState, wire: Wire, path: str, query: str) -> bool:
    """``GET .../v1/models[/{id}]``: Anthropic's paginated list over ``state.models``."""
    model_id = path.partition("/v1/models")[2].strip("/")
    if model_id:  # GET /v1/models/{id}
        if model_id not in state.models:
            return await _error(state, wire, 404, f"model: {model_id}")
        return await wire.json(200, _model_info(model_id))
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    try:
        limit = min(1000, max(1, int(params.get("limit", "20"))))
    except ValueError:
        return await _error(state, wire, 400, "limit: must be an integer")
    if state.models_page_size is not None:
        limit = min(limit, state.models_page_size)
    ids = state.models
    if "before_id" in params:
        end = ids.index(params["before_id"]) if params["before_id"] in ids else len(ids)
        page, has_more = ids[max(0, end - limit) : end], end - limit > 0
    else:
        after = params.get("after_id")
        start = ids.index(after) + 1 if after in ids else 0
        page, has_more = ids[start : start + limit], start + limit < len(ids)
    listing = {
        "data": [_model_info(m) for m in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
    return await wire.json(200, listing)


# ------------------------------------------------------------------------------------- bodies


def message(state: UpstreamState, body: dict[str, Any], script: Script) -> dict[str, Any]:
    """A whole (non-streamed) Messages response."""
    head = _head(state, body)  # first: tool_use ids take its sequence number
    content: list[dict[str, Any]] = []
    if script.reasoning:
        shown = script.reasoning if _shown(state, body) else ""  # "omitted": a signature only (M26-05)
        content.append({"type": "thinking", "thinking": shown, "signature": script.signature})
    if script.text:
        content.append({"type": "text", "text": script.text})
    for i, call in enumerate(script.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": _tool_use_id(state, call, i),
                "name": call.name,
                "input": arguments_input(call),
            }
        )
    output = max(1, len(tokens(script.reasoning)) + len(tokens(script.text)) + len(script.tool_calls))
    return {
        **head,
        "content": content,
        "stop_reason": _stop_reason(script),
        "stop_sequence": _stop_sequence(body, script),
        "usage": {**_usage(script), "output_tokens": output, "service_tier": "standard"},
    }


def _headers(state: UpstreamState, content_type: str, script: Script | None = None) -> list[tuple[str, str]]:
    extra = script.headers if script else []
    return [("content-type", content_type), ("request-id", f"req_fake{state.next_seq():06d}"), *extra]


def _head(state: UpstreamState, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_fake{state.next_seq():06d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake-model"),
    }


def _tool_use_id(state: UpstreamState, call: ToolCall, i: int) -> str:
    return call.id or f"toolu_fake{i:02d}{state.seq:06d}"


def _shown(state: UpstreamState, body: dict[str, Any]) -> bool:
    return not state.strict or thinking_shown(body, state.behaves_like)


def _blocks(
    state: UpstreamState, body: dict[str, Any], script: Script
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each content block's ``content_block_start`` payload and its deltas, in order."""
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if script.reasoning:
        shown = script.reasoning if _shown(state, body) else ""  # "omitted": no thinking deltas (M26-05)
        deltas = [{"type": "thinking_delta", "thinking": t} for t in tokens(shown)]
        deltas.append({"type": "signature_delta", "signature": script.signature})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if script.text:
        deltas = [{"type": "text_delta", "text": t} for t in tokens(script.text)]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for i, call in enumerate(script.tool_calls):
        start = {"type": "tool_use", "id": _tool_use_id(state, call, i), "name": call.name, "input": {}}
        fragments = ["", *split(arguments_json(call), script.arg_fragments)]
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
        blocks.append((start, deltas))
    return blocks


def _events(state: UpstreamState, body: dict[str, Any], script: Script) -> list[tuple[str, dict[str, Any]]]:
    """The whole stream as (event name, data) pairs; ``content_block_delta`` are the content events."""
    start_message = {
        **_head(state, body),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            **_usage(script),
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start_message})
    ]
    blocks = _blocks(state, body, script)
    if script.ping and not blocks:
        events.append(("ping", _PING))
    output = 0
    for index, (start, deltas) in enumerate(blocks):
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        )
        if index == 0 and script.ping:
            events.append(("ping", _PING))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        output += len(deltas)
    delta = {"stop_reason": _stop_reason(script), "stop_sequence": _stop_sequence(body, script)}
    usage = {**_usage(script), "output_tokens": max(1, output)}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


async def _stream(state: UpstreamState, wire: Wire, body: dict[str, Any], script: Script) -> bool:
    state.streams_started += 1
    headers = _headers(state, "text/event-stream; charset=utf-8", script)
    wire.write(h11.Response(status_code=200, headers=headers))
    try:
        if script.ttft:
            await wire.wait(script.ttft)
        n = 0  # content events written
        for name, data in _events(state, body, script):
            content = name == "content_block_delta"
            if content and script.cut_after is not None and n >= script.cut_after:
                wire.abort()  # no message_stop: a dead upstream
                return False
            if content and script.error_after is not None and n >= script.error_after:
                wire.write(h11.Data(data=_sse("error", _OVERLOADED)))
                break
            wire.write(h11.Data(data=_sse(name, data)))
            await wire.writer.drain()
            if content:
                state.chunks_written += 1
                await wire.pace(script, n)
                n += 1
        wire.write(h11.EndOfMessage())
        await wire.writer.drain()
        state.streams_completed += 1
        return True
    except (ConnectionError, asyncio.CancelledError):
        state.stream_left()
        raise


def _sse(event: str, data: dict[str, Any]) -> bytes:
    # The real API writes ping as spaced JSON and every other event compact.
    payload = b'{"type": "ping"}' if event == "ping" else orjson.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


# ------------------------------------------------------------------------------------- errors


async def _error(state: UpstreamState, wire: Wire, status: int, message: str) -> bool:
    body = orjson.dumps(_error_body(status, message))
    return await wire.send(status, _headers(state, "application/json"), body)


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _error_bytes(status: int, error_body: bytes | None) -> bytes:
    """A scripted error for an Anthropic client: the default one, or ``error_body`` (an OpenAI-shaped
    JSON body is rewritten into Anthropic's envelope with the same message; anything else goes as given)."""
    if error_body is None:
        return orjson.dumps(_error_body(status, "scripted error"))
    try:
        parsed = orjson.loads(error_body)
    except orjson.JSONDecodeError:
        return error_body
    if isinstance(parsed, dict) and parsed.get("type") != "error" and isinstance(parsed.get("error"), dict):
        return orjson.dumps(_error_body(status, str(parsed["error"].get("message", "scripted error"))))
    return error_body


# ------------------------------------------------------------------------------------- fields


def _usage(script: Script) -> dict[str, Any]:
    return {
        "input_tokens": max(0, script.prompt_tokens - script.cached_tokens),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": script.cached_tokens,
    }


def _stop_reason(script: Script) -> str:
    if script.finish_reason:
        return _STOP_REASONS.get(script.finish_reason, script.finish_reason)
    return "tool_use" if script.tool_calls else "end_turn"


def _stop_sequence(body: dict[str, Any], script: Script) -> str | None:
    sequences = body.get("stop_sequences")
    if _stop_reason(script) == "stop_sequence" and isinstance(sequences, list) and sequences:
        return str(sequences[0])
    return None


def _model_info(model_id: str) -> dict[str, Any]:
    """``claude-haiku-4-5-20251001`` -> display name ``Claude Haiku 4.5``."""
    words = [w for w in model_id.split("-") if not (w.isdigit() and len(w) == 8)]
    names = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return {
        "type": "model",
        "id": model_id,
        "display_name": " ".join([*names, version] if version else names),
        "created_at": "2025-01-01T00:00:00Z",
    }
