"""Issue 6, security: bodies reach the log only with --log-bodies, redacted; hop-by-hop headers are
stripped both ways; the client's credential stays out of upstream calls."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T, messages_body, start

pytestmark = pytest.mark.integration

SECRET = "sk-ant-api03-SECRETSECRETSECRET"


async def call(proxy: Any, body: bytes, headers: list[tuple[str, str]] | None = None) -> Any:
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        return await conn.request("POST", "/v1/messages", headers or ANTHROPIC, body, timeout=T)


@pytest.mark.parametrize("log_bodies", [False, True])
async def test_issue6_bodies_are_logged_only_when_asked_and_then_redacted(
    proxy_factory: Any, caplog: pytest.LogCaptureFixture, log_bodies: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = await start(proxy_factory, log_bodies=log_bodies)
    response = await call(proxy, messages_body(f"please use {SECRET} for me"))
    assert response.status == 200
    text = "\n".join(r.getMessage() for r in caplog.records)
    body_lines = [line for line in text.splitlines() if " body {" in line]
    assert bool(body_lines) is log_bodies
    assert SECRET not in text
    if log_bodies:
        assert "please use <redacted> for me" in body_lines[0]


async def test_issue6_hop_by_hop_headers_of_the_upstream_never_reach_the_client(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """Passthrough relays the upstream's headers, but none that describe its connection: the fixed
    hop-by-hop set and any header its Connection header names."""
    fake.enqueue(Script(headers=[("Connection", "x-private-hop"), ("X-Private-Hop", "1"), ("X-Kept", "yes")]))
    proxy = await start(proxy_factory)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        body = orjson.dumps(
            {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        )
        response = await conn.request(
            "POST", "/v1/chat/completions", [("content-type", "application/json")], body, timeout=T
        )
    assert response.status == 200
    assert response.header("x-kept") == "yes"
    assert response.header("x-private-hop") is None
    assert (response.header("connection") or "").lower() in ("", "keep-alive")


async def test_issue6_hop_by_hop_and_credential_headers_of_the_client_never_go_upstream(
    proxy_factory: Any, anthropic_fake: FakeUpstream
) -> None:
    proxy = await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=anthropic_fake.anthropic_url,
        anthropic_key="sk-ant-upstream",
    )
    headers = [
        *ANTHROPIC,
        ("x-api-key", "client-key-1234"),
        ("authorization", "Bearer client-token-5678"),
        ("connection", "keep-alive, x-client-hop"),
        ("x-client-hop", "1"),
        ("te", "trailers"),
        ("proxy-authorization", "Basic abc"),
        ("keep-alive", "timeout=5"),
        ("upgrade", "h2c"),
    ]
    response = await call(proxy, messages_body("hi", model="claude-sonnet-4-6"), headers)
    assert response.status == 200
    (sent,) = anthropic_fake.requests
    names = {k.lower() for k in sent.headers}
    assert sent.headers["x-api-key"] == "sk-ant-upstream"  # ours, not the client's
    assert "authorization" not in names
    for hop in ("x-client-hop", "te", "proxy-authorization", "keep-alive", "upgrade"):
        assert hop not in names
    assert "client-key-1234" not in str(sent.headers) and "client-token-5678" not in str(sent.headers)


@pytest.fixture
async def anthropic_fake() -> Any:
    async with FakeUpstream() as upstream:
        yield upstream
