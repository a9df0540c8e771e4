"""The HTTP/1.1 server: an asyncio protocol per connection, h11 parsing every request. The only module
that imports h11.

Per connection, in a loop (one task, ``Server._serve``): wait (idle timeout) for a request head; answer
``Expect: 100-continue`` at once (curl otherwise stalls a second); read the body up to the limit (413
beyond it); hand the request to ``App.handle`` with a ``ResponseWriter``; then a fresh h11 parser for the
next request on the connection, or close when either side said ``Connection: close``. Pipelined requests
wait in the connection's buffer until the response before them is complete (X-03).

While a response is in progress, ``ClientConnection`` itself notices a disconnect (EOF or reset) and
cancels the serving task, which closes the upstream request (A2O-S17); no task is spent watching.
Backpressure has one gate: ``ResponseWriter.drain()``, which waits while the transport is past its
high-water mark, so a slow reader stops the relay, which stops reading the upstream (X-05).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol, cast

import h11

from . import __version__, upstream
from .config import Config
from .dialects import anthropic_messages, openai_chat
from .http1 import connection_tokens
from .ir import ErrorInfo, ErrorType
from .proxy import JSON_HEADERS, SSE_HEADERS, App, ClientRequest, Headers, _client_shape

__all__ = ["ResponseWriter", "Server", "serve"]

log = logging.getLogger("rawproxy")

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


class ClientConnection(asyncio.Protocol):
    """One client connection: a bounded buffer between the socket and h11, write flow control, and the
    task that serves its requests (``Server._serve``).

    No task watches for a disconnect: while an exchange runs, EOF or a reset arriving here cancels the
    serving task at once (A2O-S17), and unwinding it closes the upstream request. Bytes that arrive
    meanwhile (a pipelined request) wait in the buffer for the next cycle; past ``BUFFER_LIMIT`` the
    socket stops being read until the buffer is taken.
    """

    BUFFER_LIMIT = 256 * 1024

    def __init__(self, server: Server) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.exchanging = False  # a request is being answered: a disconnect cancels the task
        self.left = False  # the client went away during an exchange
        self.lost = False
        self._buffer: list[bytes] = []
        self._size = 0
        self._eof = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()  # kept: in 3.11 each lookup costs a getpid() syscall
        self.deadline = 0.0  # of the read that waits (time.monotonic()), kept by Server.deadlines
        self.expired = False  # that read's time ran out

    # ------------------------------------------------------------------------- protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.task = self._loop.create_task(self._server._serve(self))

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        if self._size > self.BUFFER_LIMIT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        if self.exchanging:
            self._leave()
        # Keep our side open: a client that half-closes mid-request (or before its answer) can still
        # read why it is refused; ``Server._serve`` closes the connection when it is done with it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self._eof = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client went away"))
        if self.exchanging:
            self._leave()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---------------------------------------------------------------------------- for the server

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expire(self) -> None:
        """The waiting read's time is up (called by ``Deadlines``)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.expired = True
            waiter.set_result(None)

    def _leave(self) -> None:
        if not self.left and self.task is not None:
            self.left = True
            self.task.cancel()

    async def read(self, timeout: float) -> bytes | None:
        """What has arrived (waiting up to ``timeout`` for something); b"" at EOF, None on timeout."""
        if not self._buffer and not self._eof:
            waiter = self._waiter = self._loop.create_future()
            deadlines = self._server.deadlines
            deadlines.add(self, timeout)
            try:
                await waiter
            finally:
                self._waiter = None
                deadlines.discard(self)
            if self.expired:
                self.expired = False
                return None
        if not self._buffer:
            return b""
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer = []
        self._size = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    # ----------------------------------------------------------- the writer side (ResponseWriter)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.lost:
            raise ConnectionResetError("the client went away")
        if self.write_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drain_waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def linger(self, seconds: float) -> None:
        """After an answer that leaves client bytes unread (a body refused before it was read, a head
        that could not be parsed): end our side, then drop what the client still sends until it
        closes, for at most ``seconds``. Closing a socket with unread input resets the connection, and
        the reset can destroy the answer before the client has read it (RFC 9112 9.6)."""
        transport = self.transport
        if transport is None or self.lost or transport.is_closing():
            return
        with contextlib.suppress(OSError):
            transport.write_eof()  # after what is still buffered
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not await self.read(left):
                return  # EOF, or the time is up


