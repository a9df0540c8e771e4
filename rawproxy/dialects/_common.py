"""What more than one dialect needs, written once. Pure: no I/O, no state.

Every name here is public and shared; nothing private is imported from one dialect subpackage into
another (what two dialects share lives here instead). Four groups:

* reading a client's request: :func:`load_json_object` (the body must be a JSON object), the field
  validators whose error messages name the field (A2O-E04, O2A-E02), :func:`shown` to quote a client
  value without echoing megabytes back;
* the OpenAI family, spoken by both Chat Completions and the Responses API: content parts (images and
  files as data URLs), function tool schemas, the ``tool_choice`` words, effort budgets, the forced
  answer tool of ``response_format``/``text.format``, the user id filter, the error shape;
* errors: the one table between HTTP statuses and the canonical error types (Anthropic's documented
  table, docs.claude.com/en/api/errors), read in both directions;
* the upstream side: :func:`pair_tool_results`, decision 4 of CONFORMANCE.md (every tool call answered
  in the next user turn, no result without its call), which both upstream dialects apply before a
  request leaves, each in its own wire shape; the shape errors of a stream event and the error of a
  stream that stops early.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

import orjson

from .. import ir
from ..errors import ClientError, UpstreamProtocolError

log = logging.getLogger("rawproxy")

# ------------------------------------------------------------------------------- a client's request


def load_json_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, else a ClientError (400) that says what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson rejects invalid UTF-8 and lone surrogates too (A2O-R35): a client fault, not a crash.
        raise ClientError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError("request body must be a JSON object")
    return data


def shown(value: Any, *, quoted: bool = True) -> str:
    """A client value quoted in an error message, cut short: an answer never echoes megabytes back."""
    text = repr(value) if quoted else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(obj: dict[str, Any], key: str, *, name_type: bool = False) -> float | None:
    """An optional number (a bool is not one). ``name_type`` adds the type that was sent to the error,
    as the Anthropic dialect's messages do (the OpenAI ones never did: their tests pin the words)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        got = f", got {type(value).__name__}" if name_type else ""
        raise ClientError(f"{key}: expected a number{got}")
    return float(value)


def optional_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ClientError(f"{key}: expected a string")
    return value


