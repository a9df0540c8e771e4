"""The Responses API, client role, tools: every tool declaration a Responses request carries -> IR tools,
and ``tool_choice``.

Where tools come from: the request's ``tools``, and the ``tools`` of two kinds of input item, gathered by
``items``: ``additional_tools`` (how the Codex CLI sends its tools in its "responses lite" mode:
``{"type": "additional_tools", "role": "developer", "tools": [...]}``) and ``tool_search_output`` (the
deferred tools a client-run tool search loaded; the model may call them from then on). A name is one
tool: declared again (the same tool in every turn of a history) it keeps its first declaration; declared
again as another kind of tool, it is a 400.

Every upstream sees function tools; ``ir.Tool.client_kind`` says what a call goes back to the client as:

- ``function`` as it is; a ``namespace``'s function and custom tools flattened to ``<namespace>__<name>``.
- ``custom`` (free-form; Codex's ``apply_patch`` with its Lark grammar, codex-rs/tools/src/
  apply_patch_tool.rs): a function of one string parameter, ``input`` (what Codex's own JSON variant of
  apply_patch calls it), with the grammar appended to its description, cut at ``GRAMMAR_LIMIT``
  characters; its calls go back as ``custom_tool_call`` items (CX-04).
- ``local_shell``, ``shell`` (a local environment: the client runs it) and ``tool_search`` executed by
  the client: functions of those names, whose calls go back as ``local_shell_call``, ``shell_call`` and
  ``tool_search_call`` items (CX-05). A server-run ``tool_search`` needs no tool here: the deferred tools
  it would search are all sent to the model as they are.
- the hosted ``web_search``: Anthropic's web search server tool (an OpenAI upstream drops it, with a
  warning). Any other hosted tool is a 400 that names it.
"""

from __future__ import annotations

from typing import Any, Final

from ... import ir
from ...errors import ClientError
from .._common import TOOL_CHOICE_WORDS, shown, tool_schema, web_search_tool

NAMESPACE_SEPARATOR: Final = "__"
CUSTOM_INPUT: Final = "input"  # the one parameter of a custom tool's function
GRAMMAR_LIMIT: Final = 8_000  # characters of a custom tool's grammar shown in its description
WEB_SEARCH_TOOLS: Final = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26"})
# Tools the client runs: the model calls a function of this name, the client gets the kind's own item.
CLIENT_RUN: Final = frozenset({"local_shell", "shell", "tool_search"})
# Hosted tools run by OpenAI itself: nothing here can run them.
HOSTED_TOOLS: Final = {
    "file_search": "file search",
    "computer_use_preview": "computer use",
    "computer": "computer use",
    "code_interpreter": "the code interpreter",
    "image_generation": "image generation",
    "mcp": "remote MCP servers",
    "apply_patch": "the hosted apply_patch tool",
}
_STRING_LIST: Final = {"type": "array", "items": {"type": "string"}}
_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    # The fields of a local_shell_call's ``exec`` action the model chooses (platform docs, "Local shell").
    "local_shell": {
        "type": "object",
        "properties": {
            "command": {**_STRING_LIST, "description": "The program and its arguments, one per entry"},
            "workdir": {"type": "string", "description": "The directory to run it in"},
            "timeout_ms": {"type": "integer", "description": "How long it may run, in milliseconds"},
        },
        "required": ["command"],
    },
    # A shell_call's action (platform docs, "Shell").
    "shell": {
        "type": "object",
        "properties": {
            "commands": {**_STRING_LIST, "description": "Shell commands, run one after the other"},
            "timeout_ms": {"type": "integer", "description": "How long they may run, in milliseconds"},
            "max_output_length": {"type": "integer", "description": "Most characters of output to return"},
        },
        "required": ["commands"],
    },
    "tool_search": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What the tools you need should do"}},
        "required": ["query"],
    },
}
_DESCRIPTIONS: Final = {
    "local_shell": "Run a command on the user's machine and see what it printed.",
    "shell": "Run shell commands on the user's machine and see what they printed.",
    "tool_search": "Search for more tools and load the ones found, to call them next.",
}


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ClientError(f"{where}: expected a string")
    return value


