"""The CONNECT tunnel through an outbound HTTP proxy (NET-01): how an https upstream is reached through a
proxy. Which proxy an upstream uses, and the environment's rules, are ``routing/reach.py``'s.

An https upstream is reached by an HTTP ``CONNECT`` tunnel (:func:`open_tunnel`, RFC 9110 9.3.6), then
TLS to the upstream inside it (``loop.start_tls``, route.py); an http upstream by requests in absolute
form sent to the proxy itself (RFC 9112 3.2.2). The ``Proxy-Authorization`` header is sent, never shown.
"""

from __future__ import annotations

import asyncio

from ..routing.reach import ProxyURL, authority

__all__ = ["ProxyRefused", "open_tunnel"]


class ProxyRefused(Exception):
    """The proxy answered ``CONNECT`` with a status other than 2xx (or broke the exchange)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        self.reason = reason


class _Handshake(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: the status line and headers, nothing more."""

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 64 * 1024:
                self.head.set_exception(ProxyRefused(0, "the proxy's answer to CONNECT is too long"))
            return
        assert self.transport is not None
        self.transport.pause_reading()  # what follows is the tunnel's: read by the next protocol
        line = self._buffer[: self._buffer.find(b"\r\n")].decode("latin-1")
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            self.head.set_exception(ProxyRefused(0, "the proxy did not answer CONNECT in HTTP/1.1"))
            return
        self.head.set_result((int(code), reason.strip()))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ProxyRefused(0, "the proxy closed the connection during CONNECT"))


async def open_tunnel(proxy: ProxyURL, host: str, port: int) -> asyncio.Transport:
    """A connection to ``proxy`` turned into a tunnel to ``host:port`` by ``CONNECT`` (RFC 9110 9.3.6);
    raises OSError (cannot reach the proxy) or :class:`ProxyRefused`. The caller bounds it in time."""
    loop = asyncio.get_running_loop()
    transport, handshake = await loop.create_connection(_Handshake, proxy.host, proxy.port)
    target = authority(host, port).encode("ascii")
    lines = [b"CONNECT " + target + b" HTTP/1.1", b"host: " + target]
    if proxy.authorization is not None:
        lines.append(b"proxy-authorization: " + proxy.authorization)
    transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
    try:
        status, reason = await handshake.head
    except BaseException:
        transport.close()
        raise
    if not 200 <= status < 300:
        transport.close()
        raise ProxyRefused(status, reason)
    return transport
