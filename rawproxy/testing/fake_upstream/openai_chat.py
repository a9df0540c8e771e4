"""The OpenAI Chat Completions side: a :class:`~.script.Script` rendered as a whole completion or as a
stream of ``data:`` chunks ending in ``[DONE]``, scripted errors, and the models list.

The stream is one ``chat.completion.chunk`` per content delta: reasoning pieces (under the script's
``reasoning_field``), then text pieces, then each tool call's head and argument fragments (alternated
across calls with ``interleave``); the first delta carries ``role``. Then one chunk with the finish
reason, a usage chunk when asked (``stream_options.include_usage`` or ``Script.usage``), and ``[DONE]``.
``error_after`` replaces the rest with an in-band error chunk (``finish_reason: "error"``, the way
OpenRouter reports a provider failure) and ``[DONE]``; ``cut_after`` drops the connection instead.

Ids come from the shared sequence: ``chatcmpl-fake{seq}``, and tool calls ``call_{i}{seq}`` unless the
script names them (a whole completion's calls take the number before its own id is drawn, a stream's
after: the tests pin these ids as they are).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
import orjson

from . import providers
from .openai_rules import gemini_refusal, refusal
from .script import Script, arguments_json, split, tokens
from .state import UpstreamState
from .wire import Wire

__all__ = ["answer", "completion", "models", "not_found"]


async def answer(state: UpstreamState, wire: Wire, body: dict[str, Any]) -> bool:
    """``POST .../chat/completions``; False when the connection is done with."""
    lost = providers.compare(state.issued, body) if state.provider else []
    state.lost += lost
    if state.strict and state.provider == "openrouter" and (said := providers.openrouter_refusal(body, lost)):
        return await wire.json(400, said)
    if state.strict and state.provider == "gemini" and (missing := gemini_refusal(body)) is not None:
        said = {"code": 400, "message": missing, "status": "INVALID_ARGUMENT"}
        return await wire.json(400, [{"error": said}])  # Gemini answers a list
    refused = refusal(body, state.provider) if state.strict else None
    if refused is not None:  # what the real API refuses, in its words (openai_rules.py)
        message, param = refused
        code = "unsupported_value" if param else "invalid_request_error"  # DeepSeek's code is the type's
        said = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        return await wire.json(400, {"error": said})
    script = providers.shaped(state.choose(body), state.provider, body)
    if not await wire.before_head(script):
        return False
    if script.raw is not None:
        return await wire.raw(script)
    if script.status >= 400:
        error = script.error_body or orjson.dumps(
            {"error": {"message": "scripted error", "type": "server_error"}}
        )
        return await wire.send(script.status, [("content-type", "application/json"), *script.headers], error)
    if body.get("stream"):
        return await _stream(state, wire, body, script)
    return await wire.json(200, completion(state, body, script))


async def models(state: UpstreamState, wire: Wire) -> bool:
    """``GET .../models`` (without Anthropic headers): ``state.openai_models``."""
    return await wire.json(200, {"object": "list", "data": state.openai_models})


async def not_found(wire: Wire, path: str) -> bool:
    """Any other path (or a chat body that is not a JSON object), in OpenAI's error shape."""
    return await wire.json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})


def completion(state: UpstreamState, body: dict[str, Any], script: Script) -> dict[str, Any]:
    """A whole (non-streamed) ``chat.completion``."""
    message: dict[str, Any] = {"role": "assistant", "content": script.text or None}
    if script.reasoning:
        message[script.reasoning_field] = script.reasoning
    if script.reasoning_details is not None:
        message["reasoning_details"] = script.reasoning_details
    ids = _call_ids(state, script)
    providers.remember(state.issued, script, state.provider, ids)
    if script.tool_calls:
        message["tool_calls"] = [
            {
                "id": ids[i],
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_json(call)},
                **({"extra_content": call.extra_content} if call.extra_content else {}),
            }
            for i, call in enumerate(script.tool_calls)
        ]
    return {
        "id": _next_id(state),  # drawn after the tool call ids above, which use the previous number
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(script)}],
        "usage": _usage(script, max(1, len(tokens(script.text)))),
    }


def _next_id(state: UpstreamState) -> str:
    return f"chatcmpl-fake{state.next_seq():06d}"


