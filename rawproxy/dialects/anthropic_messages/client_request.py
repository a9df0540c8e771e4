"""Anthropic Messages, the client role, requests: a client's request body -> IR, and its system prompt
compacted in place for a ``compact`` route.

Requests are validated as they are parsed, so a malformed request is a ``ClientError`` with a message
that names the offending field, in Anthropic's error shape (A2O-E04), and never a 500. Unknown top-level
fields (``context_management``, ``diagnostics``, ``mcp_servers``...) are ignored: they mean nothing to
the IR and are never forwarded to an OpenAI upstream (A2O-R28). Unknown block types become
``ir.OtherBlock`` rather than errors, because Claude Code adds new ones every month.
"""

from __future__ import annotations

from typing import Any

from ... import ir
from ...errors import ClientError
from .._common import load_json_object, number, shown
from .._compact import DEFAULT_THRESHOLD, compact_content, compact_messages, role_text_length, text_length


def _str(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ClientError(f"{where}{key}: field required")
        return None
    if not isinstance(value, str):
        raise ClientError(f"{where}{key}: expected a string, got {type(value).__name__}")
    return value


def _int(obj: dict[str, Any], key: str, *, required: bool = False, minimum: int = 0) -> int | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ClientError(f"{key}: field required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ClientError(f"{key}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ClientError(f"{key}: must be at least {minimum}")
    return value


def _parse_source(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise ClientError(f"{where}.source: expected an object")
    return source


def _parse_image(block: dict[str, Any], where: str) -> ir.ImageBlock:
    source = _parse_source(block, where)
    kind = source.get("type")
    if kind == "base64":
        return ir.ImageBlock(
            media_type=_str(source, "media_type", f"{where}.source."),
            data=_str(source, "data", f"{where}.source."),
        )
    if kind == "url":
        return ir.ImageBlock(url=_str(source, "url", f"{where}.source."))
    raise ClientError(f"{where}.source.type: unsupported image source {shown(kind)}")


def _parse_document(block: dict[str, Any], where: str) -> ir.DocumentBlock:
    source = _parse_source(block, where)
    kind = source.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if kind == "base64":
        return ir.DocumentBlock(
            media_type=_str(source, "media_type", f"{where}.source.", required=False) or "application/pdf",
            data=_str(source, "data", f"{where}.source."),
            title=title,
        )
    if kind == "text":
        return ir.DocumentBlock(
            media_type="text/plain", text=_str(source, "data", f"{where}.source."), title=title
        )
    if kind == "url":
        return ir.DocumentBlock(url=_str(source, "url", f"{where}.source."), title=title)
    if kind == "content":
        parts = source.get("content")
        texts = parts if isinstance(parts, str) else _texts_of(parts)
        return ir.DocumentBlock(media_type="text/plain", text=texts, title=title)
    raise ClientError(f"{where}.source.type: unsupported document source {shown(kind)}")


def _texts_of(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _parse_tool_result_content(
    value: Any, where: str
) -> list[ir.TextBlock | ir.ImageBlock | ir.DocumentBlock]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.TextBlock(text=value)]
    if not isinstance(value, list):
        raise ClientError(f"{where}.content: expected a string or a list of blocks")
    out: list[ir.TextBlock | ir.ImageBlock | ir.DocumentBlock] = []
    for i, part in enumerate(value):
        pwhere = f"{where}.content[{i}]"
        if not isinstance(part, dict):
            raise ClientError(f"{pwhere}: expected an object")
        kind = part.get("type")
        if kind == "text":
            out.append(ir.TextBlock(text=_str(part, "text", f"{pwhere}.") or ""))
        elif kind == "image":
            out.append(_parse_image(part, pwhere))
        elif kind == "document":
            out.append(_parse_document(part, pwhere))
        elif kind == "search_result":
            out.append(ir.TextBlock(text=_texts_of(part.get("content"))))
        # tool_reference (Claude Code >= 2.1 tool search) and other children carry no content: skipped.
    return out


def _parse_block(block: Any, where: str) -> ir.Block:
    if not isinstance(block, dict):
        raise ClientError(f"{where}: expected an object")
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise ClientError(f"{where}.text: expected a string")
        return ir.TextBlock(text=text, cache_control=block.get("cache_control"))
    if kind == "image":
        return _parse_image(block, where)
    if kind == "document":
        return _parse_document(block, where)
    if kind == "tool_use":
        tool_input = block.get("input", {})
        return ir.ToolUseBlock(
            id=_str(block, "id", f"{where}.") or "",
            name=_str(block, "name", f"{where}.") or "",
            input=tool_input if tool_input is not None else {},
        )
    if kind == "tool_result":
        return ir.ToolResultBlock(
            tool_use_id=_str(block, "tool_use_id", f"{where}.") or "",
            content=_parse_tool_result_content(block.get("content"), where),
            is_error=bool(block.get("is_error", False)),
        )
    if kind == "thinking":
        signature = block.get("signature")
        return ir.ThinkingBlock(
            thinking=_str(block, "thinking", f"{where}.") or "",
            signature=signature if isinstance(signature, str) else None,
        )
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(data=str(block.get("data", "")))
    if not isinstance(kind, str):
        raise ClientError(f"{where}.type: field required")
    return ir.OtherBlock(type=kind, raw=block)


def _parse_content(content: Any, where: str) -> list[ir.Block]:
    if isinstance(content, str):
        return [ir.TextBlock(text=content)]
    if not isinstance(content, list):
        raise ClientError(f"{where}.content: expected a string or a list of content blocks")
    return [_parse_block(b, f"{where}.content[{i}]") for i, b in enumerate(content)]


_ROLES: dict[Any, ir.Role] = {"user": "user", "assistant": "assistant", "system": "system"}


def _parse_messages(value: Any) -> list[ir.Message]:
    if not isinstance(value, list):
        raise ClientError("messages: field required (a list of messages)")
    messages = []
    for i, raw in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise ClientError(f"{where}: expected an object")
        given = raw.get("role")
        role = _ROLES.get(given) if isinstance(given, str) else None
        if role is None:
            raise ClientError(f"{where}.role: expected 'user' or 'assistant', got {shown(given)}")
        if "content" not in raw:
            raise ClientError(f"{where}.content: field required")
        messages.append(ir.Message(role=role, content=_parse_content(raw["content"], where)))
    return messages


def _parse_system(value: Any) -> list[ir.TextBlock]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.TextBlock(text=value)]
    if not isinstance(value, list):
        raise ClientError("system: expected a string or a list of text blocks")
    blocks = []
    for i, b in enumerate(value):
        if not isinstance(b, dict) or not isinstance(b.get("text"), str):
            raise ClientError(f"system[{i}]: expected a text block")
        blocks.append(ir.TextBlock(text=b["text"], cache_control=b.get("cache_control")))
    return blocks


def _parse_tools(value: Any) -> list[ir.Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientError("tools: expected a list")
    tools = []
    for i, t in enumerate(value):
        if not isinstance(t, dict):
            raise ClientError(f"tools[{i}]: expected an object")
        name = _str(t, "name", f"tools[{i}].") or ""
        kind = t.get("type")
        if kind not in (None, "custom"):
            # Anthropic-defined tools (web_search_20250305, bash_*, text_editor_*...): no schema of ours.
            tools.append(ir.Tool(name=name, server_type=str(kind), raw=t))
            continue
        schema = t.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            raise ClientError(f"tools[{i}].input_schema: expected an object")
        description = t.get("description")
        tools.append(
            ir.Tool(
                name=name,
                description=description if isinstance(description, str) else None,
                input_schema=schema if schema is not None else {"type": "object", "properties": {}},
            )
        )
    return tools


_TOOL_CHOICES: dict[Any, Any] = {"auto": "auto", "any": "any", "tool": "tool", "none": "none"}


def _parse_tool_choice(value: Any) -> ir.ToolChoice | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("type"), str)
        or value["type"] not in _TOOL_CHOICES
    ):
        raise ClientError("tool_choice: expected {'type': 'auto'|'any'|'tool'|'none'}")
    kind = _TOOL_CHOICES[value["type"]]
    name = _str(value, "name", "tool_choice.") if kind == "tool" else None
    return ir.ToolChoice(type=kind, name=name, disable_parallel=bool(value.get("disable_parallel_tool_use")))


def _parse_thinking(data: dict[str, Any]) -> ir.ThinkingConfig | None:
    value = data.get("thinking")
    output_config = data.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    effort = effort if isinstance(effort, str) else None
    if value is None:
        return ir.ThinkingConfig(type="disabled", effort=effort) if effort else None
    if not isinstance(value, dict) or value.get("type") not in ("enabled", "adaptive", "disabled"):
        raise ClientError("thinking: expected {'type': 'enabled'|'adaptive'|'disabled', ...}")
    budget = value.get("budget_tokens")
    return ir.ThinkingConfig(
        type=value["type"],
        budget_tokens=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
        effort=effort,
    )


def _parse_output_format(data: dict[str, Any]) -> ir.ResponseSchema | None:
    """``output_config.format``: structured outputs, the one type there is (json_schema)."""
    output_config = data.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if fmt is None:
        return None
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise ClientError("output_config.format: expected {'type': 'json_schema', 'schema': {...}}")
    return ir.ResponseSchema(schema=fmt["schema"])


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    """Parse and validate an Anthropic Messages request.

    Raises:
        ClientError: the body is not valid JSON or a field has the wrong shape (400). Any other
            exception is a bug.
    """
    return parse_request_data(load_json_object(body), count_tokens=count_tokens)


def parse_request_data(data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request:
    """:func:`parse_request` for a body that is already parsed JSON."""
    model = _str(data, "model", "")
    if not model:
        raise ClientError("model: field required")
    stop = data.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        raise ClientError("stop_sequences: expected a list of strings")
    metadata = data.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise ClientError("stream: expected a boolean")
    top_k = _int(data, "top_k")
    return ir.Request(
        model=model,
        messages=_parse_messages(data.get("messages")),
        system=_parse_system(data.get("system")),
        tools=_parse_tools(data.get("tools")),
        tool_choice=_parse_tool_choice(data.get("tool_choice")),
        max_tokens=_int(data, "max_tokens", required=not count_tokens, minimum=1),
        temperature=number(data, "temperature", name_type=True),
        top_p=number(data, "top_p", name_type=True),
        top_k=top_k,
        stop=list(stop or ()),
        stream=stream and not count_tokens,
        thinking=_parse_thinking(data),
        user_id=user_id if isinstance(user_id, str) else None,
        response_schema=_parse_output_format(data),
    )


# ---------------------------------------------------------------------------------------- compaction


def compact_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the system text of an Anthropic Messages request in place; True when anything changed.

    The threshold is compared with the total length of ``system`` (a string or text blocks) plus the
    role ``"system"`` messages Claude Code puts inside ``messages``: counting ``system`` alone, Claude
    Code's real prompt (about 7 200 characters there, 9 200 more in the message) would never qualify.
    Text blocks keep their other keys (``cache_control``); one left empty is dropped, and so is a system
    message or the ``system`` key left with nothing. User and assistant messages and ``tools`` are never
    touched, and anything malformed is left as it is.
    """
    if not isinstance(data, dict):
        return False
    messages = data.get("messages")
    roles = ("system",)
    total = text_length(data.get("system")) + role_text_length(messages, roles)
    if total == 0 or total < threshold:
        return False
    changed = False
    if "system" in data:
        system, did = compact_content(data["system"])
        if did:
            changed = True
            if system:
                data["system"] = system
            else:
                del data["system"]
    if isinstance(messages, list):
        kept, did = compact_messages(messages, roles)
        if did:
            changed = True
            data["messages"] = kept
    return changed
