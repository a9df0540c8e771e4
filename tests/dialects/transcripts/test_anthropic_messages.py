"""Every recorded Anthropic upstream transcript, through the sans-I/O core, to an OpenAI client (O2A).

Streams: each 200 SSE body goes through ``StreamTranslator(openai_chat, anthropic_messages, ctx)`` at
several chunkings (1, 7, 97 bytes and whole; every two-piece split for short bodies), which must all give
the same bytes once the ``created`` timestamp (and a random completion id, if any) is normalised. The
output is then checked three ways:

- against a golden file in ``tests/fixtures/transcripts/expected_openai/`` (regenerate with
  ``RAWPROXY_REGEN_GOLDEN=1``, then *read the diff*: a golden records what is right, not merely what the
  code does today);
- against invariants computed from the upstream body by an oracle that reads the Anthropic events
  directly (same text, same reasoning, same client tool calls and arguments, one finish reason, usage),
  every chunk validated with the official SDK's ``ChatCompletionChunk``;
- with and without ``stream_options.include_usage``.

Non-streaming bodies go through ``parse_response`` + ``build_response`` (validated with the SDK's
``ChatCompletion``), and HTTP errors through ``parse_error`` + ``build_error``.
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
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.shared import ErrorObject

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator
from tests.support.transcripts import HERE, Transcript, get, load, split_sse

CLIENT_MODEL = "gpt-4o-compatible-client"
EXPECTED = HERE / "expected_openai"
REGEN = os.environ.get("RAWPROXY_REGEN_GOLDEN") == "1"

ALL = load("anthropic_messages")
STREAMS = [t for t in ALL if t.is_sse and t.status == 200]
JSON_OK = [t for t in ALL if not t.is_sse and t.status == 200]
HTTP_ERRORS = [t for t in ALL if t.status >= 400]

# O2A-N04: Anthropic stop reasons -> OpenAI finish reasons (only these occur in the recordings).
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}

# ``created`` is the clock; a completion id is random only when the upstream gave no message id.
_CREATED = re.compile(rb'"created":\d+')
_RANDOM_ID = re.compile(rb'"chatcmpl-[0-9a-f]{24}"')


def normalise(out: bytes) -> bytes:
    return _RANDOM_ID.sub(b'"chatcmpl-RANDOM"', _CREATED.sub(b'"created":0', out))


def make_ctx(t: Transcript, *, include_usage: bool) -> ir.Context:
    return ir.Context(client_model=CLIENT_MODEL, upstream_model=t.model, include_usage=include_usage)


def translate_body(t: Transcript, body: bytes, *, include_usage: bool, size: int | None = None) -> bytes:
    tr = StreamTranslator(openai_chat, anthropic_messages, make_ctx(t, include_usage=include_usage))
    out = []
    step = size or len(body) or 1
    for i in range(0, len(body), step):
        out.append(tr.feed(body[i : i + step]))
    out.append(tr.close())
    return b"".join(out)


def translate(t: Transcript, *, include_usage: bool, size: int | None = None) -> bytes:
    return translate_body(t, t.body, include_usage=include_usage, size=size)


def golden_path(t: Transcript) -> Path:
    return EXPECTED / f"{t.name}.openai.sse"


def stream_cases() -> Iterator[Any]:
    for t in STREAMS:
        for include_usage in (True, False):
            yield pytest.param(t, include_usage, id=f"{t.name}-{'usage' if include_usage else 'nousage'}")


# ------------------------------------------------------------------------------------ the oracle


@dataclass
class Upstream:
    """What an Anthropic stream said, read straight from its events (independent of the decoder)."""

    model_id: str = ""
    text: str = ""
    reasoning: str = ""
    thinking_deltas: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # client tool_use blocks: id, name, arguments
    server_ids: list[str] = field(default_factory=list)  # server_tool_use, mcp_tool_use... ids
    server_names: set[str] = field(default_factory=set)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)  # latest figure of each usage key


def _fold_usage(into: dict[str, int], usage: Any) -> None:
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if isinstance(usage, dict) and isinstance(usage.get(key), int):
            into[key] = usage[key]


def read_upstream(t: Transcript) -> Upstream:
    up = Upstream()
    blocks: dict[int, dict[str, Any]] = {}
    for ev in split_sse(t.text):
        if ev.data is None:
            continue
        data = json.loads(ev.data)
        kind = data.get("type")
        if kind == "message_start":
            up.model_id = data["message"]["id"]
            _fold_usage(up.usage, data["message"].get("usage"))
        elif kind == "content_block_start":
            block = data["content_block"]
            blocks[data["index"]] = block
            if block["type"] == "tool_use":
                up.calls.append(
                    {"index": data["index"], "id": block["id"], "name": block["name"], "args": ""}
                )
            elif block["type"] == "text":
                up.text += block.get("text") or ""
            elif block["type"] == "redacted_thinking":
                up.redacted.append(block["data"])
            elif block["type"] not in ("thinking",):
                if block.get("id"):
                    up.server_ids.append(block["id"])
                if block.get("name"):
                    up.server_names.add(block["name"])
        elif kind == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                up.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                up.reasoning += delta["thinking"]
                up.thinking_deltas.append(delta["thinking"])
            elif delta["type"] == "signature_delta":
                up.signatures.append(delta["signature"])
            elif delta["type"] == "input_json_delta" and blocks[data["index"]]["type"] == "tool_use":
                (call,) = [c for c in up.calls if c["index"] == data["index"]]
                call["args"] += delta["partial_json"]
        elif kind == "message_delta":
            up.stop_reason = data["delta"]["stop_reason"]
            _fold_usage(up.usage, data.get("usage"))
    return up


# ------------------------------------------------------------------------------ output structure


@dataclass
class Call:
    id: str
    name: str
    arguments: str = ""


@dataclass
class Client:
    """What an OpenAI client accumulates from the translated stream, with the framing checked."""

    chunks: list[dict[str, Any]]  # every ``data:`` JSON object, in order ([DONE] excluded)
    text: str = ""
    reasoning: str = ""
    reasoning_chunks: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)  # by tool-call index
    finishes: list[str] = field(default_factory=list)
    usage_chunks: list[dict[str, Any]] = field(default_factory=list)


def accumulate(out: bytes, *, error: bool = False) -> Client:
    """Parse the output: SSE ``data:`` lines only, ``[DONE]`` last; every chunk a valid SDK chunk."""
    events = split_sse(out.decode("utf-8"))
    assert events, "no output"
    for ev in events:
        assert ev.event is None and not ev.comments, ev  # plain data: lines, as OpenAI sends
        assert ev.data is not None, ev
    assert events[-1].data == "[DONE]", events[-1]
    assert [ev.data for ev in events].count("[DONE]") == 1
    payloads = [json.loads(ev.data) for ev in events[:-1] if ev.data is not None]
    if error:  # O2A-S07: a failure is an {"error": ...} object right before [DONE]
        assert set(payloads[-1]) == {"error"}, payloads[-1]
        payloads = payloads[:-1]
    client = Client(payloads)
    for n, chunk in enumerate(payloads):
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["object"] == "chat.completion.chunk"
        if not chunk["choices"]:
            assert chunk.get("usage") is not None, "a chunk with no choices and no usage"
            client.usage_chunks.append(chunk)
            continue
        assert chunk.get("usage") is None, "usage on a chunk that has choices"
        (choice,) = chunk["choices"]
        assert choice["index"] == 0
        delta = choice["delta"]
        if n == 0:
            assert delta.get("role") == "assistant", chunk
        else:
            assert "role" not in delta, chunk
        assert "signature" not in json.dumps(delta), chunk
        if isinstance(delta.get("content"), str):
            client.text += delta["content"]
        if "reasoning_content" in delta:
            assert isinstance(delta["reasoning_content"], str)
            client.reasoning += delta["reasoning_content"]
            client.reasoning_chunks.append(delta["reasoning_content"])
        for tc in delta.get("tool_calls") or []:
            index = tc["index"]
            function = tc.get("function") or {}
            if index == len(client.calls):  # the first chunk of a call: id, type and name
                assert tc.get("id") and tc.get("type") == "function" and function.get("name"), tc
                client.calls.append(Call(tc["id"], function["name"]))
            else:
                assert index < len(client.calls), f"tool call index {index} skips one"
                assert "id" not in tc and "name" not in function, f"id or name repeated: {tc}"
            client.calls[index].arguments += function.get("arguments") or ""
        if choice["finish_reason"] is not None:
            client.finishes.append(choice["finish_reason"])
        else:
            assert not client.finishes, "a chunk after the finish_reason chunk"
    assert payloads, "no chunks"
    heads = {(c["id"], c["created"], c["model"]) for c in payloads}
    assert len(heads) == 1, heads  # all chunks share id, created and model
    return client


def _kinds(client: Client) -> str:
    """One letter per chunk with a payload: r reasoning, c content, t tool call (the opening chunk's
    empty content and the finish chunk's empty delta are skipped)."""
    out = ""
    for chunk in client.chunks[1:]:
        delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
        if "reasoning_content" in delta:
            out += "r"
        elif delta.get("content"):
            out += "c"
        elif delta.get("tool_calls"):
            out += "t"
    return out


@cache
def translated(name: str, include_usage: bool) -> bytes:
    return translate(get("anthropic_messages", name), include_usage=include_usage)


@cache
def client_of(name: str, include_usage: bool) -> Client:
    return accumulate(translated(name, include_usage))


# ------------------------------------------------------------------------------------ streams


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s01_stream_same_bytes_at_every_chunking(t: Transcript, include_usage: bool) -> None:
    """The upstream's chunk boundaries never change the client's bytes."""
    whole = normalise(translated(t.name, include_usage))
    for size in (1, 7, 97):
        assert normalise(translate(t, include_usage=include_usage, size=size)) == whole, size
    if len(t.body) <= 1000:  # short bodies: every two-piece split
        for i in range(1, len(t.body)):
            tr = StreamTranslator(openai_chat, anthropic_messages, make_ctx(t, include_usage=include_usage))
            out = tr.feed(t.body[:i]) + tr.feed(t.body[i:]) + tr.close()
            assert normalise(out) == whole, i


@pytest.mark.parametrize("t", STREAMS, ids=lambda t: t.name)
def test_o2a_s01_start_first_changes_only_the_id(t: Transcript) -> None:
    """The proxy may call ``start()`` before the first upstream byte: one opening chunk all the same,
    and only the completion id (random then, the message id is not known yet) differs."""
    tr = StreamTranslator(openai_chat, anthropic_messages, make_ctx(t, include_usage=True))
    early = tr.start() + tr.feed(t.body) + tr.close()
    any_id = re.compile(rb'"id":"chatcmpl-[^"]*"')
    assert any_id.sub(b'"id":"X"', normalise(early)) == any_id.sub(
        b'"id":"X"', normalise(translated(t.name, True))
    )
    accumulate(early)  # one role chunk, one shared id


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s01_stream_framing(t: Transcript, include_usage: bool) -> None:
    """chat.completion.chunk objects ending in [DONE], one id (from the message id) and the client's model."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    first = client.chunks[0]
    assert first["model"] == CLIENT_MODEL
    assert first["id"] == "chatcmpl-" + up.model_id.removeprefix("msg_")
    assert isinstance(first["created"], int) and first["created"] > 1_600_000_000


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_stream_text(t: Transcript, include_usage: bool) -> None:
    assert client_of(t.name, include_usage).text == read_upstream(t).text


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s05_stream_reasoning_content(t: Transcript, include_usage: bool) -> None:
    """thinking_delta -> delta.reasoning_content; signatures and redacted thinking never reach the client."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    assert client.reasoning == up.reasoning
    # one chunk per thinking_delta that says something (empty ones are not sent)
    assert client.reasoning_chunks == [t for t in up.thinking_deltas if t]
    out = translated(t.name, include_usage)
    for secret in up.signatures + up.redacted:
        assert secret.encode() not in out
    if up.reasoning:  # the thinking transcripts open with their reasoning
        assert _kinds(client)[0] == "r", _kinds(client)


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s02_stream_tool_calls(t: Transcript, include_usage: bool) -> None:
    """Indices count tool_use blocks only (O2A-S02); id and name in the first chunk of each call; the
    arguments are the upstream's input_json_delta, or "{}" when it sent none (O2A-S04)."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    assert [(c.id, c.name) for c in client.calls] == [(c["id"], c["name"]) for c in up.calls]
    for got, call in zip(client.calls, up.calls, strict=True):
        assert json.loads(got.arguments) == json.loads(call["args"] or "{}"), call
        assert isinstance(json.loads(got.arguments), dict)


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_stream_server_tools_are_not_tool_calls(t: Transcript, include_usage: bool) -> None:
    """Web search, code execution, MCP...: run by Anthropic, never shown as calls the client must answer."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    out = translated(t.name, include_usage)
    assert len(client.calls) == len(up.calls)
    assert not {c.name for c in client.calls} & up.server_names
    for server_id in up.server_ids:
        assert server_id.encode() not in out


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s09_stream_one_finish_reason(t: Transcript, include_usage: bool) -> None:
    """Exactly one finish_reason, mapped from stop_reason (O2A-N04), on the last chunk with choices."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    assert up.stop_reason is not None
    assert client.finishes == [FINISH[up.stop_reason]]
    last_choice = [c for c in client.chunks if c["choices"]][-1]
    assert last_choice["choices"][0]["finish_reason"] == FINISH[up.stop_reason]


@pytest.mark.parametrize(("t", "include_usage"), list(stream_cases()))
def test_o2a_s08_stream_usage(t: Transcript, include_usage: bool) -> None:
    """With include_usage: one ``choices: []`` chunk after the finish chunk, right before [DONE], with the
    input, cache-read and cache-creation tokens of message_start (or their repeat in message_delta) and
    the last output_tokens. Without it: no usage anywhere."""
    up = read_upstream(t)
    client = client_of(t.name, include_usage)
    if not include_usage:
        assert client.usage_chunks == []
        assert b'"usage"' not in translated(t.name, include_usage)
        return
    (chunk,) = client.usage_chunks
    assert chunk is client.chunks[-1]
    usage = chunk["usage"]
    prompt = (
        up.usage.get("input_tokens", 0)
        + up.usage.get("cache_read_input_tokens", 0)
        + up.usage.get("cache_creation_input_tokens", 0)
    )
    assert usage["prompt_tokens"] == prompt, up.usage
    assert usage["completion_tokens"] == up.usage["output_tokens"], up.usage
    assert usage["total_tokens"] == prompt + up.usage["output_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == up.usage.get("cache_read_input_tokens", 0)


@pytest.mark.parametrize("t", STREAMS, ids=lambda t: t.name)
def test_o2a_stream_sdk_accumulates_the_same_answer(t: Transcript) -> None:
    """The official SDK's own stream accumulator rebuilds the answer the upstream gave."""
    up = read_upstream(t)
    state = ChatCompletionStreamState()
    for chunk in client_of(t.name, True).chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.current_completion_snapshot  # get_final_completion() raises on length/content_filter
    (choice,) = final.choices
    assert (choice.message.content or "") == up.text
    assert choice.finish_reason == FINISH[str(up.stop_reason)]
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [(c["id"], c["name"]) for c in up.calls]
    for got, call in zip(calls, up.calls, strict=True):
        assert json.loads(got.function.arguments) == json.loads(call["args"] or "{}")
    assert final.usage is not None
    assert final.usage.completion_tokens == up.usage["output_tokens"]


@pytest.mark.parametrize("t", STREAMS, ids=lambda t: t.name)
def test_o2a_stream_golden(t: Transcript) -> None:
    out = normalise(translated(t.name, True))
    path = golden_path(t)
    if REGEN:
        EXPECTED.mkdir(exist_ok=True)
        path.write_bytes(out)
    assert path.exists(), f"missing golden {path.name}; run with RAWPROXY_REGEN_GOLDEN=1 and review it"
    assert out == path.read_bytes(), f"stale golden {path.name}"


def test_o2a_no_stale_goldens() -> None:
    wanted = {golden_path(t).name for t in STREAMS}
    present = {p.name for p in EXPECTED.glob("*")}
    assert present == wanted
    assert len(STREAMS) == 40  # PROVENANCE.md: 40 SSE streams


# Goldens reviewed by eye; the properties that made them right are pinned here too.


def _golden(name_part: str) -> Client:
    (t,) = [t for t in STREAMS if name_part in t.name]
    return accumulate(golden_path(t).read_bytes())


def _deltas(client: Client) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in client.chunks if c["choices"]]


