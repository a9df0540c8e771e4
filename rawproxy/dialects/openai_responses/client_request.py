"""The Responses API, client role, requests: a Responses request -> IR, and its system text (``instructions``
and system and developer input items) compacted in place for a ``compact`` route.

Request mapping:
- ``instructions`` and ``system``/``developer`` messages are the system prompt; ``input`` is a string
  or a list of items: messages (``input_text``, ``input_image``, ``input_file``, ``output_text``,
  ``refusal`` parts), ``function_call``, ``function_call_output`` and ``reasoning`` items. A reasoning
  item opens the assistant turn that follows it; its ``encrypted_content`` carries an Anthropic
  thinking signature back (``anthropic-signature:`` + signature, ``anthropic-redacted:`` + data for a
  redacted block), so a turn replayed to an Anthropic upstream keeps its thinking; any other encrypted
  content is not a signature and is not sent as one.
- Function tools as they are; ``namespace`` tools flattened to ``<namespace>__<name>`` and named back
  in the output (``name`` and ``namespace``); the hosted ``web_search`` tool becomes Anthropic's web
  search server tool (an OpenAI-compatible upstream drops it, with a warning); any other hosted tool is
  a 400 that names it.
- ``reasoning.effort`` is a thinking budget as for Chat Completions; ``text.format`` json_schema is the
  request's ``response_schema`` (native upstream, or a forced answer tool shown as the message text); ``max_output_tokens``,
  ``temperature``, ``top_p``, ``tool_choice``, ``parallel_tool_calls``. ``store``, ``include``,
  ``prompt_cache_key``, ``client_metadata``, ``metadata``, ``truncation`` and ``service_tier`` are
  accepted; what the answer echoes is kept in ``Context.echo``.

What Chat Completions reads the same way (content parts, tool schemas, the ``tool_choice`` words,
efforts, the answer tool) is in ``dialects._common``; the answer is built in ``client_response``, the
event stream in ``client_stream``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from ... import ir
from ...carrier import is_sealed
from ...errors import ClientError
from ...ids import random_hex
from ...toolcalls import parse_arguments
from .._common import (
    EFFORT_BUDGETS,
    JSON_OBJECT_INSTRUCTION,
    TOOL_CHOICE_WORDS,
    answer_schema,
    file_block,
    image_block,
    load_json_object,
    number,
    optional_bool,
    optional_str,
    positive_int,
    safe_user_id,
    shown,
    tool_schema,
    web_search_tool,
)
from .._compact import DEFAULT_THRESHOLD, compact_messages, compact_text, role_text_length, text_length

NAMESPACE_SEPARATOR: Final = "__"
# What a reasoning item's encrypted_content carries, said in it: an Anthropic thinking block's signature,
# or a redacted block's data. Anything else (OpenAI's own encrypted reasoning, say) is no signature and
# is never sent to an Anthropic upstream as one.
SIGNATURE_PREFIX: Final = "anthropic-signature:"
REDACTED_PREFIX: Final = "anthropic-redacted:"
EFFORTS: Final = EFFORT_BUDGETS  # reasoning.effort -> thinking budget: Chat Completions' table
WEB_SEARCH_TOOLS: Final = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26"})
# Hosted tools run by OpenAI itself: nothing here can run them.
HOSTED_TOOLS: Final = {
    "file_search": "file search",
    "computer_use_preview": "computer use",
    "computer": "computer use",
    "code_interpreter": "the code interpreter",
    "image_generation": "image generation",
    "mcp": "remote MCP servers",
    "local_shell": "the local shell tool",
    "shell": "the hosted shell tool",
    "apply_patch": "the hosted apply_patch tool",
    "custom": "custom (free-form) tools",
    "tool_search": "tool search",
}
# Items of a conversation's history that record a hosted tool's work: nothing to replay upstream.
_HISTORY_ONLY: Final = frozenset({"web_search_call"})
_UNSUPPORTED_FIELDS: Final = {
    "background": "background responses are not supported by this proxy",
    "conversation": "conversations are not supported by this proxy; send the input items",
    "prompt": "prompt templates are not supported by this proxy",
    "top_logprobs": "logprobs are not available through this proxy",
}


# =============================================================================== request -> IR


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    return parse_request_data(load_json_object(body), count_tokens=count_tokens)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ClientError(f"{where}: expected a string")
    return value


def _parts(content: Any, where: str) -> list[ir.Block]:
    """A message's or a function output's content: a string, or a list of parts."""
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
            blocks.append(ir.TextBlock(text=_text(part.get("text"), f"{pwhere}.text")))
        elif kind == "refusal":
            blocks.append(ir.TextBlock(text=str(part.get("refusal") or "")))
        elif kind == "input_image":
            if part.get("file_id") and not part.get("image_url"):
                raise ClientError(f"{pwhere}: file ids are not supported; send image_url (a URL or data URL)")
            blocks.append(image_block(part.get("image_url"), pwhere))
        elif kind == "input_file":
            if part.get("file_url"):
                url = _text(part["file_url"], f"{pwhere}.file_url")
                blocks.append(ir.DocumentBlock(url=url, title=part.get("filename") or None))
            else:
                file = {"file_data": part.get("file_data"), "filename": part.get("filename")}
                blocks.append(file_block({"file": file}, pwhere))
        elif kind == "input_audio":
            raise ClientError(f"{pwhere}: audio input is not supported through this proxy")
        else:
            raise ClientError(f"{pwhere}.type: unsupported content part {shown(kind)}")
    return blocks


class _Conversation:
    """Input items -> IR messages: consecutive items of one turn are gathered into one message."""

    def __init__(self) -> None:
        self.messages: list[ir.Message] = []

    def _last(self, role: ir.Role) -> ir.Message:
        if self.messages and self.messages[-1].role == role:
            return self.messages[-1]
        message = ir.Message(role=role, content=[])
        self.messages.append(message)
        return message

    def message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            self.messages.append(ir.Message(role="system", content=_parts(content, f"{where}.content")))
        elif role == "user":
            blocks = _parts(content, f"{where}.content")
            last = self.messages[-1] if self.messages else None
            if (
                last is not None
                and last.role == "user"
                and any(isinstance(b, ir.ToolResultBlock) for b in last.content)
            ):
                last.content.extend(blocks)  # text after tool results joins their turn (as O2A-R13)
            else:
                self.messages.append(ir.Message(role="user", content=blocks))
        elif role == "assistant":
            self._last("assistant").content.extend(_parts(content, f"{where}.content"))
        else:
            raise ClientError(f"{where}.role: unknown role {shown(role)}")

    def function_call(self, item: dict[str, Any], where: str) -> None:
        name = item.get("name")
        call_id = item.get("call_id")
        if not isinstance(name, str) or not name:
            raise ClientError(f"{where}.name: field required")
        if not isinstance(call_id, str) or not call_id:
            raise ClientError(f"{where}.call_id: field required")
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = namespace + NAMESPACE_SEPARATOR + name
        block = ir.ToolUseBlock(id=call_id, name=name, input=parse_arguments(item.get("arguments"), call_id))
        self._last("assistant").content.append(block)

    def function_output(self, item: dict[str, Any], where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ClientError(f"{where}.call_id: field required")
        output = item.get("output")
        parts = [
            b
            for b in _parts("" if output is None else output, f"{where}.output")
            if isinstance(b, ir.TextBlock | ir.ImageBlock | ir.DocumentBlock)
        ]
        result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
        last = self.messages[-1] if self.messages else None
        if (
            last is not None
            and last.role == "user"
            and all(isinstance(b, ir.ToolResultBlock) for b in last.content)
        ):
            last.content.append(result)  # parallel calls' outputs: one user turn
        else:
            self.messages.append(ir.Message(role="user", content=[result]))

    def reasoning(self, item: dict[str, Any], where: str) -> None:
        summary = item.get("summary") or []
        if not isinstance(summary, list):
            raise ClientError(f"{where}.summary: expected a list")
        texts = [str(p["text"]) for p in summary if isinstance(p, dict) and isinstance(p.get("text"), str)]
        encrypted = item.get("encrypted_content")
        block: ir.Block
        if isinstance(encrypted, str) and encrypted.startswith(REDACTED_PREFIX):
            block = ir.RedactedThinkingBlock(data=encrypted[len(REDACTED_PREFIX) :])
        else:
            signature = None
            if isinstance(encrypted, str) and encrypted.startswith(SIGNATURE_PREFIX):
                signature = encrypted[len(SIGNATURE_PREFIX) :]
            elif isinstance(encrypted, str) and is_sealed(encrypted):  # an upstream's state (RS-07)
                signature = encrypted
            block = ir.ThinkingBlock(thinking="\n\n".join(texts), signature=signature)
        # A reasoning item opens the assistant turn it belongs to: a new one, after anything else.
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant" and not last.content:
            last.content.append(block)
        else:
            self.messages.append(ir.Message(role="assistant", content=[block]))


def _parse_input(value: Any) -> list[ir.Message]:
    if isinstance(value, str):
        return [ir.Message(role="user", content=[ir.TextBlock(text=value)])]
    if not isinstance(value, list):
        raise ClientError("input: field required (a string or a list of items)")
    conversation = _Conversation()
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ClientError(f"{where}: expected an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            conversation.message(item, where)
        elif kind == "function_call":
            conversation.function_call(item, where)
        elif kind == "function_call_output":
            conversation.function_output(item, where)
        elif kind == "reasoning":
            conversation.reasoning(item, where)
        elif kind in _HISTORY_ONLY:
            continue
        elif kind == "item_reference":
            raise ClientError(f"{where}: item references are not supported by this proxy; send the items")
        else:
            raise ClientError(f"{where}.type: unsupported input item {shown(kind)}")
    messages = conversation.messages
    if not messages:
        raise ClientError("input: at least one item is required")
    return messages


def _function_tool(tool: dict[str, Any], where: str, name: str) -> ir.Tool:
    schema = tool_schema(tool.get("parameters"), f"{where}.parameters")
    description = tool.get("description")
    return ir.Tool(
        name=name, description=description if isinstance(description, str) else None, input_schema=schema
    )


def _parse_tools(value: Any, namespaces: dict[str, list[str]]) -> list[ir.Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientError("tools: expected a list")
    tools: list[ir.Tool] = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise ClientError(f"{where}: expected an object")
        kind = tool.get("type")
        if kind == "function":
            tools.append(_function_tool(tool, where, _text(tool.get("name"), f"{where}.name")))
        elif kind == "namespace":
            space = _text(tool.get("name"), f"{where}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise ClientError(f"{where}.tools: expected a list")
            for j, member in enumerate(inner):
                mwhere = f"{where}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type", "function") != "function":
                    raise ClientError(f"{mwhere}: only function tools are supported inside a namespace")
                name = _text(member.get("name"), f"{mwhere}.name")
                namespaces.setdefault(space, []).append(name)
                tools.append(_function_tool(member, mwhere, space + NAMESPACE_SEPARATOR + name))
        elif kind in WEB_SEARCH_TOOLS:
            tools.append(web_search_tool())
        elif kind in HOSTED_TOOLS:
            raise ClientError(f"{where}.type: {HOSTED_TOOLS[kind]} ({kind!r}) is not supported by this proxy")
        else:
            raise ClientError(f"{where}.type: unsupported tool type {shown(kind)}")
    return tools


def _parse_tool_choice(value: Any, parallel: Any) -> ir.ToolChoice | None:
    disable_parallel = parallel is False
    if value is None or (isinstance(value, dict) and value.get("type") == "allowed_tools"):
        mode = value.get("mode") if isinstance(value, dict) else None
        if mode == "required":
            return ir.ToolChoice(type="any", disable_parallel=disable_parallel)
        return ir.ToolChoice(type="auto", disable_parallel=True) if disable_parallel else None
    if isinstance(value, str) and value in TOOL_CHOICE_WORDS:  # the same words as Chat Completions'
        return ir.ToolChoice(type=TOOL_CHOICE_WORDS[value], disable_parallel=disable_parallel)
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        space = value.get("namespace")
        name = (
            f"{space}{NAMESPACE_SEPARATOR}{value['name']}"
            if isinstance(space, str) and space
            else value["name"]
        )
        return ir.ToolChoice(type="tool", name=name, disable_parallel=disable_parallel)
    if isinstance(value, dict) and value.get("type") in WEB_SEARCH_TOOLS:
        return ir.ToolChoice(type="tool", name="web_search", disable_parallel=disable_parallel)
    raise ClientError("tool_choice: expected 'auto', 'required', 'none' or {'type': 'function', 'name': ...}")


def _allowed_tools(value: Any, tools: list[ir.Tool]) -> list[ir.Tool]:
    """``tool_choice: {"type": "allowed_tools", "tools": [...]}``: only the listed tools may be called, so
    only they are sent upstream (neither upstream API has a way to list a tool it must not call)."""
    listed = value.get("tools")
    if not isinstance(listed, list):
        raise ClientError("tool_choice.tools: expected a list of tools")
    names: set[str] = set()
    for i, entry in enumerate(listed):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "function" and isinstance(entry.get("name"), str):
            space = entry.get("namespace")
            names.add(
                f"{space}{NAMESPACE_SEPARATOR}{entry['name']}"
                if isinstance(space, str) and space
                else entry["name"]
            )
        elif kind == "namespace" and isinstance(entry.get("name"), str):
            names.update(t.name for t in tools if t.name.startswith(entry["name"] + NAMESPACE_SEPARATOR))
        elif kind in WEB_SEARCH_TOOLS:
            names.add("web_search")
        else:
            raise ClientError(f"tool_choice.tools[{i}]: expected a function, namespace or web_search tool")
    return [t for t in tools if t.name in names]


def _reasoning(value: Any) -> ir.ThinkingConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientError("reasoning: expected an object")
    effort = value.get("effort")
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise ClientError(f"reasoning.effort: expected one of none, {', '.join(EFFORTS)}")
    return ir.ThinkingConfig(type="enabled", budget_tokens=EFFORTS[effort], effort=effort)


def parse_request_data(data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request:
    """:func:`parse_request` for a body that is already parsed JSON (``previous_response_id`` already
    resolved into ``input`` by the proxy)."""
    model = optional_str(data, "model")
    for key, why in _UNSUPPORTED_FIELDS.items():
        if data.get(key):
            raise ClientError(f"{key}: {why}")
    instructions = data.get("instructions")
    system: list[ir.TextBlock] = []
    if isinstance(instructions, str):
        if instructions:
            system.append(ir.TextBlock(text=instructions))
    elif instructions is not None:
        raise ClientError("instructions: expected a string")
    messages = _parse_input(data.get("input"))
    namespaces: dict[str, list[str]] = {}
    tools = _parse_tools(data.get("tools"), namespaces)
    choice = data.get("tool_choice")
    tool_choice = _parse_tool_choice(choice, data.get("parallel_tool_calls"))
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools = _allowed_tools(choice, tools)
    max_tokens = positive_int(data.get("max_output_tokens"), "max_output_tokens")
    stream = optional_bool(data, "stream")
    text = data.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise ClientError("text.format: expected {'type': 'text'|'json_object'|'json_schema', ...}")
    response_schema = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        response_schema = answer_schema(fmt.get("schema"), fmt.get("name"), fmt.get("strict"))
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        system.append(ir.TextBlock(text=JSON_OBJECT_INSTRUCTION))
    include = data.get("include")
    user = data.get("safety_identifier") or data.get("user")
    reasoning = data.get("reasoning")
    echo: dict[str, Any] = {
        "id": "resp_" + random_hex(48),
        "created_at": int(time.time()),
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": max_tokens,
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), dict) else {},
        "parallel_tool_calls": data.get("parallel_tool_calls") is not False,
        "previous_response_id": data.get("previous_response_id"),
        "reasoning": {
            "effort": reasoning.get("effort") if isinstance(reasoning, dict) else None,
            "summary": reasoning.get("summary") if isinstance(reasoning, dict) else None,
        },
        "store": data.get("store") is not False,
        "temperature": data.get("temperature"),
        "text": {"format": fmt if isinstance(fmt, dict) else {"type": "text"}},
        "tool_choice": data.get("tool_choice") if data.get("tool_choice") is not None else "auto",
        "tools": data.get("tools") if isinstance(data.get("tools"), list) else [],
        "top_p": data.get("top_p"),
        "truncation": data.get("truncation") if isinstance(data.get("truncation"), str) else "disabled",
        "user": data.get("user") if isinstance(data.get("user"), str) else None,
        "prompt_cache_key": data.get("prompt_cache_key"),
        # what the encoder needs and the proxy stores, not echoed as such
        "namespaces": {
            space + NAMESPACE_SEPARATOR + n: (space, n) for space, names in namespaces.items() for n in names
        },
        "encrypted_reasoning": isinstance(include, list) and "reasoning.encrypted_content" in include,
    }
    return ir.Request(
        model=model or "",
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=number(data, "temperature"),
        top_p=number(data, "top_p"),
        stream=bool(stream) and not count_tokens,
        thinking=_reasoning(reasoning),
        user_id=safe_user_id(user),
        response_schema=response_schema,
        echo=echo,
    )


# ---------------------------------------------------------------------------------------- compaction

_SYSTEM_ROLES: Final = ("system", "developer")
# A system or developer message's parts: ``input_text`` (what the Codex CLI sends), or plain ``text``.
_TEXT_PARTS: Final = ("input_text", "text")


def compact_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the system text of a Responses request in place; True when anything changed.

    The system text of this API is the ``instructions`` string and the ``system`` and ``developer``
    message items of ``input`` (the Codex CLI sends both: about 20 000 characters together). The
    threshold is compared with their total text length, as ``anthropic_messages.compact_body`` does;
    ``instructions`` left with nothing is removed, and so is a message item. A string ``input`` is the
    user's, and user, assistant, function call and reasoning items and ``tools`` are never touched;
    anything malformed is left as it is.
    """
    if not isinstance(data, dict):
        return False
    items = data.get("input")
    instructions = data.get("instructions")
    total = text_length(instructions) if isinstance(instructions, str) else 0
    total += role_text_length(items, _SYSTEM_ROLES, _TEXT_PARTS)
    if total == 0 or total < threshold:
        return False
    changed = False
    if isinstance(instructions, str):
        compacted = compact_text(instructions)
        if compacted != instructions:
            changed = True
            if compacted:
                data["instructions"] = compacted
            else:
                del data["instructions"]
    if isinstance(items, list):
        kept, did = compact_messages(items, _SYSTEM_ROLES, _TEXT_PARTS)
        if did:
            changed = True
            data["input"] = kept
    return changed
