"""Conformance: the official ``openai`` SDK's Responses API (``responses.create``, ``responses.stream()``)
as the client, rawproxy in front of the fake upstream, with each of the two upstream protocols.

``responses.stream()`` is the strict oracle: its accumulator raises when an output item's deltas come
before the item, when an item is not done before ``response.completed``, when ids change. Each test runs
against an OpenAI-compatible upstream (Chat Completions) and an Anthropic one (Messages), and checks what
the SDK parsed and what the upstream received. Issue 8; IDs ``R8-...`` name its lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rawproxy.carrier import is_sealed
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall

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
    """Both upstreams take the schema natively (M26-07): an OpenAI one as ``response_format``, Claude 4.6
    as ``output_config.format``; the answer is the message text, no tool in sight."""
    answer = {"city": "Paris", "temp": 24}
    fake.enqueue(Script(text=json.dumps(answer)))
    proxy = await start(proxy_factory, fake, upstream)
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}}
    fmt = {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}
    result = await run(clients(proxy), mode, model=MODELS[upstream], input="weather?", text={"format": fmt})
    assert json.loads(result.output_text) == answer
    assert [item.type for item in result.output] == ["message"]
    body = upstream_body(fake)
    assert "tools" not in body and "tool_choice" not in body
    if upstream == "openai":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": schema, "strict": True},
        }
    else:
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


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
        assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "high"}
        # the thinking signature, said to be one, for the round trip
        assert reasoning.encrypted_content == "anthropic-signature:sig-fake-0001"
    else:
        assert body["reasoning_effort"] == "high"
        # no Anthropic signature from an OpenAI upstream (none invented): its state, sealed (RS-07)
        assert is_sealed(reasoning.encrypted_content)


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
            "encrypted_content": "anthropic-signature:sig-fake-0001",
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


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_event_sequence_is_numbered_and_complete(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    """The raw events of a stream with text and a call: the lifecycle events around them, every item
    added before its deltas and done before the end, and sequence numbers 0, 1, 2... without a gap."""
    fake.enqueue(
        Script(text="Let me check.", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})])
    )
    proxy = await start(proxy_factory, fake, upstream)
    stream = await clients(proxy).responses.create(
        model=MODELS[upstream], input="weather?", tools=[WEATHER], stream=True
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds[2:-1] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        *(["response.output_text.delta"] * (kinds.count("response.output_text.delta") - 1)),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        *(["response.function_call_arguments.delta"] * kinds.count("response.function_call_arguments.delta")),
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    final = events[-1].response
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output[1].arguments == '{"city":"Oslo"}' or json.loads(final.output[1].arguments) == {
        "city": "Oslo"
    }
    assert events[0].response.id == final.id and events[0].response.status == "in_progress"


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_max_output_tokens_cut_is_incomplete(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    """Cut by max_output_tokens: status incomplete. A stream then ends with ``response.incomplete``, as
    OpenAI's own does (the SDK's helper wants ``response.completed`` for get_final_response(), so the
    events are read as they come)."""
    fake.enqueue(Script(text="A long", finish_reason="length"))
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    if mode == "create":
        result = await sdk.responses.create(model=MODELS[upstream], input="go on", max_output_tokens=16)
    else:
        stream = await sdk.responses.create(
            model=MODELS[upstream], input="go on", max_output_tokens=16, stream=True
        )
        events = [event async for event in stream]
        assert events[-1].type == "response.incomplete"
        result = events[-1].response
    assert result.status == "incomplete"
    assert result.incomplete_details is not None and result.incomplete_details.reason == "max_output_tokens"
    assert result.output_text == "A long"
    body = upstream_body(fake)
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 16


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_usage_reports_cached_input_tokens(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    fake.enqueue(Script(text="ok", prompt_tokens=100, cached_tokens=60))
    proxy = await start(proxy_factory, fake, upstream)
    result = await run(clients(proxy), "stream", model=MODELS[upstream], input="hi")
    assert result.usage.input_tokens_details.cached_tokens == 60
    assert result.usage.input_tokens == 100  # OpenAI's sense: the cached tokens are part of the input
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_developer_messages_are_the_system_prompt(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    """As the Codex CLI sends it: no instructions, the system prompt in developer messages."""
    proxy = await start(proxy_factory, fake, upstream)
    items = [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "You are Codex."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ]
    await clients(proxy).responses.create(model=MODELS[upstream], input=items, store=False)
    body = upstream_body(fake)
    if upstream == "openai":
        assert body["messages"][0]["role"] in ("system", "developer")
        assert text_of(body["messages"][0]["content"]) == "You are Codex."
    else:
        assert text_of(body["system"]) == "You are Codex."
        assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_namespace_tools_are_flattened_and_named_back(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    namespace = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [{"type": "function", "name": "find", "parameters": {"type": "object", "properties": {}}}],
    }
    fake.enqueue(Script(text="", tool_calls=[ToolCall(name="crm__find", arguments={})]))
    proxy = await start(proxy_factory, fake, upstream)
    result = await run(clients(proxy), mode, model=MODELS[upstream], input="find", tools=[namespace, WEATHER])
    call = next(item for item in result.output if item.type == "function_call")
    assert (call.name, call.namespace) == ("find", "crm")
    names = [t.get("name") or t["function"]["name"] for t in upstream_body(fake)["tools"]]
    assert names == ["crm__find", "get_weather"]
    # sent back with its namespace, it is the flattened call again
    history = [
        {"role": "user", "content": "find"},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": "find",
            "namespace": "crm",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "none"},
    ]
    await run(clients(proxy), "create", model=MODELS[upstream], input=history, tools=[namespace])
    sent = upstream_body(fake)["messages"][1]
    name = sent["tool_calls"][0]["function"]["name"] if upstream == "openai" else sent["content"][0]["name"]
    assert name == "crm__find"


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_hosted_web_search(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, caplog: Any, monkeypatch: Any
) -> None:
    """Anthropic's web search server tool for an Anthropic upstream; dropped, with a warning, for an
    OpenAI-compatible one (a 400 would break every Codex request)."""
    from rawproxy.dialects.openai_chat import upstream_request as openai_upstream

    monkeypatch.setattr(openai_upstream, "_DROPPED_SERVER_TOOLS", set())  # said once a process: from now
    proxy = await start(proxy_factory, fake, upstream)
    tools = [WEATHER, {"type": "web_search", "external_web_access": False}]
    with caplog.at_level("WARNING", logger="rawproxy"):
        result = await run(clients(proxy), "create", model=MODELS[upstream], input="news?", tools=tools)
    assert result.status == "completed"
    sent = upstream_body(fake)["tools"]
    if upstream == "anthropic":
        assert [(t.get("type"), t["name"]) for t in sent] == [
            (None, "get_weather"),
            ("web_search_20250305", "web_search"),
        ]
    else:
        assert [t["function"]["name"] for t in sent] == ["get_weather"]
        assert any("dropping the web_search tool" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["file_search", "code_interpreter", "computer_use_preview", "mcp"])
async def test_r8_other_hosted_tools_are_a_clear_400(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, kind: str
) -> None:
    proxy = await start(proxy_factory, fake, "anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        await clients(proxy).responses.create(model=MODELS["anthropic"], input="x", tools=[{"type": kind}])
    assert caught.value.status_code == 400
    assert "not supported" in caught.value.message and kind in caught.value.message
    assert caught.value.body["type"] == "invalid_request_error"
    assert not fake.requests  # refused before anything went upstream


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_upstream_error_before_the_first_byte_keeps_its_status(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    body = (
        b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
        if upstream == "openai"
        else b'{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}'
    )
    fake.enqueue(Script(status=429, error_body=body, headers=[("retry-after", "3")]))
    proxy = await start(proxy_factory, fake, upstream)
    with pytest.raises(openai.RateLimitError) as caught:
        await run(clients(proxy), mode, model=MODELS[upstream], input="hi")
    assert caught.value.status_code == 429
    assert "Rate limit" in caught.value.message
    assert caught.value.response.headers.get("retry-after") == "3"


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_failure_mid_stream_ends_with_response_failed(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    fake.enqueue(Script(text="one two three four", cut_after=2))
    proxy = await start(proxy_factory, fake, upstream)
    stream = await clients(proxy).responses.create(model=MODELS[upstream], input="count", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None and failed.error.message
    assert any(e.type == "response.output_text.delta" for e in events)
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_r8_previous_response_id_continues_a_stored_conversation(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    fake.enqueue(Script(text="Nice to meet you, Ada."), Script(text="Your name is Ada."))
    proxy = await start(proxy_factory, fake, "anthropic", responses_store=8)
    sdk = clients(proxy)
    first = await run(sdk, "stream", model=MODELS["anthropic"], input="My name is Ada.")
    second = await run(
        sdk, "create", model=MODELS["anthropic"], input="What is my name?", previous_response_id=first.id
    )
    assert second.output_text == "Your name is Ada."
    assert second.previous_response_id == first.id
    messages = upstream_body(fake)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert text_of(messages[0]["content"]) == "My name is Ada."
    assert text_of(messages[1]["content"]) == "Nice to meet you, Ada."
    assert text_of(messages[2]["content"]) == "What is my name?"
    third = await run(  # the chain goes on from the second answer
        sdk, "create", model=MODELS["anthropic"], input="And again?", previous_response_id=second.id
    )
    assert third.status == "completed"
    assert len(upstream_body(fake)["messages"]) == 5


@pytest.mark.parametrize("store", [0, 8])
async def test_r8_previous_response_id_unknown_or_store_off_is_a_clear_400(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, store: int
) -> None:
    proxy = await start(proxy_factory, fake, "anthropic", responses_store=store)
    with pytest.raises(openai.BadRequestError) as caught:
        await clients(proxy).responses.create(
            model=MODELS["anthropic"], input="hi", previous_response_id="resp_nope"
        )
    assert "previous_response_id" in caught.value.message
    assert ("--responses-store" in caught.value.message) is (store == 0)
    assert not fake.requests


async def test_r8_store_false_is_not_kept(proxy_factory: Any, fake: FakeUpstream, clients: Any) -> None:
    proxy = await start(proxy_factory, fake, "anthropic", responses_store=8)
    sdk = clients(proxy)
    first = await sdk.responses.create(model=MODELS["anthropic"], input="secret", store=False)
    with pytest.raises(openai.BadRequestError):
        await sdk.responses.create(model=MODELS["anthropic"], input="again", previous_response_id=first.id)


async def test_r8_the_store_is_bounded(proxy_factory: Any, fake: FakeUpstream, clients: Any) -> None:
    proxy = await start(proxy_factory, fake, "anthropic", responses_store=2)
    sdk = clients(proxy)
    ids = [(await sdk.responses.create(model=MODELS["anthropic"], input=f"turn {i}")).id for i in range(3)]
    with pytest.raises(openai.BadRequestError):  # the oldest went when the third came
        await sdk.responses.create(model=MODELS["anthropic"], input="x", previous_response_id=ids[0])
    ok = await sdk.responses.create(model=MODELS["anthropic"], input="x", previous_response_id=ids[2])
    assert ok.status == "completed"


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_r8_a_recorded_codex_request_is_translated(
    proxy_factory: Any, fake: FakeUpstream, upstream: str
) -> None:
    """The Codex CLI's first request, as recorded (developer messages, a namespace, web search, store
    false, encrypted reasoning asked for): accepted and translated for both upstreams, answered as a
    Responses stream."""
    import httpx

    recorded = json.loads((Path(__file__).parent / "fixtures" / "codex-0.171.0-request.json").read_text())
    body = {**recorded["body"], "model": MODELS[upstream]}
    proxy = await start(proxy_factory, fake, upstream)
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            proxy.url + "/v1/responses",
            json=body,
            headers={**recorded["headers"], "authorization": "Bearer x"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.text.rstrip().splitlines()[-1].startswith('data: {"type":"response.completed"')
    sent = upstream_body(fake)
    if upstream == "openai":
        names = [t["function"]["name"] for t in sent["tools"]]
        system = [m for m in sent["messages"] if m["role"] in ("system", "developer")]
        assert system and "Codex CLI" in text_of(system[0]["content"])
    else:
        names = [t["name"] for t in sent["tools"]]
        assert "Codex CLI" in text_of(sent["system"])
        assert "web_search" in names
    assert "exec_command" in names and "multi_agent_v1__close_agent" in names
    assert all(m["role"] != "developer" for m in sent["messages"]) or upstream == "openai"


async def test_r8_an_upstream_that_ignores_stream_true_still_gives_a_whole_event_stream(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    """An Anthropic upstream answering JSON to a streamed request: the Responses stream is rendered from
    the whole answer, thinking signature and all (proxy._response_as_stream)."""
    message = {
        "id": "msg_json",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [
            {"type": "thinking", "thinking": "Quick sum.", "signature": "sig-json-1"},
            {"type": "text", "text": "4."},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 3},
    }
    fake.enqueue(Script(raw=json.dumps(message).encode(), content_type="application/json"))
    proxy = await start(proxy_factory, fake, "anthropic")
    result = await run(
        clients(proxy),
        "stream",
        model=MODELS["anthropic"],
        input="2+2?",
        reasoning={"effort": "low"},
        include=["reasoning.encrypted_content"],
    )
    assert [item.type for item in result.output] == ["reasoning", "message"]
    assert result.output[0].encrypted_content == "anthropic-signature:sig-json-1"
    assert result.output_text == "4."
