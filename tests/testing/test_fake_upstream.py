"""The fake upstream's Anthropic Messages dialect, driven directly with the official ``anthropic`` SDK.

The OpenAI side is exercised by the integration and conformance tests; these check that the same
``Script`` options produce what the real Anthropic API sends, byte format included.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall

pytestmark = pytest.mark.integration

anthropic = pytest.importorskip("anthropic")

MODEL = "claude-sonnet-4-6"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[Any]:
    c = anthropic.AsyncAnthropic(base_url=fake.anthropic_url, api_key="x", max_retries=0, timeout=10)
    yield c
    await c.close()


async def _raw_stream(fake: FakeUpstream, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    """POST a streamed request with httpx; the (event, data) pairs as sent, checked for SSE framing."""
    request = {"model": MODEL, "max_tokens": 100, "messages": HI, "stream": True, **body}
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{fake.anthropic_url}/v1/messages", json=request, headers={"anthropic-version": "2023-06-01"}
        )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in r.text.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line[7:], orjson.loads(data_line[6:])))
    assert r.text.endswith("\n\n")
    return events


# --------------------------------------------------------------------------------------- text


async def test_text_create(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="Hello there, world.", prompt_tokens=20))
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello there, world."
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 20
    assert message.usage.output_tokens >= 1


async def test_text_stream(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="Hello there, streaming world."))
    texts = []
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=HI) as stream:
        async for text in stream.text_stream:
            texts.append(text)
        message = await stream.get_final_message()
    assert texts == ["Hello", " there,", " streaming", " world."]  # token by token
    assert message.content[0].text == "Hello there, streaming world."
    assert message.stop_reason == "end_turn"
    assert fake.streams_started == fake.streams_completed == 1
    assert fake.chunks_written == 4


async def test_default_script_and_request_recording(fake: FakeUpstream, client: Any) -> None:
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    assert message.content[0].text == Script().text
    (req,) = fake.requests
    assert (req.method, req.path, req.query) == ("POST", "/v1/messages", "")
    assert req.headers.get("x-api-key") == "x" or req.headers.get("authorization") == "Bearer x"
    assert "anthropic-version" in req.headers
    assert all(k == k.lower() for k in req.headers)
    assert req.body == {"model": MODEL, "max_tokens": 100, "messages": HI}


async def test_beta_path(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="beta sdk"), Script(text="beta ok"))
    message = await client.beta.messages.create(model=MODEL, max_tokens=100, messages=HI)
    assert message.content[0].text == "beta sdk"
    async with httpx.AsyncClient() as http:  # older SDKs send ?beta=true; this one may not
        r = await http.post(
            f"{fake.anthropic_url}/v1/messages?beta=true",
            json={"model": MODEL, "max_tokens": 10, "messages": HI},
            headers={"anthropic-version": "2023-06-01", "anthropic-beta": "x"},
        )
    assert r.json()["content"] == [{"type": "text", "text": "beta ok"}]
    assert r.headers["request-id"].startswith("req_")
    assert (fake.requests[-1].path, fake.requests[-1].query) == ("/v1/messages", "beta=true")
    assert fake.requests[-1].headers["anthropic-beta"] == "x"


async def test_stop_reason_from_finish_reason(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="cut short", finish_reason="max_tokens"), Script(finish_reason="length"))
    first = await client.messages.create(model=MODEL, max_tokens=2, messages=HI)
    async with client.messages.stream(model=MODEL, max_tokens=2, messages=HI) as stream:
        second = await stream.get_final_message()
    assert first.stop_reason == second.stop_reason == "max_tokens"


# ----------------------------------------------------------------------------------- thinking


async def test_thinking_stream_and_create(fake: FakeUpstream, client: Any) -> None:
    script = Script(text="The answer is 4.", reasoning="Two plus two is four.", signature="sig-test-42")
    fake.enqueue(script, script)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    async with client.messages.stream(model=MODEL, max_tokens=2000, messages=HI, thinking=thinking) as stream:
        streamed = await stream.get_final_message()
    created = await client.messages.create(model=MODEL, max_tokens=2000, messages=HI, thinking=thinking)
    for message in (streamed, created):
        assert [b.type for b in message.content] == ["thinking", "text"]
        block = message.content[0]
        assert isinstance(block, anthropic.types.ThinkingBlock)
        assert block.thinking == "Two plus two is four."
        assert block.signature == "sig-test-42"
        assert message.content[1].text == "The answer is 4."


async def test_thinking_wire_format(fake: FakeUpstream) -> None:
    fake.enqueue(Script(text="ok", reasoning="a b c"))
    events = await _raw_stream(fake)
    deltas = [d["delta"] for e, d in events if e == "content_block_delta" and d["index"] == 0]
    assert [d["type"] for d in deltas] == ["thinking_delta"] * 3 + ["signature_delta"]
    assert deltas[-1]["signature"] == "sig-fake-0001"
    start = next(d for e, d in events if e == "content_block_start")
    assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}


# ----------------------------------------------------------------------------------- tool use


async def test_tool_use_fragmented(fake: FakeUpstream, client: Any) -> None:
    args = {"command": "echo rawproxy-ok > out.txt", "description": "Write out.txt"}
    fake.enqueue(
        Script(text="I'll run it.", tool_calls=[ToolCall(name="Bash", arguments=args)], arg_fragments=7)
    )
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=HI) as stream:
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == ["text", "tool_use"]
    tool = message.content[1]
    assert tool.id.startswith("toolu_fake")
    assert tool.name == "Bash"
    assert tool.input == args
    assert message.stop_reason == "tool_use"


async def test_two_parallel_tool_uses(fake: FakeUpstream, client: Any) -> None:
    calls = [
        ToolCall(name="Bash", arguments={"command": "echo one"}),
        ToolCall(name="Read", arguments='{"file_path": "/tmp/x"}', id="toolu_given"),
    ]
    fake.enqueue(Script(text="", tool_calls=calls, arg_fragments=3), Script(text="", tool_calls=calls))
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=HI) as stream:
        streamed = await stream.get_final_message()
    created = await client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    for message in (streamed, created):
        assert [(b.type, b.name) for b in message.content] == [("tool_use", "Bash"), ("tool_use", "Read")]
        assert message.content[0].input == {"command": "echo one"}
        assert message.content[1].input == {"file_path": "/tmp/x"}
        assert message.content[1].id == "toolu_given"
        assert message.content[0].id != message.content[1].id
        assert message.stop_reason == "tool_use"


async def test_tool_use_wire_format(fake: FakeUpstream) -> None:
    fake.enqueue(
        Script(text="x", tool_calls=[ToolCall(name="f", arguments={"a": 1, "b": "two"})], arg_fragments=3)
    )
    events = await _raw_stream(fake)
    tool_deltas = [d["delta"] for e, d in events if e == "content_block_delta" and d["index"] == 1]
    assert all(d["type"] == "input_json_delta" for d in tool_deltas)
    assert tool_deltas[0]["partial_json"] == ""
    assert len(tool_deltas) == 4
    assert orjson.loads("".join(d["partial_json"] for d in tool_deltas)) == {"a": 1, "b": "two"}
    start = next(d for e, d in events if e == "content_block_start" and d["index"] == 1)
    assert start["content_block"]["input"] == {}


# ---------------------------------------------------------------------------------- wire format


async def test_stream_follows_the_real_wire_format(fake: FakeUpstream) -> None:
    fake.enqueue(Script(text="one two", prompt_tokens=30, cached_tokens=10))
    events = await _raw_stream(fake, stop_sequences=["END"])
    names = [e for e, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for name, data in events:
        assert data["type"] == name  # the event line matches the data's type
    start = events[0][1]["message"]
    assert list(start) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 20
    assert start["usage"]["cache_read_input_tokens"] == 10
    assert start["usage"]["cache_creation_input_tokens"] == 0
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 10,
        "output_tokens": 2,
    }


async def test_ping_can_be_turned_off(fake: FakeUpstream) -> None:
    fake.enqueue(Script(text="quiet", ping=False))
    assert "ping" not in [e for e, _ in await _raw_stream(fake)]


async def test_stop_sequence_is_echoed(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="up to", finish_reason="stop_sequence"))
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=HI, stop_sequences=["END"])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


async def test_usage_with_cache_read(fake: FakeUpstream, client: Any) -> None:
    script = Script(text="cached", prompt_tokens=1000, cached_tokens=800)
    fake.enqueue(script, script)
    created = await client.messages.create(model=MODEL, max_tokens=10, messages=HI)
    async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
        streamed = await stream.get_final_message()
    for message in (created, streamed):
        assert message.usage.input_tokens == 200
        assert message.usage.cache_read_input_tokens == 800
        assert message.usage.cache_creation_input_tokens == 0


# --------------------------------------------------------------------------------------- errors


async def test_529_is_overloaded(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(status=529))
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert info.value.status_code == 529
    assert isinstance(info.value, getattr(anthropic, "OverloadedError", anthropic.APIStatusError))
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "scripted error"},
    }


async def test_429_with_retry_after(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(status=429, headers=[("retry-after", "7")]))
    with pytest.raises(anthropic.RateLimitError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
            await stream.get_final_message()
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.response.headers["content-type"] == "application/json"
    assert info.value.body["error"]["type"] == "rate_limit_error"


async def test_openai_shaped_error_body_is_rewritten(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(status=400, error_body=b'{"error":{"message":"bad thing","type":"invalid"}}'))
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert info.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad thing"},
    }


async def test_error_after_mid_stream(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="one two three four", error_after=2))
    seen = []
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
            async for text in stream.text_stream:
                seen.append(text)
    assert seen == ["one", " two"]
    assert "Overloaded" in str(info.value)
    assert fake.chunks_written == 2


async def test_error_after_wire_format(fake: FakeUpstream) -> None:
    fake.enqueue(Script(text="one two three", error_after=1))
    events = await _raw_stream(fake)
    assert [e for e, _ in events][-2:] == ["content_block_delta", "error"]
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_cut_after_drops_the_connection(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="one two three four", cut_after=2))
    # the SDK wraps its own httpx flavour, so match the message rather than a class
    with pytest.raises(Exception, match=r"incomplete|closed|connection"):
        async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
            await stream.get_final_message()
    assert fake.chunks_written == 2
    assert fake.streams_completed == 0


async def test_client_leaving_mid_stream_is_counted(fake: FakeUpstream, client: Any) -> None:
    fake.enqueue(Script(text="one two three four five six", token_interval=0.05))
    async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
        async for _ in stream.text_stream:
            break
    await asyncio.wait_for(fake.stream_closed.wait(), 5)
    assert fake.streams_cancelled == 1


async def test_raw_is_sent_as_given(fake: FakeUpstream, client: Any) -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_raw","type":"message",'
        b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"   }\n\n'
    )
    fake.enqueue(Script(raw=raw, chunk_size=7))
    async with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
        message = await stream.get_final_message()
    assert message.id == "msg_raw"


# ------------------------------------------------------------------------------------ keywords


async def test_keywords_in_the_anthropic_dialect(fake: FakeUpstream, client: Any) -> None:
    first = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": "please MOCK:bash now"}]}],
    )
    assert first.stop_reason == "tool_use"
    tool = first.content[-1]
    assert tool.name == "Bash" and tool.input["command"] == "echo rawproxy-ok > out.txt"
    after = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[
            {"role": "user", "content": "please MOCK:bash now"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "done"}]},
        ],
    )
    assert after.content[0].text == "The file out.txt was written."
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "MOCK:429"}]
        )
    assert info.value.body["error"] == {
        "type": "rate_limit_error",
        "message": "Rate limit reached for requests",
    }


# ------------------------------------------------------------------------- count_tokens, models


async def test_count_tokens(fake: FakeUpstream, client: Any) -> None:
    result = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "x" * 400}]
    )
    assert result.input_tokens >= 100
    req = fake.requests[-1]
    assert (req.method, req.path) == ("POST", "/v1/messages/count_tokens")
    assert req.body["messages"][0]["content"] == "x" * 400
    assert fake.streams_started == 0


async def test_models_list_pagination(fake: FakeUpstream, client: Any) -> None:
    page = await client.models.list(limit=1)
    assert [m.id for m in page.data] == ["claude-sonnet-4-6"]
    assert page.has_more is True and page.first_id == page.last_id == "claude-sonnet-4-6"
    ids = [m.id async for m in await client.models.list(limit=1)]
    assert ids == list(fake.models)
    assert fake.requests[-1].query == "limit=1&after_id=claude-opus-4-8"
    assert fake.requests[-1].method == "GET" and fake.requests[-1].path == "/v1/models"
    everything = await client.models.list()
    assert everything.has_more is False and len(everything.data) == 3
    haiku = everything.data[2]
    assert (haiku.type, haiku.display_name) == ("model", "Claude Haiku 4.5")
    assert haiku.created_at.year == 2025
    before = await client.models.list(before_id="claude-haiku-4-5-20251001", limit=1)
    assert [m.id for m in before.data] == ["claude-opus-4-8"] and before.has_more is True


async def test_models_retrieve_and_configured_list() -> None:
    async with FakeUpstream(models=["claude-a-1", "claude-b-2"]) as other:
        c = anthropic.AsyncAnthropic(base_url=other.anthropic_url, api_key="x", max_retries=0)
        assert [m.id async for m in await c.models.list(limit=1)] == ["claude-a-1", "claude-b-2"]
        assert (await c.models.retrieve("claude-b-2")).display_name == "Claude B 2"
        with pytest.raises(anthropic.NotFoundError):
            await c.models.retrieve("gpt-4o")
        await c.close()


async def test_models_without_anthropic_headers_stay_openai(fake: FakeUpstream) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{fake.url}/models", headers={"authorization": "Bearer k"})
    assert r.json()["object"] == "list"
    assert r.json()["data"][0]["id"] == "fake-model"


async def test_openai_side_still_answers(fake: FakeUpstream) -> None:
    fake.enqueue(Script(text="openai ok"))
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{fake.url}/chat/completions", json={"model": "m", "messages": HI})
    assert r.json()["choices"][0]["message"]["content"] == "openai ok"
    assert fake.requests[-1].query == ""


# ---------------------------------------------------------------------------------------- CLI


def test_cli_ready_line_names_both_dialects() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "fake-upstream", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    assert "listening on http://127.0.0.1:" in line
    assert "/v1 (OpenAI Chat Completions) and http://127.0.0.1:" in line
    assert line.rstrip().endswith("(Anthropic Messages)")