def _finish_reason(script: Script) -> str:
    return script.finish_reason or ("tool_calls" if script.tool_calls else "stop")


def _usage(script: Script, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": script.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": script.prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
    }


def _call_ids(state: UpstreamState, script: Script) -> list[str]:
    return [call.id or f"call_{i:02d}{state.seq:06d}" for i, call in enumerate(script.tool_calls)]


def _reasoning_deltas(script: Script) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reasoning deltas before the text, and the ``reasoning_details`` entries without text that go
    just before the tool calls (OpenRouter sends Gemini's encrypted reasoning with the calls). A text
    piece is sent under ``reasoning_field`` too when the script has that text (OpenRouter sends both)."""
    if script.reasoning_details is None:
        return [{script.reasoning_field: piece} for piece in tokens(script.reasoning)], []
    first: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for entry in script.reasoning_details:
        text = entry.get("text")
        if not isinstance(text, str):
            later.append({"reasoning_details": [entry]})
            continue
        head = {k: v for k, v in entry.items() if k not in ("text", "signature")}
        pieces = tokens(text) or [""]
        for n, piece in enumerate(pieces):
            part = {**head, "text": piece}
            if n == len(pieces) - 1 and "signature" in entry:
                part["signature"] = entry["signature"]
            delta: dict[str, Any] = {"reasoning_details": [part]}
            if script.reasoning:
                delta[script.reasoning_field] = piece
            first.append(delta)
    return first, later


def _deltas(state: UpstreamState, script: Script) -> list[dict[str, Any]]:
    """The content deltas of a streamed answer, in order."""
    deltas, later = _reasoning_deltas(script)
    deltas += [{"content": piece} for piece in tokens(script.text)]
    deltas += later
    ids = _call_ids(state, script)
    providers.remember(state.issued, script, state.provider, ids)
    per_call = []
    for i, call in enumerate(script.tool_calls):
        head = {
            "index": i,
            "id": ids[i],
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
            **({"extra_content": call.extra_content} if call.extra_content else {}),
        }
        fragments = split(arguments_json(call), script.arg_fragments)
        per_call.append([head] + [{"index": i, "function": {"arguments": frag}} for frag in fragments])
    if script.interleave:
        longest = max((len(c) for c in per_call), default=0)
        order = [c[j] for j in range(longest) for c in per_call if j < len(c)]
    else:
        order = [tc for c in per_call for tc in c]
    deltas += [{"tool_calls": [tc]} for tc in order]
    return deltas


async def _stream(state: UpstreamState, wire: Wire, body: dict[str, Any], script: Script) -> bool:
    state.streams_started += 1
    base = {
        "id": _next_id(state),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }
    options = body.get("stream_options") or {}
    usage_on = script.usage if script.usage is not None else bool(options.get("include_usage"))

    def frame(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

    wire.write(
        h11.Response(status_code=200, headers=[("content-type", "text/event-stream"), *script.headers])
    )
    try:
        if script.ttft:
            await wire.wait(script.ttft)
        deltas = _deltas(state, script)
        for n, delta in enumerate(deltas):
            if script.cut_after is not None and n >= script.cut_after:
                wire.abort()  # no terminating chunk: a dead upstream
                return False
            if script.error_after is not None and n >= script.error_after:
                error = {"message": "upstream provider failed mid-stream", "code": 502}
                data = (
                    frame([{"index": 0, "delta": {}, "finish_reason": "error"}], error=error)
                    + b"data: [DONE]\n\n"
                )
                wire.write(h11.Data(data=data))
                break
            if n == 0:
                delta = {"role": "assistant", **delta}
            wire.write(h11.Data(data=frame([{"index": 0, "delta": delta, "finish_reason": None}])))
            state.chunks_written += 1
            await wire.writer.drain()
            await wire.pace(script, n)
        else:
            data = frame([{"index": 0, "delta": {}, "finish_reason": _finish_reason(script)}])
            if usage_on:
                data += frame([], usage=_usage(script, max(1, len(deltas))))
            data += b"data: [DONE]\n\n"
            wire.write(h11.Data(data=data))
        wire.write(h11.EndOfMessage())
        await wire.writer.drain()
        state.streams_completed += 1
        return True
    except (ConnectionError, asyncio.CancelledError):
        state.stream_left()
        raise
