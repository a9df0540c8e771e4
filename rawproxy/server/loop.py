"""The HTTP/1.1 server loop: h11 parses every request; the only module that imports h11.

Per connection, in a loop (one task, ``Server._serve``): wait (idle timeout) for a request head; answer
``Expect: 100-continue`` at once (curl otherwise stalls a second); read the body up to the limit (413
beyond it); hand the request to ``App.handle`` with a ``ResponseWriter``; then a fresh h11 parser for the
next request on the connection, or close when either side said ``Connection: close``. Pipelined requests
wait in the connection's buffer until the response before them is complete (X-03).

Backpressure has one gate: ``ResponseWriter.drain()``, which waits while the transport is past its
high-water mark, so a slow reader stops the relay, which stops reading the upstream (X-05). The limits
are read from the app's configuration of the moment, so a reload changes them for the next request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import h11

from .._types import ClientRequest, Headers
from ..exchange import App, error_response
from ..exchange.relay import SHUTDOWN
from ..http1 import connection_tokens, origin_path, partial_head
from ..ir import ErrorInfo, ErrorType
from ..timers import Ticker
from .connection import ClientConnection
from .writer import CONTINUE, ResponseWriter

__all__ = ["Server"]

_SLOW = object()  # a request head that did not arrive within head_timeout
LINGER_SECONDS = 2.0  # the longest the input is drained after an answer that ends the connection


_NO_REQUEST = ClientRequest(method="", path="", query="", headers=[], body=b"")  # before any head


def _dual_stack(host: str, port: int, reuse_port: bool) -> socket.socket | None:
    """For ``--host ::``, one socket that takes IPv4 connections too (IPV6_V6ONLY off) where the system
    allows it. asyncio and uvloop set IPV6_V6ONLY on each IPv6 socket they make, so ``::`` alone would refuse
    127.0.0.1 (GNS3/gns3-server#1673); socket.create_server's ``dualstack_ipv6`` turns it off
    (https://docs.python.org/3/library/socket.html#socket.create_server). None: let the loop bind."""
    try:
        unspecified = ipaddress.ip_address(host) == ipaddress.IPv6Address("::")
    except ValueError:  # a host name
        return None
    if not unspecified or not socket.has_dualstack_ipv6():
        return None
    return socket.create_server(
        (host, port), family=socket.AF_INET6, backlog=1024, reuse_port=reuse_port, dualstack_ipv6=True
    )


class Server:
    def __init__(self, app: App) -> None:
        self.app = app  # app.config is the one of the moment: a reload changes the next request's limits
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # waiting for a request head: closed at once on shutdown
        self._closing = False
        self._server: asyncio.Server | None = None
        self.reads = Ticker()  # the deadline of every client read that waits

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        config = self.app.config  # where to listen: read once, at start
        sock = _dual_stack(config.host, config.port, config.reuse_port)
        if sock is not None:  # --host ::, bound above
            self._server = await loop.create_server(
                lambda: ClientConnection(self._serve, self.reads), sock=sock, backlog=1024
            )
            return sock.getsockname()[0], sock.getsockname()[1]
        self._server = await loop.create_server(
            lambda: ClientConnection(self._serve, self.reads),
            config.host,
            config.port,
            reuse_address=True,
            reuse_port=config.reuse_port or None,  # --workers: the kernel spreads connections
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
        data = await client.read(self.app.config.idle_timeout)
        if data is None:
            return None, held
        conn.receive_data(data)
        fed = held + len(data)
        deadline = time.monotonic() + self.app.config.head_timeout
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
        return len(self._connections) > self.app.config.max_connections

    async def _refuse(
        self,
        client: ClientConnection,
        info: ErrorInfo,
        head: h11.Request | None = None,
        *,
        http10: bool = False,
        partial: bytes = b"",
    ) -> None:
        """An error answered before any request is handled, in the client's shape once its request line
        is known (from the head, or from the ``partial`` head h11 refused before it was complete), OpenAI's
        before (garbage says nothing of who sent it), then the connection closed."""
        if head is not None:
            request = _client_request(head, _header_list(head), b"")
        else:
            request = _partial_request(partial)
        status, headers, body = error_response(request, info)
        await self._answer_and_close(client, status, headers, body, http10=http10)

    async def _answer_and_close(
        self, client: ClientConnection, status: int, headers: Headers, body: bytes, *, http10: bool = False
    ) -> None:
        """An error that ends the connection: the answer, then the input drained (``linger``)."""
        sink = ResponseWriter(client, head_only=False, http10=http10, close=True)
        await sink.respond(status, headers, body)
        await client.linger(min(LINGER_SECONDS, self.app.config.idle_timeout))

    def _new_cycle(self, leftover: tuple[bytes, bool] = (b"", False)) -> h11.Connection:
        """A fresh h11 parser for the next request, holding what the client sent beyond the last one.

        One parser per request rather than ``start_next_cycle()``: our responses do not go through h11
        (see ``ResponseWriter``), so its state machine would never reach DONE on our side. A new
        ``h11.Connection`` costs about 1 µs.
        """
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.app.config.max_head_bytes)
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
                    slow = ErrorInfo(
                        status=408, type=ErrorType.TIMEOUT, message="request head not received in time"
                    )
                    await self._refuse(client, slow)
                    return
                if not isinstance(event, h11.Request):
                    return  # EOF, idle timeout, or ConnectionClosed
                headers = _header_list(event)
                if self._crowded:
                    crowded = ErrorInfo(
                        status=503, type=ErrorType.OVERLOADED, message="too many connections; retry shortly"
                    )
                    crowded.retry_after = "1"
                    await self._refuse(client, crowded, event)
                    return
                request: ClientRequest | ErrorInfo | None = self._refuse_head(event, headers, fed)
                leftover = (b"", False)
                if request is None:
                    if conn.they_are_waiting_for_100_continue:
                        client.write(CONTINUE)
                    request, leftover = await self._read_body(conn, client, event, headers)
            except h11.RemoteProtocolError as exc:
                head = event if isinstance(event, h11.Request) else None
                await self._reject(client, exc, head, b"" if head is not None else conn.trailing_data[0])
                return
            if request is None:
                return
            http10 = event.http_version == b"1.0"
            if isinstance(request, ErrorInfo):  # refused by its framing: answer, then close
                await self._refuse(client, request, event, http10=http10)
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
        head_limit = self.app.config.max_head_bytes
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
        limit = self.app.config.max_body_bytes
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
                more = b"" if closed else await client.read(self.app.config.idle_timeout)
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
            event = await self._next_event(conn, client, self.app.config.idle_timeout)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.app.config.max_body_bytes:
                    return _too_large(self.app.config.max_body_bytes), (b"", False)
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
        self,
        client: ClientConnection,
        exc: h11.RemoteProtocolError,
        head: h11.Request | None,
        partial: bytes = b"",
    ) -> None:
        """A request h11 cannot parse: a 400 (431 for an oversized head, 501 for a transfer coding other
        than chunked), then close. In the client's shape once its request line is known (a bad chunked
        body; a head refused before it was complete, from what h11 held of it: ``partial``), OpenAI's
        before (garbage says nothing of who sent it)."""
        status = exc.error_status_hint  # h11's own: 431 for a head past max_incomplete_event_size
        message = "request head too large" if status == 431 else f"malformed HTTP request: {exc}"
        info = ErrorInfo(status=status, type=ErrorType.INVALID_REQUEST, message=message[:200])
        await self._refuse(client, info, head, partial=partial)

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
                task.cancel(SHUTDOWN)  # a stream still open ends with an error event (issue 19)
            if pending:
                await asyncio.wait(pending, timeout=1)
        self.reads.close()


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


def _partial_request(data: bytes) -> ClientRequest:
    """The request a head refused before it was complete was, as far as its start says (issue 19)."""
    known = partial_head(data)
    if known is None:
        return _NO_REQUEST
    method, path, query, headers = known
    return ClientRequest(method=method, path=path, query=query, headers=headers, body=b"")


def _client_request(head: h11.Request, headers: Headers, body: bytes) -> ClientRequest:
    target = head.target.decode("latin-1")
    path, _, query = target.partition("?")
    return ClientRequest(
        method=head.method.decode(), path=origin_path(path), query=query, headers=headers, body=body
    )
