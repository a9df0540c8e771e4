"""Conformance: the official ``openai`` Python SDK as the client, rawproxy in front of a fake Anthropic upstream.

The proxy has no OpenAI upstream configured, so every ``/v1/chat/completions`` request is translated to
Anthropic Messages (the O2A direction). Each behaviour is checked through what the SDK itself parses, in three
ways where they apply: ``chat.completions.create`` (non-stream), ``create(stream=True)`` iterated chunk by
chunk, and the ``chat.completions.stream(...)`` helper with ``get_final_completion()``; and through what the
fake upstream received. IDs in test names refer to /work/shared/CONFORMANCE.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.dialects.openai_chat import JSON_TOOL_NAME
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import DEFAULT_MODELS, FakeUpstream, Script, ToolCall

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

MODEL = "claude-sonnet-4-6"
MODES = ["create", "stream", "helper"]
STREAM_MODES = ["stream", "helper"]
BOUND = 15.0  # seconds: no single SDK exchange may take longer
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def start_proxy(proxy_factory: Any, anthropic_url: str, **overrides: Any) -> Any:
    """A proxy with only the Anthropic upstream: the shared factory's OpenAI defaults are switched off, so
    every request (and the model list) goes to the fake Anthropic upstream."""
    settings: dict[str, Any] = {
        "anthropic_upstream": anthropic_url,
        "anthropic_key": "sk-ant-test",
        "grace_seconds": 1.0,
        "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
        "openai_key": None,
    }
    proxy = await proxy_factory(**{**settings, **overrides})
    assert not proxy.config.openai_enabled
    return proxy


def sdk_client(proxy: Any) -> Any:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0, timeout=10)


@pytest.fixture
async def proxy(proxy_factory: Any, fake: FakeUpstream) -> Any:
    return await start_proxy(proxy_factory, fake.anthropic_url)


@pytest.fixture
async def client(proxy: Any) -> AsyncIterator[Any]:
    sdk = sdk_client(proxy)
    yield sdk
    await sdk.close()


# ---------------------------------------------------------------------------- helpers


@dataclass
class Result:
    """What one request produced, the same shape for every mode."""

    model: str
    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]]  # [{"id", "type", "name", "arguments"}] in index order
    finish_reason: str | None
    usage: Any
    chunks: list[Any] = field(default_factory=list)
    completion: Any = None
    indices: list[int] = field(default_factory=list)  # stream: tool-call indices as they arrived


def _extra(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get(name)
    return value


def from_completion(completion: Any, chunks: list[Any] | None = None) -> Result:
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    message = choice.message
    assert message.role == "assistant"
    calls = [
        {"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls or []
    ]
    return Result(
        model=completion.model,
        content=message.content,
        reasoning=_extra(message, "reasoning_content"),
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        usage=completion.usage,
        chunks=chunks or [],
        completion=completion,
    )


def from_chunks(chunks: list[Any]) -> Result:
    """Accumulate ``chat.completion.chunk``s as a careful client does, checking O2A-S01/S02/S09 on the way."""
    assert chunks, "the stream produced no chunk"
    ids = {c.id for c in chunks}
    assert len(ids) == 1, ids
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.model for c in chunks}) == 1
    assert len({c.created for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    indices: list[int] = []
    finishes = []
    usage = None
    for n, chunk in enumerate(chunks):
        if not chunk.choices:
            assert chunk.usage is not None, "a chunk without choices must carry usage"
            assert n == len(chunks) - 1, "the usage chunk is the last one"
            usage = chunk.usage
            continue
        assert len(chunk.choices) == 1
        choice = chunk.choices[0]
        assert choice.index == 0
        assert not finishes, "a chunk came after the finish chunk"
        delta = choice.delta
        if delta.content:
            content.append(delta.content)
        thought = _extra(delta, "reasoning_content")
        if thought:
            reasoning.append(thought)
        for call in delta.tool_calls or []:
            indices.append(call.index)
            if call.index not in calls:
                # O2A-S02: the first fragment of a call names it
                assert call.id, call
                assert call.type == "function", call
                assert call.function and call.function.name, call
                calls[call.index] = {
                    "id": call.id,
                    "type": "function",
                    "name": call.function.name,
                    "arguments": "",
                }
            else:
                assert not call.id or call.id == calls[call.index]["id"]
            if call.function and call.function.arguments:
                calls[call.index]["arguments"] += call.function.arguments
        if choice.finish_reason is not None:
            finishes.append(choice.finish_reason)
    assert len(finishes) == 1, f"exactly one finish chunk expected, got {finishes}"  # O2A-S09
    assert sorted(calls) == list(range(len(calls))), sorted(calls)
    return Result(
        model=chunks[0].model,
        content="".join(content),
        reasoning="".join(reasoning) or None,
        tool_calls=[calls[i] for i in sorted(calls)],
        finish_reason=finishes[0],
        usage=usage,
        chunks=chunks,
        indices=indices,
    )


async def run(client: Any, mode: str, **kwargs: Any) -> Result:
    """One request through the SDK in the given mode."""
    kwargs.setdefault("model", MODEL)
    async with asyncio.timeout(BOUND):
        if mode == "create":
            return from_completion(await client.chat.completions.create(**kwargs))
        if mode == "stream":
            chunks = [chunk async for chunk in await client.chat.completions.create(stream=True, **kwargs)]
            return from_chunks(chunks)
        assert mode == "helper"
        chunks = []
        async with client.chat.completions.stream(**kwargs) as stream:
            async for event in stream:
                if event.type == "chunk":
                    chunks.append(event.chunk)
            completion = await stream.get_final_completion()
        result = from_completion(completion, chunks)
        streamed = from_chunks(chunks)
        assert streamed.content == (result.content or "")
        assert streamed.finish_reason == result.finish_reason
        assert streamed.tool_calls == result.tool_calls
        result.indices = streamed.indices
        return result


def upstream_bodies(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path.endswith("/v1/messages") and r.method == "POST"]


def last_body(fake: FakeUpstream) -> dict[str, Any]:
    bodies = upstream_bodies(fake)
    assert bodies, "the upstream received no Messages request"
    assert isinstance(bodies[-1], dict)
    return bodies[-1]


def text_of(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    return "".join(b.get("text", "") for b in blocks or [] if b.get("type") == "text")


def user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------- text, model, system


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n01_s01_plain_text(client, fake, mode):
    fake.enqueue(Script(text="Hello there, this is a plain answer."))
    result = await run(client, mode, messages=user("say hello"))
    assert result.content == "Hello there, this is a plain answer."
    assert result.finish_reason == "stop"
    assert result.tool_calls == []
    assert result.model == MODEL
    body = last_body(fake)
    assert body["model"] == MODEL
    assert body["messages"][0]["role"] == "user"
    assert text_of(body["messages"][0]["content"]) == "say hello"
    assert body.get("stream", False) is (mode != "create")
    request = fake.requests[-1]
    assert request.headers.get("x-api-key") == "sk-ant-test"
    assert request.headers.get("anthropic-version") == "2023-06-01"  # decision 7, no preset
    assert "authorization" not in request.headers or "Bearer x" not in request.headers["authorization"]


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n01_r27_model_echo_with_mapping(fake, proxy_factory, mode):
    """The answer names the model the client asked for, not the upstream's."""
    proxy = await start_proxy(
        proxy_factory, fake.anthropic_url, routes=ModelRoutes(model_map={"gpt-4o": "claude-opus-4-8"})
    )
    sdk = sdk_client(proxy)
    try:
        fake.enqueue(Script(text="mapped"))
        result = await run(sdk, mode, model="gpt-4o", messages=user())
    finally:
        await sdk.close()
    assert result.content == "mapped"
    assert result.model == "gpt-4o"
    assert last_body(fake)["model"] == "claude-opus-4-8"


