"""The Responses dialect's tools and items beyond function tools, as the Codex CLI sends them (CX-04,
CX-05), unit by unit and pure: custom (free-form) tools, ``additional_tools``, ``tool_search``,
``local_shell`` and ``shell``, their call and output items in a history, and their calls in an answer,
whole and streamed.

Shapes from codex-rs (``protocol/src/models.rs`` ``ResponseItem``; ``tools/src/apply_patch_tool.rs`` and
its Lark grammar) and the ``openai`` SDK's types, which every answer and event here is validated against
(the strict helpers of ``test_responses``). Why these matter: proxies that drop or reshape them break
Codex's edits (router-for-me/CLIProxyAPI#5753, decolua/9router#1371, CommandCodeAI/command-code#885).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rawproxy import ir
from rawproxy.dialects.openai_responses.items import custom_input
from rawproxy.dialects.openai_responses.tools import GRAMMAR_LIMIT
from tests.dialects.test_responses import (
    answer,
    items,
    message,
    msg,
    parse,
    refused,
    run,
    text_block,
    tool_block,
)

# Codex's apply_patch grammar (codex-rs/tools/src/tool_apply_patch.lark)
GRAMMAR = """start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?

hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?

filename: /(.+)/
add_line: "+" /(.*)/ LF -> line

change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF

%import common.LF
"""
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
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["query"],
    },
}
CALENDAR = {
    "type": "namespace",
    "name": "mcp__calendar__",
    "description": "Calendar tools",
    "tools": [{"type": "function", "name": "create_event", "defer_loading": True, "parameters": {}}],
}


def tool(request: ir.Request, name: str) -> ir.Tool:
    found = [t for t in request.tools if t.name == name]
    assert len(found) == 1, [t.name for t in request.tools]
    return found[0]


# ========================================================================= CX-04 custom tools: requests


def test_cx04_custom_tool_is_a_function_of_one_string_with_its_grammar() -> None:
    request = parse(tools=[APPLY_PATCH])
    patch = tool(request, "apply_patch")
    assert patch.client_kind == "custom"
    assert patch.input_schema["required"] == ["input"]
    assert patch.input_schema["properties"] == {
        "input": {"type": "string", "description": "The whole input, as raw text"}
    }
    assert patch.description is not None
    assert patch.description.startswith(APPLY_PATCH["description"])
    assert "The input must follow this lark grammar:\n" + GRAMMAR in patch.description
    assert request.echo["tool_kinds"] == {"apply_patch": "custom"}


def test_cx04_custom_tool_grammar_is_cut_at_the_limit_and_says_so() -> None:
    long = "start: " + "x" * (GRAMMAR_LIMIT * 2)
    request = parse(
        tools=[{**APPLY_PATCH, "format": {"type": "grammar", "syntax": "regex", "definition": long}}]
    )
    description = tool(request, "apply_patch").description or ""
    assert "this regex grammar" in description
    assert long[:GRAMMAR_LIMIT] in description and long not in description
    assert description.endswith(f"[the grammar is cut here: {len(long)} characters in all]")


@pytest.mark.parametrize("fmt", [{"type": "text"}, None])
def test_cx04_custom_tool_without_a_grammar(fmt: Any) -> None:
    declared = {"type": "custom", "name": "exec", "description": "Run code"} | (
        {"format": fmt} if fmt else {}
    )
    description = tool(parse(tools=[declared]), "exec").description or ""
    assert description.startswith("Run code\n\nThis tool takes free-form text")
    assert "grammar" not in description


def test_cx04_custom_tool_bad_declarations_are_400() -> None:
    refused(
        r"^tools\[0\]\.format: expected \{'type': 'text'\}", tools=[{**APPLY_PATCH, "format": {"type": "x"}}]
    )
    refused(
        r"^tools\[0\]\.format\.definition: expected a string",
        tools=[{**APPLY_PATCH, "format": {"type": "grammar", "syntax": "lark"}}],
    )
    refused(r"^tools\[0\]\.name: expected a string", tools=[{"type": "custom"}])


def test_cx04_custom_tool_inside_a_namespace() -> None:
    """Codex's "responses lite" tools: a ``functions`` namespace holding the custom ``exec`` tool."""
    space = {"type": "namespace", "name": "functions", "tools": [{"type": "custom", "name": "exec"}]}
    request = parse(tools=[space])
    assert tool(request, "functions__exec").client_kind == "custom"
    assert request.echo["namespaces"] == {"functions__exec": ("functions", "exec")}


