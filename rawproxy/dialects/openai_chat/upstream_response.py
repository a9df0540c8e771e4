"""OpenAI Chat Completions, the upstream role, answers: an OpenAI-compatible upstream's whole completion,
error and usage -> IR.

"OpenAI-compatible" is a family: reasoning arrives as ``reasoning_content``, ``reasoning``,
``reasoning_details``, Mistral's thinking content parts or ``<think>`` tags; errors in whichever shape a
gateway uses, an HTML page among them (A2O-E02). The HTTP status of an error is mapped to one an
Anthropic client knows (A2O-E01, decision 6) from the shared table (``_common.ERROR_TYPES_BY_STATUS``)
and the few statuses only OpenAI-compatible upstreams send.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from ... import ir
from ...errors import UpstreamProtocolError, UpstreamStatus
from ...toolcalls import client_tool_id, parse_arguments
from .._common import ERROR_TYPES_BY_STATUS, error_type_for_status, load_upstream_json

FINISH_REASONS = {
    "stop": ir.StopReason.END_TURN,
    "length": ir.StopReason.MAX_TOKENS,
    "tool_calls": ir.StopReason.TOOL_USE,
    "function_call": ir.StopReason.TOOL_USE,
    "content_filter": ir.StopReason.REFUSAL,
}


def parse_usage(data: Any) -> ir.Usage | None:
    """OpenAI usage -> IR usage: cached prompt tokens are counted apart, never twice (A2O-N10)."""
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens") or 0
    details = data.get("prompt_tokens_details")
    cached = (
        (details.get("cached_tokens") if isinstance(details, dict) else None)
        or data.get("prompt_cache_hit_tokens")
        or 0
    )
    completion = data.get("completion_tokens_details")
    reasoning = completion.get("reasoning_tokens") if isinstance(completion, dict) else None
    return ir.Usage(
        input_tokens=max(int(prompt) - int(cached), 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cache_read_input_tokens=int(cached),
        reasoning_tokens=int(reasoning or 0),
    )


def reasoning_text(message: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if isinstance(details, list):
        return "".join(d.get("text") or d.get("summary") or "" for d in details if isinstance(d, dict))
    return ""


def matched_stop(choice: dict[str, Any], ctx: ir.Context) -> str | None:
    """A2O-N07: only vLLM (``stop_reason``) and SGLang (``matched_stop``) say which stop matched."""
    for key in ("stop_reason", "matched_stop"):
        value = choice.get(key)
        if isinstance(value, str) and value in ctx.stop:
            return value
    return None


_THINK_TAGS = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    data = load_upstream_json(body)
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        raise UpstreamStatus(parse_error(502, body))
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("upstream response has no choices")  # A2O-N12
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[ir.Block] = []
    reasoning = reasoning_text(message)
    text = message.get("content")
    if isinstance(text, list):  # content parts, thinking among them (Mistral's Magistral)
        pieces = content_parts(text)
        reasoning = reasoning or "".join(t for kind, t in pieces if kind == "thinking")
        text = "".join(t for kind, t in pieces if kind == "text")
    if isinstance(text, str) and ctx.profile.split_think_tags and (m := _THINK_TAGS.match(text)):
        reasoning, text = reasoning or m.group(1).strip(), text[m.end() :]
    if reasoning and ctx.thinking:  # decision 1: first, unsigned, only when the client asked for it
        content.append(ir.ThinkingBlock(thinking=reasoning, signature=None))
    if isinstance(text, str) and text:
        content.append(ir.TextBlock(text=text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(ir.TextBlock(text=refusal))
    calls = message.get("tool_calls") or []
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"id": None, "function": legacy}]
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name") or ""
        content.append(
            ir.ToolUseBlock(
                id=client_tool_id(call.get("id")),
                name=ctx.tool_names.get(name, name),
                input=parse_arguments(function.get("arguments"), call.get("id") or ""),
            )
        )
    stop_reason = FINISH_REASONS.get(str(choice.get("finish_reason")), ir.StopReason.END_TURN)
    if calls and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.TOOL_USE  # A2O-N03: vLLM, Ollama and SGLang say "stop" here
    if isinstance(refusal, str) and refusal:
        stop_reason = ir.StopReason.REFUSAL
    stop_sequence = matched_stop(choice, ctx)
    if stop_sequence is not None and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.STOP_SEQUENCE
    usage = parse_usage(data.get("usage")) or ir.Usage(input_tokens=ctx.input_tokens)
    return ir.Response(
        id=str(data.get("id") or ""),
        model=ctx.client_model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
    )


# ------------------------------------------------------------------------------------------- errors

# A2O-E01 and decision 6: upstream status -> (client status, canonical type). A status of the shared
# table keeps its number; these are the ones an OpenAI-compatible upstream sends that an Anthropic client
# would not know, or not read the same way.
_STATUS_MAP: Final[dict[int, tuple[int, ir.ErrorType]]] = {
    **{status: (status, etype) for status, etype in ERROR_TYPES_BY_STATUS.items()},
    408: (504, ir.ErrorType.TIMEOUT),
    409: (409, ir.ErrorType.INVALID_REQUEST),
    422: (400, ir.ErrorType.INVALID_REQUEST),
    502: (502, ir.ErrorType.API),
    503: (529, ir.ErrorType.OVERLOADED),
}

_TAGS = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def map_status(status: int) -> tuple[int, ir.ErrorType]:
    if status in _STATUS_MAP:
        return _STATUS_MAP[status]
    return status, error_type_for_status(status)  # not in the table: API above 499, else invalid request


def _error_message(status: int, body: bytes) -> str:
    """The upstream's own words, from whichever error shape it uses (A2O-E02)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        for value in (err, data.get("detail"), data.get("message")):
            if isinstance(value, str) and value:
                return value
            if value is not None and not isinstance(value, str):
                return orjson.dumps(value).decode()[:2000]
    text = body.decode("utf-8", "replace").strip()
    if "<" in text and ">" in text:  # an HTML error page from a gateway
        title = _TITLE.search(text)
        text = (title.group(1) if title else _TAGS.sub(" ", text)).strip()
        text = " ".join(text.split())
    return text[:2000] or f"upstream returned HTTP {status}"


