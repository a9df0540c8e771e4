"""The HTTP/1.1 server: asyncio streams, with h11 parsing every request. The only module that imports h11.

Per connection, in a loop: wait (idle timeout) for a request head; answer ``Expect: 100-continue`` at
once (curl otherwise stalls a second); read the body up to the limit (413 beyond it); hand the request to
``App.handle`` with a ``ResponseWriter``; then a fresh h11 parser for the next request on the connection,
or close when either side said ``Connection: close``. Pipelined requests wait in h11's buffer until the
response before them is complete (X-03).

While a response is in progress nobody else reads the client socket, so a *disconnect watcher* task does:
EOF cancels the exchange, which closes the upstream request (A2O-S17); early bytes of a pipelined
request go into h11's buffer for the next cycle. Backpressure lives in ``ResponseWriter.send`` alone: it awaits
``drain()`` after every write, so a slow reader stops the pump, which stops reading the upstream (X-05).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from http import HTTPStatus

import h11

from . import __version__, upstream
from .config import Config
from .ir import ErrorInfo, ErrorType
from .proxy import JSON_HEADERS, App, ClientRequest, Headers, _client_shape

__all__ = ["ResponseWriter", "Server", "serve"]

log = logging.getLogger("rawproxy")

READ_SIZE = 64 * 1024
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


class ResponseWriter:
    """``ResponseSink`` over one client connection: writes the response head and body framing itself.

    h11 parses every request (the side that sees hostile input); the response side is ours because h11's
    ``send`` costs about 25 µs a response here (each head is validated twice) for framing that is a few
    lines: ``content-length`` when the caller gives one, else chunked for HTTP/1.1 and a close-delimited
    body for HTTP/1.0. Every header written comes from our own constants or from an upstream head that
    ``http1.py`` has already checked for CR, LF and NUL.

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
        "last_write",
        "must_close",
        "started",
    )

    def __init__(
        self, writer: asyncio.StreamWriter, *, head_only: bool, http10: bool = False, close: bool = False
    ) -> None:
        self._writer = writer
        self._head_only = head_only
        self._http10 = http10
        self._pending = b""  # the response head, until the first body bytes go with it
        self._chunked = False
        self._left = -1  # bytes still owed under content-length; -1 when not length-delimited
        self.must_close = close
        self.started = False
        self.last_write = time.monotonic()

    async def start(self, status: int, headers: Headers) -> None:
        self.started = True
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
        if self._left >= 0:
            self._left -= len(data)
            if self._left < 0:  # more than declared: a bug; the client must not read past it
                self.must_close = True
                return data[: len(data) + self._left]
        return data

    def send_nowait(self, data: bytes) -> None:
        """Write without waiting for the client (a keep-alive frame: tiny, and never queued twice)."""
        out = self._pending + self._frame(data)
        if out:
            self._pending = b""
            self._writer.write(out)
            self.last_write = time.monotonic()

    async def send(self, data: bytes) -> None:
        self.send_nowait(data)
        await self._writer.drain()

    def hold(self, data: bytes) -> None:
        """Queue bytes to go out with the next write (or ``flush``): a stream's opening event then
        shares one write, and one wake-up of the client, with the first token when both are ready."""
        self._pending += self._frame(data)

    def flush(self) -> None:
        if self._pending:
            self._writer.write(self._pending)
            self._pending = b""
            self.last_write = time.monotonic()

    @property
    def backlogged(self) -> bool:
        """More is queued for the client than the transport's high-water mark (where ``drain()`` waits)."""
        transport = self._writer.transport
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]

    async def drain(self) -> None:
        await self._writer.drain()

    async def end(self, tail: bytes = b"") -> None:
        out = self._pending + self._frame(tail)
        if self._chunked:
            out += b"0\r\n\r\n"
        elif self._left > 0:
            self.must_close = True  # fewer bytes than declared: only closing tells the client
        self._pending = b""
        self._writer.write(out)
        await self._writer.drain()

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        await self.start(status, [*headers, (b"content-length", b"%d" % len(body))])
        await self.end(body)