def test_golden_thinking_starts_with_reasoning_content() -> None:
    for part in ("test_anthropic_thinking_streaming_legacy", "test_call_with_thinking__anthropic_claude"):
        for t in [t for t in STREAMS if part in t.name]:
            client = accumulate(golden_path(t).read_bytes())
            assert _deltas(client)[0] == {"role": "assistant", "content": ""}
            assert "reasoning_content" in _deltas(client)[1]
            assert re.fullmatch("r+c+", _kinds(client)), _kinds(client)


def test_golden_parallel_tool_calls_get_indices_0_and_1() -> None:
    client = _golden("test_anthropic_chat_model_complete_parallel_function_call")
    assert [c.name for c in client.calls] == ["plus", "minus"]
    assert [json.loads(c.arguments) for c in client.calls] == [{"a": 1, "b": 2}, {"a": 2, "b": 1}]
    indices = [tc["index"] for d in _deltas(client) for tc in d.get("tool_calls") or []]
    assert sorted(set(indices)) == [0, 1] and indices == sorted(indices)
    assert client.finishes == ["tool_calls"]


def test_golden_tool_after_server_tool_is_index_0() -> None:
    # upstream blocks: text, server_tool_use, tool_search_tool_result, text, tool_use (block index 4)
    client = _golden("test_anthropic_native_tool_search_streaming")
    indices = {tc["index"] for d in _deltas(client) for tc in d.get("tool_calls") or []}
    assert indices == {0}
    (call,) = client.calls
    assert call.name == "get_exchange_rate"
    assert json.loads(call.arguments) == {"from_currency": "USD", "to_currency": "EUR"}
    assert client.finishes == ["tool_calls"]