def parse_error(status: int, body: bytes) -> ir.ErrorInfo:
    client_status, etype = map_status(status)
    return ir.ErrorInfo(status=client_status, type=etype, message=_error_message(status, body))


def stream_error(data: dict[str, Any]) -> ir.ErrorInfo:
    """An in-band error (OpenRouter chunk with ``error``, Groq ``event: error``) (A2O-S14).

    The status comes from an integer ``code`` (OpenRouter) or ``status_code`` (Groq, whose ``code`` is a
    string such as ``tool_use_failed``); without either, the upstream broke mid-stream: 502.
    """
    err = data.get("error")
    message = "upstream reported an error mid-stream"
    status = 502
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        for key in ("code", "status_code", "status"):
            code = err.get(key)
            if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
                status = code
                break
    elif isinstance(err, str) and err:
        message = err
    client_status, etype = map_status(status)
    return ir.ErrorInfo(status=client_status, type=etype, message=message)


def content_parts(content: Any) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces of a content value: a string, or a list of parts as Mistral sends them
    (``{"type": "text"}`` and ``{"type": "thinking", "thinking": [{"type": "text", ...}]}``)."""
    if isinstance(content, str):
        return [("text", content)] if content else []
    if not isinstance(content, list):
        return []
    pieces = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            inner = part.get("thinking")
            text = (
                inner
                if isinstance(inner, str)
                else "".join(
                    p.get("text", "")
                    for p in inner or ()
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            )
            if text:
                pieces.append(("thinking", text))
        elif isinstance(part.get("text"), str) and part["text"]:
            pieces.append(("text", part["text"]))
    return pieces


def event_usage(data: Any) -> ir.Usage | None:
    """The usage a chunk (or a whole completion) reports, for the access log of a passthrough."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if usage is None and isinstance(data.get("x_groq"), dict):
        usage = data["x_groq"].get("usage")
    return parse_usage(usage)