class Server:
    def __init__(self, config: Config, app: App) -> None:
        self.config = config
        self.app = app
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # waiting for a request head: closed at once on shutdown
        self._closing = False
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._on_connection, self.config.host, self.config.port, reuse_address=True, backlog=1024
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only close() cancels a connection task (an idle one at shutdown, or one past the grace
            # period). It ends here: asyncio's stream callback would otherwise log it as an error.
            pass
        finally:
            self._connections.discard(task)
            self._idle.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _next_event(
        self, conn: h11.Connection, reader: asyncio.StreamReader, timeout: float
    ) -> h11.Event | type[h11.PAUSED] | None:
        """The next h11 event, reading as needed; None on EOF or timeout."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                return None
            conn.receive_data(data)

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

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self._new_cycle()
        task = asyncio.current_task()
        assert task is not None
        while not self._closing:
            try:
                self._idle.add(task)
                try:
                    event = await self._next_event(conn, reader, self.config.idle_timeout)
                finally:
                    self._idle.discard(task)
                if not isinstance(event, h11.Request):
                    return  # EOF, idle timeout, or ConnectionClosed
                request: ClientRequest | ErrorInfo | None = self._refuse_head(event)
                if request is None:
                    if conn.they_are_waiting_for_100_continue:
                        writer.write(CONTINUE)
                    request = await self._read_body(conn, reader, event)
            except h11.RemoteProtocolError as exc:
                await self._reject(conn, writer, exc)
                return
            if request is None:
                return
            http10 = event.http_version == b"1.0"
            if isinstance(request, ErrorInfo):  # too large: answer, then close (the body is left unread)
                shape = _client_shape(_head_only_request(event))
                status, body = shape.build_error(request)
                sink = ResponseWriter(writer, head_only=False, http10=http10, close=True)
                await sink.respond(status, JSON_HEADERS, body)
                return
            # h11 has decided from the request whether the client keeps the connection (HTTP/1.0 without
            # keep-alive, or Connection: close, leave their side in MUST_CLOSE).
            close = conn.their_state is not h11.DONE
            sink = ResponseWriter(writer, head_only=request.method == "HEAD", http10=http10, close=close)
            if not await self._exchange(conn, reader, request, sink):
                return
            if sink.must_close or conn.their_state is not h11.DONE:
                return
            conn = self._new_cycle(conn.trailing_data)

    def _refuse_head(self, head: h11.Request) -> ErrorInfo | None:
        """Limits checked on the head alone, before any body is invited (X-01).

        h11 bounds a head only while it is incomplete, so a large head that arrives in one read is
        measured here; a declared body over the limit is refused before ``100 Continue`` asks for it.
        """
        size = len(head.method) + len(head.target) + sum(len(k) + len(v) + 4 for k, v in head.headers)
        if size > self.config.max_head_bytes:
            return ErrorInfo(status=431, type=ErrorType.INVALID_REQUEST, message="request head too large")
        limit = self.config.max_body_bytes
        for name, value in head.headers:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return ErrorInfo(
                    status=413,
                    type=ErrorType.REQUEST_TOO_LARGE,
                    message=f"request body exceeds {limit} bytes",
                )
        return None

    async def _read_body(
        self, conn: h11.Connection, reader: asyncio.StreamReader, head: h11.Request
    ) -> ClientRequest | ErrorInfo | None:
        body = bytearray()
        limit = self.config.max_body_bytes
        while True:
            event = await self._next_event(conn, reader, self.config.idle_timeout)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    return ErrorInfo(
                        status=413,
                        type=ErrorType.REQUEST_TOO_LARGE,
                        message=f"request body exceeds {limit} bytes",
                    )
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None  # the client went away mid-body
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        return ClientRequest(
            method=head.method.decode(), path=path, query=query, headers=list(head.headers), body=bytes(body)
        )

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, request: ClientRequest, sink: ResponseWriter
    ) -> bool:
        """Run one exchange in this connection's task, with a disconnect watcher beside it. The watcher
        cancels this task when the client leaves (A2O-S17); that cancellation ends here, while any
        other (shutdown) goes on. False when the connection must not be reused."""
        task = asyncio.current_task()
        assert task is not None
        left: list[bool] = []
        watcher = asyncio.ensure_future(self._watch(conn, reader, task, left))
        try:
            await self.app.handle(request, sink)
        except asyncio.CancelledError:
            if left and task.uncancel() == 0:
                return False  # the client left: only the watcher had cancelled us
            raise  # we are being shut down
        finally:
            watcher.cancel()
            try:
                await asyncio.wait({watcher})  # its read() must be over before the next one starts
            except asyncio.CancelledError:
                if not (left and task.uncancel() == 0):
                    raise
                return False  # the client left just as the answer was complete
        return not left

    @staticmethod
    async def _watch(
        conn: h11.Connection, reader: asyncio.StreamReader, task: asyncio.Task[None], left: list[bool]
    ) -> None:
        data = await reader.read(READ_SIZE)
        if not data:
            left.append(True)
            task.cancel()
            return
        conn.receive_data(data)  # a pipelined request: h11 holds it until start_next_cycle()

    async def _reject(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, exc: h11.RemoteProtocolError
    ) -> None:
        """A request h11 cannot parse: a bare 400 (or 431 for an oversized head), then close."""
        status = 431 if "too long" in str(exc) or "too large" in str(exc) else exc.error_status_hint
        body = b'{"error":{"message":"malformed HTTP request","type":"invalid_request_error"}}'
        sink = ResponseWriter(writer, head_only=False, close=True)
        await sink.respond(status, JSON_HEADERS, body)

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


async def serve(
    config: Config, *, ready: Callable[[str, int], None] | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled); SIGINT/SIGTERM set it when run as main."""
    client = upstream.make_client(connect_timeout=config.connect_timeout, read_timeout=config.timeout)
    app = App(config, client)
    server = Server(config, app)
    host, port = await server.start()
    if ready is not None:
        ready(host, port)
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        await server.close(config.grace_seconds)
        app.keepalive.close()
        await client.aclose()


def _head_only_request(head: h11.Request) -> ClientRequest:
    """The parts of a request that choose its error shape, when its body will not be read."""
    path = head.target.decode("latin-1").partition("?")[0]
    return ClientRequest(
        method=head.method.decode(), path=path, query="", headers=list(head.headers), body=b""
    )


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
