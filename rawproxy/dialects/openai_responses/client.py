"""The Responses API, client role: a Responses request -> IR, and IR -> its answer or its event stream.

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
- ``reasoning.effort`` is a thinking budget as for Chat Completions; ``text.format`` json_schema is a
  forced answer tool whose input is shown as the message text; ``max_output_tokens``,
  ``temperature``, ``top_p``, ``tool_choice``, ``parallel_tool_calls``. ``store``, ``include``,
  ``prompt_cache_key``, ``client_metadata``, ``metadata``, ``truncation`` and ``service_tier`` are
  accepted; what the answer echoes is kept in ``Context.echo``.

Output: reasoning items (the thinking as a summary), one message item per run of text, function calls;
``status`` ``incomplete`` when the output was cut by ``max_output_tokens``. A stream sends the whole
event sequence with ``sequence_number``s and always ends with ``response.completed``,
``response.incomplete`` or ``response.failed``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import orjson

from ... import ir
from ...errors import ClientError
from ...ids import random_hex
from ...toolcalls import parse_arguments
from ..openai_chat.client import (
    _EMAIL_OR_PHONE,
    EFFORT_BUDGETS,
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL_NAME,
    _file_block,
    _image_block,
    _number,
    _parse_chat_tool_choice,
    _shown,
    tool_schema,
)

log = logging.getLogger("rawproxy")

NAMESPACE_SEPARATOR: Final = "__"
# What a reasoning item's encrypted_content carries, said in it: an Anthropic thinking block's signature,
# or a redacted block's data. Anything else (OpenAI's own encrypted reasoning, say) is no signature and
# is never sent to an Anthropic upstream as one.
SIGNATURE_PREFIX: Final = "anthropic-signature:"
REDACTED_PREFIX: Final = "anthropic-redacted:"
# reasoning.effort -> thinking budget: Chat Completions' table, and the Responses API's "max"
EFFORTS: Final = {**EFFORT_BUDGETS, "max": 16384}
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
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError("request body must be a JSON object")
    return parse_request_data(data, count_tokens=count_tokens)


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
            blocks.append(_image_block(part.get("image_url"), pwhere))
        elif kind == "input_file":
            if part.get("file_url"):
                url = _text(part["file_url"], f"{pwhere}.file_url")
                blocks.append(ir.DocumentBlock(url=url, title=part.get("filename") or None))
            else:
                file = {"file_data": part.get("file_data"), "filename": part.get("filename")}
                blocks.append(_file_block({"file": file}, pwhere))
        elif kind == "input_audio":
            raise ClientError(f"{pwhere}: audio input is not supported through this proxy")
        else:
            raise ClientError(f"{pwhere}.type: unsupported content part {_shown(kind)}")
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
            raise ClientError(f"{where}.role: unknown role {_shown(role)}")

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
            signed = isinstance(encrypted, str) and encrypted.startswith(SIGNATURE_PREFIX)
            block = ir.ThinkingBlock(
                thinking="\n\n".join(texts),
                signature=encrypted[len(SIGNATURE_PREFIX) :]
                if signed and isinstance(encrypted, str)
                else None,
            )
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
            raise ClientError(f"{where}.type: unsupported input item {_shown(kind)}")
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
            raw: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
            tools.append(ir.Tool(name="web_search", server_type="web_search_20250305", raw=raw))
        elif kind in HOSTED_TOOLS:
            raise ClientError(f"{where}.type: {HOSTED_TOOLS[kind]} ({kind!r}) is not supported by this proxy")
        else:
            raise ClientError(f"{where}.type: unsupported tool type {_shown(kind)}")
    return tools


def _parse_tool_choice(value: Any, parallel: Any) -> ir.ToolChoice | None:
    disable_parallel = parallel is False
    if value is None or (isinstance(value, dict) and value.get("type") == "allowed_tools"):
        mode = value.get("mode") if isinstance(value, dict) else None
        if mode == "required":
            return ir.ToolChoice(type="any", disable_parallel=disable_parallel)
        return ir.ToolChoice(type="auto", disable_parallel=True) if disable_parallel else None
    if value in ("auto", "required", "none"):
        return _parse_chat_tool_choice(value, parallel)  # the same words as Chat Completions'
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
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ClientError("model: expected a string")
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
    max_tokens = data.get("max_output_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ClientError("max_output_tokens: expected a positive integer")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ClientError(f"stream: expected a boolean, got {type(stream).__name__}")
    text = data.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise ClientError("text.format: expected {'type': 'text'|'json_object'|'json_schema', ...}")
    json_tool = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        given = fmt.get("schema")
        schema: dict[str, Any] = given if isinstance(given, dict) else {"type": "object"}
        json_tool = JSON_TOOL_NAME
        tools.append(
            ir.Tool(name=json_tool, description="Give the answer as this tool's input.", input_schema=schema)
        )
        tool_choice = ir.ToolChoice(type="tool", name=json_tool)
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
        temperature=_number(data, "temperature"),
        top_p=_number(data, "top_p"),
        stream=bool(stream) and not count_tokens,
        thinking=_reasoning(reasoning),
        user_id=user if isinstance(user, str) and user and not _EMAIL_OR_PHONE.search(user) else None,
        json_tool=json_tool,
        echo=echo,
    )


# =============================================================================== IR -> answer


def _usage(usage: ir.Usage, reasoning_chars: int) -> dict[str, Any]:
    """OpenAI's semantics: input tokens include the cached ones, also reported apart. Reasoning tokens are
    the upstream's figure when it gave one, else estimated from the thinking text (a quarter of its
    characters), never more than the output tokens."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    reasoning = usage.reasoning_tokens or min((reasoning_chars + 3) // 4, usage.output_tokens)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,  # required by the SDK's ResponseUsage
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + usage.output_tokens,
    }


