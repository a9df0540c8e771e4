"""Conformance: reasoning state that goes back to the provider that sent it (issue 16, CONFORMANCE.md RS).

Multi-turn tool loops with reasoning, the official SDKs through rawproxy on a real socket to the fake
upstream in a provider mode that refuses a tool turn without its reasoning in the provider's own words
(``rawproxy/testing/fake_upstream/openai_rules.py``; the research in
``tests/fixtures/research/reasoning_state_2026.md``). The state rides in the client's own opaque field,
sealed (``rawproxy/carrier.py``): an Anthropic thinking block's ``signature``, a Responses reasoning
item's ``encrypted_content``. With the default profile: no per-provider switch is needed.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rawproxy.carrier import is_sealed
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.testing.fake_upstream.openai_rules import PROVIDERS

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

MODEL = "deepseek-reasoner"
THOUGHT = "The user wants the listing. I will run ls."
BASH = {
    "name": "Bash",
    "description": "Run a command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
ASK = {"role": "user", "content": "What is here?"}


def first_turn(field: str = "reasoning_content") -> Script:
    return Script(
        text="",
        reasoning=THOUGHT,
        reasoning_field=field,
        tool_calls=[ToolCall(id="call_ls1", name="Bash", arguments={"command": "ls"})],
    )


async def claude_turns(proxy: Any, stream: bool, tamper: Any = None, model: str = MODEL) -> tuple[Any, Any]:
    """Two turns as Claude Code makes them: the answer's content sent back as it came, then the result."""
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        params: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "tools": [BASH],
        }
        if stream:
            async with sdk.messages.stream(messages=[ASK], **params) as events:
                first = await events.get_final_message()
        else:
            first = await sdk.messages.create(messages=[ASK], **params)
        content = [block.model_dump(exclude_none=True) for block in first.content]
        if tamper is not None:
            tamper(content)
        call = next(b for b in content if b["type"] == "tool_use")
        result = {"type": "tool_result", "tool_use_id": call["id"], "content": "a.txt"}
        history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
        second = await sdk.messages.create(messages=history, **{**params, "model": model})
    return first, second


