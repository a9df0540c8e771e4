"""Tool-call plumbing shared by the dialects: ids, names and broken arguments. Pure.

Ids (A2O-N05, O2A-R12): Anthropic requires tool ids to match ``^[a-zA-Z0-9_-]+$``; OpenAI-compatible
servers send ``functions.Bash:0`` (Kimi) or ``call_x__thought__<sig>`` (Gemini). Such an id is encoded
*reversibly* as ``toolu_rpx_`` + base64url(id) (the base64url alphabet is exactly the allowed set), and
decoded when the client sends it back in a ``tool_result``, so the upstream sees its own id again
without the proxy keeping any state between requests. Valid ids pass unchanged.

Names (A2O-R20): OpenAI limits function names to 64 characters of ``[a-zA-Z0-9_-]``. A longer or
invalid name becomes ``<first 55 sanitised chars>_<8 hex of sha256>``: deterministic, so the same request
always maps the same way, and case-preserving (lower-casing broke "No such tool available" elsewhere).
The reverse map is rebuilt from the request's own tools for every exchange.

Arguments (decision 3): parse; else repair truncated JSON by closing what is open; else ``{}`` and a
warning naming the call. A JSON value that is not an object is wrapped as ``{"value": ...}``. Streamed
arguments (``StreamedJson``) are kept in pieces and asked whether they are whole in time linear in their
length, however they are cut (issue 19: parsing them all again on each fragment was quadratic).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from typing import Any

import orjson

from .ids import random_hex

__all__ = [
    "StreamedJson",
    "client_tool_id",
    "new_tool_id",
    "parse_arguments",
    "repair_json",
    "upstream_tool_id",
    "wire_tool_name",
]

log = logging.getLogger("rawproxy")

_VALID = re.compile(r"^[a-zA-Z0-9_-]+$")
_ENCODED_PREFIX = "toolu_rpx_"
_MAX_NAME = 64


def new_tool_id() -> str:
    return "toolu_" + random_hex(24)


def client_tool_id(upstream_id: str | None) -> str:
    """The id shown to an Anthropic client for an upstream tool-call id."""
    if not upstream_id:
        return new_tool_id()
    if _VALID.match(upstream_id) and not upstream_id.startswith(_ENCODED_PREFIX):
        return upstream_id
    return _ENCODED_PREFIX + base64.urlsafe_b64encode(upstream_id.encode()).decode().rstrip("=")


def upstream_tool_id(client_id: str) -> str:
    """The inverse of :func:`client_tool_id`: the id the upstream originally sent."""
    if not client_id.startswith(_ENCODED_PREFIX):
        return client_id
    encoded = client_id[len(_ENCODED_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return client_id


def wire_tool_name(name: str) -> str:
    """A function name OpenAI accepts; the name itself whenever it already is one."""
    if len(name) <= _MAX_NAME and _VALID.match(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:55]
    return f"{cleaned}_{digest}"


def repair_json(text: str) -> str:
    """Close open strings, arrays and objects of truncated JSON; drop a dangling comma or key."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    repaired = text
    if in_string:
        if escaped:
            repaired = repaired[:-1]
        repaired += '"'
    repaired = repaired.rstrip()
    if repaired.endswith(","):
        repaired = repaired[:-1]
    elif repaired.endswith(":"):
        repaired += "null"
    elif stack and stack[-1] == "}" and repaired.endswith('"'):
        # `{"a": 1, "b"` : a key without a value
        head = repaired[: repaired.rfind('"', 0, len(repaired) - 1)].rstrip()
        if head.endswith((",", "{")):
            repaired += ":null"
    return repaired + "".join(reversed(stack))


def parse_arguments(raw: Any, call_id: str = "") -> dict[str, Any]:
    """Tool-call arguments as an object, whatever form the upstream sent them in (A2O-N04)."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        return {"value": raw}
    for candidate in (raw, repair_json(raw)):
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if candidate is not raw:
            log.warning("tool call %s: repaired truncated arguments", call_id or "?")
        return value if isinstance(value, dict) else {"value": value}
    log.warning("tool call %s: arguments are not JSON and could not be repaired; using {}", call_id or "?")
    return {}


_STRING_END = re.compile(r'["\\]')  # inside a string: its closing quote, or an escape
_STRUCTURE = re.compile(r'["{}\[\]]')  # outside one: a string's opening quote, or a bracket
_WS = " \t\n\r"  # JSON's whitespace
_BEFORE, _INSIDE, _WHOLE, _NEVER = range(4)


class StreamedJson:
    """JSON text that arrives in pieces (a streamed tool call's arguments).

    The pieces are kept as they came, so appending costs nothing, and joined when asked for. ``whole()``
    says whether they make one complete object or array yet: each character is looked at once, to find
    where the first bracket closes, and only then is the text parsed, once (before, it cannot be valid
    JSON; after, anything but whitespace makes it invalid for good). A bare scalar is never whole here:
    such arguments wait for the end of the message.
    """

    __slots__ = ("_depth", "_escaped", "_in_string", "_state", "_watched", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0  # the total length of the parts
        self._watched = 0  # how many parts whole() has looked at
        self._state = _BEFORE
        self._depth = 0
        self._in_string = False
        self._escaped = False  # a piece ended in a string's backslash: the next character is escaped

    def append(self, piece: str) -> None:
        self.parts.append(piece)
        self.size += len(piece)

    def text(self) -> str:
        return "".join(self.parts)

    def since(self, count: int) -> str:
        """The text of every part after the first ``count``."""
        parts = self.parts
        return parts[-1] if count == len(parts) - 1 else "".join(parts[count:])

    def whole(self) -> bool:
        parts = self.parts
        while self._watched < len(parts) and self._state < _WHOLE:
            self._look(parts[self._watched])
            self._watched += 1
            if self._state == _WHOLE:  # the first bracket closed: valid JSON, or never
                try:
                    orjson.loads(self.text())
                except orjson.JSONDecodeError:
                    self._state = _NEVER
        if self._state == _WHOLE:
            for piece in parts[self._watched :]:  # only whitespace may follow a whole value
                if piece.strip(_WS):
                    self._state = _NEVER
                    break
            self._watched = len(parts)
        return self._state == _WHOLE

    def _look(self, piece: str) -> None:
        pos = 0
        if self._state == _BEFORE:
            start = piece.lstrip(_WS)
            if not start:
                return
            if start[0] not in "{[":
                self._state = _NEVER
                return
            self._state = _INSIDE
            self._depth = 1
            pos = len(piece) - len(start) + 1
        elif self._escaped:
            self._escaped = False
            pos = 1
        depth, in_string, end = self._depth, self._in_string, len(piece)
        while pos < end:
            if in_string:
                found = _STRING_END.search(piece, pos)
                if found is None:
                    break
                pos = found.end()
                if piece[pos - 1] == '"':
                    in_string = False
                elif pos == end:
                    self._escaped = True
                else:
                    pos += 1  # the escaped character
            else:
                found = _STRUCTURE.search(piece, pos)
                if found is None:
                    break
                pos = found.end()
                char = piece[pos - 1]
                if char == '"':
                    in_string = True
                elif char in "{[":
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        self._state = _NEVER if piece[pos:].strip(_WS) else _WHOLE
                        break
        self._depth, self._in_string = depth, in_string