@pytest.mark.parametrize("role", ["system", "developer"])
@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r01_system_content_as_list_of_parts(client, fake, mode, role):
    """A leading system message whose content is a list of text parts (crashed CPP) is hoisted intact."""
    fake.enqueue(Script(text="Bonjour."))
    messages = [
        {
            "role": role,
            "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use French."}],
        },
        {"role": "user", "content": "hello"},
    ]
    result = await run(client, mode, messages=messages)
    assert result.content == "Bonjour."
    body = last_body(fake)
    system = body["system"]
    texts = [system] if isinstance(system, str) else [b["text"] for b in system if b["type"] == "text"]
    assert "Be brief." in "\n".join(texts) and "Use French." in "\n".join(texts)
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])


# ---------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n02_s02_tool_call_fragmented_arguments(client, fake, mode):
    arguments = {"city": "Paris", "unit": "celsius", "note": "çà et là ☀"}
    fake.enqueue(
        Script(
            text="",
            tool_calls=[ToolCall(id="toolu_01weather", name="get_weather", arguments=arguments)],
            arg_fragments=6,
        )
    )
    result = await run(client, mode, messages=user("weather in Paris?"), tools=[WEATHER_TOOL])
    assert result.finish_reason == "tool_calls"
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call["id"] == "toolu_01weather"
    assert call["type"] == "function"
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == arguments
    assert result.content in (None, "")  # O2A-N02: no text -> null (or empty while streaming)
    if mode == "create":
        assert result.content is None
    else:
        fragments = [
            c.choices[0].delta.tool_calls[0].function.arguments
            for c in result.chunks
            if c.choices and c.choices[0].delta.tool_calls and c.choices[0].delta.tool_calls[0].function
        ]
        assert len([f for f in fragments if f]) > 1, "argument fragments must be forwarded as they come"
    tools = last_body(fake)["tools"]
    assert tools[0]["name"] == "get_weather"
    assert tools[0]["description"] == "Weather for a city"
    assert tools[0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert "function" not in tools[0] and "type" not in tools[0]


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_s02_parallel_tool_calls(client, fake, mode):
    fake.enqueue(
        Script(
            text="Let me look both up.",
            tool_calls=[
                ToolCall(id="toolu_01a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="toolu_01b", name="get_time", arguments={"city": "Tokyo"}),
            ],
            arg_fragments=3,
        )
    )
    result = await run(
        client, mode, messages=user("weather in Paris, time in Tokyo"), tools=[WEATHER_TOOL, TIME_TOOL]
    )
    assert result.finish_reason == "tool_calls"
    assert result.content == "Let me look both up."
    assert [(c["id"], c["name"]) for c in result.tool_calls] == [
        ("toolu_01a", "get_weather"),
        ("toolu_01b", "get_time"),
    ]
    assert [json.loads(c["arguments"]) for c in result.tool_calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    if mode != "create":
        # index counts tool blocks only, although a text block came first
        assert set(result.indices) == {0, 1}
        assert result.indices == sorted(result.indices)


@pytest.mark.parametrize("assistant_content", [None, ""], ids=["null", "empty"])
@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r06_r11_r13_tool_result_round_trip(client, fake, mode, assistant_content):
    fake.enqueue(Script(text="Paris is sunny and it is 9pm in Tokyo."))
    messages = [
        {"role": "user", "content": "weather in Paris, time in Tokyo"},
        {
            "role": "assistant",
            "content": assistant_content,
            "tool_calls": [
                {
                    "id": "toolu_01a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_01b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city": "Tokyo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01a", "content": "sunny, 21C"},
        {"role": "tool", "tool_call_id": "toolu_01b", "content": "21:00"},
        {"role": "user", "content": "summarise please"},
    ]
    result = await run(client, mode, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert result.content == "Paris is sunny and it is 9pm in Tokyo."
    body = last_body(fake)
    turns = body["messages"]
    assert [m["role"] for m in turns] == ["user", "assistant", "user"]
    assistant = turns[1]["content"]
    assert [b["type"] for b in assistant] == ["tool_use", "tool_use"]  # content None: no empty text block
    assert [(b["id"], b["name"], b["input"]) for b in assistant] == [
        ("toolu_01a", "get_weather", {"city": "Paris"}),
        ("toolu_01b", "get_time", {"city": "Tokyo"}),
    ]
    last = turns[2]["content"]
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in last[:2]] == ["toolu_01a", "toolu_01b"]
    assert [text_of(b.get("content")) for b in last[:2]] == ["sunny, 21C", "21:00"]
    assert not any(b.get("is_error") for b in last[:2])
    assert last[2]["text"] == "summarise please"


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r17_tool_choice_none(client, fake, mode):
    fake.enqueue(Script(text="no tools used"))
    result = await run(client, mode, messages=user(), tools=[WEATHER_TOOL], tool_choice="none")
    assert result.content == "no tools used"
    body = last_body(fake)
    assert body["tool_choice"] == {"type": "none"}
    assert [t["name"] for t in body["tools"]] == ["get_weather"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
    ids=["auto", "required", "named"],
)
async def test_o2a_r17_tool_choice_other_forms(client, fake, choice, expected):
    fake.enqueue(Script(text="ok"))
    await run(client, "create", messages=user(), tools=[WEATHER_TOOL], tool_choice=choice)
    assert last_body(fake)["tool_choice"] == expected


# ---------------------------------------------------------------------------- images


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r07_r08_images(client, fake, mode):
    fake.enqueue(Script(text="Two images."))
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    result = await run(client, mode, messages=messages)
    assert result.content == "Two images."
    content = last_body(fake)["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "image", "image"]
    assert content[0]["text"] == "What is in these?"
    assert content[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}
    assert content[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}
    assert "detail" not in json.dumps(content)


async def test_o2a_r07_unsupported_image_type_is_a_400(client, fake):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}],
        }
    ]
    with pytest.raises(openai.BadRequestError) as info:
        await run(client, "create", messages=messages)
    assert "image/tiff" in str(info.value)
    assert not upstream_bodies(fake)


# ---------------------------------------------------------------------------- reasoning


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r20_n03_s05_reasoning_content(client, fake, mode):
    fake.enqueue(Script(text="The answer is 4.", reasoning="Two plus two is four.", signature="sig-xyz"))
    result = await run(client, mode, messages=user("2+2?"), reasoning_effort="low", temperature=0.3)
    assert result.content == "The answer is 4."
    assert result.reasoning == "Two plus two is four."
    assert result.finish_reason == "stop"
    body = last_body(fake)
    # M26-01: Claude 4.6 has adaptive thinking, at the asked effort (budgets: test_o2a_request R20)
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}
    assert "temperature" not in body  # O2A-R20: Anthropic rejects temperature with thinking on
    if mode != "create":
        thoughts = [c for c in result.chunks if c.choices and _extra(c.choices[0].delta, "reasoning_content")]
        assert len(thoughts) > 1  # streamed as it came
        assert "sig-xyz" not in json.dumps([c.model_dump() for c in result.chunks])


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n03_no_reasoning_without_effort(client, fake, mode):
    fake.enqueue(Script(text="plain"))
    result = await run(client, mode, messages=user())
    assert result.reasoning is None
    assert "thinking" not in last_body(fake)


# ---------------------------------------------------------------------------- finish reasons, usage


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n04_length(client, fake, mode):
    fake.enqueue(Script(text="This answer is cut", finish_reason="max_tokens"))
    if mode == "helper":
        # the SDK's stream helper refuses a truncated completion with its own error, carrying it
        with pytest.raises(openai.LengthFinishReasonError) as info:
            await run(client, mode, messages=user(), max_tokens=5)
        completion = info.value.completion
        assert completion.choices[0].finish_reason == "length"
        assert completion.choices[0].message.content == "This answer is cut"
        return
    result = await run(client, mode, messages=user(), max_tokens=5)
    assert result.finish_reason == "length"
    assert result.content == "This answer is cut"
    assert last_body(fake)["max_tokens"] == 5


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_n05_s08_r26_usage_with_include_usage(client, fake, mode):
    fake.enqueue(Script(text="counted", prompt_tokens=120, cached_tokens=100))
    kwargs: dict[str, Any] = {"messages": user()}
    if mode != "create":
        kwargs["stream_options"] = {"include_usage": True}
    result = await run(client, mode, **kwargs)
    usage = result.usage
    assert usage is not None
    assert usage.prompt_tokens == 120  # input 20 + cache read 100
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens >= 1
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if mode != "create":
        last = result.chunks[-1]
        assert last.choices == []
        assert last.usage is not None and last.usage.prompt_tokens == 120


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_o2a_r26_no_usage_chunk_without_include_usage(client, fake, mode):
    fake.enqueue(Script(text="not counted", prompt_tokens=50, cached_tokens=10))
    result = await run(client, mode, messages=user())
    assert all(c.choices for c in result.chunks), "a usage chunk came without include_usage"
    assert all(c.usage is None for c in result.chunks)
    assert result.chunks[-1].choices[0].finish_reason == "stop"


async def test_o2a_s01_raw_stream_wire_shape(proxy, fake):
    """The bytes an OpenAI client sees: chunks, a finish chunk, the usage chunk, ``data: [DONE]``."""
    fake.enqueue(Script(text="wire check", prompt_tokens=9))
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={
                "model": MODEL,
                "messages": user(),
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            headers={"authorization": "Bearer x"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.strip() and not f.startswith(":")]
    assert frames[-1] == "data: [DONE]"
    payloads = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["prompt_tokens"] == 9
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads[:-1]) == "wire check"


# ---------------------------------------------------------------------------- response_format


def _city_model() -> Any:
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):
        name: str
        population: int

    return City


