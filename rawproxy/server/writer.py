"""``ResponseWriter``: the ``ResponseSink`` over one client connection; writes the response head and the
body framing itself.

h11 parses every request (the side that sees hostile input); the response side is ours because h11's
``send`` costs about 25 µs a response here (each head is validated twice) for framing that is a few
lines: ``content-length`` when the caller gives one, else chunked for HTTP/1.1 and a close-delimited
body for HTTP/1.0. Every header written comes from our own constants or from an upstream head that
``http1.py`` has already checked for control characters.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Protocol

from .. import __version__
from .._types import SSE_HEADERS, Headers

__all__ = ["CONTINUE", "ClientStream", "ResponseWriter"]

SERVER_HEADER = (b"server", f"rawproxy/{__version__}".encode())


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    return b"HTTP/1.1 %d %b\r\n" % (status, reason)


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}
_SERVER_LINE = b"%b: %b\r\n" % SERVER_HEADER
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SSE_HEAD = b"".join(
    [
        _STATUS_LINES[200],
        _SERVER_LINE,
        *(b"%b: %b\r\n" % kv for kv in SSE_HEADERS),
        b"transfer-encoding: chunked\r\n\r\n",
    ]
)


class ClientStream(Protocol):
    """What a ResponseWriter writes to (a ``ClientConnection``)."""

    @property
    def write_paused(self) -> bool: ...  # the transport is past its high-water mark
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


class ResponseWriter:
    """``ResponseSink`` over one client connection: writes the response head and body framing itself.

    h11 parses every request (the side that sees hostile input); the response side is ours because h11's
    ``send`` costs about 25 µs a response here (each head is validated twice) for framing that is a few
    lines: ``content-length`` when the caller gives one, else chunked for HTTP/1.1 and a close-delimited
    body for HTTP/1.0. Every header written comes from our own constants or from an upstream head that
    ``http1.py`` has already checked for control characters.

    Two more savings on the stream path, neither changing a byte on the wire: the head is written
    together with the first body bytes, and the end together with the last ones (one write, one syscall).
    ``must_close`` says the connection cannot carry another request after this response.
    """

    __slots__ = (
        "_chunked",
        "_head_only",
        "_http10",
        "_left",
        "_pending",
        "_writer",
        "ended",
        "last_write",
        "must_close",
        "started",
        "wrote",
    )

    def __init__(
        self, writer: ClientStream, *, head_only: bool, http10: bool = False, close: bool = False
    ) -> None:
        self._writer = writer
        self._head_only = head_only
        self._http10 = http10
        self._pending = b""  # the response head, until the first body bytes go with it
        self._chunked = False
        self._left = -1  # bytes still owed under content-length; -1 when not length-delimited
        self.must_close = close
        self.started = False
        self.ended = False
        self.wrote = False  # bytes of this response have gone to the client
        self.last_write = time.monotonic()

    def begin(self, status: int, headers: Headers) -> None:
        """The response head, held until the first body bytes (callable from the upstream connection's
        callback: nothing here waits)."""
        self.started = True
        if (
            headers is SSE_HEADERS
            and status == 200
            and not (self._head_only or self._http10 or self.must_close)
        ):
            self._chunked = True  # a translated stream's head: the same bytes every time
            self._pending = _SSE_HEAD
            return
        lines = [_STATUS_LINES.get(status) or _status_line(status), _SERVER_LINE]
        length = -1
        for name, value in headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":  # ours only (upstream heads lose theirs): "close", said once below
                self.must_close = True
                continue
            lines += (name, b": ", value, b"\r\n")
        if length < 0 and not (self._head_only or status in (204, 304)):
            if self._http10:
                self.must_close = True  # an HTTP/1.0 client reads to the close
            else:
                self._chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
        if self.must_close:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self._left = -1 if self._head_only else length
        self._pending = b"".join(lines)

    def _frame(self, data: bytes) -> bytes:
        if self._head_only or not data:
            return b""
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        if self._left >= 0:  # length-delimited: never a byte past the declared length
            if len(data) > self._left:  # more than declared: a bug; the client must not read past it
                self.must_close = True
                data = data[: self._left]
            self._left -= len(data)
        return data

    def send_nowait(self, data: bytes) -> None:
        """Write, with whatever is held, without waiting for the client (``drain`` is the caller's)."""
        self.hold(data)
        self.flush()

    def hold(self, data: bytes) -> None:
        """Queue bytes to go out with the next write (or ``flush``): a stream's opening event then
        shares one write, and one wake-up of the client, with the first token when both are ready."""
        self._pending += self._frame(data)

    def discard(self) -> bool:
        """Take back a response that was started but of which nothing was written yet (so that an
        error can still be answered with its own status); False once bytes went out."""
        if self.wrote:
            return False
        self.started = False
        self._pending = b""
        self._chunked = False
        self._left = -1
        return True

    def flush(self) -> None:
        if self._pending:
            self._writer.write(self._pending)
            self.wrote = True
            self._pending = b""
            self.last_write = time.monotonic()

    @property
    def backlogged(self) -> bool:
        """More is queued for the client than the transport's high-water mark (where ``drain()`` waits)."""
        return self._writer.write_paused

    async def drain(self) -> None:
        await self._writer.drain()

    async def end(self, tail: bytes = b"") -> None:
        self.ended = True
        out = self._pending + self._frame(tail)
        if self._chunked:
            out += b"0\r\n\r\n"
        elif self._left > 0:
            self.must_close = True  # fewer bytes than declared: only closing tells the client
        self._pending = b""
        self._writer.write(out)
        self.wrote = True
        await self._writer.drain()

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.begin(status, [*headers, (b"content-length", b"%d" % len(body))])
        await self.end(body)
