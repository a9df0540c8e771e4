"""Anthropic Messages, the upstream role, answers: an Anthropic upstream's error, whole message and usage
-> IR. The HTTP status of an error is kept (529 stays 529 for an Anthropic client; an OpenAI client's
dialect maps it); an in-stream error has none, and takes the one its type stands for.

A whole message whose fields have the wrong types (``"content": 5``, a block's ``"text": 5``, a usage
count that is a string or beyond 2**53) is the upstream's fault, as a stream event of that kind is: an
``UpstreamProtocolError`` (502) whose message names the field, never a crash of the proxy (issue 19).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ... import ir
from ...errors import UpstreamProtocolError
from .._common import (
    STATUS_BY_ERROR_TYPE,
    decoded,
    error_type_for_status,
    load_upstream_json,
    token_count,
)

log = logging.getLogger("rawproxy")


def parse_error(status: int, body: bytes) -> ir.ErrorInfo:
    """An Anthropic error body, or whatever an Anthropic-compatible upstream sent instead; the HTTP
    status is kept (529 stays 529 for an Anthropic client; an OpenAI client's dialect maps it)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return error_info(data, status, keep_status=True)
    message = body.decode("utf-8", "replace").strip()[:2000] or f"upstream returned HTTP {status}"
    return ir.ErrorInfo(status=status, type=error_type_for_status(status), message=message)


def error_info(data: dict[str, Any], status: int, *, keep_status: bool) -> ir.ErrorInfo:
    """``{"type": "error", "error": {"type", "message"}}`` -> ErrorInfo. In a stream (HTTP 200) the
    status comes from the error type: overloaded_error is 529, and so on."""
    err = data.get("error")
    err = err if isinstance(err, dict) else {}
    try:
        etype = ir.ErrorType(str(err.get("type")))
    except ValueError:
        etype = error_type_for_status(status)
    if not keep_status:
        status = STATUS_BY_ERROR_TYPE.get(etype, status)
    return ir.ErrorInfo(status=status, type=etype, message=str(err.get("message") or "upstream error"))


STOP_REASONS = {reason.value: reason for reason in ir.StopReason}


def _string(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def parse_usage(data: Any, where: str = "usage") -> ir.Usage | None:
    """Anthropic usage -> IR usage. None for no usage (absent or null); ValueError, naming the field,
    for a usage of the wrong shape."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return ir.Usage(
        input_tokens=token_count(data, "input_tokens", where),
        output_tokens=token_count(data, "output_tokens", where),
        cache_read_input_tokens=token_count(data, "cache_read_input_tokens", where),
        cache_creation_input_tokens=token_count(data, "cache_creation_input_tokens", where),
    )


def ir_block(data: dict[str, Any], where: str = "content_block") -> ir.Block:
    """One content block -> IR; ValueError, naming the field, for a known block whose fields have the
    wrong types (a null text is an empty one)."""
    kind = data.get("type")
    if kind == "text":
        return ir.TextBlock(text=_string(data, "text", where) or "")
    if kind == "thinking":
        return ir.ThinkingBlock(
            thinking=_string(data, "thinking", where) or "",
            signature=_string(data, "signature", where) or None,
        )
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(data=_string(data, "data", where) or "")
    if kind == "tool_use":
        arguments = data.get("input")
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError(f"{where}.input: expected an object, got {type(arguments).__name__}")
        return ir.ToolUseBlock(
            id=_string(data, "id", where) or "",
            name=_string(data, "name", where) or "",
            input=arguments or {},
        )
    return ir.OtherBlock(type=str(kind), raw=data)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    """A whole message -> IR; UpstreamProtocolError (502) for one that is not JSON, not a message, or whose
    fields have the wrong types (the message names the field)."""
    data = load_upstream_json(body)
    if not isinstance(data, dict) or data.get("type") == "error" or "content" not in data:
        raise UpstreamProtocolError("upstream response is not an Anthropic message")
    return decoded(_message, data, ctx)


def _message(data: dict[str, Any], ctx: ir.Context) -> ir.Response:
    blocks = data["content"]
    if not isinstance(blocks, list):
        raise ValueError(f"content: expected a list, got {type(blocks).__name__}")
    content = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise ValueError(f"content[{i}]: expected an object, got {type(block).__name__}")
        content.append(ir_block(block, f"content[{i}]"))
    return ir.Response(
        id=_string(data, "id", "message") or "",
        model=ctx.client_model,
        content=content,
        stop_reason=STOP_REASONS.get(str(data.get("stop_reason")), ir.StopReason.END_TURN),
        stop_sequence=_string(data, "stop_sequence", "message"),
        usage=parse_usage(data.get("usage")) or ir.Usage(),
    )


def event_usage(data: Any) -> ir.Usage | None:
    """The usage an event (or a whole message) reports, for the access log of a passthrough (which
    relays the answer as it came: a usage it cannot read is none, never a failure)."""
    if not isinstance(data, dict):
        return None
    if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
        data = data["message"]
    try:
        return parse_usage(data.get("usage"))
    except ValueError:
        return None
