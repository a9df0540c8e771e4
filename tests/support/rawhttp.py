"""A small raw-socket HTTP/1.1 client for the integration tests.

Why not httpx: these tests need what a well-behaved client never does: pipelined requests written back to
back, a body held back until ``100 Continue`` arrives, garbage on the wire, an oversized head, reading the
head and then *not* reading the body (backpressure), closing the socket mid-stream. So requests are raw
bytes, and responses are parsed by hand from an ``asyncio.StreamReader`` (status line, headers, then
``content-length``, ``chunked`` or read-to-EOF framing), which keeps pipelined responses apart.

Every read has a timeout: a proxy that hangs fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HTTPConnection",
    "Head",
    "Response",
    "SSEEvent",
    "SSEFramer",
    "SSEStream",
    "build_request",
    "messages_body",
    "parse_sse",
    "text_of",
]

DEFAULT_TIMEOUT = 3.0


@dataclass
class Head:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in wire order

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


@dataclass
class Response:
    head: Head
    body: bytes
    informational: list[Head] = field(default_factory=list)  # 1xx heads that came first

    @property
    def status(self) -> int:
        return self.head.status

    def header(self, name: str) -> str | None:
        return self.head.header(name)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def build_request(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    *,
    host: str = "127.0.0.1",
) -> bytes:
    """Raw request bytes; adds Host, and Content-Length for a body unless a Transfer-Encoding is given."""
    names = {k.lower() for k, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def messages_body(
    text: str = "Hello", *, stream: bool = False, model: str = "claude-sonnet-4-5", **extra: Any
) -> bytes:
    """An Anthropic Messages request body."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    }
    body.update(extra)
    return json.dumps(body).encode()


