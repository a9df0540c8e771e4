"""Conformance: the Codex CLI's tools and items beyond function tools (CX-04, CX-05), with the official
``openai`` SDK's Responses API as the client (``responses.create``, and ``responses.stream()`` whose
accumulator checks every event), rawproxy in front of the fake upstream, with each upstream protocol.

What is sent is what Codex sends (codex-rs ``protocol/src/models.rs``; ``tools/src/apply_patch_tool.rs``):
the free-form ``apply_patch`` tool with its Lark grammar, ``additional_tools`` and ``tool_search`` items,
local shell and shell calls. Proxies that drop these or 400 them break Codex mid-session
(router-for-me/CLIProxyAPI#5753, decolua/9router#1371, CommandCodeAI/command-code#885).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from tests.conformance.test_openai_responses import MODELS, UPSTREAMS, clients, run, start, upstream_body

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.conformance

__all__ = ["clients"]  # the fixture, shared

GRAMMAR = (
    'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\nend_patch: "*** End Patch" LF?\n'
)
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool, so do not wrap the patch in JSON.",
    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
}
PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello "world"\n*** End Patch\n'
TOOL_SEARCH = {
    "type": "tool_search",
    "execution": "client",
    "description": "Search deferred MCP tools",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
CALENDAR = {
    "type": "namespace",
    "name": "calendar",
    "description": "Calendar tools",
    "tools": [
        {
            "type": "function",
            "name": "create_event",
            "description": "Create an event",
            "defer_loading": True,
            "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
        }
    ],
}


def declared(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The upstream's tools by name: (description, schema), whichever protocol it speaks."""
    out: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools", []):
        fn = tool.get("function", tool)
        out[fn["name"]] = {
            "description": fn.get("description"),
            "schema": fn.get("parameters", fn.get("input_schema")),
        }
    return out


def history(body: dict[str, Any]) -> tuple[list[tuple[str, str, Any]], list[tuple[str, str]]]:
    """The tool calls (id, name, input) and tool results (id, text) the upstream received."""
    calls: list[tuple[str, str, Any]] = []
    results: list[tuple[str, str]] = []
    for message in body["messages"]:
        for call in message.get("tool_calls") or []:
            calls.append((call["id"], call["function"]["name"], orjson.loads(call["function"]["arguments"])))
        if message.get("role") == "tool":
            content = message["content"]
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
            results.append((message["tool_call_id"], text))
        if isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_use":
                    calls.append((block["id"], block["name"], block["input"]))
                elif block.get("type") == "tool_result":
                    content = block["content"]
                    text = (
                        content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                    )
                    results.append((block["tool_use_id"], text))
    return calls, results