CITY_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-6", "claude-3-7-sonnet-latest"], ids=["native-M26-07", "forced-tool-O2A-R23"]
)
async def test_o2a_r23_response_format_json_schema(client, fake, mode, model):
    """A model with structured outputs gets ``output_config.format`` and answers text (M26-07); one
    without gets the forced answer tool, whose input is shown as the content (O2A-R23)."""
    answer = {"name": "Paris", "population": 2102650}
    native = model == "claude-sonnet-4-6"
    if native:
        fake.enqueue(Script(text=json.dumps(answer)))
    else:
        fake.enqueue(
            Script(
                text="",
                tool_calls=[ToolCall(id="toolu_01json", name=JSON_TOOL_NAME, arguments=answer)],
                arg_fragments=4,
            )
        )
    city = _city_model()
    messages = user("Describe Paris as JSON")
    async with asyncio.timeout(BOUND):
        if mode == "create":  # the SDK's parse(): pydantic model -> strict json_schema
            completion = await client.chat.completions.parse(
                model=model, messages=messages, response_format=city
            )
            result = from_completion(completion)
            parsed = completion.choices[0].message.parsed
        elif mode == "stream":  # a raw json_schema dict
            result = await run(
                client,
                mode,
                model=model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
                },
            )
            parsed = city.model_validate_json(result.content)
        else:  # the stream helper with a pydantic model
            result = await run(client, mode, model=model, messages=messages, response_format=city)
            parsed = result.completion.choices[0].message.parsed
    assert json.loads(result.content) == answer
    assert result.finish_reason == "stop"
    assert result.tool_calls == []  # the forced tool is the answer, not a tool call
    assert parsed is not None and parsed.name == "Paris" and parsed.population == 2102650
    body = last_body(fake)
    if native:
        assert "tools" not in body and "tool_choice" not in body
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert body["output_config"]["format"]["schema"]["properties"].keys() == {"name", "population"}
        return
    assert "output_config" not in body
    assert body["tool_choice"]["type"] == "tool"
    forced = [t for t in body["tools"] if t["name"] == body["tool_choice"]["name"]]
    assert len(forced) == 1
    assert forced[0]["input_schema"]["properties"].keys() == {"name", "population"}


