"""Conformance: the official ``openai`` SDK's Responses API (``responses.create``, ``responses.stream()``)
as the client, rawproxy in front of the fake upstream, with each of the two upstream protocols.

``responses.stream()`` is the strict oracle: its accumulator raises when an output item's deltas come
before the item, when an item is not done before ``response.completed``, when ids change. Each test runs
against an OpenAI-compatible upstream (Chat Completions) and an Anthropic one (Messages), and checks what
the SDK parsed and what the upstream received. Issue 8; IDs ``R8-...`` name its lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.fake_upstream import FakeUpstream, Script, ToolCall

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

UPSTREAMS = ["openai", "anthropic"]
MODELS = {"openai": "gpt-5", "anthropic": "claude-sonnet-4-6"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def start(proxy_factory: Any, fake: FakeUpstream, upstream: str, **overrides: Any) -> Any:
    """A proxy whose only upstream speaks ``upstream``'s protocol."""
    if upstream == "openai":
        settings: dict[str, Any] = {"openai_upstream": fake.url, "openai_key": "sk-upstream"}
    else:
        settings = {
            "anthropic_upstream": fake.anthropic_url,
            "anthropic_key": "sk-ant-test",
            "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
            "openai_key": None,
        }
    return await proxy_factory(grace_seconds=1.0, **{**settings, **overrides})


@pytest.fixture
async def clients() -> Any:
    """Make SDK clients for proxies; all closed at the end of the test."""
    made: list[Any] = []

    def make(proxy: Any) -> Any:
        sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        await sdk.close()


async def run(sdk: Any, mode: str, **params: Any) -> Any:
    """One exchange as the SDK's user would make it: the whole answer, or the stream helper's final
    response (every event checked by its accumulator on the way)."""
    if mode == "create":
        return await sdk.responses.create(**params)
    async with sdk.responses.stream(**params) as stream:
        async for _ in stream:
            pass
        return await stream.get_final_response()


