"""The Responses API, client role: content parts, and the tool-call items that are not function calls,
both ways (CX-04, CX-05).

What the Codex CLI sends and expects (codex-rs/protocol/src/models.rs ``ResponseItem``; the ``openai``
SDK's ``ResponseInputItem`` and ``ResponseOutputItem`` unions):

- ``custom_tool_call`` ``{call_id, name, input, namespace?}``: a free-form tool's call, its ``input`` the
  raw text (Codex's apply_patch patch); answered by ``custom_tool_call_output`` ``{call_id, output}``.
- ``tool_search_call`` ``{call_id, execution, arguments}``: a client-run tool search; answered by
  ``tool_search_output`` ``{call_id, execution, tools}``, whose tools the model may call from then on
  (they are declared by ``tools.ToolSet``).
- ``local_shell_call`` ``{call_id, action: {type: "exec", command, working_directory, timeout_ms, env}}``
  answered by ``local_shell_call_output`` ``{call_id (or id), output}``; ``shell_call``
  ``{call_id, action: {commands, timeout_ms, max_output_length}}`` answered by ``shell_call_output``
  ``{call_id, output: [{stdout, stderr, outcome}]}``.

In a history each call becomes a tool call of the function its tool became (``custom``: ``{"input":
...}``), and each output a tool result. In an answer, a call of such a function becomes the kind's item
again (:func:`call_item`); a custom tool's ``input`` is unwrapped from whatever the model sent: the
``{"input": "..."}`` it was asked for, a bare JSON string, a JSON object of one string, or the raw text,
and a Markdown code fence around the whole of it is taken off (router-for-me/CLIProxyAPI#5753,
decolua/9router#1371: a model wraps a patch).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from ... import ir
from ...errors import ClientError
from ...ids import random_hex
from ...toolcalls import parse_arguments
from .._common import file_block, image_block, shown
from .tools import CUSTOM_INPUT, flat_name

# item type -> the kind of tool that made it
CALLS: Final = {
    "custom_tool_call": "custom",
    "tool_search_call": "tool_search",
    "local_shell_call": "local_shell",
    "shell_call": "shell",
}
OUTPUTS: Final = frozenset(
    {"custom_tool_call_output", "tool_search_output", "local_shell_call_output", "shell_call_output"}
)
_ITEM_TYPES: Final = {kind: item_type for item_type, kind in CALLS.items()}
_ID_PREFIXES: Final = {"custom": "ctc_", "tool_search": "tsc_", "local_shell": "lsh_", "shell": "sh_"}
# The whole input in one Markdown code fence (an info string allowed): what is inside it is the input.
_FENCED: Final = re.compile(r"\A\s*```[^\n`]*\n(.*?)```\s*\Z", re.DOTALL)


def text_of(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ClientError(f"{where}: expected a string")
    return value


def content_parts(content: Any, where: str) -> list[ir.Block]:
    """A message's or a tool output's content: a string, or a list of parts."""
    if isinstance(content, str):
        return [ir.TextBlock(text=content)]
    if not isinstance(content, list):
        raise ClientError(f"{where}: expected a string or a list of content parts")
    blocks: list[ir.Block] = []
    for i, part in enumerate(content):
        pwhere = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise ClientError(f"{pwhere}: expected an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            blocks.append(ir.TextBlock(text=text_of(part.get("text"), f"{pwhere}.text")))
        elif kind == "refusal":
            blocks.append(ir.TextBlock(text=str(part.get("refusal") or "")))
        elif kind == "input_image":
            if part.get("file_id") and not part.get("image_url"):
                raise ClientError(f"{pwhere}: file ids are not supported; send image_url (a URL or data URL)")
            blocks.append(image_block(part.get("image_url"), pwhere))
        elif kind == "input_file":
            if part.get("file_url"):
                url = text_of(part["file_url"], f"{pwhere}.file_url")
                blocks.append(ir.DocumentBlock(url=url, title=part.get("filename") or None))
            else:
                file = {"file_data": part.get("file_data"), "filename": part.get("filename")}
                blocks.append(file_block({"file": file}, pwhere))
        elif kind == "input_audio":
            raise ClientError(f"{pwhere}: audio input is not supported through this proxy")
        else:
            raise ClientError(f"{pwhere}.type: unsupported content part {shown(kind)}")
    return blocks


def result_parts(output: Any, where: str) -> list[ir.TextBlock | ir.ImageBlock | ir.DocumentBlock]:
    """A tool output's content as a tool result's."""
    return [
        b
        for b in content_parts("" if output is None else output, where)
        if isinstance(b, ir.TextBlock | ir.ImageBlock | ir.DocumentBlock)
    ]


# ------------------------------------------------------------------------------- history -> IR


def _call_id(item: dict[str, Any], where: str, *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
    raise ClientError(f"{where}.call_id: field required")


def _action(item: dict[str, Any], where: str) -> dict[str, Any]:
    action = item.get("action")
    if not isinstance(action, dict):
        raise ClientError(f"{where}.action: expected an object")
    return action


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientError(f"{where}: expected a list of strings")
    return value


def call_block(item_type: str, item: dict[str, Any], where: str) -> ir.ToolUseBlock:
    """A call item of the history as the tool call of the function its tool became."""
    kind = CALLS[item_type]
    if kind == "custom":
        name = text_of(item.get("name"), f"{where}.name")
        text = text_of(item.get("input"), f"{where}.input")
        return ir.ToolUseBlock(
            id=_call_id(item, where, "call_id"),
            name=flat_name(item.get("namespace"), name),
            input={CUSTOM_INPUT: text},
        )
    if kind == "tool_search":
        call_id = _call_id(item, where, "call_id", "id")  # a server-run search's record has no call_id
        return ir.ToolUseBlock(id=call_id, name=kind, input=parse_arguments(item.get("arguments"), call_id))
    action = _action(item, where)
    arguments: dict[str, Any]
    if kind == "local_shell":
        call_id = _call_id(item, where, "call_id", "id")  # Codex: id on Chat Completions, call_id here
        arguments = {"command": _strings(action.get("command"), f"{where}.action.command")}
        if isinstance(action.get("working_directory"), str):
            arguments["workdir"] = action["working_directory"]
    else:
        call_id = _call_id(item, where, "call_id")
        arguments = {"commands": _strings(action.get("commands"), f"{where}.action.commands")}
        if isinstance(action.get("max_output_length"), int):
            arguments["max_output_length"] = action["max_output_length"]
    if isinstance(action.get("timeout_ms"), int):
        arguments["timeout_ms"] = action["timeout_ms"]
    return ir.ToolUseBlock(id=call_id, name=kind, input=arguments)


def _shell_text(output: Any, where: str) -> str:
    """A shell_call_output's chunks as the text the model reads: stdout, stderr, how it ended."""
    if not isinstance(output, list):
        raise ClientError(f"{where}: expected a list of outputs")
    chunks: list[str] = []
    for j, entry in enumerate(output):
        if not isinstance(entry, dict):
            raise ClientError(f"{where}[{j}]: expected an object")
        lines = [entry["stdout"]] if isinstance(entry.get("stdout"), str) and entry["stdout"] else []
        if isinstance(entry.get("stderr"), str) and entry["stderr"]:
            lines.append("stderr:\n" + entry["stderr"])
        outcome = entry.get("outcome")
        if isinstance(outcome, dict) and outcome.get("type") == "exit":
            lines.append(f"exit code: {outcome.get('exit_code')}")
        elif isinstance(outcome, dict) and outcome.get("type") == "timeout":
            lines.append("timed out")
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks)