def openai_chunk(delta: dict[str, Any], finish: str | None = None, *, id: str = "chatcmpl-test") -> bytes:
    """One upstream Chat Completions stream chunk, framed as SSE."""
    chunk = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def anthropic_event(name: str, data: dict[str, Any]) -> bytes:
    """One upstream Anthropic Messages stream event, framed as SSE."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def parse_sse(data: bytes) -> list[SSEEvent]:
    """Split a complete SSE body into events (LF or CRLF line endings; comments skipped)."""
    framer = SSEFramer()
    return framer.feed(data) + framer.feed(b"\n\n")


class HTTPConnection:
    """One client connection to 127.0.0.1; use as an async context manager so it is always closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any
    ) -> HTTPConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, **kwargs), timeout)
        return cls(reader, writer)

    async def __aenter__(self) -> HTTPConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    def abort(self) -> None:
        """Close with a reset (no FIN handshake)."""
        self.writer.transport.abort()

    # ----------------------------------------------------------------------------------- writing

    async def send(self, data: bytes, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout)

    async def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        await self.send(build_request(method, target, headers, body), timeout=timeout)
        return await self.read_response(method=method, timeout=timeout)

    # ----------------------------------------------------------------------------------- reading

    async def _line(self, timeout: float) -> bytes:
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        return line[:-2]

    async def read_head(self, *, timeout: float = DEFAULT_TIMEOUT) -> Head:
        """The next status line and headers (a 1xx head too). Raises IncompleteReadError on EOF."""
        status_line = (await self._line(timeout)).decode("latin-1")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {status_line!r}")
        code, _, reason = rest.partition(" ")
        headers = []
        while True:
            line = await self._line(timeout)
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return Head(int(code), reason, headers)

    async def read_body(self, head: Head, *, method: str = "GET", timeout: float = DEFAULT_TIMEOUT) -> bytes:
        if method == "HEAD" or head.status < 200 or head.status in (204, 304):
            return b""
        if "chunked" in (head.header("transfer-encoding") or "").lower():
            parts = []
            while True:
                piece = await self.read_chunk(timeout=timeout)
                if piece is None:
                    return b"".join(parts)
                parts.append(piece)
        length = head.header("content-length")
        if length is not None:
            return await asyncio.wait_for(self.reader.readexactly(int(length)), timeout)
        return await asyncio.wait_for(self.reader.read(), timeout)  # read to EOF

    async def read_chunk(self, *, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        """One chunk of a chunked body; None after the last chunk (and its trailers)."""
        size_line = await self._line(timeout)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while await self._line(timeout):  # trailers, up to the blank line
                pass
            return None
        data = await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
        if data[-2:] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        return data[:-2]

    async def read_response(self, *, method: str = "GET", timeout: float = DEFAULT_TIMEOUT) -> Response:
        """The next final response; any 1xx heads before it are kept in ``informational``."""
        informational = []
        while True:
            head = await self.read_head(timeout=timeout)
            if head.status >= 200 or head.status == 101:
                break
            informational.append(head)
        body = await self.read_body(head, method=method, timeout=timeout)
        return Response(head, body, informational)

    async def at_eof(self, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """True if the peer closes (FIN or reset) within ``timeout`` with no more bytes; False on timeout.

        Raises AssertionError if bytes arrive instead.
        """
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        assert data == b"", f"expected the connection to close, got {data[:200]!r}"
        return True


class SSEFramer:
    """Bytes in, complete SSE events out (LF or CRLF line endings; comments skipped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[SSEEvent]:
        self._buffer += data.replace(b"\r\n", b"\n")
        events = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return events
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            name = None
            data_lines = []
            for line in frame.split(b"\n"):
                if line.startswith(b":"):
                    continue
                key, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if key == b"event":
                    name = value.decode()
                elif key == b"data":
                    data_lines.append(value.decode())
            if name is not None or data_lines:
                events.append(SSEEvent(name, "\n".join(data_lines)))


class SSEStream:
    """Incremental SSE events over a chunked response body on an ``HTTPConnection``."""

    def __init__(self, conn: HTTPConnection, head: Head) -> None:
        self.conn = conn
        self.head = head
        self.done = False
        self.raw = bytearray()  # everything received, for messages on failure
        self._framer = SSEFramer()
        self._pending: list[SSEEvent] = []

    async def next_event(self, *, timeout: float = DEFAULT_TIMEOUT) -> SSEEvent | None:
        """The next event, or None at the end of the body."""
        while not self._pending:
            if self.done:
                return None
            piece = await self.conn.read_chunk(timeout=timeout)
            if piece is None:
                self.done = True
                continue
            self.raw += piece
            self._pending += self._framer.feed(piece)
        return self._pending.pop(0)

    async def until(self, predicate: Any, *, timeout: float = DEFAULT_TIMEOUT) -> list[SSEEvent]:
        """Events up to and including the first one matching ``predicate``; AssertionError if none does."""
        seen = []
        while True:
            event = await self.next_event(timeout=timeout)
            assert event is not None, f"stream ended first; got {[e.event for e in seen]}"
            seen.append(event)
            if predicate(event):
                return seen

    async def rest(self, *, timeout: float = DEFAULT_TIMEOUT) -> list[SSEEvent]:
        events = []
        while (event := await self.next_event(timeout=timeout)) is not None:
            events.append(event)
        return events


def text_of(events: Sequence[SSEEvent]) -> str:
    """The concatenated text_delta texts of Anthropic stream events."""
    out = []
    for ev in events:
        if ev.event == "content_block_delta":
            delta = ev.json()["delta"]
            if delta.get("type") == "text_delta":
                out.append(delta["text"])
    return "".join(out)


# Shared by the integration test modules.
T = 3.0  # timeout for every single read/write
ANTHROPIC = [("anthropic-version", "2023-06-01"), ("content-type", "application/json")]


async def start(proxy_factory: Any, **config: Any) -> Any:
    """A proxy whose shutdown grace is short, so a test's teardown never waits long."""
    config.setdefault("grace_seconds", 1.0)
    return await proxy_factory(**config)


async def call(
    proxy: Any, method: str, path: str, headers: list[tuple[str, str]], body: Any = None
) -> Response:
    """One request on a connection of its own, which must answer 200 (the JSON ``body``, if any)."""
    data = json.dumps(body).encode() if body is not None else None
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request(method, path, headers, data, timeout=T)
    assert resp.status == 200, resp.body
    return resp
