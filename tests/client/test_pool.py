"""client.pool.ConnectionPool over real sockets: what goes back to the pool, in what state, and when the
read timeout (kept by the pool's one ``timers.Ticker``) ends an exchange.

The upstream here is a few lines of asyncio that answers each request with canned bytes, so a test can
say exactly how a response arrives (head and body in one write, or apart) and what follows it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from rawproxy.client.pool import ConnectionPool
from rawproxy.errors import ClientError, UpstreamTimeout
from rawproxy.http1 import encode_headers

pytestmark = pytest.mark.integration

BODY = b"data: " + b"x" * 1000 + b"\n\n"
WHOLE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%b" % (
    len(BODY),
    BODY,
)


@asynccontextmanager
async def canned_upstream(*answers: bytes) -> AsyncIterator[tuple[str, list[int]]]:
    """Answers the n-th request on any connection with answers[n] (the last one again after that);
    yields the URL and a list that counts the requests served."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answers[min(len(served), len(answers) - 1)])
                served.append(1)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/x", served
    finally:
        server.close()
        await server.wait_closed()


LINES = encode_headers([(b"accept", b"text/event-stream")])


async def relay_all(pool: ConnectionPool, url: str, *, backlogged: bool, at_head: bool = True) -> bytes:
    """One request through the pool's push path; ``on_body`` claims a backlogged client when asked, and
    is installed from the head's callback (as the proxy does) unless ``at_head`` is False."""
    got: list[bytes] = []
    drains: list[int] = []

    def on_body(body: bytes, last: bool) -> bool:
        got.append(body)
        return backlogged

    async def drain() -> None:
        drains.append(1)
        await asyncio.sleep(0)

    on_head = (lambda head: on_body) if at_head else None
    response = await pool.request(b"GET", url, LINES, None, on_head=on_head)
    try:
        await response.relay(on_body, drain, lambda: None)
    finally:
        await response.aclose()
    if backlogged:
        assert drains, "a backlogged consumer was never given the chance to drain"
    return b"".join(got)


async def test_x05_a_connection_paused_for_a_slow_client_never_goes_back_to_the_pool_paused() -> None:
    """Head and whole body in one read, and the consumer backlogged: reading was paused. The connection
    must be resumed (or dropped) before another request uses it, or that request would hang unread."""
    async with canned_upstream(WHOLE) as (url, served):
        pool = ConnectionPool(connect_timeout=2, read_timeout=1)
        try:
            for at_head in (True, False):
                assert await relay_all(pool, url, backlogged=True, at_head=at_head) == BODY
                second = await asyncio.wait_for(relay_all(pool, url, backlogged=False), 3)
                assert second == BODY
            assert len(served) == 4
        finally:
            await pool.aclose()


async def test_bytes_after_the_end_of_a_response_retire_the_connection() -> None:
    """An upstream that sends more than the response it framed cannot be trusted with another request."""
    async with canned_upstream(WHOLE + b"HTTP/1.1 200 OK\r\n", WHOLE) as (url, served):
        pool = ConnectionPool(connect_timeout=2, read_timeout=1)
        try:
            assert await relay_all(pool, url, backlogged=False) == BODY
            assert await relay_all(pool, url, backlogged=False) == BODY  # on a new connection
            assert len(served) == 2
            assert sum(len(idle) for idle in pool._idle.values()) <= 1
        finally:
            await pool.aclose()


async def test_x06_a_body_shorter_than_declared_times_out_with_504() -> None:
    """The upstream keeps the connection open after a short body: the read timeout ends the wait."""
    async with canned_upstream(WHOLE[: len(WHOLE) - 10]) as (url, _):
        pool = ConnectionPool(connect_timeout=2, read_timeout=0.4)
        try:
            response = await pool.request(b"GET", url, LINES, None)
            with pytest.raises(UpstreamTimeout) as info:
                await asyncio.wait_for(response.read(), 3)
            await response.aclose()
            assert info.value.info.status == 504
            assert not pool._idle.get(next(iter(pool._idle), None), [])  # never pooled
            assert len(pool.watch) == 0
        finally:
            await pool.aclose()


@asynccontextmanager
async def scripted_upstream(
    answer: Callable[[bytes, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """Calls ``answer(request head, writer)`` for each request; yields the URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                await answer(head, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


async def test_x06_silence_before_the_head_times_out_on_the_exchanges_own_read_timeout() -> None:
    """An upstream that never answers: ``UpstreamTimeout`` after the exchange's read timeout (0.2 s),
    although the pool's is 30 s and a slower exchange already set the ticker's next look 1 s away."""

    async def answer(head: bytes, writer: asyncio.StreamWriter) -> None:
        if b"/silent" in head:
            await asyncio.sleep(10)
        await asyncio.sleep(0.8)
        writer.write(WHOLE)

    async with scripted_upstream(answer) as url:
        pool = ConnectionPool(connect_timeout=2, read_timeout=30)
        try:
            slow = asyncio.create_task(relay_all(pool, url + "/slow", backlogged=False))
            await asyncio.sleep(0.05)
            began = time.monotonic()
            with pytest.raises(UpstreamTimeout) as info:
                await asyncio.wait_for(
                    pool.request(b"GET", url + "/silent", LINES, None, read_timeout=0.2), 3
                )
            elapsed = time.monotonic() - began
            assert 0.2 <= elapsed < 0.6, elapsed  # within a step (0.05 s) of the timeout, give or take
            assert (info.value.kind, info.value.info.status) == ("upstream_timeout", 504)
            assert info.value.info.message == "upstream timed out"
            assert await asyncio.wait_for(slow, 3) == BODY  # 0.8 s silent: within the pool's 30 s
            assert len(pool.watch) == 0 and pool.idle_connections == 1
        finally:
            await pool.aclose()


async def test_x05_a_connection_paused_for_a_slow_client_is_not_timed_out() -> None:
    """The client's buffer is full for four read timeouts: reading from the upstream is paused, and that
    pause is the client's slowness, not the upstream's silence. The whole body arrives; no 504."""
    chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    first, rest = b"data: 1\n\n", b"data: 2\n\n"

    async def answer(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(chunked + b"%x\r\n%b\r\n" % (len(first), first))
        await asyncio.sleep(0.05)  # the rest waits in the socket while reading is paused
        writer.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(rest), rest))

    got: list[bytes] = []
    drains: list[float] = []

    def on_body(body: bytes, last: bool) -> bool:
        got.append(body)
        return len(got) == 1  # backlogged by the first piece

    async def drain() -> None:
        drains.append(time.monotonic())
        await asyncio.sleep(0.8)

    async with scripted_upstream(answer) as url:
        pool = ConnectionPool(connect_timeout=2, read_timeout=0.2)
        try:
            response = await pool.request(b"GET", url, LINES, None, on_head=lambda head: on_body)
            try:
                await asyncio.wait_for(response.relay(on_body, drain, lambda: None), 3)
            finally:
                await response.aclose()
            assert b"".join(got) == first + rest
            assert len(drains) == 1
            assert pool.idle_connections == 1 and len(pool.watch) == 0
        finally:
            await pool.aclose()


async def test_a_request_line_http11_cannot_carry_is_the_clients_error() -> None:
    pool = ConnectionPool(connect_timeout=2, read_timeout=1)
    try:
        with pytest.raises(ClientError) as info:
            await pool.request(b"GET", "http://127.0.0.1:9/v1/a b", LINES, None)
        assert (info.value.kind, info.value.info.status) == ("client", 400)
        assert pool.open_connections == 0  # refused before any connection
    finally:
        await pool.aclose()