def as_input(item: Any) -> dict[str, Any]:
    """An output item of the SDK's answer, sent back as Codex sends it (no Nones)."""
    return {k: v for k, v in item.model_dump(mode="json").items() if v is not None}


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx04_apply_patch_round_trip(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    """The custom tool is a function of one ``input`` string upstream; the model's call comes back as a
    ``custom_tool_call`` whose input is the raw patch; the call and its ``custom_tool_call_output`` are
    the next turn's tool call and result."""
    call = ToolCall(name="apply_patch", arguments={"input": PATCH}, id="call_p")
    fake.enqueue(Script(text="", tool_calls=[call], arg_fragments=5), Script(text="Patched."))
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    first = await run(sdk, mode, model=MODELS[upstream], input="add hello.txt", tools=[APPLY_PATCH])
    assert [item.type for item in first.output] == ["custom_tool_call"]
    made = first.output[0]
    assert (made.call_id, made.name, made.input) == ("call_p", "apply_patch", PATCH)
    tool = declared(upstream_body(fake))["apply_patch"]
    assert tool["schema"]["properties"]["input"]["type"] == "string" and tool["schema"]["required"] == [
        "input"
    ]
    assert tool["description"].startswith(APPLY_PATCH["description"]) and GRAMMAR in tool["description"]

    turn = [
        {"role": "user", "content": "add hello.txt"},
        as_input(made),
        {"type": "custom_tool_call_output", "call_id": made.call_id, "output": "Success. Updated hello.txt"},
    ]
    second = await run(sdk, mode, model=MODELS[upstream], input=turn, tools=[APPLY_PATCH])
    assert second.output_text == "Patched."
    calls, results = history(upstream_body(fake))
    assert calls == [("call_p", "apply_patch", {"input": PATCH})]
    assert results == [("call_p", "Success. Updated hello.txt")]


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize(
    "arguments", [orjson.dumps("```diff\n" + PATCH + "```").decode(), orjson.dumps({"patch": PATCH}).decode()]
)
async def test_cx04_a_model_that_wraps_the_patch(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, arguments: str, mode: str
) -> None:
    """An OpenAI-compatible model that answers a bare JSON string with the patch in a code fence, or an
    object of another name: Codex still gets the raw patch."""
    fake.enqueue(
        Script(
            text="", tool_calls=[ToolCall(name="apply_patch", arguments=arguments, id="c")], arg_fragments=3
        )
    )
    proxy = await start(proxy_factory, fake, "openai")
    answer = await run(clients(proxy), mode, model=MODELS["openai"], input="edit", tools=[APPLY_PATCH])
    assert answer.output[0].type == "custom_tool_call" and answer.output[0].input == PATCH


async def test_cx04_a_stream_of_raw_patch_arguments(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    """The model calls the function with the patch itself, not JSON (what a free-form tool is meant to
    get): the streamed arguments are the input, and the stream has the custom tool call input events."""
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="apply_patch", arguments=PATCH, id="c")], arg_fragments=4)
    )
    proxy = await start(proxy_factory, fake, "openai")
    seen: list[str] = []
    async with clients(proxy).responses.stream(
        model=MODELS["openai"], input="edit", tools=[APPLY_PATCH]
    ) as stream:
        async for event in stream:
            seen.append(event.type)
            if event.type == "response.custom_tool_call_input.done":
                assert event.input == PATCH
        final = await stream.get_final_response()
    assert final.output[0].input == PATCH
    assert "response.custom_tool_call_input.delta" in seen and "response.custom_tool_call_input.done" in seen


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx04_tool_choice_names_the_custom_tool(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    proxy = await start(proxy_factory, fake, upstream)
    await clients(proxy).responses.create(
        model=MODELS[upstream],
        input="edit",
        tools=[APPLY_PATCH],
        tool_choice={"type": "custom", "name": "apply_patch"},
    )
    choice = upstream_body(fake)["tool_choice"]
    if upstream == "openai":
        assert choice == {"type": "function", "function": {"name": "apply_patch"}}
    else:
        assert choice["type"] == "tool" and choice["name"] == "apply_patch"


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx05_additional_tools_and_a_client_tool_search(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    """Tools sent as an ``additional_tools`` item reach the upstream; the model's tool search comes back
    as a ``tool_search_call``; once its ``tool_search_output`` loaded a namespace's tool, the model calls
    that tool and the client gets it named as it knows it."""
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="tool_search", arguments={"query": "calendar"}, id="s1")]),
        Script(
            text="",
            tool_calls=[ToolCall(name="calendar__create_event", arguments={"title": "Lunch"}, id="f1")],
        ),
    )
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    extra = {"type": "additional_tools", "role": "developer", "tools": [APPLY_PATCH, TOOL_SEARCH]}
    turn: list[dict[str, Any]] = [extra, {"role": "user", "content": "add lunch to my calendar"}]
    first = await run(sdk, mode, model=MODELS[upstream], input=turn)
    assert sorted(declared(upstream_body(fake))) == ["apply_patch", "tool_search"]
    search = first.output[0]
    assert (search.type, search.call_id, search.execution, search.arguments) == (
        "tool_search_call",
        "s1",
        "client",
        {"query": "calendar"},
    )
    loaded = {
        "type": "tool_search_output",
        "call_id": "s1",
        "execution": "client",
        "status": "completed",
        "tools": [CALENDAR],
    }
    second = await run(sdk, mode, model=MODELS[upstream], input=[*turn, as_input(search), loaded])
    body = upstream_body(fake)
    assert sorted(declared(body)) == ["apply_patch", "calendar__create_event", "tool_search"]
    calls, results = history(body)
    assert calls == [("s1", "tool_search", {"query": "calendar"})]
    assert results == [("s1", "Tools loaded: calendar__create_event")]
    made = second.output[0]
    assert (made.type, made.namespace, made.name) == ("function_call", "calendar", "create_event")


