"""A lean HTTP/1.1 keep-alive client on asyncio protocols: the upstream hot path.

Why: measured on this project's 2-core machine, a stock ``httpx.AsyncClient`` costs about 0.55 ms of CPU
per request (its pool scans every connection per request; anyio adds a layer), more than the proxy's
whole budget. This module does only what the hot path needs: one pool of idle connections per origin,
LIFO reuse, the framing of ``http1.py`` (h11 would cost 40 µs an exchange here, more than all the rest
of this module), a read timeout on every read, TLS through ``ssl``. Everything else (model lists,
configuration-level calls) stays on httpx, in ``upstream.py``, the only module that uses this one.

Rules:
- A connection returns to the pool only after its response ended cleanly and both sides may go on;
  a response closed early (the client went away) closes its connection, so the upstream stops.
- A request on a reused connection that fails before any byte of the answer arrived (the server had
  closed the idle connection) is retried once on a new connection; any other failure is the caller's.
- Errors leave as ``ProxyError``: 502 ``api_error`` when the upstream cannot be reached or breaks the
  protocol, 504 ``timeout_error`` when it is silent longer than the read timeout.
- The read timeout is kept by one ticker for all connections (``_ReadWatch``), not a timer per read: a
  stream of a thousand chunks would otherwise arm and cancel a thousand timers.
- A streamed body is *pushed*: :meth:`LeanResponse.relay` hands each read's body bytes to a callback
  inside ``data_received``, so an upstream event is translated and written to the client in the same
  callback that received it, with no task switch between socket and socket (the task switch and the
  stream buffer cost more than the translation). Backpressure still has one gate: when the client's
  buffer is full, reading from the upstream pauses and the relaying task awaits the client's ``drain()``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from .errors import ProxyError, UpstreamProtocolError
from .http1 import HTTPProtocolError, ResponseHead, ResponseReader, encode_headers, encode_request_with
from .ir import ErrorInfo, ErrorType

__all__ = ["ConnectionPool", "LeanResponse", "OnBody", "OnHead", "Origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> tuple[Origin, str]:
        """(origin, request target) of an absolute URL."""
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(scheme, parts.hostname or "", port), target

    @property
    def host_header(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        return (self.host if self.port == default else f"{self.host}:{self.port}").encode()


OnBody = Callable[[bytes, bool], bool]  # (body, whether the response ended with it) -> backlogged
OnHead = Callable[[ResponseHead], OnBody | None]  # the response head -> the on_body to push into


class _Connection(asyncio.Protocol):
    """One upstream connection. Between exchanges it sits idle in the pool; during one, ``reader``
    parses what arrives, and the body goes either to ``on_body`` (push) or to ``body`` (pull)."""

    def __init__(self, origin: Origin, registry: set[_Connection] | None = None) -> None:
        self.origin = origin
        self._registry = registry  # the pool's open connections: in it from connection_made to lost
        self.transport: asyncio.Transport | None = None
        self.reader: ResponseReader | None = None
        self.on_body: OnBody | None = None
        # called once with the response head, from data_received; may return the on_body to use
        self.on_head: OnHead | None = None
        self.body: list[bytes] = []
        self.error: BaseException | None = None
        self.closed = False
        self.received_any = False
        self.paused = False
        self.last_data = 0.0
        self.read_timeout = 0.0  # of the exchange in flight (set by ConnectionPool.request)
        self._loop = asyncio.get_running_loop()  # kept: in 3.11 each lookup costs a getpid() syscall
        self._waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------------- protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self._registry is not None:
            self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self.received_any = True
        reader = self.reader
        if reader is None or self.error is not None or reader.done:
            self.close()  # bytes outside an exchange or after its end: this connection cannot be trusted
            return
        try:
            body = reader.feed(data)
            if self.on_head is not None and reader.head is not None:
                on_head, self.on_head = self.on_head, None
                self.on_body = on_head(reader.head)
            if body:
                on_body = self.on_body
                if on_body is None:
                    self.body.append(body)
                elif on_body(body, reader.done):
                    self.pause()
        except HTTPProtocolError as exc:
            self._fail(UpstreamProtocolError(f"upstream broke HTTP/1.1: {exc}"))
            return
        except Exception as exc:  # the consumer's (e.g. a translation error): re-raised in its task
            self._fail(exc)
            return
        self._wake()

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._registry is not None:
            self._registry.discard(self)
        self._ended()

    def _ended(self) -> None:
        self.closed = True
        if self.reader is not None and self.error is None:
            try:
                self.reader.close()
            except HTTPProtocolError:
                if self.reader.head is not None or self.received_any:
                    self.error = UpstreamProtocolError(
                        "upstream connection closed before the end of the response"
                    )
        self._wake()

    # ----------------------------------------------------------------------------------- helpers

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next thing happens on this connection (data, the end, an error, a pause)."""
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def pause(self) -> None:
        """Stop reading until ``resume``: the consumer's client is backlogged."""
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        self.last_data = time.monotonic()  # a paused read was the client's slowness, not the upstream's
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def begin(self, reader: ResponseReader, on_head: OnHead | None) -> None:
        if self.paused:  # a backstop: a pooled connection is never left unread
            self.resume()
        self.reader = reader
        self.on_head = on_head
        self.on_body = None
        self.body = []
        self.error = None
        self.received_any = False
        self.last_data = time.monotonic()

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.on_body = self.on_head = None
        if self.transport is not None:
            self.transport.close()


