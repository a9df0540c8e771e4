"""Conformance: a tool loop with reasoning through rawproxy to every provider mode of the fake upstream
(issue 16 "Done when": with the default profile and with the provider's own, every loop completes and
the upstream received exactly the state it sent).

The fake's provider modes (``rawproxy/testing/fake_upstream/providers.py``) shape the reasoning as each
provider does (DeepSeek and Kimi ``reasoning_content``, Gemini's ``extra_content`` thought signature,
OpenRouter's ``reasoning`` + ``reasoning_details`` with a signed text entry and an encrypted one, MiniMax's
``reasoning_details`` or ``<think>`` tags, vLLM's ``reasoning``), remember what each tool turn must bring
back, and write every difference to ``fake.lost``; the providers that refuse a turn without it do so in
their own words. Three clients, with the official SDKs: an Anthropic client with thinking on (the state
rides in the thinking block's signature), one with thinking off (in the first tool call's id), and a
Responses client (in the reasoning item's ``encrypted_content``). RS-01..RS-05, RS-07.
"""

from __future__ import annotations

from typing import Any

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.testing.fake_upstream.providers import MODES

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

THOUGHT = "The user wants the listing. I will run ls."
SIGNATURE = {"google": {"thought_signature": "EjQKMgEMOdbHQ3y7ZyfV7dSNgdLe2Vd1v1Zr"}}
SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
ASK = "What is here?"
# the provider's own profile, where rawproxy has one (vLLM needs none: the generic profile)
OWN_PROFILE = {"deepseek": "deepseek", "kimi": "kimi", "gemini": "gemini", "openrouter": "openrouter"}
OWN_PROFILE |= {"minimax": "minimax", "vllm": "generic"}
MODEL = {"gemini": "gemini-3-pro-preview", "openrouter": "google/gemini-3-pro-preview"}


def first_turn(mode: str) -> Script:
    call = ToolCall(id="call_ls1", name="Bash", arguments={"command": "ls"})
    if mode == "gemini":  # Gemini's state is the call's thought signature, no reasoning text
        call.extra_content = SIGNATURE
        return Script(text="", tool_calls=[call])
    return Script(text="", reasoning=THOUGHT, tool_calls=[call])


async def anthropic_loop(url: str, model: str, thinking: bool, stream: bool) -> str:
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 4000,
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": SCHEMA}],
    }
    if thinking:
        params["thinking"] = {"type": "enabled", "budget_tokens": 2000}
    ask = {"role": "user", "content": ASK}
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0, timeout=10) as sdk:
        if stream:
            async with sdk.messages.stream(messages=[ask], **params) as events:
                first = await events.get_final_message()
        else:
            first = await sdk.messages.create(messages=[ask], **params)
        content = [block.model_dump(exclude_none=True) for block in first.content]
        call = next(b for b in content if b["type"] == "tool_use")
        result = {"type": "tool_result", "tool_use_id": call["id"], "content": "a.txt"}
        history = [ask, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
        second = await sdk.messages.create(messages=history, **params)
    return str(second.content[0].text)


async def responses_loop(url: str, model: str, stream: bool) -> str:
    """As Codex does it: reasoning items sent back with their summary and encrypted content, no ids."""
    params: dict[str, Any] = {
        "model": model,
        "tools": [{"type": "function", "name": "Bash", "parameters": SCHEMA}],
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
    }
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        if stream:
            async with sdk.responses.stream(input=ASK, **params) as events:
                first = await events.get_final_response()
        else:
            first = await sdk.responses.create(input=ASK, **params)
        back: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
        for item in first.output:
            if item.type == "reasoning":
                back.append(
                    {
                        "type": "reasoning",
                        "summary": [s.model_dump() for s in item.summary],
                        "encrypted_content": item.encrypted_content,
                    }
                )
            elif item.type == "message":
                text = "".join(part.text for part in item.content if part.type == "output_text")
                back.append({"role": "assistant", "content": [{"type": "output_text", "text": text}]})
            elif item.type == "function_call":
                back.append(
                    {
                        "type": "function_call",
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": item.arguments,
                    }
                )
                back.append({"type": "function_call_output", "call_id": item.call_id, "output": "a.txt"})
        second = await sdk.responses.create(input=back, **params)
    return second.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client", ["anthropic-thinking", "anthropic-no-thinking", "responses"])
@pytest.mark.parametrize("own_profile", [False, True], ids=["default-profile", "own-profile"])
@pytest.mark.parametrize("mode", MODES)
async def test_rs_09_a_tool_loop_gives_every_provider_exactly_its_state_back(
    proxy_factory: Any, fake: FakeUpstream, mode: str, own_profile: bool, client: str, stream: bool
) -> None:
    fake.provider = mode
    fake.enqueue(first_turn(mode), Script(text="There is a.txt."))
    proxy = await proxy_factory(upstream_profile=OWN_PROFILE[mode] if own_profile else None)
    model = MODEL.get(mode, "reasoner-2026")
    if client == "responses":
        answer = await responses_loop(proxy.url, model, stream)
    else:
        answer = await anthropic_loop(proxy.url, model, client == "anthropic-thinking", stream)
    assert answer == "There is a.txt."  # the loop completed: no provider refused the tool turn
    assert fake.lost == []  # and no state was lost or changed on the way
    wanted = fake.issued["call_ls1"]
    assistant = next(m for m in fake.requests[-1].body["messages"] if m["role"] == "assistant")
    if wanted:  # what the provider wants back is there, as it sent it
        assert all(assistant.get(key) == value for key, value in wanted.items() if key != "tool_calls")
    else:  # MiniMax without reasoning_split: the reasoning is in the content, and goes back there
        assert mode == "minimax" and not own_profile
        assert assistant["content"].startswith("<think>\n" + THOUGHT)
    assert "rp1" not in str(fake.requests[-1].body)  # no envelope ever reaches the upstream


@pytest.mark.parametrize("mode", ["openrouter", "minimax", "vllm"])
async def test_rs_09_a_client_that_drops_the_state_is_seen_by_the_fake(
    proxy_factory: Any, fake: FakeUpstream, mode: str
) -> None:
    """The other side of the check above: when the state does not come back (a client that rewrites
    the call id), the fake says what was lost, and OpenRouter in front of Gemini refuses in its words."""
    fake.provider = mode
    fake.enqueue(first_turn(mode), Script(text="There is a.txt."))
    proxy = await proxy_factory(upstream_profile=OWN_PROFILE[mode])
    model = MODEL.get(mode, "reasoner-2026")
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        await sdk.messages.create(
            model=model,
            max_tokens=100,
            tools=[{"name": "Bash", "input_schema": SCHEMA}],
            messages=[{"role": "user", "content": ASK}],
        )
        history = [
            {"role": "user", "content": ASK},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_ls1", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_ls1", "content": "ok"}],
            },
        ]
        kwargs: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": history}
        kwargs["tools"] = [{"name": "Bash", "input_schema": SCHEMA}]
        if mode == "openrouter":
            with pytest.raises(anthropic.BadRequestError) as refused:
                await sdk.messages.create(**kwargs)
            message = refused.value.body["error"]["message"]
            assert message.startswith("Provider returned error")
            assert "Gemini models require OpenRouter reasoning details to be preserved" in message
        else:
            await sdk.messages.create(**kwargs)
    field = {"openrouter": "reasoning_details", "minimax": "reasoning_details", "vllm": "reasoning"}[mode]
    assert fake.lost == [f"messages[1].{field}: missing"]