@pytest.mark.parametrize("mode", MODES)
async def test_o2a_r23_response_format_json_object(client, fake, mode):
    fake.enqueue(Script(text='{"ok": true}'))
    result = await run(client, mode, messages=user("give me JSON"), response_format={"type": "json_object"})
    assert json.loads(result.content) == {"ok": True}
    assert result.finish_reason == "stop"
    body = last_body(fake)
    system = body.get("system")
    assert system, "json_object must reach the upstream as a system instruction"
    assert "json" in (system if isinstance(system, str) else text_of(system)).lower()
    assert "response_format" not in body


# ---------------------------------------------------------------------------- max_tokens and parameters


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 16384),
        ({"max_tokens": 77}, 77),
        ({"max_completion_tokens": 300}, 300),
        ({"max_tokens": 50, "max_completion_tokens": 300}, 300),
    ],
    ids=["default", "max_tokens", "max_completion_tokens", "completion-wins"],
)
@pytest.mark.parametrize("mode", ["create", "stream"])
async def test_o2a_r19_max_tokens(client, fake, mode, kwargs, expected):
    fake.enqueue(Script(text="ok"))
    await run(client, mode, messages=user(), **kwargs)
    assert last_body(fake)["max_tokens"] == expected


async def test_o2a_r22_r25_dropped_and_clamped_parameters(client, fake):
    fake.enqueue(Script(text="ok"))
    await run(
        client,
        "create",
        messages=user(),
        temperature=1.7,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        seed=7,
        logit_bias={"50256": -100},
        store=False,
        stop=["END", " "],
    )
    body = last_body(fake)
    assert body["temperature"] == 1.0
    # Claude 4.6 takes temperature or top_p, not both (the strict fake refuses the pair, M26-03)
    assert "top_p" not in body
    assert body["stop_sequences"] == ["END"]
    for key in ("presence_penalty", "frequency_penalty", "seed", "logit_bias", "store", "n", "stop"):
        assert key not in body, key


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"n": 2}, "n"), ({"logprobs": True}, "logprobs")],
    ids=["n2", "logprobs"],
)
async def test_o2a_r22_unsupported_is_a_400_that_says_why(client, fake, stream, kwargs, word):
    with pytest.raises(openai.BadRequestError) as info:
        async with asyncio.timeout(BOUND):
            await client.chat.completions.create(model=MODEL, messages=user(), stream=stream, **kwargs)
    exc = info.value
    assert exc.status_code == 400
    assert isinstance(exc.body, dict)
    assert exc.body["type"] == "invalid_request_error"
    assert word in exc.body["message"] and "Anthropic" in exc.body["message"]
    assert not upstream_bodies(fake)


