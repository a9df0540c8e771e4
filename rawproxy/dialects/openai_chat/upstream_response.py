"""OpenAI Chat Completions, the upstream role, answers: an OpenAI-compatible upstream's whole completion,
error and usage -> IR.

"OpenAI-compatible" is a family: reasoning arrives as ``reasoning_content``, ``reasoning``,
``reasoning_details``, Mistral's thinking content parts or ``<think>`` tags; errors in whichever shape a
gateway uses, an HTML page among them (A2O-E02). The HTTP status of an error is mapped to one an
Anthropic client knows (A2O-E01, decision 6) from the shared table (``_common.ERROR_TYPES_BY_STATUS``)
and the few statuses only OpenAI-compatible upstreams send.

A whole answer whose fields have the wrong types (``"choices": 5``, ``"content": 5``, a usage count that
is a string or beyond 2**53) is the upstream's fault, as a stream chunk of that kind is: an
``UpstreamProtocolError`` (502) whose message names the field, never a crash of the proxy (issue 19).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import orjson

from ... import ir
from ...carrier import digest
from ...errors import UpstreamProtocolError, UpstreamStatus
from ...toolcalls import client_tool_id, parse_arguments
from .._common import (
    ERROR_TYPES_BY_STATUS,
    decoded,
    error_type_for_status,
    load_upstream_json,
    token_count,
)

log = logging.getLogger("rawproxy")

FINISH_REASONS = {
    "stop": ir.StopReason.END_TURN,
    "length": ir.StopReason.MAX_TOKENS,
    "tool_calls": ir.StopReason.TOOL_USE,
    "function_call": ir.StopReason.TOOL_USE,
    "content_filter": ir.StopReason.REFUSAL,
}


def _object(value: Any, where: str) -> dict[str, Any]:
    """An optional object (null: empty); anything else raises ValueError naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def parse_usage(data: Any, where: str = "usage") -> ir.Usage | None:
    """OpenAI usage -> IR usage: cached prompt tokens are counted apart, never twice (A2O-N10). None for
    no usage (absent or null); ValueError, naming the field, for a usage of the wrong shape."""
    if data is None:
        return None
    data = _object(data, where)
    prompt = token_count(data, "prompt_tokens", where)
    details = _object(data.get("prompt_tokens_details"), f"{where}.prompt_tokens_details")
    cached = token_count(details, "cached_tokens", f"{where}.prompt_tokens_details") or token_count(
        data, "prompt_cache_hit_tokens", where
    )
    completion = _object(data.get("completion_tokens_details"), f"{where}.completion_tokens_details")
    return ir.Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=token_count(data, "completion_tokens", where),
        cache_read_input_tokens=cached,
        reasoning_tokens=token_count(completion, "reasoning_tokens", f"{where}.completion_tokens_details"),
    )


REASONING_FIELDS: Final = (
    "reasoning_content",
    "reasoning",
)  # DeepSeek, Kimi, GLM...; vLLM since 2026 (RS-05)


def reasoning_field(message: dict[str, Any]) -> str | None:
    """The field a message's (or a delta's) reasoning text came in, when it is one that goes back as it
    came (RS-01/02/05); None otherwise."""
    for key in REASONING_FIELDS:
        value = message.get(key)
        if isinstance(value, str) and value:
            return key
    return None


def reasoning_details(message: dict[str, Any]) -> list[Any] | None:
    """OpenRouter's and MiniMax's ``reasoning_details`` array, to go back unchanged (RS-04); None when
    absent or not a list."""
    details = message.get("reasoning_details")
    return details if isinstance(details, list) and details else None


def merge_details(into: list[Any], delta: list[Any], carried: int = 0) -> None:
    """A streamed ``delta.reasoning_details`` into the answer's whole array, as OpenRouter's own AI SDK
    provider accumulates it (@openrouter/ai-sdk-provider, chat stream): consecutive ``reasoning.text``
    pieces are one entry (texts joined, the first signature and format kept), any other entry
    (``reasoning.encrypted``, ``reasoning.summary``) is kept as it came. Stricter than that SDK, pieces
    with different ``index`` values stay apart (two thinking blocks, two signatures). The first
    ``carried`` entries are sealed already: never merged into."""
    for entry in delta:
        last = into[-1] if len(into) > carried else None
        if (
            isinstance(entry, dict)
            and entry.get("type") == "reasoning.text"
            and isinstance(last, dict)
            and last.get("type") == "reasoning.text"
            and last.get("index") == entry.get("index")
        ):
            last["text"] = (last.get("text") or "") + (entry.get("text") or "")
            for key, value in entry.items():
                if key != "text" and last.get(key) is None:
                    last[key] = value
        else:
            into.append(dict(entry) if isinstance(entry, dict) else entry)


