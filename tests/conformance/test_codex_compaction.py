"""Conformance: Codex's remote compaction on any upstream (CX-02, issue 17), with the official ``openai``
SDK's Responses API as the client, rawproxy in front of the fake upstream of each protocol.

The contract, as Codex 0.171.0 was seen to use it (``tests/fixtures/research/codex_2026.md``): a request
whose last input item is ``{"type": "compaction_trigger"}`` is answered with exactly one output item
``{"type": "compaction", "encrypted_content": ...}``; later inputs carry that item back, after the
messages Codex kept. rawproxy has the upstream model write the summary and carries it in the item
(``rawproxy/dialects/openai_responses/compaction.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from rawproxy.dialects.openai_responses.compaction import CONTENT_PREFIX, INSTRUCTION, SUMMARY_MAX_TOKENS
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.conformance.test_openai_responses import MODELS, UPSTREAMS, clients, run, start, upstream_body

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

__all__ = ["clients"]  # the fixture, shared

SUMMARY = "The user wants hello.txt to say hi. It was created; next: run the tests."
SHELL = {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}
HISTORY: list[dict[str, Any]] = [
    {"role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"role": "user", "content": [{"type": "input_text", "text": "Make hello.txt say hi."}]},
    {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "hello.txt"},
    {"role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
]


def texts(body: dict[str, Any]) -> list[str]:
    """Every text the upstream received in its messages, whichever protocol it speaks."""
    out: list[str] = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    return out


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx02_a_compaction_trigger_gets_exactly_one_compaction_item_written_by_the_model(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    fake.enqueue(Script(text=SUMMARY), Script(text="Tests pass."))
    sdk = clients(await start(proxy_factory, fake, upstream))
    params: dict[str, Any] = {"model": MODELS[upstream], "tools": [SHELL], "store": False}
    params["reasoning"] = {"effort": "high"}
    compacted = await run(sdk, mode, input=[*HISTORY, {"type": "compaction_trigger"}], **params)

    assert [item.type for item in compacted.output] == ["compaction"]
    item = compacted.output[0].model_dump()
    assert item["encrypted_content"].startswith(CONTENT_PREFIX) and item["id"].startswith("cmp_")
    asked = upstream_body(fake)
    assert texts(asked)[-1] == INSTRUCTION  # the model was asked for the summary, last
    assert "Make hello.txt say hi." in texts(asked)  # with the conversation before it
    choice = asked.get("tool_choice")
    assert choice in ("none", {"type": "none"})  # tools stay declared, none is called
    assert "thinking" not in asked and "reasoning_effort" not in asked
    assert asked.get("max_tokens", asked.get("max_completion_tokens")) <= SUMMARY_MAX_TOKENS

    # The next turn, as Codex sends it: the kept messages, then the compaction item verbatim.
    kept = [HISTORY[0], {"role": "user", "content": [{"type": "input_text", "text": "Run the tests."}]}]
    await run(sdk, mode, input=[*kept, item], **params)
    after = texts(upstream_body(fake))
    assert any(SUMMARY in text for text in after)  # the summary stands for the turns it replaced
    assert not any("exec_command" in text or text == "hello.txt\n" for text in after)


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx02_a_compaction_item_rawproxy_did_not_write_is_a_400_naming_it(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    sdk = clients(await start(proxy_factory, fake, upstream))
    for content, said in [
        ("gAAAAABopenai-own-content", "a compaction item this proxy did not write"),
        (CONTENT_PREFIX + "bm90IHppcA", "does not decode"),
    ]:
        item = {"type": "compaction", "encrypted_content": content}
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.responses.create(model=MODELS[upstream], input=[HISTORY[1], item])
        assert "input[1]" in str(refused.value) and said in str(refused.value)
    assert fake.requests == []  # nothing reached the upstream


async def test_cx02_a_trigger_that_is_not_last_is_a_400(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    sdk = clients(await start(proxy_factory, fake, "anthropic"))
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model=MODELS["anthropic"], input=[{"type": "compaction_trigger"}, HISTORY[1]]
        )
    assert "input[0]: compaction_trigger must be the last input item" in str(refused.value)


@pytest.mark.parametrize("mode", ["create", "stream"])
async def test_cx02_an_upstream_that_writes_no_summary_fails_the_compaction_clearly(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, mode: str
) -> None:
    """Never an empty summary standing for the conversation: the compaction fails, Codex keeps its
    history and says so."""
    fake.enqueue(Script(text=""))
    sdk = clients(await start(proxy_factory, fake, "anthropic"))
    params: dict[str, Any] = {
        "model": MODELS["anthropic"],
        "input": [*HISTORY, {"type": "compaction_trigger"}],
    }
    if mode == "create":
        with pytest.raises(openai.APIStatusError) as failed:
            await sdk.responses.create(**params)
        assert failed.value.status_code == 502
        assert "no summary" in str(failed.value)
    else:
        async with sdk.responses.stream(**params) as events:
            kinds = [event.type async for event in events]
        assert kinds[-1] == "response.failed" and "response.output_item.done" not in kinds


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx02_post_responses_compact_answers_one_compaction_item(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    """``POST /v1/responses/compact`` (the SDK's ``responses.compact``; newer Codex builds, where 0.171
    sends a trigger): a ``response.compaction`` object whose output is exactly one compaction item,
    written by the upstream model, which the next request expands as the trigger's does."""
    fake.enqueue(Script(text=SUMMARY), Script(text="Tests pass."))
    sdk = clients(await start(proxy_factory, fake, upstream))
    compacted = await sdk.responses.compact(model=MODELS[upstream], input=HISTORY)
    assert compacted.object == "response.compaction"
    assert [item.type for item in compacted.output] == ["compaction"]
    assert texts(upstream_body(fake))[-1] == INSTRUCTION
    assert upstream_body(fake).get("stream") is not True
    item = compacted.output[0].model_dump()
    await sdk.responses.create(model=MODELS[upstream], input=[HISTORY[0], item, HISTORY[1]])
    assert any(SUMMARY in text for text in texts(upstream_body(fake)))
