"""One upstream connection: an asyncio protocol that parses its answer and pushes the body on.

Theory of operation: between exchanges a :class:`Connection` sits idle in the pool (pool.py). During one,
``data_received`` feeds what arrives to a sans-I/O ``http1.ResponseReader``; the moment the head is
parsed, ``on_head`` may install an ``on_body`` callback, and from then on every read's body bytes are
pushed into it from this same callback (no task switch between the upstream's socket and the client's).
Until an ``on_body`` is installed the body is kept in ``body`` for the task to pull. The task waits on
:meth:`Connection.wait`, woken by data, the end, an error or a pause.

- A failure is stored in ``error`` (the connection is closed) and raised in the waiting task by
  :func:`raise_for`; an error of the consumer's, raised from ``on_body``, travels the same way.
- The read timeout costs a read one attribute store (``last_data``): the pool's ``timers.Ticker`` calls
  :meth:`Connection.due` every step and fails a silent exchange with ``faults.Silent``. A connection
  paused because the client is slow is not timed out; ``resume`` restarts its clock.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from ..errors import UpstreamProtocolError, UpstreamUnreachable
from ..http1 import HTTPProtocolError, ResponseHead, ResponseReader
from ..routing.reach import Route
from .faults import Silent, fault
from .tls import tls_failure

__all__ = ["Connection", "OnBody", "OnHead", "Origin", "raise_for"]


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    via: Route | None = None  # how it is reached; None: directly, by the pool's defaults

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


class Connection(asyncio.Protocol):
    """One upstream connection. Between exchanges it sits idle in the pool; during one, ``reader``
    parses what arrives, and the body goes either to ``on_body`` (push) or to ``body`` (pull)."""

    def __init__(self, origin: Origin, registry: set[Connection] | None = None) -> None:
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
        self.read_timeout = 0.0  # of the exchange in flight (set by ConnectionPool._watch)
        self.step = 1.0  # how often the ticker looks at this exchange: a quarter of that, at most 1 s
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
            self.fail(UpstreamProtocolError(f"upstream broke HTTP/1.1: {exc}"))
            return
        except Exception as exc:  # the consumer's (e.g. a translation error): re-raised in its task
            self.fail(exc)
            return
        self._wake()

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._registry is not None:
            self._registry.discard(self)
        if (
            isinstance(exc, ssl.SSLError)
            and self.reader is not None
            and self.error is None
            and not self.received_any
        ):
            self._tls_refused(exc)
        self._ended()

    def _tls_refused(self, exc: ssl.SSLError) -> None:
        """The upstream ended TLS before answering: in TLS 1.3 a server that wants a client certificate
        says so only after the handshake, on the first read (RFC 8446 4.4.2.4)."""
        why = tls_failure(exc, self.origin.host)
        via = self.origin.via
        self.error = via.failed(why) if via is not None else UpstreamUnreachable(f"could not connect: {why}")

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

    def fail(self, exc: BaseException) -> None:
        """End the exchange with ``exc``: the connection closes, the waiting task raises it."""
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

    def due(self, now: float) -> float | None:
        """The ticker's look: fail the exchange with ``Silent`` once its upstream has been silent for the
        read timeout (then stop being watched); otherwise, look again in a step."""
        if self.error is not None or self.reader is None:
            return None  # failed already, or over: nothing left to time
        if not self.paused and now - self.last_data >= self.read_timeout:
            self.fail(Silent())  # (paused: the client's slowness, which resume() forgives)
            return None
        return now + self.step

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.on_body = self.on_head = None
        if self.transport is not None:
            self.transport.close()


def raise_for(conn: Connection) -> None:
    """Raise what failed ``conn``'s exchange, if anything did: silence as its typed fault."""
    error = conn.error
    if error is None:
        return
    if isinstance(error, Silent):
        raise fault(error) from None
    raise error