def reasoning_state(
    field: str | None, text: str, ctx: ir.Context, details: list[Any] | None = None
) -> str | None:
    """The envelope the thinking block's signature carries, so the reasoning goes back to this upstream
    as it came on the next turn (RS-07): the field and a fingerprint of the text (the text itself comes
    back as the block's thinking), and a ``reasoning_details`` array whole (RS-04). None when there is
    nothing to carry."""
    if (field is None and not details) or ctx.carrier is None or not text:
        return None
    state: dict[str, Any] = {"d": digest(text)}
    if field is not None:
        state["f"] = field
    if details:
        state["rd"] = details
    return ctx.carrier.seal(state)


def call_id_for_client(
    call_id: str | None, extra: Any, ctx: ir.Context, unshown: dict[str, Any] | None = None
) -> str:
    """The id a client sees for an upstream's tool call: when the call came with state to give back,
    the id carries it, sealed: Gemini's ``extra_content`` (RS-03), and on a turn's first call the
    reasoning state the client did not see: ``{"r": [field, text]}`` (RS-01: DeepSeek thinks anyway,
    and wants it back on that tool turn, when there is no thinking block to carry it) and ``{"rd":
    [...]}``, the ``reasoning_details`` no thinking signature carried (RS-04)."""
    state: dict[str, Any] = dict(unshown) if unshown else {}
    if isinstance(extra, dict):
        state["x"] = extra
    if call_id and state and ctx.carrier is not None:
        sealed = ctx.carrier.seal_id(call_id, state)
        if sealed is not None:
            return sealed
    return client_tool_id(call_id)


def reasoning_text(message: dict[str, Any]) -> str:
    for key in REASONING_FIELDS:
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if not isinstance(details, list):
        return ""
    pieces = []
    for i, detail in enumerate(details):
        if not isinstance(detail, dict):
            continue
        piece = detail.get("text") or detail.get("summary") or ""
        if not isinstance(piece, str):
            raise ValueError(f"reasoning_details[{i}]: expected a string text, got {type(piece).__name__}")
        pieces.append(piece)
    return "".join(pieces)


def call_input(arguments: Any, call_id: str, name: str, ctx: ir.Context) -> Any:
    """A whole call's arguments as its input. A free-form tool's (CX-04: Codex's apply_patch, a function
    of one string ``input`` upstream) may come as the raw text itself, not JSON: it is kept whole as that
    ``input``, never repaired into ``{}`` as broken JSON would be (A2O-N04)."""
    if isinstance(arguments, str) and ctx.echo.get("tool_kinds", {}).get(name) == "custom":
        try:
            orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {"input": arguments}
    return parse_arguments(arguments, call_id)  # JSON (an object, a bare string...): as before


def matched_stop(choice: dict[str, Any], ctx: ir.Context) -> str | None:
    """A2O-N07: only vLLM (``stop_reason``) and SGLang (``matched_stop``) say which stop matched."""
    for key in ("stop_reason", "matched_stop"):
        value = choice.get(key)
        if isinstance(value, str) and value in ctx.stop:
            return value
    return None


_THINK_TAGS = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    """A whole completion -> IR; UpstreamProtocolError (502) for one that is not JSON, has no choices, or
    whose fields have the wrong types (the message names the field)."""
    data = load_upstream_json(body)
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        raise UpstreamStatus(parse_error(502, body))
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or (isinstance(choices, list) and not isinstance(choices[0], dict)):
        raise UpstreamProtocolError("upstream response has no choices")  # A2O-N12
    return decoded(_response, data, ctx)