def _timeout() -> ProxyError:
    return ProxyError(ErrorInfo(status=504, type=ErrorType.TIMEOUT, message="upstream timed out"))


class _Silent(Exception):
    """Raised by the watch into an exchange whose upstream said nothing for the read timeout."""


class _StaleConnection(Exception):
    """A reused connection turned out closed before any byte of the answer: safe to retry."""


class _ReadWatch:
    """The read timeout for every exchange in flight, kept by one ticker task while there is any.

    An exchange whose upstream has sent nothing for ``timeout`` seconds (give or take a tick: a quarter
    of the timeout, at most one second) fails with ``_Silent``. Time paused for a slow client is not
    counted.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tick = min(1.0, timeout / 4)
        self._active: set[_Connection] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, conn: _Connection, timeout: float | None = None) -> None:
        """Watch ``conn`` with its own read timeout (an upstream's setting) or the pool's."""
        conn.read_timeout = timeout or self.timeout
        if conn.read_timeout / 4 < self._tick:
            self._tick = conn.read_timeout / 4  # a shorter timeout than the pool's: tick finer
            if self._task is not None:  # from now, not after the coarser sleep already begun (<= 1 s)
                self._task.cancel()
                self._task = None
        self._active.add(conn)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, conn: _Connection) -> None:
        self._active.discard(conn)

    async def _run(self) -> None:
        try:
            while self._active:
                await asyncio.sleep(self._tick)
                now = time.monotonic()
                for conn in list(self._active):
                    if not conn.paused and now - conn.last_data >= conn.read_timeout:
                        self._active.discard(conn)
                        conn._fail(_Silent())
        finally:
            if self._task is asyncio.current_task():  # not a ticker that replaced this one
                self._task = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _raise_for(conn: _Connection) -> None:
    error = conn.error
    if error is None:
        return
    if isinstance(error, _Silent):
        raise _timeout()
    raise error


class LeanResponse:
    """A response whose head has arrived; the body is read with :meth:`relay`, :meth:`chunks` or
    :meth:`read`."""

    __slots__ = ("_conn", "_pool", "_reader", "head")

    def __init__(
        self, pool: ConnectionPool, conn: _Connection, reader: ResponseReader, head: ResponseHead
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._reader = reader
        self.head = head

    def _ended(self) -> bool:
        """True once the body has ended; raises what went wrong instead, if anything did."""
        conn = self._conn
        _raise_for(conn)
        if self._reader.done:
            return True
        if conn.closed:
            raise UpstreamProtocolError("upstream connection closed before the end of the response")
        return False

    async def relay(
        self,
        on_body: OnBody,
        drain: Callable[[], Awaitable[None]],
        idle: Callable[[], None],
    ) -> None:
        """Push the body into ``on_body`` as it arrives, from the connection's own callback; return at its
        end. ``on_body(body, last)`` is told whether the response ended with that piece, and returns True
        when its client is backlogged: reading then pauses until ``drain``
        returns (the one backpressure gate). ``idle`` is called whenever everything that has arrived has
        been handed on and the relay is about to wait for the upstream. Errors, the consumer's
        included, are raised here."""
        conn = self._conn
        conn.on_body = on_body  # from now on, what arrives goes straight to on_body, in order after...
        pending, conn.body = conn.body, []
        backlogged = False
        for i, body in enumerate(pending):  # ...what came before (with the head), handed on here at once
            backlogged = on_body(body, self._reader.done and i == len(pending) - 1) or backlogged
        if backlogged:
            conn.pause()
        try:
            while True:
                if conn.paused:  # also when the whole response is already here: never pooled paused
                    await drain()
                    conn.resume()
                if self._ended():
                    return
                idle()
                await conn.wait()
        finally:
            conn.on_body = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked framing removed), one piece per read."""
        conn = self._conn
        while True:
            if conn.body:
                pending, conn.body = conn.body, []
                for body in pending:
                    yield body
                continue
            if self._ended():
                return
            await conn.wait()

    async def read(self, limit: int = 4 * 1024 * 1024) -> bytes:
        parts = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(parts)

    def abort(self, error: BaseException) -> None:
        """Fail the exchange now (a limit of the caller's ran out): its wait raises ``error``."""
        if self._conn.error is None:
            self._conn._fail(error)

    async def aclose(self) -> None:
        """Give the connection back when the answer was read to its end; close it otherwise."""
        conn = self._conn
        self._pool.watch.discard(conn)
        conn.on_body = None
        conn.reader = None
        if self._reader.reusable and conn.error is None and not conn.body and not conn.paused:
            self._pool.release(conn)
        else:
            conn.close()


class ConnectionPool:
    """Idle keep-alive connections per origin, most recently used first."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
        max_idle_per_origin: int = 100,
        idle_expiry: float = 60.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.watch = _ReadWatch(read_timeout)
        self._ssl = ssl_context
        self._max_idle = max_idle_per_origin
        self._expiry = idle_expiry
        self._idle: dict[Origin, list[tuple[float, _Connection]]] = {}
        self._open: set[_Connection] = set()  # every connection whose socket is open, idle or busy
        self._origins: dict[str, tuple[Origin, bytes, bytes]] = {}

    @property
    def open_connections(self) -> int:
        """Upstream connections whose socket is still open: idle in the pool or in an exchange. Once
        nothing is in flight it equals ``idle_connections``; more is a leaked connection."""
        return len(self._open)

    @property
    def idle_connections(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def _connect(self, origin: Origin) -> _Connection:
        tls: ssl.SSLContext | None = None
        if origin.scheme == "https":
            tls = self._ssl() if self._ssl is not None else ssl.create_default_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin, self._open),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise ProxyError(
                ErrorInfo(
                    status=502, type=ErrorType.API, message="could not connect to the upstream: timed out"
                )
            ) from None
        except OSError as exc:
            raise ProxyError(
                ErrorInfo(status=502, type=ErrorType.API, message=f"could not connect to the upstream: {exc}")
            ) from None
        return conn

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < self._expiry and conn.usable:
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        if not conn.usable:
            conn.close()
            return
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        idle.append((time.monotonic(), conn))

    def _origin(self, url: str) -> tuple[Origin, bytes, bytes]:
        """(origin, request target, host header line) of a URL; the few URLs a proxy calls are parsed
        once each."""
        known = self._origins.get(url)
        if known is None:
            origin, target = Origin.of(url)
            known = (origin, target.encode(), encode_headers([(b"host", origin.host_header)]))
            if len(self._origins) < 256 and len(url) <= 1024:  # the configured URLs, not clients' queries
                self._origins[url] = known
        return known

    async def request(
        self,
        method: bytes,
        url: str,
        header_lines: bytes,
        body: bytes | None,
        meanwhile: Callable[[], object] | None = None,
        on_head: OnHead | None = None,
        read_timeout: float | None = None,
    ) -> LeanResponse:
        """Send a request (``header_lines`` from ``http1.encode_headers``; the host line is added here)
        and return once the response head has arrived.

        ``meanwhile`` runs once the request is written and before the answer is awaited: CPU work the
        caller needs later overlaps with the upstream's own latency instead of adding to it.
        ``on_head(head)`` is called from the connection's callback the moment the head has
        arrived, before this coroutine resumes; when it returns an ``on_body``, the body is pushed into
        it from then on, so the first bytes of the answer are handled without waiting for the task.
        ``read_timeout`` replaces the pool's for this exchange (an upstream's own setting).
        """
        origin, target, host_line = self._origin(url)
        try:
            raw = encode_request_with(method, target, host_line + header_lines, body)
        except HTTPProtocolError as exc:
            raise ProxyError(
                ErrorInfo(status=400, type=ErrorType.INVALID_REQUEST, message=str(exc))
            ) from None
        head_only = method == b"HEAD"
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._exchange(
                    conn, raw, head_only, meanwhile, on_head, reused=True, read_timeout=read_timeout
                )
            except _StaleConnection:
                meanwhile = None  # it ran already; once more, on a new connection
        conn = await self._connect(origin)
        try:
            return await self._exchange(
                conn, raw, head_only, meanwhile, on_head, reused=False, read_timeout=read_timeout
            )
        except _StaleConnection:
            raise UpstreamProtocolError("upstream closed the connection without answering") from None

    async def _exchange(
        self,
        conn: _Connection,
        raw: bytes,
        head_only: bool,
        meanwhile: Callable[[], object] | None,
        on_head: OnHead | None,
        *,
        reused: bool,
        read_timeout: float | None,
    ) -> LeanResponse:
        reader = ResponseReader(head_request=head_only)
        conn.begin(reader, on_head)
        self.watch.add(conn, read_timeout)
        try:
            assert conn.transport is not None
            conn.transport.write(raw)
            if meanwhile is not None:
                meanwhile()
            while reader.head is None:
                if conn.error is not None:
                    _raise_for(conn)
                if conn.closed:
                    if reused and not conn.received_any:
                        raise _StaleConnection
                    raise UpstreamProtocolError("upstream closed the connection without answering")
                await conn.wait()
            _raise_for(conn)  # what failed with the head (on_head raised, the first body bytes broke)
            return LeanResponse(self, conn, reader, reader.head)
        except BaseException:
            self.watch.discard(conn)
            conn.reader = None
            conn.close()
            raise

    async def aclose(self) -> None:
        self.watch.close()
        for idle in self._idle.values():
            for _, conn in idle:
                conn.close()
        self._idle.clear()