def test_cx04_custom_tool_call_and_output_in_history() -> None:
    request = items(
        msg("user", "add hello.txt"),
        {
            "type": "custom_tool_call",
            "id": "ctc_1",
            "status": "completed",
            "call_id": "call_p",
            "name": "apply_patch",
            "input": PATCH,
        },
        {"type": "custom_tool_call_output", "call_id": "call_p", "name": "apply_patch", "output": "Done!"},
        {
            "type": "custom_tool_call",
            "call_id": "call_e",
            "name": "exec",
            "namespace": "functions",
            "input": "ls",
        },
        {
            "type": "custom_tool_call_output",
            "call_id": "call_e",
            "output": [{"type": "input_text", "text": "a.txt"}],
        },
        tools=[APPLY_PATCH],
    )
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert request.messages[1].content == [
        ir.ToolUseBlock(id="call_p", name="apply_patch", input={"input": PATCH})
    ]
    assert request.messages[2].content == [
        ir.ToolResultBlock(tool_use_id="call_p", content=[ir.TextBlock(text="Done!")])
    ]
    assert request.messages[3].content == [
        ir.ToolUseBlock(id="call_e", name="functions__exec", input={"input": "ls"})
    ]
    assert request.messages[4].content == [
        ir.ToolResultBlock(tool_use_id="call_e", content=[ir.TextBlock(text="a.txt")])
    ]


def test_cx04_custom_tool_call_errors_name_the_item() -> None:
    refused(
        r"^input\[1\]\.input: expected a string",
        input=[msg("user", "x"), {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch"}],
    )
    refused(
        r"^input\[1\]\.call_id: field required",
        input=[msg("user", "x"), {"type": "custom_tool_call_output", "output": "ok"}],
    )


def test_cx04_tool_choice_names_a_custom_tool() -> None:
    chosen = parse(tools=[APPLY_PATCH], tool_choice={"type": "custom", "name": "apply_patch"})
    assert chosen.tool_choice == ir.ToolChoice(type="tool", name="apply_patch")
    allowed = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "custom", "name": "apply_patch"}]}
    request = parse(tools=[APPLY_PATCH, {"type": "local_shell"}], tool_choice=allowed)
    assert [t.name for t in request.tools] == ["apply_patch"]


# =========================================================================== CX-04 custom tools: answers


@pytest.mark.parametrize(
    "arguments",
    [
        orjson.dumps({"input": PATCH}).decode(),  # what the function was declared to take
        orjson.dumps(PATCH).decode(),  # a bare JSON string
        orjson.dumps({"patch": PATCH}).decode(),  # an object of one string, named otherwise
        PATCH,  # the raw text, as the tool is meant to be called
        "```diff\n" + PATCH + "```",  # fenced
        orjson.dumps({"input": "```\n" + PATCH + "```\n"}).decode(),  # fenced inside the wrapper
        orjson.dumps({"value": PATCH}).decode(),  # a bare string as the OpenAI upstream parses it
    ],
)
def test_cx04_custom_input_is_unwrapped(arguments: str) -> None:
    assert custom_input(arguments) == PATCH


def test_cx04_custom_input_edge_cases() -> None:
    assert custom_input("") == ""
    assert custom_input("{}") == ""
    assert custom_input('{"a": 1, "b": 2}') == '{"a": 1, "b": 2}'  # no string in it: the text as sent
    assert custom_input("```inline```") == "```inline```"  # no fence line: not a fence
    assert custom_input('{"input": "unterminated') == '{"input": "unterminated'


