"""Conformance: the models of 2026 as a table (issue 15; CONFORMANCE.md M26-01..07).

Model family x what the client asks x client dialect, each cell one request made with the official SDK
(``openai`` for Chat Completions and the Responses API, ``anthropic`` for Messages) through rawproxy on a
real socket to the strict fake upstream, which refuses what Anthropic's API refuses for that model in the
API's own words (``rawproxy/testing/fake_upstream/anthropic_rules.py``) and writes thinking out only when
the API would (``display``). Each cell is run whole and streamed.

- Chat Completions and Responses: every cell is answered 200; the reasoning is shown where it was asked
  and only there; the upstream request is checked against the registry (adaptive or a budget, the
  display, the effort on the family's scale, the sampling parameters it keeps, the schema).
- Messages: passthrough, untouched: the upstream gets exactly what the client sent. A native request
  the API itself refuses for that model (``disabled`` thinking on Fable, a temperature on Opus 4.7 and
  later) is answered with the API's 400, relayed word for word; every other cell is 200.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.models import ModelFamily, anthropic_effort, family_of
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from rawproxy.testing.fake_upstream.anthropic_rules import refusal

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

pytestmark = pytest.mark.conformance

FAMILIES = {
    "legacy-4.5": "claude-sonnet-4-5",
    "haiku-4.5": "claude-haiku-4-5",
    "4.6": "claude-sonnet-4-6",
    "opus-4.7": "claude-opus-4-7",
    "opus-4.8": "claude-opus-4-8",
    "sonnet-5": "claude-sonnet-5",
    "fable": "claude-fable-5",
}
ASKS = ["no-reasoning", "low", "high", "none", "sampling", "json", "json+reasoning"]
EFFORT = {"low": "low", "high": "high", "json+reasoning": "high"}  # the asks that ask for reasoning
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
ANSWER = {"city": "Paris"}
THOUGHT = "Weighing the options."
SIGNATURE = "sig-table-0001"
BUDGETS = {"low": 1024, "high": 4096}


async def start(proxy_factory: Any, fake: FakeUpstream) -> Any:
    return await proxy_factory(
        anthropic_upstream=fake.anthropic_url,
        anthropic_key="sk-ant-test",
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        grace_seconds=1.0,
    )


def script(family: ModelFamily, ask: str) -> Script:
    """What the model answers: JSON for a schema, thinking when it thinks (asked, or unasked by nature)."""
    text = json.dumps(ANSWER) if ask.startswith("json") else "Fine."
    thinks = ask in EFFORT or family.thinks_unasked
    return Script(text=text, reasoning=THOUGHT if thinks else "", signature=SIGNATURE)


# ----------------------------------------------------------------------------- OpenAI's two dialects


def chat_params(model: str, ask: str) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Where?"}]}
    if ask in EFFORT:
        params["reasoning_effort"] = EFFORT[ask]
    if ask == "none":
        params["reasoning_effort"] = "none"
    if ask == "sampling":
        params.update(temperature=0.2, top_p=0.9)
    if ask.startswith("json"):
        spec = {"name": "place", "schema": SCHEMA, "strict": True}
        params["response_format"] = {"type": "json_schema", "json_schema": spec}
    return params


def responses_params(model: str, ask: str) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "input": "Where?"}
    if ask in EFFORT:
        params["reasoning"] = {"effort": EFFORT[ask], "summary": "auto"}
    if ask == "none":
        params["reasoning"] = {"effort": "none"}
    if ask == "sampling":
        params.update(temperature=0.2, top_p=0.9)
    if ask.startswith("json"):
        params["text"] = {
            "format": {"type": "json_schema", "name": "place", "schema": SCHEMA, "strict": True}
        }
    return params


async def chat(sdk: Any, params: dict[str, Any], stream: bool) -> tuple[str, str]:
    """(answer text, reasoning shown) from Chat Completions."""
    if not stream:
        message = (await sdk.chat.completions.create(**params)).choices[0].message
        return message.content or "", (message.model_extra or {}).get("reasoning_content") or ""
    text, reasoning = [], []
    async for chunk in await sdk.chat.completions.create(stream=True, **params):
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
    return "".join(text), "".join(reasoning)


async def responses(sdk: Any, params: dict[str, Any], stream: bool) -> tuple[str, str]:
    """(answer text, reasoning summary shown) from the Responses API (the stream helper checks order)."""
    if stream:
        async with sdk.responses.stream(**params) as events:
            async for _ in events:
                pass
            answer = await events.get_final_response()
    else:
        answer = await sdk.responses.create(**params)
    assert answer.status == "completed"
    summaries = [s.text for item in answer.output if item.type == "reasoning" for s in item.summary]
    return answer.output_text, "".join(summaries)


def check_upstream_body(body: dict[str, Any], family: ModelFamily, ask: str) -> None:
    """The request the fake took, against the registry."""
    thinking = body.get("thinking")
    if ask in EFFORT:
        assert thinking is not None
        if family.adaptive:
            assert thinking["type"] == "adaptive"  # M26-01/02
            assert (thinking.get("display") == "summarized") is not family.shows_thinking  # M26-05
            wanted = anthropic_effort(EFFORT[ask], family)  # M26-04
            assert body.get("output_config", {}).get("effort") == wanted
        else:
            assert thinking == {"type": "enabled", "budget_tokens": BUDGETS[EFFORT[ask]]}
    else:
        assert thinking is None  # never "disabled": Fable refuses it, and not asking is the same (M26-06)
    if ask == "sampling" and family.sampling:
        assert body["temperature"] == 0.2
        assert ("top_p" in body) is family.sampling_pair
    else:
        assert "temperature" not in body and "top_p" not in body  # M26-03
    if ask.startswith("json"):  # M26-07: the schema itself, thinking or not; no forced tool
        assert body["output_config"]["format"] == {"type": "json_schema", "schema": SCHEMA}
        assert "tool_choice" not in body


@pytest.mark.parametrize("ask", ASKS)
@pytest.mark.parametrize("family_id", list(FAMILIES))
@pytest.mark.parametrize("dialect", ["chat", "responses"])
async def test_m26_10_openai_clients_on_every_family(
    proxy_factory: Any, fake: FakeUpstream, dialect: str, family_id: str, ask: str
) -> None:
    model = FAMILIES[family_id]
    family = family_of(model)
    proxy = await start(proxy_factory, fake)
    params = (chat_params if dialect == "chat" else responses_params)(model, ask)
    call = chat if dialect == "chat" else responses
    async with openai.AsyncOpenAI(
        base_url=proxy.url + "/v1", api_key="sk-client", max_retries=0, timeout=10
    ) as sdk:
        for stream in (False, True):
            fake.enqueue(script(family, ask))
            text, reasoning = await call(sdk, params, stream)  # raises on any status but 200
            if ask.startswith("json"):
                assert json.loads(text) == ANSWER
            else:
                assert text == "Fine."
            assert reasoning == (THOUGHT if ask in EFFORT else ""), (stream, reasoning)
            check_upstream_body(fake.requests[-1].body, family, ask)


# ------------------------------------------------------------------------- Messages, passthrough


def messages_params(model: str, family: ModelFamily, ask: str) -> dict[str, Any]:
    """The request an Anthropic SDK user writes for that model, by Anthropic's own docs."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Where?"}],
    }
    extra: dict[str, Any] = {}
    if ask in EFFORT:
        if family.adaptive:
            extra["thinking"] = {"type": "adaptive", "display": "summarized"}
            effort = anthropic_effort(EFFORT[ask], family)
            if effort:
                extra["output_config"] = {"effort": effort}
        else:
            extra["thinking"] = {"type": "enabled", "budget_tokens": BUDGETS[EFFORT[ask]]}
    if ask == "none":
        extra["thinking"] = {"type": "disabled"}
    if ask == "sampling":  # the SDK of today has no temperature argument any more: sent as extra body
        extra["temperature"] = 0.2
    if ask.startswith("json"):
        extra.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": SCHEMA}
    return {**params, "extra_body": extra} if extra else params


