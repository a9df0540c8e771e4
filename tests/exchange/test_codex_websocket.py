"""CX-01: Codex's Responses WebSocket probe is answered 426 Upgrade Required, at once.

With the built-in ``openai`` provider Codex 0.17x first opens ``GET /v1/responses`` with ``Upgrade:
websocket``. Only a 426 on that handshake makes it fall back to HTTP POST at once (openai/codex#10824,
"Fallback to HTTP on UPGRADE_REQUIRED"; a bare ``426`` with an empty body is enough, openai/codex#43353);
the 405 rawproxy answered before cost five reconnects, about 6.5 s per start (qxcnm/Codex-Manager#91).
The answer is in the Responses API's error shape, says not to retry, and closes the connection the client
asked to switch.
"""

from __future__ import annotations

import json

import pytest

from tests.support.rawhttp import HTTPConnection, T, start

pytestmark = pytest.mark.integration

# The handshake Codex sends (qxcnm/Codex-Manager#91 logged it), less the key.
HANDSHAKE = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("OpenAI-Beta", "responses_websockets=2026-02-06"),
    ("Authorization", "Bearer sk-codex"),
]


@pytest.mark.parametrize("path", ["/v1/responses", "/responses", "/v1/v1/responses"])
async def test_cx01_websocket_upgrade_is_a_426_in_the_responses_error_shape(proxy_factory, path: str) -> None:
    proxy = await start(proxy_factory)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("GET", path, HANDSHAKE, timeout=T)
        assert resp.status == 426, resp.body
        assert resp.head.reason == "Upgrade Required"
        assert resp.header("content-type") == "application/json"
        assert resp.header("connection") == "close"
        assert resp.header("x-should-retry") == "false"
        assert resp.header("upgrade") is None  # there is nothing to switch to: plain HTTP is the way
        error = json.loads(resp.body)["error"]
        assert error["type"] == "invalid_request_error"
        assert "WebSocket" in error["message"] and "POST" in error["message"]
        assert await conn.at_eof(timeout=T)  # closed after the answer: no second request on it


async def test_cx01_the_http_fallback_then_works(proxy_factory) -> None:
    """After the 426, Codex POSTs the same request; a plain GET (no Upgrade) is still a 405."""
    proxy = await start(proxy_factory)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        assert (await conn.request("GET", "/v1/responses", HANDSHAKE, timeout=T)).status == 426
    body = json.dumps({"model": "gpt-x", "input": "hi"}).encode()
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        headers = [("content-type", "application/json"), HANDSHAKE[-1]]
        resp = await conn.request("POST", "/v1/responses", headers, body, timeout=T)
        assert resp.status == 200, resp.body
        assert resp.json()["object"] == "response"
        resp = await conn.request("GET", "/v1/responses", [HANDSHAKE[-1]], timeout=T)
        assert resp.status == 405
        assert resp.header("allow") == "POST"


async def test_cx01_the_key_is_checked_first(proxy_factory) -> None:
    """With client keys configured, a handshake without the right one learns nothing: 401, not 426."""
    proxy = await start(proxy_factory, api_keys=["sk-codex"])
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("GET", "/v1/responses", HANDSHAKE[:-1], timeout=T)
        assert resp.status == 401
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("GET", "/v1/responses", HANDSHAKE, timeout=T)
        assert resp.status == 426