def flat_name(namespace: Any, name: str) -> str:
    """A namespace's tool's name as the upstream knows it (its own name when there is no namespace)."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if isinstance(namespace, str) and namespace else name


def _function_tool(tool: dict[str, Any], where: str, name: str) -> ir.Tool:
    schema = tool_schema(tool.get("parameters"), f"{where}.parameters")
    description = tool.get("description")
    return ir.Tool(
        name=name, description=description if isinstance(description, str) else None, input_schema=schema
    )


def _custom_tool(tool: dict[str, Any], where: str, name: str) -> ir.Tool:
    """A free-form tool as a function of one string (CX-04). Neither upstream API can hold a model to a
    grammar, so the grammar is shown to it instead, in the description (Codex's apply_patch grammar is
    about 700 characters; a longer one is cut at ``GRAMMAR_LIMIT``, and the cut said)."""
    description = tool.get("description")
    text = description if isinstance(description, str) else ""
    note = (
        f"This tool takes free-form text, not JSON: send all of it, exactly as it is meant, as the "
        f"`{CUSTOM_INPUT}` string."
    )
    grammar = ""
    fmt = tool.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "grammar"):
            raise ClientError(f"{where}.format: expected {{'type': 'text'}} or {{'type': 'grammar', ...}}")
        if fmt["type"] == "grammar":
            definition = _text(fmt.get("definition"), f"{where}.format.definition")
            syntax = fmt.get("syntax") if isinstance(fmt.get("syntax"), str) else "lark"
            if len(definition) > GRAMMAR_LIMIT:
                definition = (
                    definition[:GRAMMAR_LIMIT]
                    + f"\n[the grammar is cut here: {len(definition)} characters in all]"
                )
            grammar = f"\n\nThe input must follow this {syntax} grammar:\n{definition}"
    schema = {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": "The whole input, as raw text"}},
        "required": [CUSTOM_INPUT],
    }
    return ir.Tool(
        name=name,
        description="\n\n".join(p for p in (text, note) if p) + grammar,
        input_schema=schema,
        client_kind="custom",
    )


def _client_run_tool(tool: dict[str, Any], where: str, kind: str) -> ir.Tool | None:
    """``local_shell``, ``shell`` or ``tool_search`` as a function the model calls and the client runs;
    None for a server-run tool search (nothing to declare: see the module docstring)."""
    schema = _SCHEMAS[kind]
    description = _DESCRIPTIONS[kind]
    if kind == "shell":
        environment = tool.get("environment")
        env_type = environment.get("type") if isinstance(environment, dict) else environment
        if env_type is not None and env_type != "local":
            raise ClientError(
                f"{where}.environment: the shell tool is supported with a local environment only "
                f"(the client runs it), not {shown(env_type)}"
            )
    elif kind == "tool_search":
        if tool.get("execution") != "client":
            return None
        if tool.get("parameters") is not None:
            schema = tool_schema(tool.get("parameters"), f"{where}.parameters")
        if isinstance(tool.get("description"), str) and tool["description"]:
            description = tool["description"]
    return ir.Tool(name=kind, description=description, input_schema=schema, client_kind=kind)


class ToolSet:
    """The request's tools as IR tools, one per name, and what the answer needs to name calls back."""

    def __init__(self) -> None:
        self.tools: list[ir.Tool] = []
        self.namespaces: dict[str, tuple[str, str]] = {}  # flattened name -> (namespace, name)
        self._kinds: dict[str, str | None] = {}  # name -> client_kind

    @property
    def kinds(self) -> dict[str, str]:
        """Name -> kind, for the tools whose calls are not function calls."""
        return {name: kind for name, kind in self._kinds.items() if kind is not None}

    def add(self, value: Any, where: str) -> None:
        """A list of Responses tools (``tools``, or an item's)."""
        if value is None:
            return
        if not isinstance(value, list):
            raise ClientError(f"{where}: expected a list")
        for i, tool in enumerate(value):
            twhere = f"{where}[{i}]"
            if not isinstance(tool, dict):
                raise ClientError(f"{twhere}: expected an object")
            self._add(tool, twhere)

    def _add(self, tool: dict[str, Any], where: str) -> None:
        kind = tool.get("type")
        if kind == "function":
            self._keep(_function_tool(tool, where, _text(tool.get("name"), f"{where}.name")), where)
        elif kind == "custom":
            self._keep(_custom_tool(tool, where, _text(tool.get("name"), f"{where}.name")), where)
        elif kind == "namespace":
            space = _text(tool.get("name"), f"{where}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise ClientError(f"{where}.tools: expected a list")
            for j, member in enumerate(inner):
                mwhere = f"{where}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type", "function") not in (
                    "function",
                    "custom",
                ):
                    raise ClientError(
                        f"{mwhere}: only function and custom tools are supported inside a namespace"
                    )
                mkind = member.get("type", "function")
                name = _text(member.get("name"), f"{mwhere}.name")
                flat = flat_name(space, name)
                build = _function_tool if mkind == "function" else _custom_tool
                if self._keep(build(member, mwhere, flat), mwhere):
                    self.namespaces[flat] = (space, name)
        elif kind in WEB_SEARCH_TOOLS:
            self._keep(web_search_tool(), where)
        elif kind in CLIENT_RUN:
            declared = _client_run_tool(tool, where, kind)
            if declared is not None:
                self._keep(declared, where)
        elif kind in HOSTED_TOOLS:
            raise ClientError(f"{where}.type: {HOSTED_TOOLS[kind]} ({kind!r}) is not supported by this proxy")
        else:
            raise ClientError(f"{where}.type: unsupported tool type {shown(kind)}")

    def _keep(self, tool: ir.Tool, where: str) -> bool:
        """Add ``tool`` unless its name is taken (by the same kind of tool: kept as first declared)."""
        if tool.name in self._kinds:
            if self._kinds[tool.name] != tool.client_kind:
                raise ClientError(f"{where}: the name {tool.name!r} is declared twice, as two kinds of tool")
            return False
        self._kinds[tool.name] = tool.client_kind
        self.tools.append(tool)
        return True