def test_cx04_whole_answer_has_a_custom_tool_call_item() -> None:
    space = {
        "type": "namespace",
        "name": "functions",
        "description": "Code mode",
        "tools": [{"type": "custom", "name": "exec"}],
    }
    request = parse(tools=[APPLY_PATCH, space])
    body = answer(
        [
            ir.TextBlock(text="Editing."),
            ir.ToolUseBlock(id="call_p", name="apply_patch", input={"input": PATCH}),
            ir.ToolUseBlock(id="call_e", name="functions__exec", input={"input": "ls"}),
        ],
        request,
        stop=ir.StopReason.TOOL_USE,
    )
    call, namespaced = body["output"][1], body["output"][2]
    assert call["type"] == "custom_tool_call" and call["id"].startswith("ctc_")
    assert (call["call_id"], call["name"], call["input"]) == ("call_p", "apply_patch", PATCH)
    assert "arguments" not in call
    assert (namespaced["namespace"], namespaced["name"], namespaced["input"]) == ("functions", "exec", "ls")


def test_cx04_answer_round_trips_as_the_next_input() -> None:
    """The output items of one answer are the history of the next request (Codex sends them back)."""
    request = parse(tools=[APPLY_PATCH])
    body = answer([ir.ToolUseBlock(id="call_p", name="apply_patch", input={"input": PATCH})], request)
    output = {"type": "custom_tool_call_output", "call_id": "call_p", "output": "ok"}
    again = items(msg("user", "edit"), *body["output"], output, tools=[APPLY_PATCH])
    assert again.messages[1].content == [
        ir.ToolUseBlock(id="call_p", name="apply_patch", input={"input": PATCH})
    ]


def test_cx04_stream_custom_tool_call_events() -> None:
    request = parse(tools=[APPLY_PATCH])
    wrapped = orjson.dumps({"input": "```\n" + PATCH + "```"}).decode()
    fragments = [wrapped[i : i + 7] for i in range(0, len(wrapped), 7)]
    stream = run(
        message(
            text_block(0, "Editing."),
            tool_block(1, "call_p", "apply_patch", *fragments),
            stop=ir.StopReason.TOOL_USE,
        ),
        request,
    )
    added = stream.of("response.output_item.added")[1]["item"]
    assert (added["type"], added["call_id"], added["name"], added["input"]) == (
        "custom_tool_call",
        "call_p",
        "apply_patch",
        "",
    )
    assert not stream.of("response.function_call_arguments.delta")
    delta = stream.one("response.custom_tool_call_input.delta")
    done = stream.one("response.custom_tool_call_input.done")
    assert delta["delta"] == done["input"] == PATCH
    assert delta["item_id"] == done["item_id"] == added["id"]
    names = stream.names
    assert names.index("response.custom_tool_call_input.done") < names.index(
        "response.output_item.done", names.index("response.custom_tool_call_input.done")
    )
    final = stream.end["output"][1]
    assert final == stream.done_items()[1]
    assert (final["type"], final["input"], final["status"]) == ("custom_tool_call", PATCH, "completed")


def test_cx04_stream_custom_tool_call_with_raw_text_arguments() -> None:
    """An OpenAI-compatible model that calls the function with the patch itself, not JSON."""
    request = parse(tools=[APPLY_PATCH])
    stream = run(message(tool_block(0, "call_p", "apply_patch", PATCH[:10], PATCH[10:])), request)
    assert stream.one("response.custom_tool_call_input.done")["input"] == PATCH
    assert stream.end["output"][0]["input"] == PATCH


