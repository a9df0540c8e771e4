"""A lean HTTP/1.1 keep-alive client on asyncio protocols: the upstream hot path.

Why: measured on this project's 2-core machine, a stock ``httpx.AsyncClient`` costs about 0.55 ms of CPU
per request (its pool scans every connection per request; anyio adds a layer), more than the proxy's
whole budget. This module does only what the hot path needs: one pool of idle connections per origin,
LIFO reuse, the framing of ``http1.py`` (h11 would cost 40 µs an exchange here, more than all the rest
of this package), a read timeout on every read, TLS through ``ssl``. One connection's protocol is
connection.py; this module pools them and runs exchanges on them. Everything else (model lists,
configuration-level calls) stays on httpx, in ``client/http.py``, the only module that uses this one.

Rules:
- A connection returns to the pool only after its response ended cleanly and both sides may go on;
  a response closed early (the client went away) closes its connection, so the upstream stops.
- A request on a reused connection that fails before any byte of the answer arrived (the server had
  closed the idle connection) is retried once on a new connection; any other failure is the caller's.
- Errors leave typed by fault (faults.py): ``UpstreamUnreachable`` (502) when the upstream cannot be
  reached, ``UpstreamProtocolError`` (502) when it breaks the protocol, ``UpstreamTimeout`` (504) when it
  is silent longer than the read timeout.
- The read timeout is kept by one ``timers.Ticker`` for all connections, not a timer per read: a stream
  of a thousand chunks would otherwise arm and cancel a thousand timers. A read only stores the time
  (``last_data``); every step (a quarter of the read timeout, at most a second) the ticker asks each
  exchange in flight (``Connection.due``) whether it has been silent too long. Time paused for a slow
  client is not counted.
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

from ..errors import ClientError, ProxyError, UpstreamProtocolError
from ..http1 import HTTPProtocolError, ResponseHead, ResponseReader, encode_headers, encode_request_with
from ..routing.reach import Route
from ..timers import Ticker
from .connection import Connection, OnBody, OnHead, Origin, raise_for
from .faults import fault
from .route import connect, named_failure, target_of

__all__ = ["ConnectionPool", "LeanResponse", "OnBody", "OnHead", "Origin"]


class _StaleConnection(Exception):
    """A reused connection turned out closed before any byte of the answer: safe to retry."""


def _closed_unanswered(conn: Connection, reused: bool) -> ProxyError:
    """A connection closed before any answer. On a new TLS connection without a client certificate, the
    likeliest cause is a server that requires one: in TLS 1.3 it can refuse only after the handshake
    (RFC 8446 4.4.2.4), and may close without an alert Python reports."""
    via = conn.origin.via
    fresh = not reused and not conn.received_any and conn.origin.scheme == "https"
    if fresh and via is not None and via.tls.cert_file is None:
        return via.failed(
            f"TLS: {conn.origin.host} closed the connection before answering; hint: if it requires a "
            "client certificate (mutual TLS), set cert_file and key_file for this upstream"
        )
    return UpstreamProtocolError("upstream closed the connection without answering")


class LeanResponse:
    """A response whose head has arrived; the body is read with :meth:`relay`, :meth:`chunks` or
    :meth:`read`."""

    __slots__ = ("_conn", "_pool", "_reader", "head")

    def __init__(
        self, pool: ConnectionPool, conn: Connection, reader: ResponseReader, head: ResponseHead
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._reader = reader
        self.head = head

    def _ended(self) -> bool:
        """True once the body has ended; raises what went wrong instead, if anything did."""
        conn = self._conn
        raise_for(conn)
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
            self._conn.fail(error)

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
        self.watch = Ticker()  # the read timeout of every exchange in flight
        self._ssl = ssl_context
        self._max_idle = max_idle_per_origin
        self._expiry = idle_expiry
        self._idle: dict[Origin, list[tuple[float, Connection]]] = {}
        self._open: set[Connection] = set()  # every connection whose socket is open, idle or busy
        self._origins: dict[str, tuple[Origin, bytes, bytes]] = {}

    @property
    def open_connections(self) -> int:
        """Upstream connections whose socket is still open: idle in the pool or in an exchange. Once
        nothing is in flight it equals ``idle_connections``; more is a leaked connection."""
        return len(self._open)

    @property
    def idle_connections(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def _connect(self, origin: Origin, route: Route | None) -> Connection:
        if origin.via is not None:  # an upstream's route: its proxy, its TLS, errors that name it
            return await connect(
                origin.via, origin, lambda: Connection(origin, self._open), self.connect_timeout
            )
        tls: ssl.SSLContext | None = None
        if origin.scheme == "https":
            tls = self._ssl() if self._ssl is not None else ssl.create_default_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(origin, self._open),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except OSError as exc:  # TimeoutError (the connect timeout) among them
            raise (fault(exc) if route is None else named_failure(route, exc, origin.host)) from None
        return conn

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < self._expiry and conn.usable:
                return conn
            conn.close()
        return None

    def release(self, conn: Connection) -> None:
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
        route: Route | None = None,
    ) -> LeanResponse:
        """Send a request (``header_lines`` from ``http1.encode_headers``; the host line is added here)
        and return once the response head has arrived.

        ``meanwhile`` runs once the request is written and before the answer is awaited: CPU work the
        caller needs later overlaps with the upstream's own latency instead of adding to it.
        ``on_head(head)`` is called from the connection's callback the moment the head has
        arrived, before this coroutine resumes; when it returns an ``on_body``, the body is pushed into
        it from then on, so the first bytes of the answer are handled without waiting for the task.
        ``read_timeout`` replaces the pool's for this exchange (an upstream's own setting). ``route`` is
        how the upstream is reached (its proxy and TLS, route.py); None: directly, with the defaults.
        """
        # A route of its own (a proxy, TLS settings) keys its own connections; a plain one shares the
        # direct connections to that origin with every other plain upstream there (route.target_of).
        origin, target, host_line = self._origin(url) if route is None else target_of(route, url)
        try:
            raw = encode_request_with(method, target, host_line + header_lines, body)
        except HTTPProtocolError as exc:  # a header the client sent that HTTP/1.1 cannot carry
            raise ClientError(str(exc)) from None
        head_only = method == b"HEAD"
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._exchange(
                    conn, raw, head_only, meanwhile, on_head, reused=True, read_timeout=read_timeout
                )
            except _StaleConnection:
                meanwhile = None  # it ran already; once more, on a new connection
        conn = await self._connect(origin, route)
        try:
            return await self._exchange(
                conn, raw, head_only, meanwhile, on_head, reused=False, read_timeout=read_timeout
            )
        except _StaleConnection:
            raise UpstreamProtocolError("upstream closed the connection without answering") from None

    async def _exchange(
        self,
        conn: Connection,
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
        self._watch(conn, read_timeout)
        try:
            assert conn.transport is not None
            conn.transport.write(raw)
            if meanwhile is not None:
                meanwhile()
            while reader.head is None:
                if conn.error is not None:
                    raise_for(conn)
                if conn.closed:
                    if reused and not conn.received_any:
                        raise _StaleConnection
                    raise _closed_unanswered(conn, reused)
                await conn.wait()
            raise_for(conn)  # what failed with the head (on_head raised, the first body bytes broke)
            head = reader.head
            if head.status == 407 and conn.origin.via is not None and conn.origin.via.proxy is not None:
                raise conn.origin.via.refused(407, "Proxy Authentication Required")  # not the upstream's
            return LeanResponse(self, conn, reader, head)
        except BaseException:
            self.watch.discard(conn)
            conn.reader = None
            conn.close()
            raise

    def _watch(self, conn: Connection, read_timeout: float | None) -> None:
        """Time ``conn``'s exchange with its own read timeout (an upstream's setting) or the pool's; a
        shorter one than any in flight moves the ticker's next look earlier."""
        conn.read_timeout = timeout = read_timeout or self.read_timeout
        conn.step = step = min(1.0, timeout / 4)
        self.watch.watch(conn, conn.last_data + step)  # (last_data: just set by begin)

    async def aclose(self) -> None:
        self.watch.close()
        for idle in self._idle.values():
            for _, conn in idle:
                conn.close()
        self._idle.clear()