# ---------------------------------------------------------------------------- errors


ERROR_CASES = [
    # upstream Anthropic status, SDK class, status the client sees, OpenAI error type
    (400, "BadRequestError", 400, "invalid_request_error"),
    (401, "AuthenticationError", 401, "authentication_error"),
    (403, "PermissionDeniedError", 403, "permission_error"),
    (404, "NotFoundError", 404, "not_found_error"),
    (429, "RateLimitError", 429, "rate_limit_error"),
    (500, "InternalServerError", 500, "api_error"),
    (529, "InternalServerError", 503, "overloaded_error"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("upstream", "cls_name", "status", "error_type"), ERROR_CASES, ids=[str(c[0]) for c in ERROR_CASES]
)
async def test_o2a_e01_e02_upstream_error_status(client, fake, mode, upstream, cls_name, status, error_type):
    """O2A-E01 and decision 6; for streams an error before the first byte keeps its real status (O2A-E02)."""
    message = f"scripted anthropic failure {upstream}"
    fake.enqueue(
        Script(
            status=upstream,
            error_body=json.dumps(
                {"type": "error", "error": {"type": error_type, "message": message}}
            ).encode(),
            headers=[("retry-after", "2")] if upstream == 429 else [],
        )
    )
    with pytest.raises(openai.APIStatusError) as info:
        await run(client, mode, messages=user())
    exc = info.value
    assert isinstance(exc, getattr(openai, cls_name)), f"{type(exc).__name__} (status {exc.status_code})"
    assert exc.status_code == status
    assert exc.response.headers["content-type"].startswith("application/json")
    assert isinstance(exc.body, dict)  # the SDK hands over the inner "error" object
    assert exc.body["type"] == error_type
    assert message in exc.body["message"]
    assert "param" in exc.body and "code" in exc.body
    if upstream == 429:
        assert exc.response.headers.get("retry-after") == "2"
        assert exc.body["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    "script",
    [
        Script(text="partial answer that will fail", error_after=1),
        Script(text="partial answer that will be cut off", cut_after=2),
        Script(
            text="",
            tool_calls=[ToolCall(name="get_weather", arguments={"city": "a long city name here"})],
            arg_fragments=8,
            cut_after=3,
        ),
    ],
    ids=["in-band-error", "connection-cut", "cut-inside-tool-call"],
)
@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_o2a_s07_s10_mid_stream_failure_is_an_error(client, fake, mode, script):
    """Decision 2: after the 200 the SDK must raise, not end as if the answer were complete."""
    fake.enqueue(script)
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        async with asyncio.timeout(BOUND):
            if mode == "stream":
                stream = await client.chat.completions.create(
                    model=MODEL, messages=user(), tools=[WEATHER_TOOL], stream=True
                )
                async for chunk in stream:
                    chunks.append(chunk)
            else:
                async with client.chat.completions.stream(
                    model=MODEL, messages=user(), tools=[WEATHER_TOOL]
                ) as helper:
                    async for event in helper:
                        if event.type == "chunk":
                            chunks.append(event.chunk)
                    await helper.get_final_completion()
    exc = info.value
    assert not isinstance(exc, openai.APIStatusError)  # the stream had started with a 200
    assert isinstance(exc.body, dict)
    assert exc.body.get("type") in {"overloaded_error", "api_error", "timeout_error"}
    assert exc.body.get("message")
    if script.error_after is not None:
        assert exc.body["type"] == "overloaded_error"
    assert chunks, "the partial answer before the failure was delivered"
    assert all(c.choices and c.choices[0].finish_reason is None for c in chunks), "no finish before a failure"


@pytest.mark.parametrize(
    "script", [Script(text="one two three", error_after=1), Script(text="one two three", cut_after=2)]
)
async def test_o2a_s07_s10_mid_stream_failure_wire_shape(proxy, fake, script):
    """``data: {"error": {...}}`` then ``data: [DONE]`` (decision 2), never a finish chunk."""
    fake.enqueue(script)
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": user(), "stream": True},
            headers={"authorization": "Bearer x"},
        )
    assert response.status_code == 200
    frames = [f for f in response.text.split("\n\n") if f.strip() and not f.startswith(":")]
    assert frames[-1] == "data: [DONE]"
    error = json.loads(frames[-2].removeprefix("data: "))
    assert set(error) == {"error"}
    assert error["error"]["message"]
    assert error["error"]["type"] in {"overloaded_error", "api_error"}
    for frame in frames[:-2]:
        chunk = json.loads(frame.removeprefix("data: "))
        assert chunk["choices"][0]["finish_reason"] is None