def _status(stop: ir.StopReason | None) -> tuple[str, dict[str, str] | None]:
    if stop in (ir.StopReason.MAX_TOKENS, ir.StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop is ir.StopReason.REFUSAL:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _response_object(
    ctx: ir.Context, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    echo = ctx.echo
    return {
        "id": echo.get("id") or "resp_" + random_hex(48),
        "object": "response",
        "created_at": echo.get("created_at") or int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "model": ctx.client_model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning") or {"effort": None, "summary": None},
        "store": echo.get("store", True),
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p"),
        "truncation": echo.get("truncation", "disabled"),
        "usage": usage,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
        **extra,
    }


def _function_call(
    block_id: str, call_id: str, name: str, arguments: str, status: str, ctx: ir.Context
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": block_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }
    named = ctx.echo.get("namespaces", {}).get(name)
    if named is not None:  # a namespace's tool, flattened for the upstream: named as the client knows it
        item["namespace"], item["name"] = named
    return item


def _reasoning_item(item_id: str, thinking: str, encrypted: str | None, ctx: ir.Context) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": thinking}] if thinking else [],
    }
    if encrypted and ctx.echo.get("encrypted_reasoning"):
        redacted = encrypted.startswith(REDACTED_PREFIX)
        item["encrypted_content"] = encrypted if redacted else SIGNATURE_PREFIX + encrypted
    return item


def _message_item(item_id: str, texts: list[str], status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": t, "annotations": []} for t in texts],
    }


def output_items(resp: ir.Response, ctx: ir.Context) -> tuple[list[dict[str, Any]], int]:
    """The output items of a whole answer, and how many characters of thinking it had."""
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    thinking_chars = 0

    def flush() -> None:
        if texts:
            items.append(_message_item("msg_" + random_hex(48), texts[:], "completed"))
            texts.clear()

    for block in resp.content:
        if isinstance(block, ir.TextBlock):
            texts.append(block.text)
            continue
        if isinstance(block, ir.ToolUseBlock) and ctx.json_tool is not None and block.name == ctx.json_tool:
            texts.append(orjson.dumps(block.input).decode())  # text.format json_schema: the answer
            continue
        flush()
        if isinstance(block, ir.ThinkingBlock):
            thinking_chars += len(block.thinking)
            items.append(_reasoning_item("rs_" + random_hex(48), block.thinking, block.signature, ctx))
        elif isinstance(block, ir.RedactedThinkingBlock):
            items.append(_reasoning_item("rs_" + random_hex(48), "", REDACTED_PREFIX + block.data, ctx))
        elif isinstance(block, ir.ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            items.append(
                _function_call("fc_" + random_hex(48), block.id, block.name, arguments, "completed", ctx)
            )
        elif isinstance(block, ir.OtherBlock) and block.type == "server_tool_use":
            query = (
                block.raw.get("input", {}).get("query") if isinstance(block.raw.get("input"), dict) else None
            )
            items.append(
                {
                    "id": "ws_" + random_hex(48),
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {"type": "search", "query": query},
                }
            )
    flush()
    return items, thinking_chars


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    items, thinking_chars = output_items(resp, ctx)
    status, details = _status(resp.stop_reason)
    ctx.echo["output"] = items  # for the store of recent responses (previous_response_id)
    body = _response_object(ctx, status, items, _usage(resp.usage, thinking_chars))
    body["incomplete_details"] = details
    return orjson.dumps(body)


# =============================================================================== IR -> stream


class _Item:
    """An output item being streamed: its place, id, kind, and what its deltas have said so far."""

    __slots__ = ("call_id", "encrypted", "id", "index", "kind", "name", "parts")

    def __init__(self, index: int, item_id: str, kind: str) -> None:
        self.index = index
        self.id = item_id
        self.kind = kind  # "message", "reasoning", "function_call", "web_search_call"
        self.parts: list[str] = []
        self.name = ""
        self.call_id = ""
        self.encrypted: str | None = None


class StreamEncoder:
    """IR stream events -> Responses API events (``event: <type>`` and its JSON, numbered).

    One output item per content block (a run of text is one message with one ``output_text`` part);
    ``response.created`` and ``response.in_progress`` open the stream, ``response.completed`` (or
    ``response.incomplete``) ends it with the whole response, ``response.failed`` when the upstream
    failed, with what was finished until then.
    """

    def __init__(self, ctx: ir.Context) -> None:
        self._ctx = ctx
        self._seq = 0
        self._started = False
        self._stopped = False
        self._blocks: dict[int, _Item] = {}  # IR block index -> its output item
        self._done: dict[int, dict[str, Any]] = {}  # output index -> its finished item
        self._next_index = 0
        self._usage = ir.Usage()
        self._stop: ir.StopReason | None = None
        self._thinking_chars = 0

    def _event(self, kind: str, body: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self._seq, **body}
        self._seq += 1
        return b"event: %b\ndata: %b\n\n" % (kind.encode(), orjson.dumps(body))

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = _response_object(self._ctx, "in_progress", [], None)
        return self._event("response.created", {"response": response}) + self._event(
            "response.in_progress", {"response": response}
        )

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            assert isinstance(ev, ir.TextDelta)
            return self.start() + self._delta(ev.index, ev.text)
        if t is ir.InputJsonDelta:
            assert isinstance(ev, ir.InputJsonDelta)
            return self.start() + self._delta(ev.index, ev.partial_json)
        if isinstance(ev, ir.StreamError):
            return self._fail(ev.info)
        out = self.start()
        if isinstance(ev, ir.BlockStart):
            return out + self._open(ev.index, ev.block)
        if isinstance(ev, ir.ThinkingDelta):
            return out + self._delta(ev.index, ev.thinking)
        if isinstance(ev, ir.SignatureDelta):
            item = self._blocks.get(ev.index)
            if item is not None:
                item.encrypted = (item.encrypted or "") + ev.signature
            return out
        if isinstance(ev, ir.BlockStop):
            return out + self._close(ev.index)
        if isinstance(ev, ir.MessageStart):
            self._usage.merge(ev.usage)
            return out
        if isinstance(ev, ir.MessageDelta):
            self._usage.merge(ev.usage)
            self._stop = ev.stop_reason
            return out
        if isinstance(ev, ir.MessageStop):
            return out + self._end()
        return out  # pings: ping() sends an SSE comment instead

    # ------------------------------------------------------------------------------- items

    def _new(self, block_index: int, prefix: str, kind: str) -> _Item:
        item = _Item(self._next_index, prefix + random_hex(48), kind)
        self._next_index += 1
        self._blocks[block_index] = item
        return item

    def _open(self, index: int, block: Any) -> bytes:
        if index in self._blocks:
            return b""  # a block index opened twice: the first item stands
        json_answer = isinstance(block, ir.ToolUseBlock) and block.name == self._ctx.json_tool
        if isinstance(block, ir.TextBlock) or json_answer:
            item = self._new(index, "msg_", "message")
            added = _message_item(item.id, [], "in_progress")
            part = {"type": "output_text", "text": "", "annotations": []}
            return self._event("response.output_item.added", {"output_index": item.index, "item": added}) + (
                self._event(
                    "response.content_part.added",
                    {"item_id": item.id, "output_index": item.index, "content_index": 0, "part": part},
                )
            )
        if isinstance(block, ir.ThinkingBlock | ir.RedactedThinkingBlock):
            item = self._new(index, "rs_", "reasoning")
            if isinstance(block, ir.RedactedThinkingBlock):
                item.encrypted = REDACTED_PREFIX + block.data
            elif block.signature:
                item.encrypted = block.signature
            added = {"id": item.id, "type": "reasoning", "summary": []}
            # its summary part is added with the first thinking text (none: the item has no summary)
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        if isinstance(block, ir.ToolUseBlock):
            item = self._new(index, "fc_", "function_call")
            item.name, item.call_id = block.name, block.id
            added = _function_call(item.id, item.call_id, item.name, "", "in_progress", self._ctx)
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        if isinstance(block, ir.OtherBlock) and block.type == "server_tool_use":
            item = self._new(index, "ws_", "web_search_call")
            raw_input = block.raw.get("input")
            item.name = str(raw_input.get("query") or "") if isinstance(raw_input, dict) else ""
            # ``action`` is required by the SDK's ResponseFunctionWebSearch; the query may come later
            action: dict[str, Any] = {"type": "search"} | ({"query": item.name} if item.name else {})
            added = {"id": item.id, "type": "web_search_call", "status": "in_progress", "action": action}
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        return b""  # web search results and other server blocks: not output items of this API

    def _delta(self, index: int, text: str) -> bytes:
        item = self._blocks.get(index)
        if item is None or not text:
            return b""
        first = not item.parts
        item.parts.append(text)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            return self._event(
                "response.output_text.delta", {**where, "content_index": 0, "delta": text, "logprobs": []}
            )
        if item.kind == "reasoning":
            self._thinking_chars += len(text)
            out = b""
            if first:
                part = {"type": "summary_text", "text": ""}
                out = self._event(
                    "response.reasoning_summary_part.added", {**where, "summary_index": 0, "part": part}
                )
            return out + self._event(
                "response.reasoning_summary_text.delta", {**where, "summary_index": 0, "delta": text}
            )
        if item.kind == "function_call":
            return self._event("response.function_call_arguments.delta", {**where, "delta": text})
        return b""

    def _finished(self, item: _Item, status: str = "completed") -> dict[str, Any]:
        text = "".join(item.parts)
        if item.kind == "message":
            return _message_item(item.id, [text], status)
        if item.kind == "reasoning":
            return _reasoning_item(item.id, text, item.encrypted, self._ctx) | (
                {"status": status} if status != "completed" else {}
            )
        if item.kind == "function_call":
            return _function_call(item.id, item.call_id, item.name, text or "{}", status, self._ctx)
        return {
            "id": item.id,
            "type": "web_search_call",
            "status": status,
            "action": {"type": "search", "query": _search_query(item)},
        }

    def _close(self, index: int) -> bytes:
        item = self._blocks.pop(index, None)
        if item is None:
            return b""
        where = {"item_id": item.id, "output_index": item.index}
        text = "".join(item.parts)
        out = b""
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
            )
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
        elif item.kind == "reasoning" and text:  # a summary part was added (never for redacted thinking)
            part = {"type": "summary_text", "text": text}
            out += self._event(
                "response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text}
            )
            out += self._event(
                "response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part}
            )
        elif item.kind == "function_call":
            out += self._event("response.function_call_arguments.done", {**where, "arguments": text or "{}"})
        done = self._finished(item)
        self._done[item.index] = done
        return out + self._event("response.output_item.done", {"output_index": item.index, "item": done})

    # ------------------------------------------------------------------------------ the end

    def _end(self) -> bytes:
        out = b"".join(self._close(index) for index in sorted(self._blocks))  # blocks left open: ended here
        self._stopped = True
        status, details = _status(self._stop)
        output = [self._done[i] for i in sorted(self._done)]  # in output_index order, as they were added
        self._ctx.echo["output"] = output  # for the store of recent responses (previous_response_id)
        response = _response_object(self._ctx, status, output, _usage(self._usage, self._thinking_chars))
        response["incomplete_details"] = details
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})

    def _fail(self, info: ir.ErrorInfo) -> bytes:
        """The upstream failed: ``response.failed``, with the items finished so far (those still open
        are shown incomplete), so a client never sees a stream without its end."""
        if self._stopped:
            return b""
        out = self.start()
        self._stopped = True
        items = self._done | {
            item.index: self._finished(item, "incomplete") for item in self._blocks.values()
        }
        error = {"code": _ERROR_CODES.get(info.type, "server_error"), "message": info.message}
        response = _response_object(
            self._ctx, "failed", [items[i] for i in sorted(items)], _usage(self._usage, self._thinking_chars)
        )
        response["error"] = error
        return out + self._event("response.failed", {"response": response})

    def close(self) -> bytes:
        return b""

    def ping(self) -> bytes:
        """An SSE comment: clients skip it, proxies and load balancers see traffic."""
        return b"" if self._stopped else b": ping\n\n"


def _search_query(item: _Item) -> str:
    """A streamed web search's query: from its input, which Anthropic streams as ``input_json_delta``
    after an empty start, else from the input its start carried."""
    if item.parts:
        try:
            value = orjson.loads("".join(item.parts))
        except orjson.JSONDecodeError:
            value = None
        query = value.get("query") if isinstance(value, dict) else None
        if isinstance(query, str):
            return query
    return item.name


_ERROR_CODES: Final = {
    ir.ErrorType.RATE_LIMIT: "rate_limit_exceeded",
    ir.ErrorType.TIMEOUT: "server_error",
    ir.ErrorType.OVERLOADED: "server_error",
    ir.ErrorType.API: "server_error",
    ir.ErrorType.INVALID_REQUEST: "invalid_prompt",
}