def optional_bool(obj: dict[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise ClientError(f"{key}: expected a boolean, got {type(value).__name__}")
    return value


def positive_int(value: Any, name: str) -> int | None:
    """An optional token count: a positive integer (a bool is not one; 0 is not "none given")."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ClientError(f"{name}: expected a positive integer")
    return value


# --------------------------------------------------------------------------------- the OpenAI family

JSON_TOOL_NAME: Final = "json_answer"
JSON_OBJECT_INSTRUCTION: Final = "Respond with a single valid JSON object and nothing else."
# reasoning_effort -> thinking budget (LiteLLM's defaults; minimal is Anthropic's floor).
# reasoning_effort -> a thinking budget for a model that only has budgets; max is gpt-5.6's (M26-04)
EFFORT_BUDGETS: Final = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}
IMAGE_MEDIA_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# The tool_choice words of both OpenAI APIs -> the IR's.
TOOL_CHOICE_WORDS: Final[dict[str, Literal["auto", "any", "none"]]] = {
    "auto": "auto",
    "required": "any",
    "none": "none",
}
_DATA_URL = re.compile(r"^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$", re.DOTALL)
_EMAIL_OR_PHONE = re.compile(r"@|^\+?[\d\s().-]{7,}$")
_OPENAI_ERROR_CODES = {
    ir.ErrorType.RATE_LIMIT: "rate_limit_exceeded",
    ir.ErrorType.AUTHENTICATION: "invalid_api_key",
    ir.ErrorType.NOT_FOUND: "not_found",
    ir.ErrorType.REQUEST_TOO_LARGE: "request_too_large",
}


def image_block(url: Any, where: str) -> ir.ImageBlock:
    """An image part's URL: an http(s) URL, or a base64 data URL of a type Anthropic takes."""
    if not isinstance(url, str) or not url:
        raise ClientError(f"{where}.image_url.url: expected a URL")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise ClientError(f"{where}.image_url.url: a data URL must be base64 (data:<type>;base64,...)")
        media_type = match.group(1).lower()
        if media_type not in IMAGE_MEDIA_TYPES:
            raise ClientError(
                f"{where}: image type {shown(media_type, quoted=False)} is not supported (png, jpeg, gif or webp)"
            )
        return ir.ImageBlock(media_type=media_type, data=match.group(2))
    return ir.ImageBlock(url=url)  # O2A-R08: Anthropic fetches http(s) images itself


def file_block(part: dict[str, Any], where: str) -> ir.DocumentBlock:
    """A ``{"type": "file", "file": {"file_data": <data URL>, "filename"}}`` part: a PDF or a text."""
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    assert isinstance(file, dict)
    data = file.get("file_data")
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None:
        raise ClientError(
            f"{where}.file: only inline file_data (a base64 data URL) is supported, not file ids"
        )
    name = file.get("filename")
    title = name.rsplit(".", 1)[0] if isinstance(name, str) and name else None
    media_type = match.group(1).lower()
    if media_type == "application/pdf":
        return ir.DocumentBlock(media_type=media_type, data=match.group(2), title=title)
    if media_type.startswith("text/"):  # Anthropic takes plain text documents as text, not base64
        try:
            text = base64.b64decode(match.group(2), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ClientError(f"{where}.file: file_data is not base64-encoded UTF-8 text") from None
        return ir.DocumentBlock(media_type="text/plain", text=text, title=title)
    raise ClientError(
        f"{where}.file: {shown(media_type, quoted=False)} files are not supported (PDF or text only)"
    )


def tool_schema(schema: Any, where: str) -> dict[str, Any]:
    """A function tool's parameters as the input schema both upstreams take: none is an empty object;
    a top-level oneOf, anyOf or allOf is refused, as Anthropic refuses it (O2A-R16)."""
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise ClientError(f"{where}: expected an object")
    if any(key in schema for key in ("oneOf", "anyOf", "allOf")):
        raise ClientError(f"{where}: oneOf, anyOf and allOf are not supported at the top level")
    return schema


def answer_schema(schema: Any, name: Any, strict: Any) -> ir.ResponseSchema:
    """A client's json_schema answer format (``response_format``, ``text.format``); no schema is any
    object. How it travels is the upstream's business (``json_tool``)."""
    return ir.ResponseSchema(
        schema=schema if isinstance(schema, dict) else {"type": "object"},
        name=name if isinstance(name, str) and name else "response",
        strict=strict if isinstance(strict, bool) else None,
    )


def json_answer_tool(schema: dict[str, Any]) -> ir.Tool:
    """A json_schema answer for an upstream that takes no schema: a forced tool whose input is shown
    as the answer's text (O2A-R23)."""
    return ir.Tool(
        name=JSON_TOOL_NAME, description="Give the answer as this tool's input.", input_schema=schema
    )


def web_search_tool() -> ir.Tool:
    """OpenAI's web search, as Anthropic's server tool (O2A-R28); an OpenAI upstream drops it."""
    raw: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
    return ir.Tool(name="web_search", server_type="web_search_20250305", raw=raw)


def safe_user_id(user: Any) -> str | None:
    """O2A-R24: a ``user`` that looks like an e-mail address or a phone number is not forwarded."""
    return user if isinstance(user, str) and user and not _EMAIL_OR_PHONE.search(user) else None


def build_openai_error(err: ir.ErrorInfo) -> tuple[int, bytes]:
    """OpenAI's error shape (both of its APIs); Anthropic's 529 becomes 503, which OpenAI clients know
    (decision 6)."""
    status = 503 if err.status == 529 else err.status
    body = {
        "error": {
            "message": err.message,
            "type": err.type.value,
            "param": None,
            "code": _OPENAI_ERROR_CODES.get(err.type),
        }
    }
    return status, orjson.dumps(body)


# ------------------------------------------------------------------------------------------- errors

ERROR_TYPES_BY_STATUS: Final = {
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
# The other way: the status an in-stream error of a type stands for (overloaded_error is 529...).
STATUS_BY_ERROR_TYPE: Final = {etype: status for status, etype in ERROR_TYPES_BY_STATUS.items()}


def error_type_for_status(status: int) -> ir.ErrorType:
    if status in ERROR_TYPES_BY_STATUS:
        return ERROR_TYPES_BY_STATUS[status]
    return ir.ErrorType.API if status >= 500 else ir.ErrorType.INVALID_REQUEST


# ------------------------------------------------------------------------------------- upstream side

MISSING_RESULT_TEXT: Final = "no result was recorded for this tool call"

R = TypeVar("R")


@dataclass(slots=True)
class ToolTurn(Generic[R]):
    """The results of one user turn, set against the calls of the assistant turn before it."""

    answered: list[tuple[str, R]]  # results of those calls, in call order (a stable sort)
    missing: list[str]  # calls with no result, in call order: a synthetic error result is sent
    orphans: list[tuple[str, R]]  # results of no call, in the order given: sent as user text


def pair_tool_results(calls: Sequence[str], results: Sequence[tuple[str, R]]) -> ToolTurn[R]:
    """Decision 4 (CONFORMANCE.md A2O-R14, A2O-R15, O2A-R15): both upstream APIs reject a tool call
    that is not answered in the very next user turn, and a result whose call is not in the turn before.
    A client's history breaks that rule when a turn was cancelled or edited; the repair is said in the
    log, once per call or result. ``results`` are ``(call id, result)`` pairs in the wire shape of the
    caller, who decides where each group goes."""
    if not calls and not results:  # nearly every turn: nothing to pair, nothing to sort
        return ToolTurn([], [], [])
    order: dict[str, int] = {}
    for i, call_id in enumerate(calls):
        order.setdefault(call_id, i)
    answered = sorted((r for r in results if r[0] in order), key=lambda r: order[r[0]])
    answered_ids = {call_id for call_id, _ in answered}
    missing = [call_id for call_id in calls if call_id not in answered_ids]
    orphans = [r for r in results if r[0] not in order]
    for call_id in missing:
        log.warning("tool call %s has no result; sending a synthetic error result", call_id)
    for call_id, _ in orphans:
        log.warning("tool result %s matches no tool call; sending it as user text", call_id)
    return ToolTurn(answered, missing, orphans)


def orphan_result_text(call_id: str, text: str) -> str:
    """The user text a result of no call becomes (decision 4)."""
    return f"[tool result {call_id}] {text}"


def load_upstream_json(body: bytes) -> Any:
    """A whole (non-streamed) upstream answer as JSON: anything else is the upstream's fault (502)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream returned a response that is not JSON") from None


# What an event with a field of the wrong type raises in a StreamDecoder (``"delta": 1`` ->
# AttributeError...): as broken as an event that is not JSON.
SHAPE_ERRORS: Final = (AttributeError, LookupError, TypeError, ValueError)


def decoded(
    decode: Callable[[dict[str, Any], ir.Context], ir.Response], data: dict[str, Any], ctx: ir.Context
) -> ir.Response:
    """An upstream's whole answer through ``decode``; a field of the wrong shape is the upstream's fault
    (502), said by name when ``decode`` raised ValueError naming it (issue 19, defect 5)."""
    try:
        return decode(data, ctx)
    except ValueError as exc:  # ours: the message names the field
        raise UpstreamProtocolError(f"upstream response of an unexpected shape: {exc}") from None
    except SHAPE_ERRORS as exc:  # a field of a type not checked by name: still the upstream's fault
        log.warning("upstream response of an unexpected shape (%s: %s)", type(exc).__name__, exc)
        raise UpstreamProtocolError("upstream response of an unexpected shape") from None


MAX_COUNT: Final = 2**53 - 1  # a token count beyond this is no count (and would not survive JSON)


def token_count(data: dict[str, Any], key: str, where: str) -> int:
    """A token count of a usage object: an integer from 0 to ``MAX_COUNT`` (absent or null: 0). Anything
    else raises ValueError naming the field (a shape error: see ``SHAPE_ERRORS``)."""
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(
            f"{where}.{key}: expected a token count (an integer from 0 to 2**53-1), got {shown(value)}"
        )
    return value


def stream_ended_early() -> ir.ErrorInfo:
    """The upstream closed the stream before saying how the message ended: an error, never a silent
    truncation (A2O-S13, O2A-S10)."""
    return ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="upstream stream ended prematurely")