@pytest.mark.parametrize("mode", ["create", "stream"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx05_local_shell_and_shell_calls(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str, mode: str
) -> None:
    fake.enqueue(
        Script(
            text="",
            tool_calls=[
                ToolCall(name="local_shell", arguments={"command": ["ls", "-la"], "workdir": "/w"}, id="l1"),
                ToolCall(name="shell", arguments={"commands": ["pwd"], "timeout_ms": 5000}, id="s1"),
            ],
            arg_fragments=2,
        ),
        Script(text="Looked around."),
    )
    proxy = await start(proxy_factory, fake, upstream)
    sdk = clients(proxy)
    tools = [{"type": "local_shell"}, {"type": "shell", "environment": {"type": "local"}}]
    first = await run(sdk, mode, model=MODELS[upstream], input="look around", tools=tools)
    local, shell = first.output
    assert local.type == "local_shell_call" and local.call_id == "l1"
    assert (local.action.command, local.action.working_directory) == (["ls", "-la"], "/w")
    assert shell.type == "shell_call" and shell.call_id == "s1"
    assert (shell.action.commands, shell.action.timeout_ms) == (["pwd"], 5000)
    outputs = [
        {"type": "local_shell_call_output", "id": "l1", "output": "a.txt\nb.txt"},
        {
            "type": "shell_call_output",
            "call_id": "s1",
            "output": [{"stdout": "/w\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
        },
    ]
    turn = [{"role": "user", "content": "look around"}, as_input(local), as_input(shell), *outputs]
    second = await run(sdk, mode, model=MODELS[upstream], input=turn, tools=tools)
    assert second.output_text == "Looked around."
    calls, results = history(upstream_body(fake))
    assert calls == [
        ("l1", "local_shell", {"command": ["ls", "-la"], "workdir": "/w"}),
        ("s1", "shell", {"commands": ["pwd"], "timeout_ms": 5000}),
    ]
    assert results == [("l1", "a.txt\nb.txt"), ("s1", "/w\n\nexit code: 0")]


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_cx05_an_untranslatable_item_is_a_400_naming_it(
    proxy_factory: Any, fake: FakeUpstream, clients: Any, upstream: str
) -> None:
    proxy = await start(proxy_factory, fake, upstream)
    turn = [
        {"role": "user", "content": "x"},
        {"type": "mcp_call", "id": "m1", "server_label": "s", "name": "n", "arguments": "{}"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await clients(proxy).responses.create(model=MODELS[upstream], input=turn)
    assert caught.value.body["message"] == "input[1].type: unsupported input item 'mcp_call'"
    assert caught.value.body["type"] == "invalid_request_error"
    assert not fake.requests  # refused before anything went upstream


async def test_cx04_raw_patch_text_from_a_non_streaming_upstream_is_kept_whole(
    proxy_factory: Any, fake: FakeUpstream, clients: Any
) -> None:
    """A model that answers the free-form tool with the patch itself as the arguments (not JSON): a
    whole (non-streamed) answer keeps it as the input, where broken JSON arguments are repaired to {}."""
    fake.enqueue(Script(text="", tool_calls=[ToolCall(id="call_p1", name="apply_patch", arguments=PATCH)]))
    sdk = clients(await start(proxy_factory, fake, "openai"))
    response = await sdk.responses.create(model=MODELS["openai"], input="Add hello.txt", tools=[APPLY_PATCH])
    (call,) = [item for item in response.output if item.type == "custom_tool_call"]
    assert call.input == PATCH and call.call_id == "call_p1"
