"""Issue 6, limits: a head that never ends (slowloris) is a 408, connections beyond the maximum a 503 with
Retry-After, a stream past the longest allowed time ends with a timeout error; each limit is a flag; a
proxy listening beyond loopback without client keys says so at start."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from rawproxy.config import Config
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import (
    ANTHROPIC,
    HTTPConnection,
    SSEStream,
    T,
    build_request,
    messages_body,
    start,
    text_of,
)

pytestmark = pytest.mark.integration


async def connect(proxy: Any) -> HTTPConnection:
    return await HTTPConnection.open(proxy.host, proxy.port, timeout=T)


async def test_issue6_slowloris_head_is_a_408_then_close(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, head_timeout=0.3)
    raw = build_request("POST", "/v1/messages", ANTHROPIC, messages_body("hi"))
    head = raw[: raw.index(b"\r\n\r\n")]
    async with await connect(proxy) as conn:
        began = time.monotonic()
        for i in range(0, len(head), 4):  # four bytes every 50 ms: the head takes seconds to complete
            await conn.send(head[i : i + 4])
            await asyncio.sleep(0.05)
            if conn.reader.at_eof() or conn.reader._buffer:
                break
        response = await conn.read_response(method="POST", timeout=T)
        assert response.status == 408
        assert response.json()["error"]["type"] == "timeout_error"
        assert await conn.at_eof(timeout=T)
    assert 0.3 <= time.monotonic() - began < 2.0


async def test_issue6_an_idle_keep_alive_connection_is_not_a_slow_head(proxy_factory: Any) -> None:
    """Silence before a head is the keep-alive idle time, not the head timeout: the next request on the
    connection, after a pause longer than head_timeout, is served."""
    proxy = await start(proxy_factory, head_timeout=0.2, idle_timeout=5.0)
    async with await connect(proxy) as conn:
        first = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("one"), timeout=T)
        await asyncio.sleep(0.4)
        second = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("two"), timeout=T)
    assert (first.status, second.status) == (200, 200)


async def test_issue6_connections_beyond_the_maximum_get_503_with_retry_after(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, max_connections=2)
    first, second = await connect(proxy), await connect(proxy)
    try:
        await asyncio.sleep(0.05)  # both accepted and counted
        async with await connect(proxy) as third:
            refused = await third.request("POST", "/v1/messages", ANTHROPIC, messages_body("x"), timeout=T)
            assert refused.status == 503
            assert refused.header("retry-after") == "1"
            assert refused.json()["type"] == "error"  # the Anthropic client's own error shape
            assert refused.json()["error"]["type"] == "overloaded_error"
            assert await third.at_eof(timeout=T)
        for conn in (first, second):  # the two within the limit are served
            ok = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("y"), timeout=T)
            assert ok.status == 200
    finally:
        await first.close()
        await second.close()
    async with await connect(proxy) as again:  # once they are gone, there is room again
        await asyncio.sleep(0.05)
        ok = await again.request("POST", "/v1/messages", ANTHROPIC, messages_body("z"), timeout=T)
        assert ok.status == 200


async def test_issue6_a_stream_past_max_stream_seconds_ends_with_a_timeout_error(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    fake.enqueue(Script(text="a b c d e f g h i j", token_interval=0.1))  # about a second
    proxy = await start(proxy_factory, max_stream_seconds=0.35)
    async with await connect(proxy) as conn:
        await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("hi", stream=True)))
        head = await conn.read_head(timeout=T)
        assert head.status == 200
        events = await SSEStream(conn, head).rest(timeout=T)
    assert events[-1].event == "error" and events[-1].json()["error"]["type"] == "timeout_error"
    assert 0 < len(text_of(events)) < len("a b c d e f g h i j")


def test_issue6_every_limit_is_a_flag() -> None:
    argv = [
        "--connect-timeout=3",
        "--idle-timeout=20",
        "--head-timeout=7",
        "--max-stream-seconds=90",
        "--max-connections=50",
        "--max-head-bytes=8192",
        "--max-body-bytes=1000000",
        "--grace-seconds=5",
    ]
    config = Config.from_env(argv, environ={}, dotenv=None)
    assert (config.connect_timeout, config.idle_timeout, config.head_timeout) == (3, 20, 7)
    assert (config.max_stream_seconds, config.max_connections, config.max_head_bytes) == (90, 50, 8192)
    assert (config.max_body_bytes, config.grace_seconds) == (1000000, 5)
    env = Config.from_env([], environ={"RAWPROXY_MAX_CONNECTIONS": "9"}, dotenv=None)
    assert env.max_connections == 9


@pytest.mark.parametrize(
    ("host", "keys", "warned"),
    [("0.0.0.0", (), True), ("0.0.0.0", ("sk-team",), False), ("127.0.0.1", (), False)],
)
async def test_issue6_listening_beyond_loopback_without_a_key_warns(
    proxy_factory: Any, caplog: pytest.LogCaptureFixture, host: str, keys: tuple[str, ...], warned: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="rawproxy")
    await start(proxy_factory, host=host, api_keys=keys)
    found = [r.getMessage() for r in caplog.records if "without --api-key" in r.getMessage()]
    assert bool(found) is warned
    assert all("sk-team" not in m for m in found)


# --------------------------------------------------------------- issue 19: compressed request bodies

OPENAI = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]
OPENAI_BODY = b'{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"user","content":"zipped"}]}'


def _deflate_raw(data: bytes) -> bytes:
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeezer.compress(data) + squeezer.flush()


CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _deflate_raw,  # what some senders mean by deflate
}


@pytest.mark.parametrize("coding", list(CODINGS))
@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_issue19_a_compressed_request_body_is_decoded(
    proxy_factory: Any, fake: FakeUpstream, coding: str, dialect: str
) -> None:
    # issue 19, defect 9
    proxy = await start(proxy_factory)
    path, headers, body = (
        ("/v1/messages", ANTHROPIC, messages_body("zipped"))
        if dialect == "anthropic"
        else ("/v1/chat/completions", OPENAI, OPENAI_BODY)
    )
    name = coding.removesuffix("-raw")
    async with await connect(proxy) as conn:
        resp = await conn.request(
            "POST", path, [*headers, ("content-encoding", name)], CODINGS[coding](body), timeout=T
        )
    assert resp.status == 200, resp.body
    assert fake.requests[0].body["messages"][-1]["content"] == "zipped"


def _error(resp: Any, dialect: str) -> dict[str, Any]:
    body = resp.json()
    if dialect == "anthropic":
        assert body["type"] == "error", body
    else:
        assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_issue19_a_zip_bomb_is_413_without_inflating_past_the_limit(
    proxy_factory: Any, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    # issue 19, defect 9
    limit = 100_000
    proxy = await start(proxy_factory, max_body_bytes=limit)
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:  # every byte zlib hands back, counted
        def __init__(self, *args: Any) -> None:
            self._inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    bomb = gzip.compress(b"{" + b" " * 50_000_000 + b"}")  # 50 MB of JSON whitespace in about 50 KB
    assert len(bomb) < limit
    path, headers = (
        ("/v1/messages", ANTHROPIC) if dialect == "anthropic" else ("/v1/chat/completions", OPENAI)
    )
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", path, [*headers, ("content-encoding", "gzip")], bomb, timeout=T)
    assert resp.status == 413, resp.body
    error = _error(resp, dialect)
    assert str(limit) in error["message"] and "decoded" in error["message"], error
    assert 0 < sum(inflated) <= limit + 1, f"inflated {sum(inflated)} bytes for a limit of {limit}"
    assert fake.requests == []


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("coding", "body", "status", "words"),
    [
        ("br", b"\x1b\x03\x00", 415, "'br' is not supported"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}")), 415, "'gzip, gzip' is not supported"),
        ("gzip", b"this is not gzip", 400, "not valid gzip"),
        ("gzip", gzip.compress(messages_body())[:-12], 400, "cut short"),
    ],
    ids=["unknown", "stacked", "not_gzip", "truncated"],
)
async def test_issue19_a_body_in_a_coding_we_cannot_read_says_why(
    proxy_factory: Any, fake: FakeUpstream, dialect: str, coding: str, body: bytes, status: int, words: str
) -> None:
    # issue 19, defect 9
    proxy = await start(proxy_factory)
    path, headers = (
        ("/v1/messages", ANTHROPIC) if dialect == "anthropic" else ("/v1/chat/completions", OPENAI)
    )
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", path, [*headers, ("content-encoding", coding)], body, timeout=T)
    assert resp.status == status, resp.body
    error = _error(resp, dialect)
    assert words in error["message"], error
    assert fake.requests == []