# ---------------------------------------------------------------------------- /v1/models


async def test_o2a_m01_models_list(client, fake):
    async with asyncio.timeout(BOUND):
        page = await client.models.list()
        models = [m async for m in page]
    ids = [m.id for m in models]
    assert set(DEFAULT_MODELS) <= set(ids)
    assert all(m.object == "model" for m in models)
    assert all(isinstance(m.created, int) and isinstance(m.owned_by, str) for m in models)
    listing = [r for r in fake.requests if r.method == "GET" and "/v1/models" in r.path]
    assert listing, "the proxy did not ask the Anthropic upstream for its models"
    assert listing[0].headers.get("x-api-key") == "sk-ant-test"
    assert listing[0].headers.get("anthropic-version") == "2023-06-01"


async def test_o2a_m01_models_list_paginated(proxy_factory):
    names = ["claude-a-1", "claude-b-2", "claude-c-3", "claude-d-4", "claude-e-5"]
    async with FakeUpstream(
        models=names, models_page_size=2
    ) as upstream:  # two at a time, whatever the limit
        proxy = await start_proxy(proxy_factory, upstream.anthropic_url)
        sdk = sdk_client(proxy)
        try:
            async with asyncio.timeout(BOUND):
                ids = [m.id async for m in await sdk.models.list()]
        finally:
            await sdk.close()
        pages = [r for r in upstream.requests if r.method == "GET" and "/v1/models" in r.path]
    assert ids == names
    assert len(pages) == 3
    assert "after_id=claude-b-2" in pages[1].query and "after_id=claude-d-4" in pages[2].query
