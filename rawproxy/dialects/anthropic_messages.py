"""Anthropic Messages (``POST /v1/messages``) <-> IR.

Reference: docs.claude.com/en/api/messages and /en/api/messages-streaming.

Theory of operation: requests are validated as they are parsed, so a malformed request is a
``ClientError`` with a message that names the offending field, in Anthropic's error shape (A2O-E04), and
never a 500. Unknown top-level fields (``context_management``, ``diagnostics``, ``mcp_servers``...) are
ignored: they mean nothing to the IR and are never forwarded to an OpenAI upstream (A2O-R28). Unknown
block types become ``ir.OtherBlock`` rather than errors, because Claude Code adds new ones every month.

The stream encoder writes each event from a byte template rather than building a dict and dumping it:
only the variable parts (text, ids) go through orjson. It opens with a made-up ``message_start`` when the
source did not provide one, closes an open block before an ``error`` event (decision 2), and never emits
a ``signature_delta`` it was not given (decision 1).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from .. import ir
from ..errors import ClientError, UpstreamProtocolError
from ..sse import SSEEvent
from ..toolcalls import client_tool_id

NAME: Final = "anthropic_messages"
PATHS: tuple[str, ...] = ("/v1/messages",)

log = logging.getLogger("rawproxy")

# --------------------------------------------------------------------------------- request (wire -> IR)


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson rejects invalid UTF-8 and lone surrogates too (A2O-R35): a client fault, not a crash.
        raise ClientError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError("request body must be a JSON object")
    return data


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


def _num(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientError(f"{key}: expected a number, got {type(value).__name__}")
    return float(value)


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
    raise ClientError(f"{where}.source.type: unsupported image source {kind!r}")


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
    raise ClientError(f"{where}.source.type: unsupported document source {kind!r}")


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
        role = _ROLES.get(raw.get("role"))
        if role is None:
            raise ClientError(f"{where}.role: expected 'user' or 'assistant', got {raw.get('role')!r}")
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
    if not isinstance(value, dict) or value.get("type") not in _TOOL_CHOICES:
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


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    """Parse and validate an Anthropic Messages request.

    Raises:
        ClientError: the body is not valid JSON or a field has the wrong shape (400). Any other
            exception is a bug.
    """
    return parse_request_data(_load(body), count_tokens=count_tokens)


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
        temperature=_num(data, "temperature"),
        top_p=_num(data, "top_p"),
        top_k=top_k,
        stop=list(stop or ()),
        stream=stream and not count_tokens,
        thinking=_parse_thinking(data),
        user_id=user_id if isinstance(user_id, str) else None,
    )


# ------------------------------------------------------------------------------- response (IR -> wire)

_ERROR_TYPES_BY_STATUS = {
    400: ir.ErrorType.INVALID_REQUEST,
    401: ir.ErrorType.AUTHENTICATION,
    402: ir.ErrorType.BILLING,
    403: ir.ErrorType.PERMISSION,
    404: ir.ErrorType.NOT_FOUND,
    413: ir.ErrorType.REQUEST_TOO_LARGE,
    429: ir.ErrorType.RATE_LIMIT,
    500: ir.ErrorType.API,
    504: ir.ErrorType.TIMEOUT,
    529: ir.ErrorType.OVERLOADED,
}


def _usage_dict(usage: ir.Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
    }


def _block_dict(block: ir.Block) -> dict[str, Any] | None:
    if isinstance(block, ir.TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ir.ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, ir.ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature or ""}
    if isinstance(block, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ir.OtherBlock):
        return block.raw
    return None


def message_id(source_id: str | None) -> str:
    """A message id with Anthropic's ``msg_`` prefix (A2O-N14)."""
    if source_id and source_id.startswith("msg_"):
        return source_id
    if source_id:
        return "msg_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in source_id)
    return "msg_" + _random_hex(24)