class Deadlines:
    """The deadline of every client read that waits, kept by one ticker task while any read waits.

    A timer per read (``asyncio.timeout``) costs more than the rest of the read, and nearly every
    request begins with one (the wait on an idle keep-alive connection). The ticker wakes at the
    earliest deadline, or after ``MAX_SLEEP`` to look again; a read whose deadline is earlier than the
    ticker's next wake restarts it, so no read is woken late by more than a millisecond or so.
    """

    MAX_SLEEP = 1.0

    def __init__(self) -> None:
        self._waiting: set[ClientConnection] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake_at = 0.0  # when the ticker looks next

    def add(self, conn: ClientConnection, timeout: float) -> None:
        conn.deadline = deadline = time.monotonic() + timeout
        self._waiting.add(conn)
        if self._task is None or deadline < self._wake_at:
            if self._task is not None:
                self._task.cancel()
            self._wake_at = deadline
            self._task = conn._loop.create_task(self._run(deadline))

    def discard(self, conn: ClientConnection) -> None:
        self._waiting.discard(conn)

    async def _run(self, first: float) -> None:
        task = asyncio.current_task()
        try:
            wake = first
            while self._waiting:
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
                now = time.monotonic()
                wake = now + self.MAX_SLEEP
                for conn in list(self._waiting):
                    if conn.deadline <= now:
                        self._waiting.discard(conn)
                        conn.expire()
                    elif conn.deadline < wake:
                        wake = conn.deadline
                self._wake_at = wake
        finally:
            if self._task is task:  # not a ticker that replaced this one
                self._task = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


_SLOW = object()  # a request head that did not arrive within head_timeout
LINGER_SECONDS = 2.0  # the longest the input is drained after an answer that ends the connection