def test_cx04_failed_stream_shows_the_custom_call_incomplete() -> None:
    request = parse(tools=[APPLY_PATCH])
    events: list[ir.StreamEvent] = [
        ir.MessageStart("msg_up", "up", ir.Usage()),
        ir.BlockStart(0, ir.ToolUseBlock(id="call_p", name="apply_patch", input={})),
        ir.InputJsonDelta(0, '{"input": "*** Begin'),
        ir.StreamError(ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="boom")),
    ]
    stream = run(events, request)
    item = stream.one("response.failed")["response"]["output"][0]
    assert (item["type"], item["status"], item["input"]) == (
        "custom_tool_call",
        "incomplete",
        '{"input": "*** Begin',
    )


# ================================================================================ CX-05 more items: requests


def test_cx05_additional_tools_item_declares_tools() -> None:
    """Codex's "responses lite" mode sends its tools as an input item, not as ``tools``."""
    request = items(
        {
            "type": "additional_tools",
            "id": "at_1",
            "role": "developer",
            "tools": [APPLY_PATCH, {"type": "function", "name": "shell_command"}],
        },
        msg("user", "hi"),
        {"type": "additional_tools", "role": "developer", "tools": [APPLY_PATCH]},  # again: the same tool
        tools=[{"type": "function", "name": "update_plan"}],
    )
    assert [t.name for t in request.tools] == ["update_plan", "apply_patch", "shell_command"]
    assert request.echo["tool_kinds"] == {"apply_patch": "custom"}
    assert [m.role for m in request.messages] == ["user"]


def test_cx05_additional_tools_errors() -> None:
    refused(
        r"^input\[0\]\.tools: expected a list",
        input=[{"type": "additional_tools", "role": "developer"}, msg("user", "x")],
    )
    refused(
        r"^input\[0\]\.tools\[0\]\.type: unsupported tool type 'teleport'",
        input=[{"type": "additional_tools", "tools": [{"type": "teleport"}]}, msg("user", "x")],
    )
    refused(
        r"^input\[0\]\.tools\[0\]: the name 'apply_patch' is declared twice, as two kinds of tool",
        input=[
            {"type": "additional_tools", "tools": [{"type": "function", "name": "apply_patch"}]},
            msg("user", "x"),
        ],
        tools=[APPLY_PATCH],
    )


def test_cx05_client_tool_search_is_a_function() -> None:
    request = parse(tools=[TOOL_SEARCH])
    search = tool(request, "tool_search")
    assert (search.client_kind, search.description) == ("tool_search", "Search deferred MCP tools")
    assert search.input_schema == TOOL_SEARCH["parameters"]
    hosted = parse(tools=[{"type": "tool_search"}, CALENDAR])  # OpenAI runs it over the deferred tools
    assert [t.name for t in hosted.tools] == ["mcp__calendar____create_event"]


def test_cx05_tool_search_call_and_output_in_history() -> None:
    request = items(
        msg("user", "add a meeting"),
        {
            "type": "tool_search_call",
            "id": "tsc_1",
            "call_id": "search-1",
            "execution": "client",
            "status": "completed",
            "arguments": {"query": "calendar create", "limit": 1},
        },
        {
            "type": "tool_search_output",
            "call_id": "search-1",
            "execution": "client",
            "status": "completed",
            "tools": [CALENDAR],
        },
        tools=[TOOL_SEARCH],
    )
    assert request.messages[1].content == [
        ir.ToolUseBlock(id="search-1", name="tool_search", input={"query": "calendar create", "limit": 1})
    ]
    result = request.messages[2].content[0]
    assert isinstance(result, ir.ToolResultBlock) and result.tool_use_id == "search-1"
    assert result.content == [ir.TextBlock(text="Tools loaded: mcp__calendar____create_event")]
    # what the search loaded is declared: the model may call it now
    assert [t.name for t in request.tools] == ["tool_search", "mcp__calendar____create_event"]
    assert request.echo["namespaces"]["mcp__calendar____create_event"] == ("mcp__calendar__", "create_event")