def test_golden_text_then_two_tools() -> None:
    client = _golden("test_anthropic_tools_streaming_legacy")
    assert client.text and len(client.calls) == 2
    assert next(tc["index"] for d in _deltas(client) for tc in d.get("tool_calls") or []) == 0


def test_golden_web_search_is_text_only() -> None:
    client = _golden("test_web_search_tool_stream__anthropic_claude_sonnet_4_0__i0")
    assert client.calls == [] and client.text and client.finishes == ["stop"]


def test_golden_redacted_thinking_is_dropped() -> None:
    client = _golden("test_anthropic_model_thinking_part_redacted_stream")
    assert client.reasoning == "" and client.text


def test_golden_finish_reasons() -> None:
    assert _golden("test_refusal_raises").finishes == ["content_filter"]
    assert _golden("test_max_tokens__anthropic_claude_sonnet_4_0__stream").finishes == ["length"]
    assert _golden("test_prompt_with_prefill_and_stop_sequences").finishes == ["stop"]
    assert _golden("test_retry_chat_model_acomplete_anthropic").finishes == ["tool_calls"]


def test_golden_refusal_without_content_still_frames() -> None:
    client = _golden("test_refusal_raises")
    assert _deltas(client) == [{"role": "assistant", "content": ""}, {}]
    (usage,) = client.usage_chunks
    assert usage["usage"]["prompt_tokens"] == 97 and usage["usage"]["completion_tokens"] == 0