def _chosen(entry: dict[str, Any]) -> str | None:
    """The tool a ``tool_choice`` (or an ``allowed_tools`` entry) names, as the upstream knows it."""
    kind = entry.get("type")
    if kind in ("function", "custom") and isinstance(entry.get("name"), str):
        return flat_name(entry.get("namespace"), entry["name"])
    if kind in WEB_SEARCH_TOOLS:
        return "web_search"
    if kind in CLIENT_RUN:
        return str(kind)
    return None


def parse_tool_choice(value: Any, parallel: Any) -> ir.ToolChoice | None:
    disable_parallel = parallel is False
    if value is None or (isinstance(value, dict) and value.get("type") == "allowed_tools"):
        mode = value.get("mode") if isinstance(value, dict) else None
        if mode == "required":
            return ir.ToolChoice(type="any", disable_parallel=disable_parallel)
        return ir.ToolChoice(type="auto", disable_parallel=True) if disable_parallel else None
    if isinstance(value, str) and value in TOOL_CHOICE_WORDS:  # the same words as Chat Completions'
        return ir.ToolChoice(type=TOOL_CHOICE_WORDS[value], disable_parallel=disable_parallel)
    name = _chosen(value) if isinstance(value, dict) else None
    if name is not None:
        return ir.ToolChoice(type="tool", name=name, disable_parallel=disable_parallel)
    raise ClientError("tool_choice: expected 'auto', 'required', 'none' or {'type': 'function', 'name': ...}")


def allowed_tools(value: dict[str, Any], tools: list[ir.Tool]) -> list[ir.Tool]:
    """``tool_choice: {"type": "allowed_tools", "tools": [...]}``: only the listed tools may be called, so
    only they are sent upstream (neither upstream API has a way to list a tool it must not call)."""
    listed = value.get("tools")
    if not isinstance(listed, list):
        raise ClientError("tool_choice.tools: expected a list of tools")
    names: set[str] = set()
    for i, entry in enumerate(listed):
        kind = entry.get("type") if isinstance(entry, dict) else None
        name = _chosen(entry) if isinstance(entry, dict) else None
        if name is not None:
            names.add(name)
        elif kind == "namespace" and isinstance(entry.get("name"), str):
            names.update(t.name for t in tools if t.name.startswith(entry["name"] + NAMESPACE_SEPARATOR))
        else:
            raise ClientError(
                f"tool_choice.tools[{i}]: expected a function, custom, namespace, shell, tool_search or "
                "web_search tool"
            )
    return [t for t in tools if t.name in names]
