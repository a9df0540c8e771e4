"""Test helpers for the O2A tests: build Anthropic Messages SSE streams by hand, run them through the
translator, parse the ``chat.completion.chunk`` SSE that comes out, check its invariants and accumulate
it into a final message.

Two checks of the output besides our own strict parser: every chunk goes through the official
``openai`` SDK's ``ChatCompletionChunk.model_validate``, and :func:`sdk_chunks` /
:func:`sdk_final_completion` serve the bytes to the real ``openai.OpenAI`` client over a mock transport
(its SSE parser, its ``[DONE]`` handling, its in-stream error detection and its stream accumulator).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import httpx
import openai
import orjson
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from rawproxy import ir, profiles, translate
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator

# ------------------------------------------------------------------------------- requests (O2A-R*)

UPSTREAM_MODEL = "claude-sonnet-4-6"


def prepare(
    body: dict[str, Any],
    *,
    auto_cache: bool = False,
    max_output_tokens: int | None = None,
    upstream_model: str = UPSTREAM_MODEL,
) -> Any:
    """The proxy's sans-I/O request pipeline: parse, default ``max_tokens``, build the upstream body."""
    req = openai_chat.parse_request(orjson.dumps(body))
    req.max_tokens = req.max_tokens or 16384
    return translate.prepare_request(
        openai_chat,
        anthropic_messages,
        req,
        upstream_model=upstream_model,
        profile=profiles.PROFILES["generic"],
        max_output_tokens=max_output_tokens,
        auto_cache=auto_cache,
    )


def upstream_body(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """OpenAI request body -> the Anthropic body the proxy would send, as parsed JSON."""
    result: dict[str, Any] = orjson.loads(prepare(body, **kw).body)
    return result


# ------------------------------------------------------------------------------- contexts


def ctx(**overrides: Any) -> ir.Context:
    """A context for an OpenAI client on an Anthropic upstream; keywords override the defaults."""
    values: dict[str, Any] = {"client_model": "gpt-4o", "upstream_model": UPSTREAM_MODEL}
    values.update(overrides)
    return ir.Context(**values)


# ------------------------------------------------------------------------------- Anthropic SSE


def ev(data: dict[str, Any], event: str | None = None) -> bytes:
    """One Anthropic SSE frame; the ``event:`` line repeats the JSON type unless told otherwise."""
    return b"event: %b\ndata: %b\n\n" % ((event or data["type"]).encode(), orjson.dumps(data))


def message_start(
    id: str = "msg_01ABC",
    input_tokens: int = 10,
    cache_read: int = 0,
    cache_creation: int = 0,
    output_tokens: int = 1,
) -> bytes:
    return ev(
        {
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": cache_creation,
                    "cache_read_input_tokens": cache_read,
                    "output_tokens": output_tokens,
                },
            },
        }
    )


def text_start(index: int) -> bytes:
    return ev({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})


def text_delta(index: int, text: str) -> bytes:
    return ev({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})


def thinking_start(index: int) -> bytes:
    return ev(
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        }
    )


def thinking_delta(index: int, text: str) -> bytes:
    return ev(
        {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}}
    )


def signature_delta(index: int, signature: str) -> bytes:
    return ev(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": signature},
        }
    )


def tool_start(index: int, id: str, name: str) -> bytes:
    return ev(
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}},
        }
    )


def json_delta(index: int, partial: str) -> bytes:
    return ev(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial},
        }
    )