def _random_hex(n: int) -> str:
    import os

    return os.urandom((n + 1) // 2).hex()[:n]


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    content = [d for d in map(_block_dict, resp.content) if d is not None]
    return orjson.dumps(
        {
            "id": message_id(resp.id),
            "type": "message",
            "role": "assistant",
            "model": ctx.client_model,
            "content": content,
            "stop_reason": resp.stop_reason.value,
            "stop_sequence": resp.stop_sequence,
            "usage": _usage_dict(resp.usage),
        }
    )


def error_type_for_status(status: int) -> ir.ErrorType:
    if status in _ERROR_TYPES_BY_STATUS:
        return _ERROR_TYPES_BY_STATUS[status]
    return ir.ErrorType.API if status >= 500 else ir.ErrorType.INVALID_REQUEST


def build_error(err: ir.ErrorInfo) -> tuple[int, bytes]:
    body = {"type": "error", "error": {"type": err.type.value, "message": err.message}}
    return err.status, orjson.dumps(body)


def parse_error(status: int, body: bytes) -> ir.ErrorInfo:
    """An Anthropic error body, or whatever an Anthropic-compatible upstream sent instead; the HTTP
    status is kept (529 stays 529 for an Anthropic client; an OpenAI client's dialect maps it)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return _error_info(data, status, keep_status=True)
    message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream returned HTTP {status}"
    return ir.ErrorInfo(status=status, type=error_type_for_status(status), message=message)


def _error_info(data: dict[str, Any], status: int, *, keep_status: bool) -> ir.ErrorInfo:
    """``{"type": "error", "error": {"type", "message"}}`` -> ErrorInfo. In a stream (HTTP 200) the
    status comes from the error type: overloaded_error is 529, and so on."""
    err = data.get("error")
    err = err if isinstance(err, dict) else {}
    try:
        etype = ir.ErrorType(str(err.get("type")))
    except ValueError:
        etype = error_type_for_status(status)
    if not keep_status:
        status = _STATUS_BY_ERROR_TYPE.get(etype, status)
    return ir.ErrorInfo(status=status, type=etype, message=str(err.get("message") or "upstream error"))


_STATUS_BY_ERROR_TYPE = {etype: status for status, etype in _ERROR_TYPES_BY_STATUS.items()}


# --------------------------------------------------------------------------------- stream (IR -> wire)

_dumps = orjson.dumps


class StreamEncoder:
    """IR stream events -> Anthropic SSE bytes, one ``encode`` per event."""

    __slots__ = ("_ctx", "_open", "_started", "_stopped")

    def __init__(self, ctx: ir.Context) -> None:
        self._ctx = ctx
        self._started = False
        self._stopped = False
        self._open: int | None = None  # index of the open content block

    def _message_start(self, msg_id: str | None, usage: ir.Usage | None) -> bytes:
        self._started = True
        usage = usage or ir.Usage()
        message: dict[str, Any] = {
            "id": message_id(msg_id),
            "type": "message",
            "role": "assistant",
            "model": self._ctx.client_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                # The upstream reports input tokens only at the end: show the estimate meanwhile (A2O-S02).
                "input_tokens": usage.input_tokens or self._ctx.input_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
                "output_tokens": usage.output_tokens,
            },
        }
        return b'event: message_start\ndata: {"type":"message_start","message":%b}\n\n' % _dumps(message)

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            assert isinstance(ev, ir.TextDelta)
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"text_delta","text":%b}}\n\n' % (ev.index, _dumps(ev.text))
            )
        if t is ir.InputJsonDelta:
            assert isinstance(ev, ir.InputJsonDelta)
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"input_json_delta","partial_json":%b}}\n\n'
                % (ev.index, _dumps(ev.partial_json))
            )
        if t is ir.MessageStart:
            assert isinstance(ev, ir.MessageStart)
            return b"" if self._started else self._message_start(ev.id, ev.usage)
        if self._started or t is ir.StreamError:
            return self._encode_other(ev)
        return self._message_start(None, None) + self._encode_other(ev)

    def start(self) -> bytes:
        """The opening frame, sent as soon as the upstream accepted the request (first byte early)."""
        return b"" if self._started else self._message_start(None, None)

    def _encode_other(self, ev: ir.StreamEvent) -> bytes:
        if isinstance(ev, ir.ThinkingDelta):
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"thinking_delta","thinking":%b}}\n\n' % (ev.index, _dumps(ev.thinking))
            )
        if isinstance(ev, ir.BlockStart):
            self._open = ev.index
            block = _block_dict(ev.block)
            if isinstance(ev.block, ir.ToolUseBlock):
                block = {"type": "tool_use", "id": ev.block.id, "name": ev.block.name, "input": {}}
            elif isinstance(ev.block, ir.TextBlock):
                block = {"type": "text", "text": ""}
            elif isinstance(ev.block, ir.ThinkingBlock):
                block = {"type": "thinking", "thinking": "", "signature": ""}
            return (
                b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
                b'"content_block":%b}\n\n' % (ev.index, _dumps(block))
            )
        if isinstance(ev, ir.BlockStop):
            self._open = None
            return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % ev.index
        if isinstance(ev, ir.SignatureDelta):
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"signature_delta","signature":%b}}\n\n' % (ev.index, _dumps(ev.signature))
            )
        if isinstance(ev, ir.MessageDelta):
            delta = {"stop_reason": ev.stop_reason.value, "stop_sequence": ev.stop_sequence}
            return b'event: message_delta\ndata: {"type":"message_delta","delta":%b,"usage":%b}\n\n' % (
                _dumps(delta),
                _dumps(_usage_dict(ev.usage)),
            )
        if isinstance(ev, ir.MessageStop):
            self._stopped = True
            return b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        if isinstance(ev, ir.Ping):
            return b'event: ping\ndata: {"type":"ping"}\n\n'
        if isinstance(ev, ir.StreamError):
            # `event: error` with the open block left open, and no message_stop: what Anthropic itself
            # sends. Measured with Claude Code 2.1.330 (tests/e2e): it then retries the turn without
            # streaming. Closing the block first (as decision 2 of CONFORMANCE.md words it) makes it
            # keep the partial text as a finished turn and ask the model to resume: a broken stream
            # taken as a success, which decision 2 exists to prevent.
            self._stopped = True
            self._open = None
            _, body = build_error(ev.info)
            return b"event: error\ndata: %b\n\n" % body
        return b""

    def close(self) -> bytes:
        return b""

    def ping(self) -> bytes:
        """A keep-alive frame for a silent upstream (A2O-S16); nothing once the message has ended."""
        return b"" if self._stopped else b'event: ping\ndata: {"type":"ping"}\n\n'


# ======================================================================= upstream role: IR -> Anthropic
#
# Rules an Anthropic upstream enforces that an OpenAI client never had to know (CONFORMANCE.md O2A-R*):
# system messages live outside `messages` (hoisted, O2A-R01); the first message is a user message
# (O2A-R03); roles alternate (merged, O2A-R04); text blocks are never empty (O2A-R06); every tool_use is
# answered by a tool_result in the very next user message (repaired as decision 4 says, O2A-R15); tool
# ids match ^[a-zA-Z0-9_-]+$ (reversibly encoded, O2A-R12); with thinking on, temperature, top_k and
# top_p must stay unset and tool_choice cannot force a tool (O2A-R20); max_tokens exceeds the budget.

UPSTREAM_PATH: Final = "/v1/messages"
MISSING_RESULT_TEXT: Final = "no result was recorded for this tool call"
FIRST_USER_TEXT: Final = "(continue)"
MAX_CACHE_BREAKPOINTS: Final = 4
THINKING_MIN_BUDGET: Final = 1024


def _image_dict(block: ir.ImageBlock) -> dict[str, Any]:
    if block.url is not None:
        return {"type": "image", "source": {"type": "url", "url": block.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": block.media_type, "data": block.data}}


def _document_dict(block: ir.DocumentBlock) -> dict[str, Any]:
    if block.text is not None:
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": block.text}
    elif block.url is not None:
        source = {"type": "url", "url": block.url}
    else:
        source = {"type": "base64", "media_type": block.media_type or "application/pdf", "data": block.data}
    doc: dict[str, Any] = {"type": "document", "source": source}
    if block.title:
        doc["title"] = block.title
    return doc


def _text_dict(block: ir.TextBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control:
        out["cache_control"] = block.cache_control
    return out


def _result_dict(block: ir.ToolResultBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": client_tool_id(block.tool_use_id)}
    parts: list[dict[str, Any]] = []
    for part in block.content:
        if isinstance(part, ir.TextBlock):
            if part.text.strip():
                parts.append(_text_dict(part))
        elif isinstance(part, ir.ImageBlock):
            parts.append(_image_dict(part))
        else:
            parts.append(_document_dict(part))
    if parts:  # an empty result has no content at all (O2A-R14)
        out["content"] = parts
    if block.is_error:
        out["is_error"] = True
    return out


def _upstream_block(block: ir.Block) -> dict[str, Any] | None:
    if isinstance(block, ir.TextBlock):
        return _text_dict(block) if block.text.strip() else None  # O2A-R06: never an empty text block
    if isinstance(block, ir.ImageBlock):
        return _image_dict(block)
    if isinstance(block, ir.DocumentBlock):
        return _document_dict(block)
    if isinstance(block, ir.ToolUseBlock):
        return {"type": "tool_use", "id": client_tool_id(block.id), "name": block.name, "input": block.input}
    if isinstance(block, ir.ToolResultBlock):
        return _result_dict(block)
    if isinstance(block, ir.ThinkingBlock):
        # Only a signed block can be replayed, and then byte for byte; unsigned reasoning from an
        # OpenAI-side history cannot be, and is dropped.
        return (
            {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
            if block.signature
            else None
        )
    if isinstance(block, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    return block.raw


def _repair_tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decision 4: every tool_use answered in the next user message; no result without its call."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for message in messages:
        if message["role"] == "user":
            results = [b for b in message["content"] if b.get("type") == "tool_result"]
            others = [b for b in message["content"] if b.get("type") != "tool_result"]
            answered = {b["tool_use_id"] for b in results}
            kept = [b for b in results if b["tool_use_id"] in pending]
            for orphan in (b for b in results if b["tool_use_id"] not in pending):
                log.warning(
                    "tool result %s matches no tool call; sending it as user text", orphan["tool_use_id"]
                )
                text = "\n".join(
                    p.get("text", "") for p in orphan.get("content", ()) if p.get("type") == "text"
                )
                others.insert(
                    0, {"type": "text", "text": f"[tool result {orphan['tool_use_id']}] {text}".rstrip()}
                )
            missing = [_missing_result(i) for i in pending if i not in answered]
            ordered = sorted(kept, key=lambda b: pending.index(b["tool_use_id"]))
            message = {"role": "user", "content": missing + ordered + others}
        elif pending:
            out.append({"role": "user", "content": [_missing_result(i) for i in pending]})
        pending = (
            [b["id"] for b in message["content"] if b.get("type") == "tool_use"]
            if message["role"] == "assistant"
            else []
        )
        if message["content"]:
            out.append(message)
    if pending:
        out.append({"role": "user", "content": [_missing_result(i) for i in pending]})
    return out


def _missing_result(call_id: str) -> dict[str, Any]:
    log.warning("tool call %s has no result; sending a synthetic error result", call_id)
    return {"type": "tool_result", "tool_use_id": call_id, "content": MISSING_RESULT_TEXT, "is_error": True}


def _merge_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive turns of one role become one turn (O2A-R04); the first turn is a user's (O2A-R03)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {"role": message["role"], "content": out[-1]["content"] + message["content"]}
        else:
            out.append(message)
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": FIRST_USER_TEXT}]})
    return out


def _add_cache_breakpoints(body: dict[str, Any]) -> None:
    """Decision 8: breakpoints on the system prompt, the tools and the last user turn, at most 4 in all."""

    def marked(blocks: list[dict[str, Any]]) -> int:
        return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)

    used = marked(body.get("system") or []) + marked(body.get("tools") or [])
    used += sum(marked(m["content"]) for m in body["messages"])
    targets: list[dict[str, Any]] = []
    if body.get("system"):
        targets.append(body["system"][-1])
    if body.get("tools"):
        targets.append(body["tools"][-1])
    users = [m for m in body["messages"] if m["role"] == "user" and m["content"]]
    if users:
        targets.append(users[-1]["content"][-1])
    for target in targets:
        if used >= MAX_CACHE_BREAKPOINTS:
            break
        if "cache_control" not in target and target.get("type") not in ("thinking", "redacted_thinking"):
            target["cache_control"] = {"type": "ephemeral"}
            used += 1


def _tool_dict(tool: ir.Tool) -> dict[str, Any]:
    if tool.server_type is not None:
        return tool.raw or {"type": tool.server_type, "name": tool.name}
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.input_schema
    return out


def _tool_choice_dict(choice: ir.ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": choice.type}
    if choice.type == "tool":
        out["name"] = choice.name
    if choice.disable_parallel and choice.type != "none":
        out["disable_parallel_tool_use"] = True
    return out


def build_request(req: ir.Request, ctx: ir.Context) -> tuple[str, bytes]:
    """IR -> (path, body) for an Anthropic Messages upstream."""
    system = [_text_dict(b) for b in req.system if b.text.strip()]
    turns: list[dict[str, Any]] = []
    for message in req.messages:
        if message.role == "system":  # hoisted: mid-conversation system turns are not portable (O2A-R01)
            system += [
                _text_dict(b) for b in message.content if isinstance(b, ir.TextBlock) and b.text.strip()
            ]
            continue
        blocks = [d for d in map(_upstream_block, message.content) if d is not None]
        turns.append({"role": message.role, "content": blocks})
    messages = _merge_roles(_repair_tool_turns(_merge_roles(turns)))
    max_tokens = req.max_tokens or ctx.max_output_tokens or 4096
    if ctx.max_output_tokens is not None:
        max_tokens = min(max_tokens, ctx.max_output_tokens)
    body: dict[str, Any] = {"model": ctx.upstream_model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    tools = [_tool_dict(t) for t in req.tools]
    used_tools = any(b.get("type") in ("tool_use", "tool_result") for m in messages for b in m["content"])
    choice = req.tool_choice
    if not tools and used_tools:
        # O2A-R18: Anthropic rejects tool blocks in a request that declares no tools. A placeholder that
        # cannot be chosen keeps the history intact.
        tools = [
            {
                "name": "history_placeholder",
                "description": "Not callable.",
                "input_schema": {"type": "object", "properties": {}},
            }
        ]
        choice = ir.ToolChoice(type="none")
    thinking = req.thinking
    if thinking is not None and thinking.enabled:
        if thinking.type == "adaptive":
            body["thinking"] = {"type": "adaptive"}
        else:
            budget = max(thinking.budget_tokens or THINKING_MIN_BUDGET, THINKING_MIN_BUDGET)
            if max_tokens <= budget:  # O2A-R19: max_tokens must exceed the budget
                max_tokens = body["max_tokens"] = budget + THINKING_MIN_BUDGET
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if choice is not None and choice.type in ("any", "tool"):
            choice = ir.ToolChoice(type="auto", disable_parallel=choice.disable_parallel)  # O2A-R20
    else:
        if req.temperature is not None:
            body["temperature"] = min(max(req.temperature, 0.0), 1.0)  # O2A-R25: clamped to [0, 1]
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.top_k is not None:
            body["top_k"] = req.top_k
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = _tool_choice_dict(choice)
    stop = [s for s in req.stop if s.strip()]  # O2A-R21: whitespace-only sequences are rejected
    if stop:
        body["stop_sequences"] = stop
    if req.user_id:
        body["metadata"] = {"user_id": req.user_id}
    if req.stream:
        body["stream"] = True
    if ctx.auto_cache:
        _add_cache_breakpoints(body)
    return UPSTREAM_PATH, orjson.dumps(body)


def tool_name_map(req: ir.Request) -> dict[str, str]:
    """Anthropic accepts every name an OpenAI client can send: nothing to rename."""
    return {}


# ====================================================================== upstream role: Anthropic -> IR

_STOP_REASONS = {reason.value: reason for reason in ir.StopReason}


def parse_usage(data: Any) -> ir.Usage | None:
    if not isinstance(data, dict):
        return None
    return ir.Usage(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cache_read_input_tokens=int(data.get("cache_read_input_tokens") or 0),
        cache_creation_input_tokens=int(data.get("cache_creation_input_tokens") or 0),
    )


def _ir_block(data: dict[str, Any]) -> ir.Block:
    kind = data.get("type")
    if kind == "text":
        return ir.TextBlock(text=str(data.get("text") or ""))
    if kind == "thinking":
        return ir.ThinkingBlock(
            thinking=str(data.get("thinking") or ""), signature=data.get("signature") or None
        )
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(data=str(data.get("data") or ""))
    if kind == "tool_use":
        return ir.ToolUseBlock(
            id=str(data.get("id") or ""), name=str(data.get("name") or ""), input=data.get("input") or {}
        )
    return ir.OtherBlock(type=str(kind), raw=data)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream returned a response that is not JSON") from None
    if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError("upstream response is not an Anthropic message")
    return ir.Response(
        id=str(data.get("id") or ""),
        model=ctx.client_model,
        content=[_ir_block(b) for b in data["content"] if isinstance(b, dict)],
        stop_reason=_STOP_REASONS.get(str(data.get("stop_reason")), ir.StopReason.END_TURN),
        stop_sequence=data.get("stop_sequence"),
        usage=parse_usage(data.get("usage")) or ir.Usage(),
    )


class StreamDecoder:
    """Anthropic SSE events -> IR events: nearly one to one. Keyed on the JSON ``type``, not on the
    ``event:`` line (O2A-S11); unknown event and delta types are ignored (O2A-S06)."""

    def __init__(self, ctx: ir.Context) -> None:
        self.ctx = ctx
        self.usage: ir.Usage | None = None
        self._done = False
        self._started = False

    def _merge_usage(self, data: Any) -> None:
        update = parse_usage(data)
        if update is None:
            return
        if self.usage is None:
            self.usage = update
        else:
            self.usage.merge(update)

    def feed(self, event: SSEEvent) -> list[ir.StreamEvent]:
        if self._done:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream sent a stream event that is not JSON") from None
        if not isinstance(data, dict):
            return []
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            index = int(data.get("index") or 0)
            dtype = delta.get("type")
            if dtype == "text_delta":
                return [ir.TextDelta(index, str(delta.get("text") or ""))]
            if dtype == "input_json_delta":
                return [ir.InputJsonDelta(index, str(delta.get("partial_json") or ""))]
            if dtype == "thinking_delta":
                return [ir.ThinkingDelta(index, str(delta.get("thinking") or ""))]
            if dtype == "signature_delta":
                return [ir.SignatureDelta(index, str(delta.get("signature") or ""))]
            return []  # citations_delta and future delta types
        if kind == "content_block_start":
            block = _ir_block(data.get("content_block") or {})
            if isinstance(block, ir.ToolUseBlock):
                block.input = {}
            elif isinstance(block, ir.ImageBlock | ir.DocumentBlock | ir.ToolResultBlock):
                return []
            return [ir.BlockStart(int(data.get("index") or 0), block)]
        if kind == "content_block_stop":
            return [ir.BlockStop(int(data.get("index") or 0))]
        if kind == "message_start":
            message = data.get("message") or {}
            self._started = True
            self._merge_usage(message.get("usage"))
            return [
                ir.MessageStart(
                    str(message.get("id") or ""), str(message.get("model") or ""), self.usage or ir.Usage()
                )
            ]
        if kind == "message_delta":
            delta = data.get("delta") or {}
            self._merge_usage(data.get("usage"))
            stop = _STOP_REASONS.get(str(delta.get("stop_reason")), ir.StopReason.END_TURN)
            return [ir.MessageDelta(stop, delta.get("stop_sequence"), self.usage or ir.Usage())]
        if kind == "message_stop":
            self._done = True
            return [ir.MessageStop()]
        if kind == "ping":
            return [ir.Ping()]
        if kind == "error":
            self._done = True
            return [ir.StreamError(_error_info(data, 500, keep_status=False))]
        return []

    def close(self) -> list[ir.StreamEvent]:
        return self.eof()

    def eof(self) -> list[ir.StreamEvent]:
        """The upstream ended without message_stop: an error, never a silent truncation (O2A-S10)."""
        if self._done:
            return []
        self._done = True
        return [
            ir.StreamError(
                ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="upstream stream ended prematurely")
            )
        ]


def event_usage(data: Any) -> ir.Usage | None:
    """The usage an event (or a whole message) reports, for the access log of a passthrough."""
    if not isinstance(data, dict):
        return None
    if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
        return parse_usage(data["message"].get("usage"))
    return parse_usage(data.get("usage"))