def test_cx05_server_tool_search_records_pair_without_call_ids() -> None:
    request = items(
        msg("user", "x"),
        {
            "type": "tool_search_call",
            "id": "tsc_9",
            "execution": "server",
            "status": "completed",
            "arguments": {"query": "q"},
        },
        {
            "type": "tool_search_output",
            "id": "tso_9",
            "execution": "server",
            "status": "completed",
            "tools": [],
        },
    )
    call, result = request.messages[1].content[0], request.messages[2].content[0]
    assert isinstance(call, ir.ToolUseBlock) and isinstance(result, ir.ToolResultBlock)
    assert call.id == result.tool_use_id == "tsc_9"
    assert result.content == [ir.TextBlock(text="No tools were found.")]
    refused(
        r"^input\[1\]\.call_id: field required",
        input=[msg("user", "x"), {"type": "tool_search_output", "tools": []}],
    )
    refused(
        r"^input\[1\]\.tools: expected a list",
        input=[msg("user", "x"), {"type": "tool_search_output", "call_id": "s"}],
    )


def test_cx05_shell_tools_are_functions() -> None:
    request = parse(tools=[{"type": "local_shell"}, {"type": "shell", "environment": {"type": "local"}}])
    assert [(t.name, t.client_kind) for t in request.tools] == [
        ("local_shell", "local_shell"),
        ("shell", "shell"),
    ]
    assert tool(request, "local_shell").input_schema["required"] == ["command"]
    assert tool(request, "shell").input_schema["required"] == ["commands"]
    refused(
        r"^tools\[0\]\.environment: the shell tool is supported with a local environment only .*'container_auto'",
        tools=[{"type": "shell", "environment": {"type": "container_auto"}}],
    )
    assert parse(tools=[{"type": "shell"}], tool_choice={"type": "shell"}).tool_choice == ir.ToolChoice(
        type="tool", name="shell"
    )


def test_cx05_shell_calls_and_outputs_in_history() -> None:
    local_call = {
        "type": "local_shell_call",
        "id": "lsh_1",
        "call_id": "call_l",
        "status": "completed",
        "action": {
            "type": "exec",
            "command": ["ls", "-la"],
            "working_directory": "/w",
            "timeout_ms": 5000,
            "env": {},
        },
    }
    shell_call = {
        "type": "shell_call",
        "call_id": "call_s",
        "action": {"commands": ["pwd", "false"], "max_output_length": 100},
    }
    shell_output = {
        "type": "shell_call_output",
        "call_id": "call_s",
        "output": [
            {"stdout": "/w\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}},
            {"stdout": "", "stderr": "oops", "outcome": {"type": "exit", "exit_code": 1}},
            {"stdout": "", "stderr": "", "outcome": {"type": "timeout"}},
        ],
    }
    request = items(
        msg("user", "look around"),
        local_call,
        {"type": "local_shell_call_output", "id": "call_l", "output": '{"output": "a.txt"}'},
        shell_call,
        shell_output,
    )
    assert request.messages[1].content == [
        ir.ToolUseBlock(
            id="call_l",
            name="local_shell",
            input={"command": ["ls", "-la"], "workdir": "/w", "timeout_ms": 5000},
        )
    ]
    assert request.messages[2].content == [
        ir.ToolResultBlock(tool_use_id="call_l", content=[ir.TextBlock(text='{"output": "a.txt"}')])
    ]
    assert request.messages[3].content == [
        ir.ToolUseBlock(
            id="call_s", name="shell", input={"commands": ["pwd", "false"], "max_output_length": 100}
        )
    ]
    text = "/w\n\nexit code: 0\n\nstderr:\noops\nexit code: 1\n\ntimed out"
    assert request.messages[4].content == [
        ir.ToolResultBlock(tool_use_id="call_s", content=[ir.TextBlock(text=text)])
    ]


def test_cx05_shell_item_errors_name_the_item() -> None:
    refused(
        r"^input\[1\]\.action: expected an object",
        input=[msg("user", "x"), {"type": "shell_call", "call_id": "c"}],
    )
    refused(
        r"^input\[1\]\.action\.command: expected a list of strings",
        input=[
            msg("user", "x"),
            {"type": "local_shell_call", "call_id": "c", "action": {"type": "exec", "command": "ls"}},
        ],
    )
    refused(
        r"^input\[1\]\.output: expected a list of outputs",
        input=[msg("user", "x"), {"type": "shell_call_output", "call_id": "c", "output": "x"}],
    )


@pytest.mark.parametrize(
    "kind", ["mcp_call", "apply_patch_call", "image_generation_call", "agent_message", "xyz"]
)
def test_cx05_untranslatable_items_are_400_with_type_and_index(kind: str) -> None:
    history = [
        msg("user", "a"),
        msg("assistant", "b"),
        msg("user", "c"),
        msg("assistant", "d"),
        msg("user", "e"),
        msg("user", "f"),
    ]
    refused(rf"^input\[6\]\.type: unsupported input item '{kind}'$", input=[*history, {"type": kind}])


def test_cx05_reasoning_text_without_a_summary_is_kept() -> None:
    """A reasoning item that carries its text as ``content`` only (open-weight models through Codex) is
    the thinking, not dropped."""
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "think"}],
    }
    request = items(msg("user", "q"), reasoning, msg("assistant", "a"))
    assert request.messages[1].content[0] == ir.ThinkingBlock(thinking="think")