class Server:
    def __init__(self, config: Config, app: App) -> None:
        self.config = config
        self.app = app
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # waiting for a request head: closed at once on shutdown
        self._closing = False
        self._server: asyncio.Server | None = None
        self.deadlines = Deadlines()

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientConnection(self),
            self.config.host,
            self.config.port,
            reuse_address=True,
            reuse_port=self.config.reuse_port or None,  # --workers: the kernel spreads connections
            backlog=1024,
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def _serve(self, client: ClientConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_connection(client)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Only close() cancels a connection task outside an exchange (an idle one at shutdown, or
            # one past the grace period): it ends here, quietly.
            pass
        finally:
            self._connections.discard(task)
            self._idle.discard(task)
            client.close()

    @staticmethod
    async def _next_event(
        conn: h11.Connection, client: ClientConnection, timeout: float
    ) -> h11.Event | type[h11.PAUSED] | None:
        """The next h11 event, reading as needed; None on timeout."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await client.read(timeout)
            if data is None:
                return None
            conn.receive_data(data)

    async def _next_head(
        self, conn: h11.Connection, client: ClientConnection, leftover: tuple[bytes, bool]
    ) -> tuple[h11.Event | type[h11.PAUSED] | object | None, int]:
        """The next request head, and how many bytes h11 was given for it (``leftover``, what
        ``_new_cycle`` gave it, among them): the client may stay silent for the keep-alive
        ``idle_timeout`` (None then), but once a head has begun it must be complete within
        ``head_timeout`` (``_SLOW`` otherwise: a slowloris client holds a connection with a head that
        never ends)."""
        held = len(leftover[0])
        if held or leftover[1]:  # else h11 has nothing to parse yet: no call to learn that it needs data
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event, held  # pipelined: the whole head is here already
        data = await client.read(self.config.idle_timeout)
        if data is None:
            return None, held
        conn.receive_data(data)
        fed = held + len(data)
        deadline = time.monotonic() + self.config.head_timeout
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event, fed
            left = deadline - time.monotonic()
            data = await client.read(left) if left > 0 else None
            if data is None:
                return _SLOW, fed
            conn.receive_data(data)
            fed += len(data)

    @property
    def _crowded(self) -> bool:
        return len(self._connections) > self.config.max_connections

    async def _refuse(
        self,
        client: ClientConnection,
        status: int,
        message: str,
        extra: Headers | None = None,
        headers: Headers | None = None,
    ) -> None:
        """An error answered before any request is handled, in the client's shape when its head says it
        (Anthropic's for ``x-api-key``/``anthropic-version``), then the connection closed."""
        info = ErrorInfo(
            status=status,
            type=ErrorType.OVERLOADED if status == 503 else ErrorType.TIMEOUT,
            message=message,
        )
        anthropic = any(k in (b"x-api-key", b"anthropic-version") for k, _ in headers or ())
        shape = anthropic_messages if anthropic else openai_chat
        _, body = shape.build_error(info)
        await self._answer_and_close(client, status, JSON_HEADERS + (extra or []), body)

    async def _answer_and_close(
        self, client: ClientConnection, status: int, headers: Headers, body: bytes, *, http10: bool = False
    ) -> None:
        """An error that ends the connection: the answer, then the input drained (``linger``)."""
        sink = ResponseWriter(client, head_only=False, http10=http10, close=True)
        await sink.respond(status, headers, body)
        await client.linger(min(LINGER_SECONDS, self.config.idle_timeout))

    def _new_cycle(self, leftover: tuple[bytes, bool] = (b"", False)) -> h11.Connection:
        """A fresh h11 parser for the next request, holding what the client sent beyond the last one.

        One parser per request rather than ``start_next_cycle()``: our responses do not go through h11
        (see ``ResponseWriter``), so its state machine would never reach DONE on our side. A new
        ``h11.Connection`` costs about 1 µs.
        """
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_head_bytes)
        data, closed = leftover
        if data:
            conn.receive_data(data)
        if closed:
            conn.receive_data(b"")
        return conn

    async def _serve_connection(self, client: ClientConnection) -> None:
        leftover = (b"", False)
        conn = self._new_cycle(leftover)
        task = asyncio.current_task()
        assert task is not None
        while not self._closing:
            event: h11.Event | type[h11.PAUSED] | object | None = None
            try:
                self._idle.add(task)
                try:
                    event, fed = await self._next_head(conn, client, leftover)
                finally:
                    self._idle.discard(task)
                if event is _SLOW:
                    await self._refuse(client, 408, "request head not received in time")
                    return
                if not isinstance(event, h11.Request):
                    return  # EOF, idle timeout, or ConnectionClosed
                headers = _header_list(event)
                if self._crowded:
                    retry = [(b"retry-after", b"1")]
                    await self._refuse(client, 503, "too many connections; retry shortly", retry, headers)
                    return
                request: ClientRequest | ErrorInfo | None = self._refuse_head(event, headers, fed)
                leftover = (b"", False)
                if request is None:
                    if conn.they_are_waiting_for_100_continue:
                        client.write(CONTINUE)
                    request, leftover = await self._read_body(conn, client, event, headers)
            except h11.RemoteProtocolError as exc:
                await self._reject(client, exc, event if isinstance(event, h11.Request) else None)
                return
            if request is None:
                return
            http10 = event.http_version == b"1.0"
            if isinstance(request, ErrorInfo):  # refused by its framing: answer, then close
                shape = _client_shape(_client_request(event, headers, b""))
                status, body = shape.build_error(request)
                await self._answer_and_close(client, status, JSON_HEADERS, body, http10=http10)
                return
            close = not _keeps_alive(event.http_version, headers)
            sink = ResponseWriter(client, head_only=request.method == "HEAD", http10=http10, close=close)
            if not await self._exchange(client, request, sink):
                return
            if sink.must_close or (sink.started and not sink.ended):
                return  # a response cut short (a bug, or the client gone) ends its connection too
            conn = self._new_cycle(leftover)

    def _refuse_head(self, head: h11.Request, headers: Headers, fed: int) -> ErrorInfo | None:
        """Limits checked on the head alone, before any body is invited (X-01).

        h11 bounds a head only while it is incomplete, so a large head that arrives in one read is
        measured here (unless all that was read for it, ``fed`` bytes, is within the limit anyway); a
        declared body over the limit is refused before ``100 Continue`` asks for it.
        """
        head_limit = self.config.max_head_bytes
        if fed > head_limit and (
            len(head.method) + len(head.target) + sum(len(k) + len(v) + 4 for k, v in headers) > head_limit
        ):
            return ErrorInfo(status=431, type=ErrorType.INVALID_REQUEST, message="request head too large")
        if not head.http_version.startswith(b"1."):  # h11 takes any d.d: an HTTP/2 preface, say
            return ErrorInfo(
                status=505,
                type=ErrorType.INVALID_REQUEST,
                message=f"HTTP/{head.http_version.decode()} is not supported; use HTTP/1.1",
            )
        limit = self.config.max_body_bytes
        chunked = length = False
        for name, value in headers:
            if name == b"content-length":
                length = True
                if value.isdigit() and int(value) > limit:
                    return _too_large(limit)
            elif name == b"transfer-encoding":
                chunked = True
        if chunked and length:  # h11 lets chunked win; RFC 9112 6.3 calls it a smuggling sign: refuse
            return ErrorInfo(
                status=400,
                type=ErrorType.INVALID_REQUEST,
                message="a request may not have both Content-Length and Transfer-Encoding",
            )
        return None

    async def _read_body(
        self, conn: h11.Connection, client: ClientConnection, head: h11.Request, headers: Headers
    ) -> tuple[ClientRequest | ErrorInfo | None, tuple[bytes, bool]]:
        """The request body, and what the client sent beyond it (a pipelined request).

        A ``Content-Length`` body (nearly every request) is taken straight from the bytes after the
        head: h11 has already checked the header, and its per-event machinery for the body costs more
        than the rest of the read. A chunked body goes through h11's decoder."""
        length = _declared_length(headers)
        if length is not None:
            data, closed = conn.trailing_data
            parts, size = [data], len(data)
            while size < length:
                more = b"" if closed else await client.read(self.config.idle_timeout)
                if more is None:
                    return _body_timeout(), (b"", False)
                if not more:  # the client ended its side mid-body (it may still read the answer)
                    return ErrorInfo(
                        status=400,
                        type=ErrorType.INVALID_REQUEST,
                        message=f"request body ended after {size} of its {length} bytes",
                    ), (b"", True)
                parts.append(more)
                size += len(more)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            return _client_request(head, headers, data[:length]), (data[length:], closed)
        body = bytearray()
        while True:
            event = await self._next_event(conn, client, self.config.idle_timeout)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.config.max_body_bytes:
                    return _too_large(self.config.max_body_bytes), (b"", False)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is None:
                return _body_timeout(), (b"", False)
            else:
                return None, (b"", True)  # h11 raises at a premature EOF; nothing else is expected
        return _client_request(head, headers, bytes(body)), conn.trailing_data

    async def _exchange(self, client: ClientConnection, request: ClientRequest, sink: ResponseWriter) -> bool:
        """Run one exchange in this connection's task. A disconnect meanwhile cancels the task (see
        ``ClientConnection``); that cancellation ends here, while any other (shutdown) goes on. False
        when the connection must not be reused."""
        client.exchanging = True
        try:
            await self.app.handle(request, sink)
        except asyncio.CancelledError:
            task = client.task  # the connection's task, which runs this (no current_task() lookup)
            if client.left and task is not None and task.uncancel() == 0:
                return False  # the client left: only the disconnect had cancelled us
            raise  # we are being shut down
        finally:
            client.exchanging = False
        return not client.left

    async def _reject(
        self, client: ClientConnection, exc: h11.RemoteProtocolError, head: h11.Request | None
    ) -> None:
        """A request h11 cannot parse: a 400 (431 for an oversized head, 501 for a transfer coding other
        than chunked), then close. In the client's shape once its head is known (a bad chunked body),
        OpenAI's before (garbage says nothing of who sent it)."""
        status = exc.error_status_hint  # h11's own: 431 for a head past max_incomplete_event_size
        message = "request head too large" if status == 431 else f"malformed HTTP request: {exc}"
        info = ErrorInfo(status=status, type=ErrorType.INVALID_REQUEST, message=message[:200])
        shape = openai_chat if head is None else _client_shape(_client_request(head, _header_list(head), b""))
        _, body = shape.build_error(info)
        await self._answer_and_close(client, status, JSON_HEADERS, body)

    async def close(self, grace: float) -> None:
        """Stop accepting, let exchanges in flight finish for ``grace`` seconds, then cancel them."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in self._idle:
            task.cancel()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        self.deadlines.close()


async def serve(
    config: Config,
    *,
    ready: Callable[[str, int], None] | None = None,
    stop: asyncio.Event | None = None,
    rebuild: Callable[[], Config] | None = None,
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled); SIGINT/SIGTERM set it when run as main.
    With ``rebuild`` (how the configuration was made: the same flags over the file), the configuration
    is reloaded on SIGHUP and when its ``--config`` file changes (reload.py)."""
    client = upstream.make_client(connect_timeout=config.connect_timeout, read_timeout=config.timeout)
    app = App(config, client)
    server = Server(config, app)
    host, port = await server.start()
    if not config.api_keys and not _loopback(config.host):
        log.warning(
            "listening on %s without --api-key: anyone who can reach this address can use the upstream keys",
            config.host,
        )
    reloader = None
    if rebuild is not None:
        from .reload import Reloader

        reloader = Reloader(app, rebuild)
        reloader.start()
    if ready is not None:
        ready(host, port)
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        if reloader is not None:
            reloader.stop()
        await server.close(config.grace_seconds)
        app.streams.close()
        await client.aclose()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well be reachable from elsewhere


def _declared_length(headers: Headers) -> int | None:
    """The body length a request declares, 0 when it declares none; None for a chunked body. h11 has
    validated the framing headers (one well-formed Content-Length, no conflict with chunked)."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)
    return length


def _body_timeout() -> ErrorInfo:
    return ErrorInfo(status=408, type=ErrorType.TIMEOUT, message="request body not received in time")


def _too_large(limit: int) -> ErrorInfo:
    return ErrorInfo(
        status=413, type=ErrorType.REQUEST_TOO_LARGE, message=f"request body exceeds {limit} bytes"
    )


def _keeps_alive(http_version: bytes, headers: Headers) -> bool:
    """h11's rule: HTTP/1.1 without ``Connection: close``."""
    return http_version == b"1.1" and b"close" not in connection_tokens(headers)


def _header_list(head: h11.Request) -> Headers:
    """The head's fields, names lower-cased, as a plain list: taken once, from ``raw_items()``, since
    iterating h11's ``Headers`` goes through ``Sequence.__iter__``, a call and a tuple an item."""
    return [(name.lower(), value) for name, value in head.headers.raw_items()]


def _client_request(head: h11.Request, headers: Headers, body: bytes) -> ClientRequest:
    target = head.target.decode("latin-1")
    path, _, query = target.partition("?")
    return ClientRequest(method=head.method.decode(), path=path, query=query, headers=headers, body=body)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: exit at once."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            sys.exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