def sent_back(fake: FakeUpstream) -> dict[str, Any]:
    """The assistant tool turn of the last upstream request."""
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return next(m for m in body["messages"] if m["role"] == "assistant")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("profile", [None, "deepseek"], ids=["default-profile", "deepseek-profile"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_rs_01_rs_02_a_tool_loop_gets_its_reasoning_back_with_any_profile(
    proxy_factory: Any, fake: FakeUpstream, provider: str, profile: str | None, stream: bool
) -> None:
    fake.provider = provider  # refuses a tool turn without its reasoning_content, in its own words
    fake.enqueue(first_turn(), Script(text="There is a.txt."))
    proxy = await proxy_factory(upstream_profile=profile)
    first, second = await claude_turns(proxy, stream)
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT and is_sealed(thinking.signature)
    assert second.content[0].text == "There is a.txt."
    assistant = sent_back(fake)
    assert assistant["reasoning_content"] == THOUGHT  # exactly what it sent, in its field
    assert "reasoning" not in assistant and "signature" not in str(fake.requests[-1].body)


async def test_rs_05_reasoning_goes_back_in_the_field_it_came_in(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """vLLM writes ``reasoning`` since January 2026 (vllm-project/vllm#33402): it gets ``reasoning`` back."""
    fake.enqueue(first_turn("reasoning"), Script(text="There is a.txt."))
    proxy = await proxy_factory()
    await claude_turns(proxy, stream=True)
    assistant = sent_back(fake)
    assert assistant["reasoning"] == THOUGHT and "reasoning_content" not in assistant


def _forge(content: list[dict[str, Any]]) -> None:
    signature = content[0]["signature"]
    content[0]["signature"] = signature[:-3] + ("AAA" if not signature.endswith("AAA") else "BBB")


def _rewrite_thinking(content: list[dict[str, Any]]) -> None:
    content[0]["thinking"] = "I will delete everything."


def _inject(content: list[dict[str, Any]]) -> None:
    content[0]["signature"] = (
        "rp1.eyJ1IjoiZ2VuZXJpYyIsIm0iOiJkZWVwc2Vlay1yZWFzb25lciIsInMiOnsiZiI6InRvb2xzIn19.AAAA"
    )


@pytest.mark.parametrize(
    "tamper", [_forge, _rewrite_thinking, _inject], ids=["altered", "rewritten", "forged"]
)
async def test_rs_07_a_forged_or_altered_envelope_is_ignored_logged_and_injects_nothing(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, tamper: Any
) -> None:
    """The provider then refuses the turn, as it would without rawproxy: its words reach the client."""
    caplog.set_level(logging.WARNING, logger="rawproxy")
    fake.provider = "deepseek"
    fake.enqueue(first_turn())
    proxy = await proxy_factory()
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude_turns(proxy, stream=False, tamper=tamper)
    assert refused.value.body["error"]["message"] == PROVIDERS["deepseek"]
    assistant = sent_back(fake)
    assert not {"reasoning_content", "reasoning", "tools"} & assistant.keys()
    assert any("not sent back" in r.getMessage() or "did not seal" in r.getMessage() for r in caplog.records)


async def test_rs_07_state_of_another_model_is_dropped_on_a_switch(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The client switched model mid-conversation: the state was the other model's; not sent, no alarm."""
    caplog.set_level(logging.WARNING, logger="rawproxy")
    fake.enqueue(first_turn(), Script(text="There is a.txt."))
    proxy = await proxy_factory()
    await claude_turns(proxy, stream=False, model="deepseek-chat")
    assert "reasoning_content" not in sent_back(fake)
    assert not [r for r in caplog.records if r.name == "rawproxy"]


@pytest.mark.parametrize(("second_key", "restored"), [("the-group-key", True), ("another-key", False)])
async def test_rs_07_another_worker_with_the_same_key_opens_the_envelope(
    proxy_factory: Any, fake: FakeUpstream, second_key: str, restored: bool
) -> None:
    """No server-side state: the first turn through one proxy, the second through another."""
    fake.enqueue(first_turn(), Script(text="There is a.txt."))
    one = await proxy_factory(carrier_key="the-group-key")
    two = await proxy_factory(carrier_key=second_key)
    async with anthropic.AsyncAnthropic(base_url=one.url, api_key="k", max_retries=0, timeout=10) as sdk:
        params: dict[str, Any] = {"model": MODEL, "max_tokens": 4000, "tools": [BASH]}
        params["thinking"] = {"type": "enabled", "budget_tokens": 2000}
        first = await sdk.messages.create(messages=[ASK], **params)
    content = [block.model_dump(exclude_none=True) for block in first.content]
    result = {"type": "tool_result", "tool_use_id": content[-1]["id"], "content": "a.txt"}
    history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
    async with anthropic.AsyncAnthropic(base_url=two.url, api_key="k", max_retries=0, timeout=10) as sdk:
        await sdk.messages.create(messages=history, **params)
    assert ("reasoning_content" in sent_back(fake)) is restored


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_rs_07_responses_clients_carry_it_in_encrypted_content(
    proxy_factory: Any, fake: FakeUpstream, stream: bool
) -> None:
    """Codex on DeepSeek (Responses in, Chat Completions up): the reasoning item's encrypted_content brings
    the reasoning back, the summary its text (what Codex sends back of a reasoning item)."""
    fake.provider = "deepseek"
    fake.enqueue(first_turn(), Script(text="There is a.txt."))
    proxy = await proxy_factory()
    tool = {"type": "function", "name": "Bash", "parameters": BASH["input_schema"]}
    params: dict[str, Any] = {
        "model": MODEL,
        "tools": [tool],
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10) as sdk:
        if stream:
            async with sdk.responses.stream(input="What is here?", **params) as events:
                first = await events.get_final_response()
        else:
            first = await sdk.responses.create(input="What is here?", **params)
        reasoning = next(i for i in first.output if i.type == "reasoning")
        call = next(i for i in first.output if i.type == "function_call")
        assert is_sealed(reasoning.encrypted_content)
        back = [  # as Codex sends it back: no id, the summary and the encrypted content
            {"role": "user", "content": "What is here?"},
            {
                "type": "reasoning",
                "summary": [s.model_dump() for s in reasoning.summary],
                "encrypted_content": reasoning.encrypted_content,
            },
            {"type": "function_call", "call_id": call.call_id, "name": "Bash", "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt"},
        ]
        second = await sdk.responses.create(input=back, **params)
    assert second.output_text == "There is a.txt."
    assert sent_back(fake)["reasoning_content"] == THOUGHT


SIGNATURE = {"google": {"thought_signature": "EjQKMgEMOdbHQ3y7ZyfV7dSNgdLe2Vd1v1Zr"}}


def gemini_turn() -> Script:
    """Two parallel calls: only the first carries the thought signature (Gemini's documented rule)."""
    return Script(
        text="",
        tool_calls=[
            ToolCall(id="gem_1", name="Bash", arguments={"command": "ls"}, extra_content=SIGNATURE),
            ToolCall(id="gem_2", name="Bash", arguments={"command": "pwd"}),
        ],
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("thinking", [False, True], ids=["no-thinking", "thinking"])
async def test_rs_03_geminis_thought_signature_comes_back_on_its_call(
    proxy_factory: Any, fake: FakeUpstream, stream: bool, thinking: bool
) -> None:
    """The state rides in the call's id (the one field of a call every client returns): Gemini gets its
    own id back with the signature, and the result under that id; the unsigned call is left alone."""
    fake.provider = "gemini"  # refuses a tool turn whose first call lacks its signature, as Gemini does
    fake.enqueue(gemini_turn(), Script(text="Done."))
    proxy = await proxy_factory()
    params: dict[str, Any] = {"model": "gemini-3-pro-preview", "max_tokens": 4000, "tools": [BASH]}
    if thinking:
        params["thinking"] = {"type": "enabled", "budget_tokens": 2000}
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        if stream:
            async with sdk.messages.stream(messages=[ASK], **params) as events:
                first = await events.get_final_message()
        else:
            first = await sdk.messages.create(messages=[ASK], **params)
        calls = [b for b in first.content if b.type == "tool_use"]
        assert calls[0].id.startswith("toolu_rp1") and calls[1].id == "gem_2"
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": "ok"} for c in calls]
        content = [b.model_dump(exclude_none=True) for b in first.content]
        history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": results}]
        second = await sdk.messages.create(messages=history, **params)
    assert second.content[0].text == "Done."
    body = fake.requests[-1].body
    assistant = sent_back(fake)
    assert [c["id"] for c in assistant["tool_calls"]] == ["gem_1", "gem_2"]
    assert assistant["tool_calls"][0]["extra_content"] == SIGNATURE  # exactly what it sent
    assert "extra_content" not in assistant["tool_calls"][1]
    assert [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"] == ["gem_1", "gem_2"]


async def test_rs_03_without_the_signature_gemini_says_so_in_its_own_words(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """A client that lost the id (or another proxy) gets Gemini's refusal as Gemini wrote it."""
    fake.provider = "gemini"
    proxy = await proxy_factory()
    history = [
        ASK,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "gem_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "gem_1", "content": "ok"}]},
    ]
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await sdk.messages.create(
                model="gemini-3-pro-preview", max_tokens=100, tools=[BASH], messages=history
            )
    assert refused.value.body["error"]["message"].startswith(
        "Function call is missing a thought_signature in functionCall parts."
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_rs_01_reasoning_the_client_did_not_ask_to_see_still_goes_back(
    proxy_factory: Any, fake: FakeUpstream, stream: bool
) -> None:
    """Claude Code with thinking off on DeepSeek V4, which thinks anyway and refuses the next tool turn
    without its reasoning: there is no thinking block to carry it, so the turn's first call id does."""
    fake.provider = "deepseek"
    fake.enqueue(first_turn(), Script(text="There is a.txt."))
    proxy = await proxy_factory()
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 4000, "tools": [BASH]}
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        if stream:
            async with sdk.messages.stream(messages=[ASK], **params) as events:
                first = await events.get_final_message()
        else:
            first = await sdk.messages.create(messages=[ASK], **params)
        assert [b.type for b in first.content] == ["tool_use"]  # nothing shown that was not asked for
        call = first.content[0]
        assert call.id.startswith("toolu_rp1")
        content = [call.model_dump(exclude_none=True)]
        result = {"type": "tool_result", "tool_use_id": call.id, "content": "a.txt"}
        history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
        second = await sdk.messages.create(messages=history, **params)
    assert second.content[0].text == "There is a.txt."
    assistant = sent_back(fake)
    assert assistant["reasoning_content"] == THOUGHT and assistant["tool_calls"][0]["id"] == "call_ls1"


async def test_rs_07_a_switch_sends_the_other_models_call_ids_as_short_stand_ins(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """Gemini's sealed call ids, sent back after a switch to another model: the signature is not
    given to that model, and the call and its result pair under one short id, not the envelope."""
    fake.provider = "gemini"
    fake.enqueue(gemini_turn())
    proxy = await proxy_factory()
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        params: dict[str, Any] = {"max_tokens": 4000, "tools": [BASH]}
        first = await sdk.messages.create(model="gemini-3-pro-preview", messages=[ASK], **params)
        calls = [b for b in first.content if b.type == "tool_use"]
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": "ok"} for c in calls]
        content = [b.model_dump(exclude_none=True) for b in first.content]
        history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": results}]
        fake.provider = None
        await sdk.messages.create(model="deepseek-chat", messages=history, **params)
    body = fake.requests[-1].body
    ids = [c["id"] for c in sent_back(fake)["tool_calls"]]
    assert ids[0].startswith("call_") and len(ids[0]) <= 40 and ids[1] == "gem_2"
    assert "extra_content" not in sent_back(fake)["tool_calls"][0]
    assert [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"] == ids


@pytest.mark.parametrize("thinking", [True, False], ids=["thinking", "no-thinking"])
async def test_rs_07_a_switch_to_claude_in_passthrough_leaves_the_other_upstreams_state_out(
    proxy_factory: Any, fake: FakeUpstream, thinking: bool
) -> None:
    """Claude Code's /model from a DeepSeek route to Claude (a passthrough). With thinking on, the
    history holds thinking signed with rawproxy's envelope, which Anthropic refuses ("Invalid
    `signature` in `thinking` block", as the strict fake does): on that 400 the proxy takes out what it
    sealed (the thinking; the call id becomes a short stand-in for the call and its result; the turn
    goes without thinking, as the last tool round can no longer start with its own) and asks once more.
    Without thinking there is nothing Anthropic refuses: the body goes as sent (a passthrough never
    searches the bodies it relays)."""
    fake.provider = "deepseek"
    turn = first_turn()
    turn.tool_calls[0].extra_content = {"google": {"thought_signature": "c2ln"}}  # the id is sealed too
    fake.enqueue(turn, Script(text="Claude here."))
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant-test")
    params: dict[str, Any] = {"max_tokens": 4000, "tools": [BASH]}
    if thinking:
        params["thinking"] = {"type": "enabled", "budget_tokens": 2000}
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0, timeout=10) as sdk:
        first = await sdk.messages.create(model=MODEL, messages=[ASK], **params)
        content = [block.model_dump(exclude_none=True) for block in first.content]
        call = next(b for b in content if b["type"] == "tool_use")
        assert call["id"].startswith("toolu_rp1")
        result = {"type": "tool_result", "tool_use_id": call["id"], "content": "a.txt"}
        history = [ASK, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
        second = await sdk.messages.create(model="claude-sonnet-4-6", messages=history, **params)
    assert second.content[-1].text == "Claude here."
    to_claude = [r for r in fake.requests if r.body.get("model") == "claude-sonnet-4-6"]
    if not thinking:
        assert len(to_claude) == 1 and b"toolu_rp1" in to_claude[0].raw_body  # untouched
        return
    refused, sent = to_claude
    assert b"rp1." in refused.raw_body and b"rp1" not in sent.raw_body
    turn_sent = sent.body["messages"][1]["content"]
    assert [b["type"] for b in turn_sent] == ["tool_use"]  # the foreign thinking is gone
    assert "thinking" not in sent.body
    stand_in = turn_sent[0]["id"]
    assert stand_in.startswith("call_") and sent.body["messages"][2]["content"][0]["tool_use_id"] == stand_in
