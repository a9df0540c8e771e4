"""Request bodies for the log (``--log-bodies``), with what must not be logged taken out. Pure.

Bodies are never logged unless asked for. When they are, a log is still a place secrets leak from, so:
- any string that looks like a credential (``sk-...``, ``sk-ant-...``, ``AIza...``, a JWT, ``Bearer ...``)
  becomes ``<redacted>``, wherever it is;
- base64 payloads (images, documents) become ``<base64, N chars>``;
- other long strings keep their first 200 characters and say how many were cut;
- a body that is not JSON is shown as its length only.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["redacted_body"]

KEEP = 200
SECRET = re.compile(
    r"(?:sk-(?:ant-)?[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
    r"|Bearer\s+\S{8,})"
)
_BASE64 = re.compile(r"^(?:data:[\w/+.-]+;base64,)?[A-Za-z0-9+/\r\n]{256,}={0,2}$")  # no spaces: not prose


def redacted_body(body: bytes, depth_limit: int = 64) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"<{len(body)} bytes, not JSON>"
    return orjson.dumps(_clean(data, depth_limit)).decode()


def _clean(value: Any, depth: int) -> Any:
    if depth <= 0:
        return "<nested too deep>"
    if isinstance(value, str):
        if _BASE64.match(value):
            return f"<base64, {len(value)} chars>"
        value = SECRET.sub("<redacted>", value)
        return value if len(value) <= KEEP else f"{value[:KEEP]}... <{len(value) - KEEP} more chars>"
    if isinstance(value, list):
        return [_clean(v, depth - 1) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v, depth - 1) for k, v in value.items()}
    return value
