"""Conformance: the official ``anthropic`` Python SDK as the client, rawproxy in front of a fake OpenAI upstream.

Every behaviour is checked through what the SDK itself parses (``messages.create`` and ``messages.stream`` with
``get_final_message()``), plus the raw stream events where their order matters, and through what the fake
upstream received. IDs in test names refer to /work/shared/CONFORMANCE.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from typing import Any

import httpx
import pytest

from rawproxy.carrier import is_sealed
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.toolcalls import wire_tool_name
from tests.support.openai_fields import OPENAI_REQUEST_FIELDS

anthropic = pytest.importorskip("anthropic")

pytestmark = pytest.mark.conformance

MODEL = "claude-sonnet-4-6"
MODES = ["create", "stream"]
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
RAW_EVENT_TYPES = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}
ANTHROPIC_ONLY = (
    "cache_control",
    "context_management",
    "output_config",
    "thinking",
    "metadata",
    "anthropic",
    "input_schema",
    "tool_use",
    "tool_result",
)
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
    },
}
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
async def client(anthropic_client: Any) -> Any:
    """The conftest SDK client with a tighter per-request timeout: every test is bounded."""
    return anthropic_client.with_options(timeout=8.0)


async def run(client: Any, mode: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    """One request through the SDK; returns the final Message and (for streams) the raw events."""
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 256)
    if mode == "create":
        return await client.messages.create(**kwargs), []
    events: list[Any] = []
    async with client.messages.stream(**kwargs) as stream:
        async for event in stream:
            if event.type in RAW_EVENT_TYPES:
                events.append(event)
        message = await stream.get_final_message()
    check_event_sequence(events)
    return message, events


def check_event_sequence(events: list[Any]) -> None:
    """A2O-S01/S19: message_start, blocks contiguous from 0 and never interleaved, message_delta, message_stop."""
    types = [e.type for e in events]
    assert types[0] == "message_start", types
    assert types[-1] == "message_stop", types
    assert types[-2] == "message_delta", types
    assert types.count("message_start") == 1 and types.count("message_delta") == 1, types
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        if event.type == "content_block_start":
            assert open_index is None, f"block {event.index} opened while {open_index} is open"
            assert event.index == next_index
            open_index = event.index
            next_index += 1
        elif event.type == "content_block_delta":
            assert event.index == open_index, f"delta for {event.index} while {open_index} is open"
        elif event.type == "content_block_stop":
            assert event.index == open_index
            open_index = None
        else:
            raise AssertionError(f"unexpected {event.type} between message_start and message_delta")
    assert open_index is None
    assert events[-2].delta.stop_reason in {"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"}


def last_body(fake: FakeUpstream) -> dict[str, Any]:
    chat = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert chat, "the upstream received no chat completion request"
    body = chat[-1].body
    assert isinstance(body, dict)
    return body


def block_types(message: Any) -> list[str]:
    return [block.type for block in message.content]


# ------------------------------------------------------------------------------------------ text


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n01_s01_plain_text(client, fake, mode):
    fake.enqueue(Script(text="hello there, world"))
    message, _ = await run(client, mode, messages=[{"role": "user", "content": "hi"}])
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert block_types(message) == ["text"]
    assert message.content[0].text == "hello there, world"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.model == MODEL
    body = last_body(fake)
    assert body["messages"][-1] == {"role": "user", "content": "hi"}
    assert bool(body.get("stream")) is (mode == "stream")
    if mode == "stream":
        assert body.get("stream_options") == {"include_usage": True}  # A2O-R30


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r01_r02_system_prompt(client, fake, mode):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        mode,
        system=[
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in English."},
        ],
        messages=[{"role": "user", "content": "hi"}],
    )
    body = last_body(fake)
    assert body["messages"][0] == {"role": "system", "content": "You are terse.\n\nAnswer in English."}
    assert "cache_control" not in json.dumps(body)


# ------------------------------------------------------------------------------------- tool use


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_s03_one_tool_fragmented_arguments(client, fake, mode):
    arguments = {"command": "ls -la /tmp && echo 'ünïcode ✓'", "description": "List files"}
    fake.enqueue(
        Script(text="Let me look.", tool_calls=[ToolCall(name="Bash", arguments=arguments)], arg_fragments=12)
    )
    message, events = await run(
        client, mode, tools=[BASH_TOOL], messages=[{"role": "user", "content": "list /tmp"}]
    )
    assert block_types(message) == ["text", "tool_use"]
    assert message.content[0].text == "Let me look."
    tool = message.content[1]
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert tool.name == "Bash"
    assert tool.input == arguments
    assert TOOL_ID.match(tool.id)
    assert message.stop_reason == "tool_use"
    if mode == "stream":
        starts = [e for e in events if e.type == "content_block_start"]
        assert starts[1].content_block.type == "tool_use"
        assert starts[1].content_block.name == "Bash"
        assert starts[1].content_block.id == tool.id
        json_deltas = [
            e.delta.partial_json for e in events if e.type == "content_block_delta" and e.index == 1
        ]
        assert len(json_deltas) > 1, "argument fragments should be streamed, not buffered"
        assert json.loads("".join(json_deltas)) == arguments
    body = last_body(fake)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Bash",
                "description": "Run a shell command",
                "parameters": BASH_TOOL["input_schema"],
            },
        }
    ]


@pytest.mark.parametrize("interleave", [False, True], ids=["sequential", "interleaved"])
@pytest.mark.parametrize("mode", MODES)
async def test_a2o_s04_s05_parallel_tool_calls(client, fake, mode, interleave):
    first = {"command": "echo one > a.txt", "description": "Write a.txt"}
    second = {"path": "/etc/hostname"}
    fake.enqueue(
        Script(
            text="",
            tool_calls=[ToolCall(name="Bash", arguments=first), ToolCall(name="Read", arguments=second)],
            arg_fragments=5,
            interleave=interleave,
        )
    )
    message, events = await run(
        client, mode, tools=[BASH_TOOL, READ_TOOL], messages=[{"role": "user", "content": "do both"}]
    )
    assert block_types(message) == ["tool_use", "tool_use"]  # A2O-N02/S11: no empty text block
    assert [b.name for b in message.content] == ["Bash", "Read"]
    assert [b.input for b in message.content] == [first, second]
    assert message.content[0].id != message.content[1].id
    assert all(TOOL_ID.match(b.id) for b in message.content)
    assert message.stop_reason == "tool_use"
    if mode == "stream":
        for index, expected in ((0, first), (1, second)):
            fragments = [
                e.delta.partial_json for e in events if e.type == "content_block_delta" and e.index == index
            ]
            assert json.loads("".join(fragments)) == expected


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r09_r11_r12_tool_results_in_request(client, fake, mode):
    fake.enqueue(Script(text="Both done."))
    message, _ = await run(
        client,
        mode,
        tools=[BASH_TOOL, READ_TOOL],
        messages=[
            {"role": "user", "content": "run ls and read a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Running both."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"path": "a ✓"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    # listed out of call order: the upstream must get them in tool_use order (A2O-R12)
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "content": [{"type": "text", "text": "A"}],
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.txt\nb.txt"},
                    {"type": "text", "text": "continue"},
                ],
            },
        ],
    )
    assert message.content[0].text == "Both done."
    messages = last_body(fake)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    assistant = messages[1]
    assert assistant["content"] == "Running both."
    calls = assistant["tool_calls"]
    assert [c["id"] for c in calls] == ["toolu_01A", "toolu_01B"]
    assert all(c["type"] == "function" for c in calls)
    assert [c["function"]["name"] for c in calls] == ["Bash", "Read"]
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"command": "ls"}, {"path": "a ✓"}]
    assert "✓" in calls[1]["function"]["arguments"]  # ensure_ascii off (A2O-R09)
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_01A", "content": "a.txt\nb.txt"}
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_01B", "content": "A"}
    assert messages[4]["content"] in ("continue", [{"type": "text", "text": "continue"}])


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r10_assistant_tool_use_only(client, fake, mode):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        mode,
        tools=[BASH_TOOL],
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_9", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "done"}],
            },
        ],
    )
    messages = last_body(fake)["messages"]
    assistant = messages[1]
    assert assistant["content"] in (None, "")
    assert assistant["tool_calls"][0]["function"]["arguments"] == "{}"
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_9", "content": "done"}


# ------------------------------------------------------------------------------------- thinking


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n08_s10_thinking_enabled(client, fake, mode, field):
    fake.enqueue(Script(text="The answer is 4.", reasoning="Two plus two is four.", reasoning_field=field))
    message, events = await run(
        client,
        mode,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "2+2?"}],
    )
    assert block_types(message) == ["thinking", "text"]
    thinking = message.content[0]
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == "Two plus two is four."
    # decision 1: never an invented Anthropic signature; the signature is rawproxy's sealed envelope of
    # the upstream's state (the field the reasoning came in), for the next turn (RS-07)
    assert is_sealed(thinking.signature)
    assert message.content[1].text == "The answer is 4."
    if mode == "stream":
        deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
        assert deltas.count("signature_delta") == 1 and deltas.index("signature_delta") > deltas.index(
            "thinking_delta"
        )
    assert "thinking" not in last_body(fake)  # A2O-R27: never forwarded as `thinking`


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n08_s10_thinking_dropped_when_not_requested(client, fake, mode):
    fake.enqueue(Script(text="The answer is 4.", reasoning="Two plus two is four."))
    message, events = await run(client, mode, messages=[{"role": "user", "content": "2+2?"}])
    assert block_types(message) == ["text"]
    assert message.content[0].text == "The answer is 4."
    if mode == "stream":
        assert not [e for e in events if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_s09_thinking_then_tool(client, fake, mode):
    fake.enqueue(
        Script(
            text="",
            reasoning="I should list the files.",
            tool_calls=[ToolCall(name="Bash", arguments={"command": "ls"})],
            arg_fragments=3,
        )
    )
    message, _ = await run(
        client,
        mode,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "list"}],
    )
    assert block_types(message) == ["thinking", "tool_use"]
    assert message.content[1].input == {"command": "ls"}
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r16_thinking_in_history_stripped(client, fake, mode):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        mode,
        messages=[
            {"role": "user", "content": "q1"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "secret thoughts", "signature": "sig=="},
                    {"type": "text", "text": "a1"},
                ],
            },
            {"role": "user", "content": "q2"},
        ],
    )
    body = last_body(fake)
    assert body["messages"][1] == {"role": "assistant", "content": "a1"}
    assert "secret thoughts" not in json.dumps(body)


# --------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r05_r06_images(client, fake, mode):
    fake.enqueue(Script(text="Two images."))
    await run(
        client,
        mode,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    content = last_body(fake)["messages"][-1]["content"]
    assert isinstance(content, list)
    assert {"type": "text", "text": "Compare these"} in content
    images = [p for p in content if p.get("type") == "image_url"]
    assert [p["image_url"]["url"] for p in images] == [
        f"data:image/png;base64,{PNG_B64}",
        "https://example.com/cat.jpg",
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r07_image_inside_tool_result(client, fake, mode):
    fake.enqueue(Script(text="I see the screenshot."))
    await run(
        client,
        mode,
        tools=[BASH_TOOL],
        messages=[
            {"role": "user", "content": "screenshot please"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_shot", "name": "Bash", "input": {"command": "shot"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_shot",
                        "content": [
                            {"type": "text", "text": "screenshot taken"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                            },
                        ],
                    }
                ],
            },
        ],
    )
    messages = last_body(fake)["messages"]
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert len(tool_messages) == 1
    tool = tool_messages[0]
    assert tool["tool_call_id"] == "toolu_shot"
    tool_text = tool["content"] if isinstance(tool["content"], str) else json.dumps(tool["content"])
    assert "screenshot taken" in tool_text
    # The image travels as an image_url part (on the tool message or a following user message), never as text.
    image_urls = [
        part["image_url"]["url"]
        for m in messages[messages.index(tool) :]
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image_url"
    ]
    assert image_urls == [f"data:image/png;base64,{PNG_B64}"]
    texts = [
        m["content"] if isinstance(m["content"], str) else " ".join(p.get("text", "") for p in m["content"])
        for m in messages
        if m.get("content")
    ]
    assert not any(PNG_B64 in t for t in texts), "base64 image data leaked into text"


# ------------------------------------------------------------------------- stop and max_tokens


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r26_n06_stop_sequences(client, fake, mode):
    fake.enqueue(Script(text="one two", finish_reason="stop"))
    message, events = await run(
        client, mode, stop_sequences=["END", "\n\nHuman:"], messages=[{"role": "user", "content": "count"}]
    )
    assert last_body(fake)["stop"] == ["END", "\n\nHuman:"]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    if mode == "stream":
        assert events[-2].delta.stop_sequence is None


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r24_n06_max_tokens_text(client, fake, mode):
    fake.enqueue(Script(text="This answer was cut", finish_reason="length"))
    message, _ = await run(client, mode, max_tokens=32000, messages=[{"role": "user", "content": "essay"}])
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "This answer was cut"
    body = last_body(fake)
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 32000  # never a small global default


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_s20_max_tokens_during_tool_call(client, fake, mode):
    fake.enqueue(
        Script(
            text="",
            tool_calls=[ToolCall(name="Bash", arguments='{"command": "echo hello wor')],
            arg_fragments=6,
            finish_reason="length",
        )
    )
    message, events = await run(client, mode, tools=[BASH_TOOL], messages=[{"role": "user", "content": "go"}])
    assert message.stop_reason == "max_tokens"
    assert block_types(message) == ["tool_use"]
    assert message.content[0].name == "Bash"
    assert isinstance(message.content[0].input, dict)
    if mode == "create":
        # decision 3: truncated JSON is repaired (close the open string and object)
        assert message.content[0].input == {"command": "echo hello wor"}
    else:
        # the open tool block is closed before message_delta (checked by check_event_sequence)
        assert [e.type for e in events].count("content_block_stop") == 1


# ---------------------------------------------------------------------------------------- usage


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n10_s12_usage_with_cached_tokens(client, fake, mode):
    fake.enqueue(Script(text="one two three", prompt_tokens=1000, cached_tokens=800))
    message, events = await run(client, mode, messages=[{"role": "user", "content": "count"}])
    usage = message.usage
    assert usage.input_tokens == 200
    assert usage.cache_read_input_tokens == 800
    assert usage.cache_creation_input_tokens in (0, None)
    assert usage.output_tokens == 3  # the fake reports one completion token per word chunk
    if mode == "stream":
        start_usage = events[0].message.usage
        assert start_usage.output_tokens in (0, 1)
        final = events[-2].usage
        assert final.output_tokens == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n10_usage_without_cache(client, fake, mode):
    fake.enqueue(Script(text="a b", prompt_tokens=57))
    message, _ = await run(client, mode, messages=[{"role": "user", "content": "x"}])
    assert message.usage.input_tokens == 57
    assert message.usage.cache_read_input_tokens in (0, None)
    assert message.usage.output_tokens == 2


# ---------------------------------------------------------------------------------- count_tokens


async def test_a2o_m01_count_tokens(client, fake):
    result = await client.messages.count_tokens(
        model=MODEL,
        system="You are a helpful assistant.",
        tools=[BASH_TOOL],
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[
            {"role": "user", "content": "Hello, how many tokens is this message? " * 10},
            {"role": "assistant", "content": "Quite a few."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and this image?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                ],
            },
        ],
    )
    assert isinstance(result, anthropic.types.MessageTokensCount)
    assert result.input_tokens > 100  # ~400 characters of English plus the tool and system
    assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]  # answered locally


async def test_a2o_m01_count_tokens_script_aware(client, fake):
    async def count(content: Any) -> int:
        result = await client.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": content}]
        )
        return int(result.input_tokens)

    english = await count("word " * 200)  # 1000 characters
    cjk = await count("漢字" * 200)  # 400 CJK characters
    assert 150 <= english <= 500
    assert cjk >= 300
    huge = "A" * 400_000
    image = await count(
        [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": huge}}]
    )
    assert 0 < image < 5000, "images cost a fixed amount, not their base64 length"


async def test_a2o_m01_count_tokens_beta_path(client, fake):
    result = await client.post(
        "/v1/messages/count_tokens?beta=true",
        body={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        cast_to=object,
    )
    assert isinstance(result, dict)
    assert result["input_tokens"] > 0


# ------------------------------------------------------------------------------------ model echo


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n13_r32_model_echo_and_mapping(fake, proxy_factory, mode):
    proxy = await proxy_factory(routes=ModelRoutes(middle="gpt-mid", small="gpt-small"), grace_seconds=1.0)
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=8)
    try:
        fake.enqueue(Script(text="mapped"))
        message, events = await run(client, mode, messages=[{"role": "user", "content": "hi"}])
        assert message.model == MODEL
        if mode == "stream":
            assert events[0].message.model == MODEL
        assert last_body(fake)["model"] == "gpt-mid"
        fake.enqueue(Script(text="small"))
        message, _ = await run(
            client, mode, model="claude-haiku-4-5-20251001", messages=[{"role": "user", "content": "hi"}]
        )
        assert message.model == "claude-haiku-4-5-20251001"
        assert last_body(fake)["model"] == "gpt-small"
        before = len(fake.requests)
        count = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert count.input_tokens > 0
        assert len(fake.requests) == before
    finally:
        await client.close()


# ---------------------------------------------------------------------------------------- errors

ERROR_CASES = [
    # upstream status, SDK class name, client status, Anthropic error type
    (400, "BadRequestError", 400, "invalid_request_error"),
    (401, "AuthenticationError", 401, "authentication_error"),
    (402, "PaymentRequiredError", 402, "billing_error"),
    (403, "PermissionDeniedError", 403, "permission_error"),
    (404, "NotFoundError", 404, "not_found_error"),
    (408, "GatewayTimeoutError", 504, "timeout_error"),
    (413, "ContentTooLargeError", 413, "request_too_large"),
    (422, "BadRequestError", 400, "invalid_request_error"),
    (429, "RateLimitError", 429, "rate_limit_error"),
    (500, "InternalServerError", 500, "api_error"),
    (502, "InternalServerError", 502, "api_error"),
    (503, "OverloadedError", 529, "overloaded_error"),
    (504, "GatewayTimeoutError", 504, "timeout_error"),
]


def sdk_error_class(name: str) -> type[Exception]:
    cls = getattr(anthropic, name, None) or getattr(anthropic._exceptions, name, None)
    if cls is None:  # an older SDK without the specific class: fall back to the generic one
        return anthropic.APIStatusError  # type: ignore[no-any-return]
    return cls  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("upstream", "cls_name", "status", "error_type"), ERROR_CASES, ids=[str(c[0]) for c in ERROR_CASES]
)
async def test_a2o_e01_s18_upstream_error_status(client, fake, mode, upstream, cls_name, status, error_type):
    message_text = f"scripted upstream failure {upstream}"
    fake.enqueue(
        Script(
            status=upstream,
            error_body=json.dumps(
                {"error": {"message": message_text, "type": "upstream_type", "code": "x"}}
            ).encode(),
            headers=[("retry-after", "2")] if upstream == 429 else [],
        )
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        await run(client, mode, messages=[{"role": "user", "content": "hi"}])
    exc = info.value
    assert isinstance(exc, sdk_error_class(cls_name)), f"{type(exc).__name__} (status {exc.status_code})"
    assert exc.status_code == status
    assert isinstance(exc.body, dict)
    assert exc.body.get("type") == "error"
    assert exc.body["error"]["type"] == error_type
    assert message_text in exc.body["error"]["message"]  # A2O-E02: upstream message kept
    assert exc.response.headers["content-type"].startswith("application/json")
    if upstream == 429:
        assert exc.response.headers.get("retry-after") == "2"


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_e02_non_json_upstream_error(client, fake, mode):
    fake.enqueue(Script(status=502, error_body=b"<html><body>502 Bad Gateway</body></html>"))
    with pytest.raises(anthropic.InternalServerError) as info:
        await run(client, mode, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"


async def test_a2o_e03_upstream_unreachable(proxy_factory):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = await proxy_factory(openai_upstream=f"http://127.0.0.1:{port}/v1", grace_seconds=1.0)
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=8)
    try:
        for mode in MODES:
            with pytest.raises(anthropic.InternalServerError) as info:
                await run(client, mode, messages=[{"role": "user", "content": "hi"}])
            assert info.value.status_code == 502
            assert info.value.body["error"]["type"] == "api_error"
    finally:
        await client.close()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "body",
    [
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},  # no max_tokens
        {"model": MODEL, "max_tokens": 10},  # no messages
        {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},  # no model
        {"model": MODEL, "max_tokens": "ten", "messages": [{"role": "user", "content": "hi"}]},
        {"model": MODEL, "max_tokens": 10, "messages": "hi"},
    ],
    ids=["no-max-tokens", "no-messages", "no-model", "max-tokens-string", "messages-string"],
)
async def test_a2o_e04_own_validation(client, fake, body, stream):
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.post("/v1/messages", body={**body, "stream": stream}, cast_to=object)
    assert info.value.status_code == 400
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "\\ud83d"}]}',
        b"[]",
    ],
    ids=["malformed", "lone-surrogate", "not-an-object"],
)
async def test_a2o_e04_r35_malformed_body(proxy, fake, raw):
    async with httpx.AsyncClient(base_url=proxy.url, timeout=8) as http:
        response = await http.post(
            "/v1/messages",
            content=raw,
            headers={"content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------- mid-stream failure


@pytest.mark.parametrize(
    "script",
    [
        Script(text="partial answer that will fail", error_after=1),
        Script(text="partial answer that will be cut off", cut_after=2),
        Script(
            text="",
            tool_calls=[ToolCall(name="Bash", arguments={"command": "echo a long command line"})],
            arg_fragments=8,
            cut_after=3,
        ),
    ],
    ids=["in-band-error", "connection-cut", "cut-inside-tool-call"],
)
async def test_a2o_s13_s14_mid_stream_failure_is_an_error(client, fake, script):
    """Decision 2: the SDK must raise, not hand back a truncated message as a success.

    As Anthropic does on a mid-stream failure, ``event: error`` comes while the block is still open:
    no content_block_stop for it, no message_delta, no message_stop."""
    fake.enqueue(script)
    events: list[Any] = []
    with pytest.raises(anthropic.APIError) as info:
        async with client.messages.stream(
            model=MODEL, max_tokens=100, tools=[BASH_TOOL], messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for event in stream:
                if event.type in RAW_EVENT_TYPES:
                    events.append(event)
            await stream.get_final_message()
    exc = info.value
    assert isinstance(exc, anthropic.APIStatusError)  # what the SDK raises on `event: error`
    assert isinstance(exc.body, dict)
    assert exc.body.get("type") == "error"
    assert exc.body["error"]["type"] in {"api_error", "overloaded_error", "timeout_error"}
    assert exc.body["error"]["message"]
    types = [e.type for e in events]
    assert types[0] == "message_start"  # the stream had started: this is the after-200 path
    assert "message_stop" not in types and "message_delta" not in types
    # the error came while the last block was open: it was started and never stopped
    starts = [e.index for e in events if e.type == "content_block_start"]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert starts and stops == starts[:-1], (types, starts, stops)
    assert types[-1] in ("content_block_start", "content_block_delta"), types
    assert events[-1].index == starts[-1], types


# ---------------------------------------------------------------------------- Claude Code shape


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r28_r29_r31_claude_code_like_request(client, fake, mode):
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="Bash", arguments={"command": "pwd"})], arg_fragments=3)
    )
    user_id = json.dumps(
        {"device_id": "d" * 64, "account_uuid": "", "session_id": "5b1c1f5e-0000-4000-8000-000000000000"}
    )
    message, _ = await run(
        client.with_options(
            default_headers={
                "anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27",
                "x-app": "cli",
            }
        ),
        mode,
        model="claude-opus-4-8",
        max_tokens=32000,
        system=[
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {
                "type": "text",
                "text": "Follow the user's instructions.",
                "cache_control": {"type": "ephemeral", "ttl": "1h", "scope": "global"},
            },
        ],
        messages=[
            {"role": "system", "content": "Working directory: /home/user/project"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                    {"type": "text", "text": "where am I?", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
        tools=[{**BASH_TOOL, "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": user_id},
        extra_body={
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        },
    )
    assert message.stop_reason == "tool_use"
    assert message.content[-1].input == {"command": "pwd"}
    assert message.model == "claude-opus-4-8"
    body = last_body(fake)
    unknown = set(body) - OPENAI_REQUEST_FIELDS
    assert not unknown, f"upstream got non-OpenAI fields {unknown}"
    dumped = json.dumps(body)
    for key in ANTHROPIC_ONLY:
        assert f'"{key}"' not in dumped, f"{key} leaked to the upstream"
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and roles[-1] == "user"
    system_text = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    assert "Claude Code" in system_text and "Working directory: /home/user/project" in system_text
    if "user" in body:
        assert isinstance(body["user"], str) and len(body["user"]) <= 64
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 32000


@pytest.mark.parametrize("path", ["/v1/messages?beta=true", "/v1/messages"])
async def test_a2o_m03_m05_raw_claude_code_headers(proxy, fake, path):
    fake.enqueue(Script(text="ok"))
    async with httpx.AsyncClient(base_url=proxy.url, timeout=8) as http:
        response = await http.post(
            path,
            json={"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
            headers={
                "authorization": "Bearer sk-client",
                "anthropic-version": "2023-06-01",
                "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
                "x-claude-code-session-id": "abc",
                "x-app": "cli",
            },
        )
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "ok"}]
    forwarded = {k.lower() for k in fake.requests[-1].headers}
    assert not forwarded & {"anthropic-version", "anthropic-beta", "x-claude-code-session-id", "x-app"}


# ------------------------------------------------------------------------ more tool translation


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
    ],
    ids=["auto", "any", "none", "tool"],
)
async def test_a2o_r22_tool_choice(client, fake, mode, choice, expected):
    fake.enqueue(Script(text="ok"))
    await run(
        client, mode, tools=[BASH_TOOL], tool_choice=choice, messages=[{"role": "user", "content": "x"}]
    )
    body = last_body(fake)
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


async def test_a2o_r22_r23_disable_parallel_and_no_tools(client, fake):
    fake.enqueue(Script(text="ok"), Script(text="ok"))
    await run(
        client,
        "create",
        tools=[BASH_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "x"}],
    )
    assert last_body(fake)["parallel_tool_calls"] is False
    await run(client, "stream", tool_choice={"type": "auto"}, messages=[{"role": "user", "content": "x"}])
    body = last_body(fake)
    assert "tool_choice" not in body and "tools" not in body


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n03_finish_stop_with_tool_calls(client, fake, mode):
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="Bash", arguments={"command": "ls"})], finish_reason="stop")
    )
    message, _ = await run(client, mode, tools=[BASH_TOOL], messages=[{"role": "user", "content": "x"}])
    assert message.stop_reason == "tool_use"
    assert message.content[-1].input == {"command": "ls"}


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n06_content_filter_is_refusal(client, fake, mode):
    fake.enqueue(Script(text="I can't", finish_reason="content_filter"))
    message, _ = await run(client, mode, messages=[{"role": "user", "content": "x"}])
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_n05_r20_tool_id_and_name_round_trip(client, fake, mode):
    """Ids the SDK would reject and names OpenAI would reject both survive a full tool round trip."""
    long_name = "mcp__filesystem__read_multiple_files_with_a_rather_long_descriptive_name_v2"
    assert len(long_name) > 64
    tool = {**READ_TOOL, "name": long_name}
    fake.enqueue(
        Script(
            text="",
            tool_calls=[
                ToolCall(name=wire_tool_name(long_name), arguments={"path": "x"}, id="functions.Read:0")
            ],
            arg_fragments=3,
        )
    )
    message, _ = await run(client, mode, tools=[tool], messages=[{"role": "user", "content": "read x"}])
    sent_name = last_body(fake)["tools"][0]["function"]["name"]
    assert len(sent_name) <= 64 and re.match(r"^[a-zA-Z0-9_-]+$", sent_name)
    call = message.content[-1]
    assert call.name == long_name  # mapped back for the client
    assert TOOL_ID.match(call.id)
    fake.enqueue(Script(text="done"))
    await run(
        client,
        mode,
        tools=[tool],
        messages=[
            {"role": "user", "content": "read x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "data"}]},
        ],
    )
    messages = last_body(fake)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "functions.Read:0"  # the upstream's own id comes back
    assert messages[1]["tool_calls"][0]["function"]["name"] == sent_name
    assert messages[2] == {"role": "tool", "tool_call_id": "functions.Read:0", "content": "data"}


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r14_r15_history_repair(client, fake, mode):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        mode,
        tools=[BASH_TOOL],
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_lost", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_orphan", "content": "stray"},
                    {"type": "text", "text": "what happened?"},
                ],
            },
        ],
    )
    messages = last_body(fake)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "toolu_lost",
        "content": "no result was recorded for this tool call",
    }
    user_text = json.dumps(messages[3]["content"])
    assert "toolu_orphan" in user_text and "stray" in user_text and "what happened?" in user_text


@pytest.mark.parametrize("mode", MODES)
async def test_a2o_r03_empty_text_blocks_dropped(client, fake, mode):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        mode,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": ""},
                    {"type": "text", "text": "  "},
                    {"type": "text", "text": "hi"},
                ],
            }
        ],
    )
    assert last_body(fake)["messages"][-1]["content"] in ("hi", [{"type": "text", "text": "hi"}])


# ------------------------------------------------------------------------ stream lifecycle


async def test_a2o_s16_keepalive_while_upstream_silent(fake, proxy_factory):
    proxy = await proxy_factory(ping_interval=0.2, grace_seconds=1.0)
    fake.enqueue(Script(text="slow but fine", stall=1.0))
    async with (
        httpx.AsyncClient(base_url=proxy.url, timeout=8) as http,
        http.stream(
            "POST",
            "/v1/messages",
            json={
                "model": MODEL,
                "max_tokens": 50,
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            },
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        ) as response,
    ):
        assert response.status_code == 200
        text = "".join([chunk async for chunk in response.aiter_text()])
    assert text.count("event: ping") >= 2
    assert "event: message_stop" in text
    fake.enqueue(Script(text="slow but fine", stall=0.6))
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=8)
    try:
        message, _ = await run(client, "stream", messages=[{"role": "user", "content": "x"}])
    finally:
        await client.close()
    assert message.content[0].text == "slow but fine"


async def test_a2o_s17_client_disconnect_cancels_upstream(client, fake):
    fake.enqueue(Script(text=" ".join(f"w{i}" for i in range(400)), token_interval=0.02))
    async with client.messages.stream(
        model=MODEL, max_tokens=1000, messages=[{"role": "user", "content": "long"}]
    ) as stream:
        async for event in stream:
            if event.type == "text":
                break
    await asyncio.wait_for(fake.stream_closed.wait(), 5)
    assert fake.streams_cancelled == 1
    fake.enqueue(Script(text="still alive"))  # the proxy keeps serving
    message, _ = await run(client, "stream", messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "still alive"


async def test_a2o_m06_concurrent_streams(client, fake):
    n = 8
    fake.enqueue(*[Script(text=f"answer {i}", ttft=0.5) for i in range(n)])
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(
            *[run(client, "stream", messages=[{"role": "user", "content": "x"}]) for _ in range(n)]
        ),
        10,
    )
    elapsed = time.monotonic() - started
    assert sorted(m.content[0].text for m, _ in results) == sorted(f"answer {i}" for i in range(n))
    assert elapsed < n * 0.5 / 2, f"{n} streams took {elapsed:.2f}s: they were serialised"