def upstream_body(fake: FakeUpstream) -> dict[str, Any]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_text_answer(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    fake.enqueue(Script(text="Hello there.", prompt_tokens=21))
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    answer = await run(sdk, mode, model=MODELS[upstream], input="say hello", instructions="Be brief.")
    assert answer.status == "completed"
    assert answer.output_text == "Hello there."
    assert answer.model == MODELS[upstream]
    assert answer.id.startswith("resp_")
    assert [item.type for item in answer.output] == ["message"]
    assert answer.usage is not None and answer.usage.input_tokens == 21
    assert answer.usage.output_tokens > 0
    body = upstream_body(fake)
    if upstream == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert text_of(body["messages"][-1]["content"]) == "say hello"
    else:
        assert text_of(body["system"]) == "Be brief."
        assert text_of(body["messages"][0]["content"]) == "say hello"
    assert body.get("stream", False) is (mode == "stream")


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_function_call_and_its_output(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")]),
        Script(text="It is sunny in Paris."),
    )
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    first = await run(sdk, mode, model=MODELS[upstream], input="weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    body = upstream_body(fake)
    tools = body["tools"]
    assert [t.get("name") or t["function"]["name"] for t in tools] == ["get_weather"]
    history = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 C"},
    ]
    second = await run(sdk, mode, model=MODELS[upstream], input=history, tools=[WEATHER])
    assert second.output_text == "It is sunny in Paris."
    body = upstream_body(fake)
    if upstream == "openai":
        assert body["messages"][1]["tool_calls"][0]["id"] == call.call_id
        assert body["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 24 C"}
    else:
        assert body["messages"][1]["content"][0]["type"] == "tool_use"
        result = body["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_parallel_calls_and_their_outputs_in_one_turn(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_a"),
        ToolCall(name="get_weather", arguments={"city": "Rome"}, id="call_b"),
    ]
    fake.enqueue(Script(text="", tool_calls=calls, arg_fragments=3), Script(text="Both sunny."))
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    first = await run(sdk, mode, model=MODELS[upstream], input="weather in Paris and Rome?", tools=[WEATHER])
    made = [item for item in first.output if item.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in made] == ["Paris", "Rome"]
    assert len({c.call_id for c in made}) == 2 and len({c.id for c in made}) == 2
    history: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris and Rome?"}]
    history += [
        {"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
        for c in made
    ]
    history += [{"type": "function_call_output", "call_id": c.call_id, "output": "sunny"} for c in made]
    second = await run(sdk, mode, model=MODELS[upstream], input=history, tools=[WEATHER])
    assert second.output_text == "Both sunny."
    body = upstream_body(fake)
    if upstream == "openai":
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool"]
        assert len(body["messages"][1]["tool_calls"]) == 2
    else:
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "tool_result"]


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_parallel_tool_calls_false_reaches_the_upstream(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    proxy = await start(proxy_factory, fake, upstream)
    await clients(proxy).responses.create(
        model=MODELS[upstream], input="hi", tools=[WEATHER], tool_choice="required", parallel_tool_calls=False
    )
    body = upstream_body(fake)
    if upstream == "openai":
        assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    else:
        assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_image_input(proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str) -> None:
    proxy = await start(proxy_factory, fake, upstream)
    content = [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"},
    ]
    await clients(proxy).responses.create(
        model=MODELS[upstream], input=[{"role": "user", "content": content}]
    )
    parts = upstream_body(fake)["messages"][-1]["content"]
    if upstream == "openai":
        assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].endswith(PNG_B64)
    else:
        assert parts[1]["type"] == "image"
        assert parts[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_json_schema_output(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    answer = {"city": "Paris", "temp": 24}
    fake.enqueue(Script(text="", tool_calls=[ToolCall(name="json_answer", arguments=answer)]))
    proxy = await start(proxy_factory, fake, upstream)
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}}
    fmt = {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}
    result = await run(clients(proxy), mode, model=MODELS[upstream], input="weather?", text={"format": fmt})
    assert json.loads(result.output_text) == answer
    assert [item.type for item in result.output] == ["message"]
    body = upstream_body(fake)
    names = [t.get("name") or t["function"]["name"] for t in body["tools"]]
    assert names == ["json_answer"]


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_reasoning_becomes_a_reasoning_item_with_its_summary(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    fake.enqueue(Script(text="42.", reasoning="Six times seven."))
    # the OpenAI profile sends reasoning_effort (a generic upstream gets none)
    extra = {"upstream_profile": "openai"} if upstream == "openai" else {}
    proxy = await start(proxy_factory, fake, upstream, **extra)
    result = await run(
        clients(proxy),
        mode,
        model=MODELS[upstream],
        input="6*7?",
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    assert [item.type for item in result.output] == ["reasoning", "message"]
    reasoning = result.output[0]
    assert [s.text for s in reasoning.summary] == ["Six times seven."]
    assert result.output_text == "42."
    assert result.usage.output_tokens_details.reasoning_tokens > 0
    body = upstream_body(fake)
    if upstream == "anthropic":
        assert body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"] >= 1024
        assert reasoning.encrypted_content == "sig-fake-0001"  # the thinking signature, for the round trip
    else:
        assert body["reasoning_effort"] == "high"
        assert reasoning.encrypted_content is None  # no signature from an OpenAI upstream: none invented


async def test_r8_reasoning_round_trip_keeps_the_thinking_signature(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    """A reasoning item sent back with its encrypted_content is the signed thinking block again."""
    proxy = await start(proxy_factory, fake, "anthropic")
    history = [
        {"role": "user", "content": "6*7?"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Six times seven."}],
            "encrypted_content": "sig-fake-0001",
        },
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"x"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]
    await clients(proxy).responses.create(
        model=MODELS["anthropic"], input=history, tools=[WEATHER], reasoning={"effort": "low"}
    )
    assistant = upstream_body(fake)["messages"][1]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "Six times seven.",
        "signature": "sig-fake-0001",
    }
    assert assistant["content"][1]["type"] == "tool_use"
