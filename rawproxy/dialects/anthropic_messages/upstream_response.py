"""Anthropic Messages, the upstream role, answers: an Anthropic upstream's error, whole message and usage
-> IR. The HTTP status of an error is kept (529 stays 529 for an Anthropic client; an OpenAI client's
dialect maps it); an in-stream error has none, and takes the one its type stands for.
"""

from __future__ import annotations

from typing import Any

import orjson

from ... import ir
from ...errors import UpstreamProtocolError
from .._common import STATUS_BY_ERROR_TYPE, error_type_for_status, load_upstream_json


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


def parse_usage(data: Any) -> ir.Usage | None:
    if not isinstance(data, dict):
        return None
    return ir.Usage(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cache_read_input_tokens=int(data.get("cache_read_input_tokens") or 0),
        cache_creation_input_tokens=int(data.get("cache_creation_input_tokens") or 0),
    )


def ir_block(data: dict[str, Any]) -> ir.Block:
    kind = data.get("type")
    if kind == "text":
        return ir.TextBlock(text=str(data.get("text") or ""))
    if kind == "thinking":
        signature = data.get("signature")
        return ir.ThinkingBlock(
            thinking=str(data.get("thinking") or ""),
            signature=signature if isinstance(signature, str) and signature else None,
        )
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(data=str(data.get("data") or ""))
    if kind == "tool_use":
        return ir.ToolUseBlock(
            id=str(data.get("id") or ""), name=str(data.get("name") or ""), input=data.get("input") or {}
        )
    return ir.OtherBlock(type=str(kind), raw=data)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    data = load_upstream_json(body)
    if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError("upstream response is not an Anthropic message")
    return ir.Response(
        id=str(data.get("id") or ""),
        model=ctx.client_model,
        content=[ir_block(b) for b in data["content"] if isinstance(b, dict)],
        stop_reason=STOP_REASONS.get(str(data.get("stop_reason")), ir.StopReason.END_TURN),
        stop_sequence=data.get("stop_sequence"),
        usage=parse_usage(data.get("usage")) or ir.Usage(),
    )


def event_usage(data: Any) -> ir.Usage | None:
    """The usage an event (or a whole message) reports, for the access log of a passthrough."""
    if not isinstance(data, dict):
        return None
    if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
        return parse_usage(data["message"].get("usage"))
    return parse_usage(data.get("usage"))