# ------------------------------------------------------------------------ synthetic failures


_OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


def _cut_before(t: Transcript, marker: bytes) -> bytes:
    """The body up to the event that contains ``marker`` (the first one), at an event boundary."""
    pos = t.body.index(marker)
    return t.body[: t.body.rindex(b"\n\n", 0, pos) + 2]


def _error_of(out: bytes) -> dict[str, Any]:
    events = split_sse(out.decode("utf-8"))
    assert events[-1].data == "[DONE]"
    assert events[-2].data is not None
    error = json.loads(events[-2].data)
    ErrorObject.model_validate(error["error"])
    return dict(error["error"])


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "nousage"])
def test_o2a_s07_mid_stream_error(include_usage: bool) -> None:
    """The documented ``event: error`` mid-stream (none recorded): an error object, then [DONE]; no
    finish_reason, no usage chunk, whatever the chunking."""
    t = get("anthropic_messages", "openllmetry__test_messages__test_anthropic_tools_streaming_legacy__i0")
    body = _cut_before(t, b'"content_block_stop"') + _OVERLOADED
    whole = translate_body(t, body, include_usage=include_usage)
    for size in (1, 7, 97):
        assert normalise(translate_body(t, body, include_usage=include_usage, size=size)) == normalise(whole)
    client = accumulate(whole, error=True)
    assert client.finishes == [] and client.usage_chunks == []
    assert client.text  # what came before the error reached the client
    error = _error_of(whole)
    assert error["type"] == "overloaded_error" and error["message"] == "Overloaded"


