"""A lean HTTP/1.1 keep-alive client on asyncio streams: the upstream hot path.

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
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ProxyError, UpstreamProtocolError
from .http1 import HTTPProtocolError, ResponseHead, ResponseReader, encode_request
from .ir import ErrorInfo, ErrorType

__all__ = ["ConnectionPool", "LeanResponse", "Origin"]

READ_SIZE = 64 * 1024


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


class _Connection:
    __slots__ = ("origin", "reader", "writer")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


def _timeout() -> ProxyError:
    return ProxyError(ErrorInfo(status=504, type=ErrorType.TIMEOUT, message="upstream timed out"))


class _Silent(Exception):
    """Set on a connection's reader by the watch: the upstream said nothing for the read timeout."""


class _StaleConnection(Exception):
    """A reused connection turned out closed before any byte of the answer: safe to retry."""


class _ReadWatch:
    """The read timeout for every connection, kept by one ticker task while any read is waiting.

    A read that has waited ``timeout`` seconds (give or take a tick: a quarter of the timeout, at most
    one second) gets ``_Silent`` raised into it through its ``StreamReader``.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tick = min(1.0, timeout / 4)
        self._waiting: dict[_Connection, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def read(self, conn: _Connection) -> bytes:
        waiting = self._waiting
        waiting[conn] = time.monotonic()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            return await conn.reader.read(READ_SIZE)
        finally:
            waiting.pop(conn, None)

    async def _run(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(self._tick)
                now = time.monotonic()
                for conn, since in list(self._waiting.items()):
                    if now - since >= self.timeout:
                        del self._waiting[conn]
                        conn.reader.set_exception(_Silent())
        finally:
            self._task = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class LeanResponse:
    """A response whose head has arrived; the body is read with :meth:`chunks` or :meth:`read`."""

    __slots__ = ("_conn", "_first", "_pool", "_reader", "headers", "status")

    def __init__(
        self,
        pool: ConnectionPool,
        conn: _Connection,
        reader: ResponseReader,
        head: ResponseHead,
        first: bytes,
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._reader = reader
        self._first = first  # body bytes that came in the read that completed the head
        self.status = head.status
        self.headers = head.headers

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked framing removed), each read bounded by the read timeout.

        Everything one socket read delivered comes out as one piece: an upstream that frames every SSE
        event as its own HTTP chunk would otherwise cost a translation and a client write per event.
        Nothing waits for more data to batch: what has arrived goes on at once.
        """
        reader = self._reader
        first, self._first = self._first, b""
        if first:
            yield first
        watch = self._pool.watch
        conn = self._conn
        while not reader.done:
            try:
                data = await watch.read(conn)
            except _Silent:
                raise _timeout() from None
            except OSError as exc:
                raise UpstreamProtocolError(f"upstream connection failed: {exc}") from None
            try:
                if not data:
                    reader.close()
                    break
                body = reader.feed(data)
            except HTTPProtocolError as exc:
                raise UpstreamProtocolError(f"upstream broke HTTP/1.1: {exc}") from None
            if body:
                yield body

    async def read(self, limit: int = 4 * 1024 * 1024) -> bytes:
        parts = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(parts)

    async def aclose(self) -> None:
        """Give the connection back when the answer was read to its end; close it otherwise."""
        if self._reader.reusable:
            self._pool.release(self._conn)
        else:
            self._conn.close()


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
        self._origins: dict[str, tuple[Origin, bytes]] = {}

    async def _connect(self, origin: Origin) -> _Connection:
        tls: ssl.SSLContext | None = None
        if origin.scheme == "https":
            tls = self._ssl() if self._ssl is not None else ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                    limit=READ_SIZE * 4,
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
        return _Connection(origin, reader, writer)

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

    def _origin(self, url: str) -> tuple[Origin, bytes]:
        """(origin, request target) of a URL; the few URLs a proxy calls are parsed once each."""
        known = self._origins.get(url)
        if known is None:
            origin, target = Origin.of(url)
            known = (origin, target.encode())
            if len(self._origins) < 1024:
                self._origins[url] = known
        return known

    async def request(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        meanwhile: Callable[[], object] | None = None,
    ) -> LeanResponse:
        """Send a request and return once the response head has arrived.

        ``meanwhile`` runs once the request is written and before the answer is awaited: CPU work the
        caller needs later overlaps with the upstream's own latency instead of adding to it.
        """
        origin, target = self._origin(url)
        try:
            raw = encode_request(method, target, [(b"host", origin.host_header), *headers], body)
        except HTTPProtocolError as exc:
            raise ProxyError(
                ErrorInfo(status=400, type=ErrorType.INVALID_REQUEST, message=str(exc))
            ) from None
        head_only = method == b"HEAD"
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, raw, head_only, meanwhile, reused=True)
            except _StaleConnection:
                pass  # the server had closed it while idle: once more, on a new connection
        conn = await self._connect(origin)
        try:
            return await self._exchange(conn, raw, head_only, meanwhile, reused=False)
        except _StaleConnection:
            raise UpstreamProtocolError("upstream closed the connection without answering") from None

    async def _exchange(
        self,
        conn: _Connection,
        raw: bytes,
        head_only: bool,
        meanwhile: Callable[[], object] | None,
        *,
        reused: bool,
    ) -> LeanResponse:
        reader = ResponseReader(head_request=head_only)
        try:
            conn.writer.write(raw)
            if meanwhile is not None:
                meanwhile()
            received_any = False
            while True:
                try:
                    data = await self.watch.read(conn)
                except _Silent:
                    conn.close()
                    raise _timeout() from None
                if not data:
                    conn.close()
                    if reused and not received_any:
                        raise _StaleConnection
                    raise UpstreamProtocolError("upstream closed the connection without answering")
                received_any = True
                first = reader.feed(data)
                if reader.head is not None:
                    return LeanResponse(self, conn, reader, reader.head, first)
        except (ConnectionError, OSError) as exc:
            conn.close()
            if reused and isinstance(exc, ConnectionError):
                raise _StaleConnection from None
            raise UpstreamProtocolError(f"upstream connection failed: {exc}") from None
        except HTTPProtocolError as exc:
            conn.close()
            raise UpstreamProtocolError(f"upstream broke HTTP/1.1: {exc}") from None

    async def aclose(self) -> None:
        self.watch.close()
        for idle in self._idle.values():
            for _, conn in idle:
                conn.close()
        self._idle.clear()