def _loaded_text(tools: Any) -> str:
    """What a tool search found, for the model: the names it may call now (their declarations are
    sent as tools)."""
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            names += [
                flat_name(tool.get("name"), t["name"])
                for t in tool["tools"]
                if isinstance(t, dict) and isinstance(t.get("name"), str)
            ]
        elif isinstance(tool.get("name"), str):
            names.append(tool["name"])
    return "Tools loaded: " + ", ".join(names) if names else "No tools were found."


def result_block(
    item_type: str, item: dict[str, Any], where: str, search_id: str | None
) -> ir.ToolResultBlock:
    """An output item of the history as a tool result. ``search_id``: the last tool search call's id, for
    a tool_search_output without a call_id of its own (a server-run search's record)."""
    output = item.get("output")
    if item_type == "custom_tool_call_output":
        call_id = _call_id(item, where, "call_id")
        return ir.ToolResultBlock(tool_use_id=call_id, content=result_parts(output, f"{where}.output"))
    if item_type == "tool_search_output":
        given = item.get("call_id")
        search = given if isinstance(given, str) and given else search_id
        if search is None:
            raise ClientError(f"{where}.call_id: field required")
        if not isinstance(item.get("tools"), list):
            raise ClientError(f"{where}.tools: expected a list")
        return ir.ToolResultBlock(
            tool_use_id=search, content=[ir.TextBlock(text=_loaded_text(item["tools"]))]
        )
    if item_type == "local_shell_call_output":
        call_id = _call_id(item, where, "call_id", "id")  # the SDK's input param names it ``id``
        text = output if isinstance(output, str) else orjson.dumps(output).decode()
        return ir.ToolResultBlock(tool_use_id=call_id, content=[ir.TextBlock(text=text)])
    call_id = _call_id(item, where, "call_id")
    text = _shell_text(output, f"{where}.output")
    return ir.ToolResultBlock(tool_use_id=call_id, content=[ir.TextBlock(text=text)])


