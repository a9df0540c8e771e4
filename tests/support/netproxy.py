"""A company network in miniature, on 127.0.0.1: an HTTP proxy that records what it saw, and a TLS front
for the fake upstream with a certificate signed by a CA made in the test (``trustme``).

- :class:`ConnectProxy` takes ``CONNECT host:port`` (then pipes bytes both ways) and requests in absolute
  form (``POST http://host:port/path HTTP/1.1``: it forwards the request in origin form, then pipes). It
  records each request line and ``Proxy-Authorization`` value, and answers ``refuse`` (407, 403...)
  instead when told to.
- :class:`TLSFront` terminates TLS (optionally requiring a client certificate) and pipes the plain bytes
  to the fake upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ConnectProxy", "TLSFront"]

T = 5.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


class _Server:
    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _serve(self, handler: Any, **kwargs: Any) -> None:
        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                self._tasks.discard(task)
                writer.close()

        self._server = await asyncio.start_server(on_connection, "127.0.0.1", 0, **kwargs)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)


class ConnectProxy(_Server):
    def __init__(self, refuse: int | None = None, hosts: dict[str, tuple[str, int]] | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.hosts = hosts or {}  # "name:port" -> where a CONNECT to it really goes (no DNS in tests)
        self.lines: list[str] = []  # each request line: "CONNECT host:port HTTP/1.1", "POST http://..."
        self.authorizations: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, userinfo: str) -> str:
        return f"http://{userinfo}@127.0.0.1:{self.port}"

    async def __aenter__(self) -> ConnectProxy:
        await self._serve(self._handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
        auth = next((v.strip() for k, v in headers if k.strip().lower() == "proxy-authorization"), None)
        self.lines.append(lines[0])
        self.authorizations.append(auth)
        if self.refuse is not None:
            reason = {407: "Proxy Authentication Required", 403: "Forbidden"}.get(self.refuse, "No")
            extra = 'proxy-authenticate: Basic realm="corp"\r\n' if self.refuse == 407 else ""
            writer.write(f"HTTP/1.1 {self.refuse} {reason}\r\n{extra}content-length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            where = self.hosts.get(target, (host.strip("[]"), int(port)))
            upstream = await asyncio.wait_for(asyncio.open_connection(*where), T)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _splice((reader, writer), upstream)
            return
        parts = urlsplit(target)  # absolute form: forward in origin form, without the proxy's header
        upstream = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 80), T)
        origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-authorization")]
        upstream[1].write("\r\n".join([f"{method} {origin_form} {version}", *kept, "", ""]).encode("latin-1"))
        await _splice((reader, writer), upstream)


class TLSFront(_Server):
    """TLS on 127.0.0.1 (certificate for ``127.0.0.1`` and ``localhost`` by ``ca``) in front of
    ``target_port``; ``client_ca`` set: a client certificate signed by it is required."""

    def __init__(
        self, ca: Any, target_port: int, client_ca: Any | None = None, names: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.ca = ca
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost", *names).configure_cert(self.context)
        if client_ca is not None:
            client_ca.configure_trust(self.context)
            self.context.verify_mode = ssl.CERT_REQUIRED

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> TLSFront:
        await self._serve(self._handle, ssl=self.context, ssl_handshake_timeout=T)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
        async def run() -> None:
            upstream = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target_port), T)
            await _splice((reader, writer), upstream)

        return run()