def _string(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _response(data: dict[str, Any], ctx: ir.Context) -> ir.Response:
    choices = data["choices"]
    if not isinstance(choices, list):
        raise ValueError(f"choices: expected a list, got {type(choices).__name__}")
    choice = choices[0]
    message = _object(choice.get("message"), "choices[0].message")
    content: list[ir.Block] = []
    reasoning = reasoning_text(message)
    text = message.get("content")
    if isinstance(text, list):  # content parts, thinking among them (Mistral's Magistral)
        pieces = content_parts(text)
        reasoning = reasoning or "".join(t for kind, t in pieces if kind == "thinking")
        text = "".join(t for kind, t in pieces if kind == "text")
    text = _string(text, "choices[0].message.content")
    if text and ctx.profile.split_think_tags and (m := _THINK_TAGS.match(text)):
        reasoning, text = reasoning or m.group(1).strip(), text[m.end() :]
    details = reasoning_details(message)
    if reasoning and ctx.thinking:  # decision 1: first, only when the client asked for it
        # the signature is rawproxy's sealed state, never Anthropic's (RS-07)
        signature = reasoning_state(reasoning_field(message), reasoning, ctx, details)
        content.append(ir.ThinkingBlock(thinking=reasoning, signature=signature))
        details = None if signature is not None else details
    if text:
        content.append(ir.TextBlock(text=text))
    refusal = _string(message.get("refusal"), "choices[0].message.refusal")
    if refusal:
        content.append(ir.TextBlock(text=refusal))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError(f"choices[0].message.tool_calls: expected a list, got {type(calls).__name__}")
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"id": None, "function": legacy}]
    field = reasoning_field(message)
    unshown: dict[str, Any] = {}
    if field is not None and reasoning and not ctx.thinking:
        unshown["r"] = [field, reasoning]
    if details:  # no thinking block carried them: the first call does (RS-04)
        unshown["rd"] = details
    for i, call in enumerate(calls):
        where = f"choices[0].message.tool_calls[{i}]"
        if not isinstance(call, dict):
            raise ValueError(f"{where}: expected an object, got {type(call).__name__}")
        function = _object(call.get("function"), f"{where}.function")
        name = _string(function.get("name"), f"{where}.function.name") or ""
        call_id = _string(call.get("id"), f"{where}.id")
        client_name = ctx.tool_names.get(name, name)
        content.append(
            ir.ToolUseBlock(
                id=call_id_for_client(call_id, call.get("extra_content"), ctx, unshown if i == 0 else None),
                name=client_name,
                input=call_input(function.get("arguments"), call_id or "", client_name, ctx),
            )
        )
    stop_reason = FINISH_REASONS.get(str(choice.get("finish_reason")), ir.StopReason.END_TURN)
    if calls and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.TOOL_USE  # A2O-N03: vLLM, Ollama and SGLang say "stop" here
    if refusal:
        stop_reason = ir.StopReason.REFUSAL
    stop_sequence = matched_stop(choice, ctx)
    if stop_sequence is not None and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.STOP_SEQUENCE
    usage = parse_usage(data.get("usage")) or ir.Usage(input_tokens=ctx.input_tokens)
    return ir.Response(
        id=_string(data.get("id"), "id") or "",
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


def _with_raw(err: dict[str, Any], message: str) -> str:
    """OpenRouter's ``Provider returned error`` says the real reason in ``metadata.raw`` (RS-04): the
    client reads it whole, after the message, with the provider's name."""
    metadata = err.get("metadata")
    raw = metadata.get("raw") if isinstance(metadata, dict) else None
    if not isinstance(raw, str) or not raw:
        return message
    provider = metadata.get("provider_name") if isinstance(metadata, dict) else None
    return f"{message} ({provider}): {raw}" if isinstance(provider, str) and provider else f"{message}: {raw}"


def _error_message(status: int, body: bytes) -> str:
    """The upstream's own words, from whichever error shape it uses (A2O-E02)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # Gemini's: [{"error": {...}}]
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return _with_raw(err, str(err["message"]))
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
        message = _with_raw(err, str(err.get("message") or message))
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
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            inner = part.get("thinking")
            if inner is not None and not isinstance(inner, str | list):
                raise ValueError(
                    f"content[{i}].thinking: expected a string or a list of parts, got {type(inner).__name__}"
                )
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
    """The usage a chunk (or a whole completion) reports, for the access log of a passthrough (which
    relays the answer as it came: a usage it cannot read is none, never a failure)."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if usage is None and isinstance(data.get("x_groq"), dict):
        usage = data["x_groq"].get("usage")
    try:
        return parse_usage(usage)
    except ValueError:  # only the access log reads it: a usage of the wrong shape is no usage
        return None
