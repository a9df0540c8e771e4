"""OpenAI Chat Completions, the client role, requests: an OpenAI client's request body -> IR, and its
system and developer messages compacted in place for a ``compact`` route.

Requests are validated as they are parsed (a ``ClientError`` naming the field, in OpenAI's error shape).
What Anthropic cannot do is refused with a 400 that says why (``n > 1``, logprobs, audio), never
silently dropped (decision 8); parameters with no Anthropic meaning (penalties, seed...) are dropped.
``response_format`` json_schema is the request's ``response_schema``: the upstream takes it natively or as a
forced tool whose input is shown as the message content.
Content parts, tool schemas and the ``tool_choice`` words are the Responses API's too: they are in
``dialects._common``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ... import ir
from ...errors import ClientError
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
from .._compact import DEFAULT_THRESHOLD, compact_messages, role_text_length

# Rejected with a 400 that says why (decision 8): silently ignoring them would change the answer.
_UNSUPPORTED = {
    "logprobs": "logprobs are not available from an Anthropic upstream",
    "top_logprobs": "logprobs are not available from an Anthropic upstream",
    "audio": "audio output is not available from an Anthropic upstream",
}


_MAX_NESTING: Final = 254  # the deepest orjson serialises


def _parse_parts(content: Any, where: str) -> list[ir.Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextBlock(text=content)]
    if not isinstance(content, list):
        raise ClientError(f"{where}.content: expected a string or a list of parts")
    blocks: list[ir.Block] = []
    for i, part in enumerate(content):
        pwhere = f"{where}.content[{i}]"
        if not isinstance(part, dict):
            raise ClientError(f"{pwhere}: expected an object")
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise ClientError(f"{pwhere}.text: expected a string")
            cache = part.get("cache_control")  # LiteLLM's extension, passed through (O2A-R29)
            blocks.append(ir.TextBlock(text=text, cache_control=cache if isinstance(cache, dict) else None))
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(image_block(image.get("url") if isinstance(image, dict) else image, pwhere))
        elif kind == "file":
            blocks.append(file_block(part, pwhere))
        elif kind == "refusal":
            blocks.append(ir.TextBlock(text=str(part.get("refusal") or "")))
        elif kind == "input_audio":
            raise ClientError(f"{pwhere}: audio input is not supported by an Anthropic upstream")
        else:
            raise ClientError(f"{pwhere}.type: unsupported content part {shown(kind)}")
    return blocks


def _parse_tool_calls(calls: Any, where: str) -> list[ir.Block]:
    if not isinstance(calls, list):
        raise ClientError(f"{where}.tool_calls: expected a list")
    blocks: list[ir.Block] = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ClientError(f"{where}.tool_calls[{i}].function.name: field required")
        call_id = str(call.get("id") or f"call_{i}")
        arguments = function.get("arguments")
        tool_input = parse_arguments(arguments, call_id)
        if isinstance(arguments, str) and arguments.count("[") + arguments.count("{") > _MAX_NESTING:
            # JSON inside a string may nest deeper than orjson writes back (254 levels); the body's
            # own nesting is caught where it fails (App.handle), this is only seen once parsed.
            try:
                orjson.dumps(tool_input)
            except orjson.JSONEncodeError:
                where_args = f"{where}.tool_calls[{i}].function.arguments"
                raise ClientError(f"{where_args}: nests deeper than {_MAX_NESTING} levels") from None
        blocks.append(ir.ToolUseBlock(id=call_id, name=function["name"], input=tool_input))
    return blocks


def _parse_chat_messages(value: Any) -> list[ir.Message]:
    if not isinstance(value, list) or not value:
        raise ClientError("messages: field required (a non-empty list)")
    out: list[ir.Message] = []
    for i, raw in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise ClientError(f"{where}: expected an object")
        role = raw.get("role")
        content = raw.get("content")
        if role in ("system", "developer"):
            out.append(ir.Message(role="system", content=_parse_parts(content, where)))
        elif role == "user":
            blocks = _parse_parts(content, where)
            if (
                out
                and out[-1].role == "user"
                and any(isinstance(b, ir.ToolResultBlock) for b in out[-1].content)
            ):
                out[-1].content.extend(blocks)  # text after tool results joins their turn (O2A-R13)
            else:
                out.append(ir.Message(role="user", content=blocks))
        elif role == "assistant":
            blocks = _parse_parts(content, where)
            if raw.get("tool_calls"):
                blocks += _parse_tool_calls(raw["tool_calls"], where)
            out.append(ir.Message(role="assistant", content=blocks))
        elif role in ("tool", "function"):
            call_id = raw.get("tool_call_id") if role == "tool" else raw.get("name")
            if not isinstance(call_id, str) or not call_id:
                raise ClientError(f"{where}.tool_call_id: field required")
            parts = [
                b
                for b in _parse_parts(content, where)
                if isinstance(b, ir.TextBlock | ir.ImageBlock | ir.DocumentBlock)
            ]
            result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
            if (
                out
                and out[-1].role == "user"
                and all(isinstance(b, ir.ToolResultBlock) for b in out[-1].content)
            ):
                out[-1].content.append(result)  # consecutive tool messages: one user turn (O2A-R13)
            else:
                out.append(ir.Message(role="user", content=[result]))
        else:
            raise ClientError(f"{where}.role: unknown role {shown(role)}")
    return out


def _parse_chat_tools(value: Any) -> list[ir.Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientError("tools: expected a list")
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise ClientError(f"tools[{i}].type: only function tools are supported, got {shown(kind)}")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ClientError(f"tools[{i}].function.name: field required")
        schema = tool_schema(function.get("parameters"), f"tools[{i}].function.parameters")
        description = function.get("description")
        tools.append(
            ir.Tool(
                name=function["name"],
                description=description if isinstance(description, str) else None,
                input_schema=schema,
            )
        )
    return tools


def _parse_chat_tool_choice(value: Any, parallel: Any) -> ir.ToolChoice | None:
    disable_parallel = parallel is False  # O2A-R17
    if value is None:
        return ir.ToolChoice(type="auto", disable_parallel=True) if disable_parallel else None
    if isinstance(value, str) and value in TOOL_CHOICE_WORDS:
        return ir.ToolChoice(type=TOOL_CHOICE_WORDS[value], disable_parallel=disable_parallel)
    if (
        isinstance(value, dict)
        and isinstance(value.get("function"), dict)
        and isinstance(value["function"].get("name"), str)
    ):
        return ir.ToolChoice(type="tool", name=value["function"]["name"], disable_parallel=disable_parallel)
    raise ClientError(
        "tool_choice: expected 'auto', 'required', 'none' or {'type': 'function', 'function': {'name': ...}}"
    )


def _reasoning(effort: Any) -> ir.ThinkingConfig | None:
    """O2A-R20: ``reasoning_effort`` -> an extended-thinking budget; ``none`` turns it off."""
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in EFFORT_BUDGETS:
        raise ClientError(f"reasoning_effort: expected one of none, {', '.join(EFFORT_BUDGETS)}")
    return ir.ThinkingConfig(type="enabled", budget_tokens=EFFORT_BUDGETS[effort], effort=str(effort))


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    """Parse and validate an OpenAI Chat Completions request. Raises ClientError (400); others are bugs."""
    return parse_request_data(load_json_object(body), count_tokens=count_tokens)


def parse_request_data(data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request:
    """:func:`parse_request` for a body that is already parsed JSON."""
    model = optional_str(data, "model") or ""
    for key, why in _UNSUPPORTED.items():
        if data.get(key):
            raise ClientError(f"{key}: {why}")
    n = data.get("n")
    if n not in (None, 1):
        raise ClientError("n: only one choice per request is supported by an Anthropic upstream")
    messages = _parse_chat_messages(data.get("messages"))
    tools = _parse_chat_tools(data.get("tools"))
    tool_choice = _parse_chat_tool_choice(data.get("tool_choice"), data.get("parallel_tool_calls"))
    for key in ("max_completion_tokens", "max_tokens"):  # each checked: a 0 is no "none given"
        positive_int(data.get(key), "max_completion_tokens")
    max_tokens = data.get("max_completion_tokens") or data.get("max_tokens")  # O2A-R19
    stop = data.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else None
    if (stop is not None and stops is None) or not all(isinstance(s, str) for s in stops or ()):
        raise ClientError("stop: expected a string or a list of strings")
    stream = optional_bool(data, "stream")
    user = data.get("user")
    response_schema = None
    response_format = data.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise ClientError("response_format: expected {'type': 'text'|'json_object'|'json_schema', ...}")
    if isinstance(response_format, dict):  # O2A-R23
        kind = response_format.get("type")
        if kind == "json_schema":
            spec = (
                response_format.get("json_schema")
                if isinstance(response_format.get("json_schema"), dict)
                else {}
            )
            assert isinstance(spec, dict)
            response_schema = answer_schema(spec.get("schema"), spec.get("name"), spec.get("strict"))
        elif kind == "json_object":
            messages.insert(
                0, ir.Message(role="system", content=[ir.TextBlock(text=JSON_OBJECT_INSTRUCTION)])
            )
    if isinstance(data.get("web_search_options"), dict):  # O2A-R28
        tools.append(web_search_tool())
    options = data.get("stream_options")
    return ir.Request(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=number(data, "temperature"),
        top_p=number(data, "top_p"),
        stop=stops or [],
        stream=bool(stream),
        thinking=_reasoning(data.get("reasoning_effort")),
        user_id=safe_user_id(user),  # O2A-R24
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        response_schema=response_schema,
    )


# ---------------------------------------------------------------------------------------- compaction

_SYSTEM_ROLES: Final = ("system", "developer")


def compact_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the ``system`` and ``developer`` messages of a Chat Completions request in place.

    Same rules as ``anthropic_messages.compact_body``: the threshold is compared with their total text
    length; content is a string or a list of ``{"type": "text", "text": ...}`` parts; user, assistant
    and tool messages and ``tools`` are never touched. True when anything changed.
    """
    if not isinstance(data, dict):
        return False
    messages = data.get("messages")
    total = role_text_length(messages, _SYSTEM_ROLES)
    if total == 0 or total < threshold or not isinstance(messages, list):
        return False
    kept, changed = compact_messages(messages, _SYSTEM_ROLES)
    if changed:
        data["messages"] = kept
    return changed