# ================================================================================= CX-05 more items: answers


def test_cx05_whole_answer_has_the_kinds_own_items() -> None:
    request = parse(tools=[TOOL_SEARCH, {"type": "local_shell"}, {"type": "shell"}])
    body = answer(
        [
            ir.ToolUseBlock(id="c1", name="tool_search", input={"query": "calendar", "limit": 2}),
            ir.ToolUseBlock(
                id="c2", name="local_shell", input={"command": ["ls"], "workdir": "/w", "timeout_ms": 9}
            ),
            ir.ToolUseBlock(id="c3", name="shell", input={"commands": ["pwd"], "max_output_length": 50}),
            ir.ToolUseBlock(id="c4", name="local_shell", input={"command": "echo hi"}),
        ],
        request,
        stop=ir.StopReason.TOOL_USE,
    )
    search, local, shell, line = body["output"]
    assert search == {
        "id": search["id"],
        "type": "tool_search_call",
        "status": "completed",
        "call_id": "c1",
        "execution": "client",
        "arguments": {"query": "calendar", "limit": 2},
    }
    assert local["type"] == "local_shell_call" and local["call_id"] == "c2"
    assert local["action"] == {
        "type": "exec",
        "command": ["ls"],
        "env": {},
        "working_directory": "/w",
        "timeout_ms": 9,
    }
    assert shell["type"] == "shell_call" and shell["action"] == {"commands": ["pwd"], "max_output_length": 50}
    assert line["action"]["command"] == ["bash", "-lc", "echo hi"]  # a command line, run by a shell


def test_cx05_stream_shell_and_search_calls() -> None:
    request = parse(tools=[TOOL_SEARCH, {"type": "local_shell"}, {"type": "shell"}])
    stream = run(
        message(
            tool_block(0, "c1", "tool_search", '{"query":', ' "cal"}'),
            tool_block(1, "c2", "local_shell", '{"command": ["ls"]}'),
            tool_block(2, "c3", "shell", '{"commands": ["pwd"]}'),
            stop=ir.StopReason.TOOL_USE,
        ),
        request,
    )
    added = [e["item"]["type"] for e in stream.of("response.output_item.added")]
    assert added == ["tool_search_call", "local_shell_call", "shell_call"]
    assert not stream.of("response.function_call_arguments.delta")
    search, local, shell = stream.end["output"]
    assert search["arguments"] == {"query": "cal"} and search["status"] == "completed"
    assert local["action"]["command"] == ["ls"]
    assert shell["action"]["commands"] == ["pwd"]