@pytest.mark.parametrize("cut", ['"message_delta"', '"message_stop"'])
def test_o2a_s10_truncated_stream_is_an_error(cut: str) -> None:
    """The upstream body ends without message_stop: an error, never a silent truncation."""
    t = get("anthropic_messages", "llm-anthropic__test_anthropic__test_tools__i0")
    body = _cut_before(t, cut.encode())
    out = translate_body(t, body, include_usage=True)
    client = accumulate(out, error=True)
    assert client.finishes == [] and client.usage_chunks == []
    assert _error_of(out)["type"] == "api_error"


# ------------------------------------------------------------------------------ non-streaming


def _joined(blocks: list[dict[str, Any]], kind: str, key: str) -> str:
    return "".join(b.get(key) or "" for b in blocks if b.get("type") == kind)


@pytest.mark.parametrize("t", JSON_OK, ids=lambda t: t.name)
def test_o2a_n02_response(t: Transcript) -> None:
    ctx = make_ctx(t, include_usage=False)
    body = json.loads(openai_chat.build_response(anthropic_messages.parse_response(t.body, ctx), ctx))
    ChatCompletion.model_validate(body)
    data = t.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == CLIENT_MODEL
    assert body["id"] == "chatcmpl-" + data["id"].removeprefix("msg_")
    (choice,) = body["choices"]
    msg = choice["message"]
    assert msg["role"] == "assistant"
    blocks = data["content"]

    text = _joined(blocks, "text", "text")
    assert (msg["content"] or "") == text
    tools = [b for b in blocks if b["type"] == "tool_use"]  # server_tool_use & co. are not client calls
    calls = msg.get("tool_calls") or []
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        (b["id"], "function", b["name"]) for b in tools
    ]
    for call, block in zip(calls, tools, strict=True):
        assert json.loads(call["function"]["arguments"]) == block["input"]

    # O2A-N03: thinking -> reasoning_content; redacted thinking and signatures are dropped
    reasoning = _joined(blocks, "thinking", "thinking")
    assert (msg.get("reasoning_content") or "") == reasoning
    raw = json.dumps(body)
    for b in blocks:
        for secret in (b.get("signature"), b.get("data") if b["type"] == "redacted_thinking" else None):
            if secret:
                assert secret not in raw

    # O2A-N04, O2A-N05
    assert choice["finish_reason"] == FINISH[data["stop_reason"]]
    usage = data["usage"]
    prompt = (
        usage["input_tokens"]
        + (usage.get("cache_read_input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
    )
    assert body["usage"]["prompt_tokens"] == prompt
    assert body["usage"]["completion_tokens"] == usage["output_tokens"]
    assert body["usage"]["total_tokens"] == prompt + usage["output_tokens"]
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == (
        usage.get("cache_read_input_tokens") or 0
    )


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("t", HTTP_ERRORS, ids=lambda t: t.name)
def test_o2a_e02_http_error(t: Transcript) -> None:
    """The status is kept, the body is OpenAI's error shape with the upstream's message and type."""
    status, body = openai_chat.build_error(anthropic_messages.parse_error(t.status, t.body))
    assert status == t.status
    data = json.loads(body)
    assert set(data) == {"error"}
    error = ErrorObject.model_validate(data["error"])
    upstream = t.json()["error"]
    assert error.message == upstream["message"]
    assert error.type == upstream["type"]


def test_o2a_e02_overloaded_529_becomes_503() -> None:
    """No recording has a 529: the documented body. OpenAI clients know 503, not 529."""
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    status, out = openai_chat.build_error(anthropic_messages.parse_error(529, body))
    assert status == 503
    error = ErrorObject.model_validate(json.loads(out)["error"])
    assert (error.type, error.message) == ("overloaded_error", "Overloaded")


def test_transcript_counts() -> None:
    # PROVENANCE.md: 92 files, 40 SSE streams; the other 52 are 47 JSON 200s and 5 HTTP errors.
    assert (len(ALL), len(STREAMS), len(JSON_OK), len(HTTP_ERRORS)) == (92, 40, 47, 5)