@pytest.mark.parametrize("ask", ASKS)
@pytest.mark.parametrize("family_id", list(FAMILIES))
async def test_m26_10_messages_passthrough_is_untouched_on_every_family(
    proxy_factory: Any, fake: FakeUpstream, family_id: str, ask: str
) -> None:
    model = FAMILIES[family_id]
    family = family_of(model)
    proxy = await start(proxy_factory, fake)
    params = messages_params(model, family, ask)
    sent = {k: v for k, v in params.items() if k != "extra_body"} | params.get("extra_body", {})
    refused = refusal(sent)  # what the API itself says to this request, if it refuses it
    async with anthropic.AsyncAnthropic(
        base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=10
    ) as sdk:
        for stream in (False, True):
            fake.enqueue(script(family, ask))
            if refused is not None:
                with pytest.raises(anthropic.BadRequestError) as error:
                    await sdk.messages.create(**params, **({"stream": True} if stream else {}))
                assert error.value.body["error"]["message"] == refused  # relayed word for word
            elif stream:
                async with sdk.messages.stream(**params) as events:
                    message = await events.get_final_message()
            else:
                message = await sdk.messages.create(**params)
            assert fake.requests[-1].body == (sent | {"stream": True} if stream else sent)  # untouched
            if refused is not None:
                continue
            thinking = "".join(b.thinking for b in message.content if b.type == "thinking")
            text = "".join(b.text for b in message.content if b.type == "text")
            assert thinking == (THOUGHT if ask in EFFORT else "")
            assert json.loads(text) == ANSWER if ask.startswith("json") else text == "Fine."


def test_m26_10_the_table_has_both_outcomes_for_messages() -> None:
    """The Messages column is not all refusals nor all answers: the rules bite where the API's do."""
    cells = [
        refusal({k: v for k, v in p.items() if k != "extra_body"} | p.get("extra_body", {}))
        for m in FAMILIES.values()
        for ask in ASKS
        for p in [messages_params(m, family_of(m), ask)]
    ]
    refused = [c for c in cells if c is not None]
    assert 0 < len(refused) < len(cells)
    # disabled thinking on Fable; a temperature where removed, or (Fable thinks unasked) with thinking on
    assert {c.split(" ")[0] for c in refused} == {'"thinking.type.disabled"', "`temperature`"}


@pytest.mark.parametrize(("model", "cap"), [("claude-haiku-4-5", 64_000), ("claude-opus-4-8", 128_000)])
async def test_m26_11_max_tokens_over_the_models_output_cap_is_clamped(
    proxy_factory: Any, fake: FakeUpstream, model: str, cap: int
) -> None:
    """An OpenAI client asking more than the model can give gets what it can give: the registry's cap
    (the strict fake refuses more in the API's words); passthrough relays the API's refusal."""
    proxy = await start(proxy_factory, fake)
    fake.enqueue(Script(text="Fine."))
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        answer = await sdk.chat.completions.create(
            model=model, max_completion_tokens=cap + 1, messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "Fine." and fake.requests[-1].body["max_tokens"] == cap
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as native:
        with pytest.raises(anthropic.BadRequestError) as error:
            await native.messages.create(
                model=model, max_tokens=cap + 1, messages=[{"role": "user", "content": "hi"}]
            )
    wanted = (
        f"max_tokens: {cap + 1} > {cap}, which is the maximum allowed number of output tokens for {model}"
    )
    assert error.value.body["error"]["message"] == wanted