# ---------------------------------------------------------------------------------- IR -> answer


def custom_input(arguments: str) -> str:
    """A custom tool's raw input, from the arguments the model gave its function (module docstring)."""
    value: Any = arguments
    stripped = arguments.strip()
    if stripped[:1] in ("{", '"'):
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            value = arguments  # not JSON after all: the raw text itself
    if isinstance(value, dict):
        inner = value.get(CUSTOM_INPUT)
        if not isinstance(inner, str):
            strings = [v for v in value.values() if isinstance(v, str)]
            inner = strings[0] if len(strings) == 1 else ("" if not value else arguments)
        value = inner
    text = value if isinstance(value, str) else arguments
    fenced = _FENCED.match(text)
    return fenced.group(1) if fenced else text


def _command(value: Any) -> list[str]:
    """A command as a list of strings; one string is a shell command line."""
    if isinstance(value, str):
        return ["bash", "-lc", value]
    return [str(v) for v in value] if isinstance(value, list) else []


def call_item(
    kind: str, item_id: str, call_id: str, name: str, arguments: str, status: str, ctx: ir.Context
) -> dict[str, Any]:
    """The output item of a call of a ``kind`` tool's function; ``arguments`` as the model gave them."""
    item: dict[str, Any] = {"id": item_id, "type": _ITEM_TYPES[kind], "status": status, "call_id": call_id}
    if kind == "custom":
        item["name"] = name
        item["input"] = custom_input(arguments)
        named = ctx.echo.get("namespaces", {}).get(name)
        if named is not None:  # a namespace's tool, flattened for the upstream: named as the client knows it
            item["namespace"], item["name"] = named
        return item
    args = parse_arguments(arguments, call_id)
    if kind == "tool_search":
        return item | {"execution": "client", "arguments": args}
    action: dict[str, Any]
    if kind == "local_shell":
        action = {"type": "exec", "command": _command(args.get("command")), "env": {}}
        if isinstance(args.get("workdir"), str):
            action["working_directory"] = args["workdir"]
    else:
        commands = args.get("commands")
        action = {"commands": [commands] if isinstance(commands, str) else _command(commands)}
        if isinstance(args.get("max_output_length"), int):
            action["max_output_length"] = args["max_output_length"]
    if isinstance(args.get("timeout_ms"), int):
        action["timeout_ms"] = args["timeout_ms"]
    return item | {"action": action}


def new_item_id(kind: str) -> str:
    return _ID_PREFIXES[kind] + random_hex(48)