def block_stop(index: int) -> bytes:
    return ev({"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str = "end_turn", output_tokens: int = 5, **usage: int) -> bytes:
    return ev(
        {
            "type": "message_delta",
            "delta": {"type": "message_delta", "stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens, **usage},
        }
    )


def message_stop() -> bytes:
    return ev({"type": "message_stop"})


def ping() -> bytes:
    return ev({"type": "ping"})


def error_event(etype: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    return ev({"type": "error", "error": {"type": etype, "message": message}})


def text_stream(*texts: str, stop_reason: str = "end_turn", **start: Any) -> bytes:
    """A complete one-text-block stream."""
    return b"".join(
        [
            message_start(**start),
            text_start(0),
            ping(),
            *(text_delta(0, t) for t in texts),
            block_stop(0),
            message_delta(stop_reason),
            message_stop(),
        ]
    )


# ------------------------------------------------------------------------------- running


def translate_stream(
    stream: bytes, context: ir.Context | None = None, *, pieces: Iterable[bytes] | None = None
) -> bytes:
    """start(), feed() each piece (default: the whole stream at once), close() for EOF."""
    t = StreamTranslator(openai_chat, anthropic_messages, context or ctx())
    out = [t.start()]
    for piece in [stream] if pieces is None else pieces:
        out.append(t.feed(piece))
    out.append(t.close())
    return b"".join(out)


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


_ID = re.compile(rb'"id":"chatcmpl-[0-9A-Za-z_-]+"')
_CREATED = re.compile(rb'"created":\d+')


def normalise(out: bytes) -> bytes:
    """The random completion id and the clock-dependent ``created`` -> fixed text."""
    return _CREATED.sub(b'"created":0', _ID.sub(b'"id":"chatcmpl-X"', out))


# ------------------------------------------------------------------------------- parsing chunks

DONE = b"data: [DONE]\n\n"
_FRAME = re.compile(rb"data: ([^\n]*)\n\n")


def parse_chunks(out: bytes) -> list[dict[str, Any]]:
    """Strictly parse ``data: <json>\\n\\n`` frames ending in exactly one ``data: [DONE]``.

    Returns the JSON frames (an ``{"error": ...}`` frame included), without the ``[DONE]``.
    Every normal chunk is validated with the openai SDK's ``ChatCompletionChunk``.
    """
    frames: list[dict[str, Any]] = []
    pos = 0
    done = False
    while pos < len(out):
        m = _FRAME.match(out, pos)
        assert m is not None, f"bad SSE framing at byte {pos}: {out[pos : pos + 200]!r}"
        assert not done, f"data after [DONE]: {out[pos : pos + 200]!r}"
        if m.group(1) == b"[DONE]":
            done = True
        else:
            data = json.loads(m.group(1))
            if "error" not in data:
                ChatCompletionChunk.model_validate(data)
            frames.append(data)
        pos = m.end()
    assert done, "stream did not end in data: [DONE]"
    return frames


def check_chunks(frames: list[dict[str, Any]], model: str = "gpt-4o") -> None:
    """The invariants of an OpenAI chunk stream (O2A-S01, S07, S09, R26).

    First chunk ``delta: {role: assistant, content: ""}``; all chunks share id, created, model and
    object; exactly one chunk has a finish_reason and it is the last chunk with choices; a usage chunk
    (``choices: []``) may follow it; an error frame, if any, is the last frame and then no chunk has a
    finish_reason.
    """
    errors = [i for i, f in enumerate(frames) if "error" in f]
    assert len(errors) <= 1, frames
    if errors:
        assert errors[0] == len(frames) - 1, "the error frame must be the last one"
        chunks = frames[:-1]
    else:
        chunks = frames
    if not chunks:
        assert errors, "no chunks at all"
        return
    head = {k: chunks[0][k] for k in ("id", "created", "model", "object")}
    assert head["object"] == "chat.completion.chunk"
    assert head["model"] == model
    assert head["id"].startswith("chatcmpl-")
    for c in chunks:
        assert {k: c[k] for k in ("id", "created", "model", "object")} == head, c
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    ]
    finishes = [i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"]]
    usage_chunks = [i for i, c in enumerate(chunks) if not c["choices"]]
    if errors:
        assert finishes == [], "an errored stream must not report a finish_reason"
        assert usage_chunks == []
        return
    assert len(finishes) == 1, finishes
    assert chunks[finishes[0]]["choices"][0]["delta"] == {}
    assert usage_chunks in ([], [len(chunks) - 1]), usage_chunks
    assert finishes[0] == len(chunks) - 1 - len(usage_chunks)


def accumulate(frames: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold chunks into a final message: content, reasoning_content, tool_calls (by index), finish,
    usage and error. Checks :func:`check_chunks` first."""
    check_chunks(frames)
    out: dict[str, Any] = {
        "content": "",
        "reasoning_content": "",
        "tool_calls": [],
        "finish_reason": None,
        "usage": None,
        "error": None,
    }
    for f in frames:
        if "error" in f:
            out["error"] = f["error"]
            continue
        if f.get("usage"):
            out["usage"] = f["usage"]
        for choice in f["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning_content"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                i = call["index"]
                if i == len(out["tool_calls"]):
                    assert call.get("id") and call["function"].get("name"), call
                    out["tool_calls"].append(
                        {"id": call["id"], "name": call["function"]["name"], "arguments": ""}
                    )
                else:
                    assert i < len(out["tool_calls"]), f"tool call index {i} skipped one"
                    assert "id" not in call, call
                out["tool_calls"][i]["arguments"] += call["function"].get("arguments") or ""
            if choice["finish_reason"]:
                out["finish_reason"] = choice["finish_reason"]
    return out


def run(stream: bytes, context: ir.Context | None = None, **kw: Any) -> tuple[bytes, dict[str, Any]]:
    """Translate, parse, check and accumulate: (client bytes, final message)."""
    out = translate_stream(stream, context, **kw)
    return out, accumulate(parse_chunks(out))


# ------------------------------------------------------------------------------- the official SDK


def _sdk_client(status: int, content: bytes, content_type: str) -> openai.OpenAI:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=content)

    return openai.OpenAI(
        api_key="test",
        base_url="http://rawproxy.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


_SDK_REQUEST: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def sdk_chunks(out: bytes) -> list[ChatCompletionChunk]:
    """Serve ``out`` as a 200 event stream to ``chat.completions.create(stream=True)`` and collect the
    chunks; an ``{"error": ...}`` frame raises the SDK's ``openai.APIError``."""
    client = _sdk_client(200, out, "text/event-stream")
    try:
        return list(client.chat.completions.create(**_SDK_REQUEST, stream=True))
    finally:
        client.close()


def sdk_final_completion(out: bytes) -> Any:
    """Serve ``out`` to the SDK's ``chat.completions.stream`` helper: its ``get_final_completion()``."""
    client = _sdk_client(200, out, "text/event-stream")
    try:
        with client.chat.completions.stream(**_SDK_REQUEST) as stream:
            return stream.get_final_completion()
    finally:
        client.close()


def sdk_completion(body: bytes) -> ChatCompletion:
    """Serve a whole (non-stream) response body to ``chat.completions.create``."""
    client = _sdk_client(200, body, "application/json")
    try:
        return client.chat.completions.create(**_SDK_REQUEST)
    finally:
        client.close()


def sdk_error(status: int, body: bytes) -> openai.APIStatusError:
    """Serve an error response to the SDK: the exception it raises."""
    client = _sdk_client(status, body, "application/json")
    try:
        client.chat.completions.create(**_SDK_REQUEST)
    except openai.APIStatusError as exc:
        return exc
    finally:
        client.close()
    raise AssertionError("the SDK did not raise")
