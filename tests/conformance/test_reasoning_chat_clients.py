"""Conformance: OpenAI Chat Completions clients on Claude with thinking and tools (issue 16, RS-08).

Anthropic refuses a tool round whose assistant turn does not start with its thinking block, byte for
byte ("When `thinking` is enabled, a final `assistant` message must start with a thinking block ...",
OpenRouterTeam/ai-sdk-provider#162, n8n-io/n8n#22550); the strict fake refuses it in those words
(``anthropic_rules.UNTHOUGHT_TOOL_TURN``). A Chat Completions client returns nothing of the thinking (the
SDK drops ``reasoning_content``), so rawproxy seals the turn's thinking blocks into the first tool call's
id (the one field every client returns) and puts them back, with the upstream's own ids, on the next
request. The official ``openai`` SDK, through the proxy on a real socket, streamed and not.
"""

from __future__ import annotations

from typing import Any

import pytest

from rawproxy.carrier import ID_PREFIX
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

THOUGHT = "The user wants the listing. I will run ls."
TOOL = {
    "type": "function",
    "function": {
        "name": "Bash",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}
ASK = {"role": "user", "content": "What is here?"}


async def start(proxy_factory: Any, fake: FakeUpstream) -> Any:
    return await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant-test")


def thinking_turn() -> Script:
    call = ToolCall(id="toolu_01ls", name="Bash", arguments={"command": "ls"})
    return Script(text="", reasoning=THOUGHT, signature="sig-chat-0001", tool_calls=[call])


async def first_answer(sdk: Any, model: str, stream: bool) -> dict[str, Any]:
    """The assistant message as a Chat client keeps it: content and tool calls, no reasoning."""
    params: dict[str, Any] = {"model": model, "messages": [ASK], "tools": [TOOL], "reasoning_effort": "high"}
    if not stream:
        message = (await sdk.chat.completions.create(**params)).choices[0].message
        calls = [c.model_dump() for c in message.tool_calls]
        assert message.model_extra.get("reasoning_content") == THOUGHT  # shown, as O2A-N03 says
        return {"role": "assistant", "content": message.content, "tool_calls": calls}
    calls: dict[int, dict[str, Any]] = {}
    async for chunk in await sdk.chat.completions.create(stream=True, **params):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(
                tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] += tc.id or ""
            call["function"]["name"] += tc.function.name or ""
            call["function"]["arguments"] += tc.function.arguments or ""
    return {"role": "assistant", "content": None, "tool_calls": list(calls.values())}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-opus-4-8"])
async def test_rs_08_a_chat_clients_tool_loop_gets_its_thinking_blocks_back(
    proxy_factory: Any, fake: FakeUpstream, model: str, stream: bool
) -> None:
    fake.enqueue(thinking_turn(), Script(text="There is a.txt."))
    proxy = await start(proxy_factory, fake)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        assistant = await first_answer(sdk, model, stream)
        call_id = assistant["tool_calls"][0]["id"]
        assert call_id.startswith(ID_PREFIX)  # the thinking rides in the id
        history = [ASK, assistant, {"role": "tool", "tool_call_id": call_id, "content": "a.txt"}]
        second = await sdk.chat.completions.create(
            model=model, messages=history, tools=[TOOL], reasoning_effort="high"
        )
    assert second.choices[0].message.content == "There is a.txt."
    body = fake.requests[-1].body
    turn, results = body["messages"][1], body["messages"][2]
    shown = THOUGHT if model == "claude-sonnet-4-5" else ""  # Opus 4.8 omits its thinking unless asked
    if model == "claude-opus-4-8":
        shown = THOUGHT if fake.requests[0].body["thinking"].get("display") == "summarized" else ""
    assert turn["content"][0] == {"type": "thinking", "thinking": shown, "signature": "sig-chat-0001"}
    assert turn["content"][1]["id"] == "toolu_01ls"  # the upstream's own id again
    assert results["content"][0]["tool_use_id"] == "toolu_01ls"


async def test_rs_08_without_its_thinking_block_the_turn_is_refused_in_anthropics_words(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """The other side: a call id that carries nothing (another proxy's, or one from another model)."""
    proxy = await start(proxy_factory, fake)
    call = {
        "id": "toolu_01ls",
        "type": "function",
        "function": {"name": "Bash", "arguments": '{"command":"ls"}'},
    }
    history = [
        ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_01ls", "content": "a.txt"},
    ]
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(
                model="claude-sonnet-4-5", messages=history, tools=[TOOL], reasoning_effort="high"
            )
    assert "a final `assistant` message must start with a thinking block" in str(refused.value)


async def test_rs_07_another_models_sealed_id_becomes_a_short_stand_in(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """A client that switched models sends back an id sealed for the other one: nothing is restored
    from it, and the call and its result go up under one short stand-in (providers cap id lengths)."""
    fake.enqueue(thinking_turn(), Script(text="Switched."))
    proxy = await start(proxy_factory, fake)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        assistant = await first_answer(sdk, "claude-sonnet-4-5", stream=False)
        call_id = assistant["tool_calls"][0]["id"]
        history = [ASK, assistant, {"role": "tool", "tool_call_id": call_id, "content": "a.txt"}]
        second = await sdk.chat.completions.create(model="claude-opus-4-8", messages=history, tools=[TOOL])
    assert second.choices[0].message.content == "Switched."
    turn, results = fake.requests[-1].body["messages"][1:3]
    assert [b["type"] for b in turn["content"]] == ["tool_use"]  # no thinking of another model's
    stand_in = turn["content"][0]["id"]
    assert stand_in.startswith("call_") and len(stand_in) <= 40
    assert results["content"][0]["tool_use_id"] == stand_in


async def test_rs_08_a_switch_to_an_openai_model_in_passthrough_relays_the_ids_as_sent(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """After a turn on Claude, the Chat client switches to an OpenAI model (a passthrough): OpenAI takes
    long call ids (vercel/ai#17233 could not reproduce its old 40-character cap in July 2026), so the
    body goes as sent; only a 400 would have the proxy take its sealed ids out and ask again."""
    fake.enqueue(thinking_turn(), Script(text="OpenAI here."))
    proxy = await proxy_factory(
        anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant-test", openai_upstream=fake.url
    )
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        assistant = await first_answer(sdk, "claude-sonnet-4-5", stream=False)
        call_id = assistant["tool_calls"][0]["id"]
        history = [ASK, assistant, {"role": "tool", "tool_call_id": call_id, "content": "a.txt"}]
        second = await sdk.chat.completions.create(model="gpt-4.1", messages=history, tools=[TOOL])
    assert second.choices[0].message.content == "OpenAI here."
    sent = fake.requests[-1]
    assert sent.path.endswith("/chat/completions")
    assert (
        sent.body["messages"][1]["tool_calls"][0]["id"] == call_id == sent.body["messages"][2]["tool_call_id"]
    )
