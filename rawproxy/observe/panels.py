"""``--inspect``: each exchange as a readable panel on the terminal, request and response.

The request body is shown redacted (redact.py: credentials, base64 payloads, long strings), the response
as the client received it (a JSON body redacted the same way, a stream's first events), both cut at
``limit`` characters. Colour only on a terminal, and never with ``NO_COLOR`` set. A panel is written when
its exchange ends, in one piece, so that concurrent exchanges do not interleave.

``RecordingSink`` stands between the proxy and the real sink and keeps the first bytes written; it is
only in place with ``--inspect``, so the hot path pays nothing otherwise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from .redact import SECRET, redacted_body

if TYPE_CHECKING:
    from .._types import AccessRecord, Headers, ResponseSink

__all__ = ["RecordingSink", "render"]

_ANSI = {"dim": "\x1b[2m", "bold": "\x1b[1m", "green": "\x1b[32m", "red": "\x1b[31m", "cyan": "\x1b[36m"}
_RESET = "\x1b[0m"


class RecordingSink:
    """A ResponseSink that forwards everything and remembers the status and the first ``limit`` bytes."""

    def __init__(self, inner: ResponseSink, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.status = 0
        self.seen = bytearray()

    def _keep(self, data: bytes) -> None:
        room = self.limit - len(self.seen)
        if room > 0:
            self.seen += data[:room]

    @property
    def started(self) -> bool:
        return self.inner.started

    @property
    def last_write(self) -> float:
        return self.inner.last_write

    @property
    def backlogged(self) -> bool:
        return self.inner.backlogged

    def begin(self, status: int, headers: Headers) -> None:
        self.status = status
        self.inner.begin(status, headers)

    def send_nowait(self, data: bytes) -> None:
        self._keep(data)
        self.inner.send_nowait(data)

    def hold(self, data: bytes) -> None:
        self._keep(data)
        self.inner.hold(data)

    def flush(self) -> None:
        self.inner.flush()

    def discard(self) -> bool:
        taken = self.inner.discard()
        if taken:
            self.seen.clear()
        return taken

    async def drain(self) -> None:
        await self.inner.drain()

    async def end(self, tail: bytes = b"") -> None:
        self._keep(tail)
        await self.inner.end(tail)

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self._keep(body)
        await self.inner.respond(status, headers, body)


def _shown(data: bytes, limit: int) -> str:
    text: str
    try:
        orjson.loads(data)
        text = redacted_body(data)
    except orjson.JSONDecodeError:
        text = SECRET.sub("<redacted>", data.decode("utf-8", "replace"))
    return text if len(text) <= limit else f"{text[:limit]} ... <cut at {limit} characters>"


def render(record: AccessRecord, body: bytes, sink: RecordingSink, *, colour: bool, limit: int) -> str:
    def paint(text: str, *styles: str) -> str:
        return "".join(_ANSI[s] for s in styles) + text + _RESET if colour else text

    status = sink.status or record.status
    target = f"{record.upstream}:{record.upstream_model}" if record.upstream != "-" else record.upstream_model
    title = f"{record.rid}  {record.method} {record.path}  {record.client_model} -> {target}"
    usage = record.usage
    facts = [paint(str(status), "bold", "green" if status < 400 else "red")]
    if record.ttft_ms is not None:
        facts.append(f"first token {record.ttft_ms:.1f} ms")
    if usage is not None:
        facts.append(
            f"tokens in {usage.input_tokens} out {usage.output_tokens} cached {usage.cache_read_input_tokens}"
        )
    lines = [paint(f"╭─ {title} ", "bold", "cyan")]
    request = _shown(body, limit) if body else "(no body)"
    lines += [f"│ {paint('request', 'dim')}  {line}" for line in request.splitlines() or [""]]
    lines.append(f"│ {paint('response', 'dim')} {'  '.join(facts)}")
    response = _shown(bytes(sink.seen), limit) if sink.seen else ""
    lines += [f"│   {line}" for line in re.split(r"\r?\n", response) if line.strip()]
    lines.append(paint("╰─", "cyan"))
    return "\n".join(lines)
