"""NET-04: ``x-should-retry: false`` on the proxy's own answers that another try cannot change.

The Anthropic and OpenAI SDKs read ``x-should-retry`` before their status rules (anthropic-sdk-python
``_base_client._should_retry``: "If the server explicitly says whether or not to retry, obey"), and Claude
Code uses the Anthropic SDK with up to 10 retries: without the header a 508 (>= 500) was sent again and
again, and every wrong answer waited for the client's own backoff. The header is the proxy's own word:
an upstream's answer, relayed or translated, keeps what the upstream said (a loop's 508 excepted: the
loop runs through this proxy as well).
"""

from __future__ import annotations

import gzip
import json

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, Response, T, messages_body, start

pytestmark = pytest.mark.integration

KEY = "sk-proxy-key"
OPENAI = [("content-type", "application/json"), ("authorization", f"Bearer {KEY}")]
CLAUDE = [*ANTHROPIC, ("x-api-key", KEY)]
CHAT = json.dumps({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}).encode()
LIMIT = 4096


async def ask(proxy, method: str, path: str, headers, body: bytes | None = None) -> Response:
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        return await conn.request(method, path, headers, body, timeout=T)


CASES = [
    pytest.param("POST", "/v1/messages", ANTHROPIC, messages_body(), 401, id="401-missing-key"),
    pytest.param(
        "POST",
        "/v1/messages",
        [*ANTHROPIC, ("x-api-key", "sk-wrong")],
        messages_body(),
        401,
        id="401-wrong-key",
    ),
    pytest.param(
        "POST",
        "/v1/chat/completions",
        [*OPENAI[:1], ("authorization", "Bearer sk-wrong")],
        CHAT,
        401,
        id="401-wrong-bearer",
    ),
    pytest.param("POST", "/v1/messages", CLAUDE, b'{"model": ', 400, id="400-bad-json"),
    pytest.param(
        "POST", "/v1/chat/completions", OPENAI, b'{"model": "x", "messages": []}', 400, id="400-no-messages"
    ),
    pytest.param("POST", "/v1/nope", CLAUDE, b"{}", 404, id="404-unknown-route"),
    pytest.param("GET", "/v1/messages", CLAUDE, None, 405, id="405-wrong-method"),
    pytest.param("POST", "/v1/messages", CLAUDE, b"x" * (LIMIT + 1), 413, id="413-content-length"),
    pytest.param(
        "POST",
        "/v1/messages",
        [*CLAUDE, ("content-encoding", "gzip")],
        gzip.compress(b" " * (LIMIT + 1)),
        413,
        id="413-once-decoded",
    ),
    pytest.param("POST", "/v1/messages", [*CLAUDE, ("content-encoding", "br")], b"xx", 415, id="415-coding"),
    pytest.param(
        "POST", "/v1/messages", [*CLAUDE, ("x-rawproxy-hops", "99")], messages_body(), 508, id="508-hops"
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), CASES)
async def test_net04_the_proxys_own_final_answers_say_do_not_retry(
    proxy_factory, fake: FakeUpstream, method, path, headers, body, status
) -> None:
    proxy = await start(proxy_factory, api_keys=[KEY], max_body_bytes=LIMIT)
    resp = await ask(proxy, method, path, headers, body)
    assert resp.status == status, resp.body
    assert resp.head.header_all("x-should-retry") == ["false"]
    assert "error" in resp.json()  # in the client's error shape still
    assert fake.requests == []


async def test_net04_not_on_what_another_try_may_cure(proxy_factory) -> None:
    """The proxy's own 502 (the upstream cannot be reached) may be cured by another try: no header, so
    the SDK's own rule (retry a 5xx) stands."""
    proxy = await start(proxy_factory, openai_upstream="http://127.0.0.1:9/v1")
    resp = await ask(proxy, "POST", "/v1/messages", ANTHROPIC, messages_body())
    assert resp.status == 502, resp.body
    assert resp.header("x-should-retry") is None


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        pytest.param("/v1/chat/completions", OPENAI[:1], CHAT, id="passthrough"),
        pytest.param("/v1/messages", ANTHROPIC, messages_body(), id="translated"),
    ],
)
async def test_net04_not_on_an_upstreams_answer(
    proxy_factory, fake: FakeUpstream, path, headers, body
) -> None:
    """An upstream's 401 (its key, not the proxy's) is the upstream's to qualify: relayed with what the
    upstream said (passthrough), or without any word of ours (translated)."""
    proxy = await start(proxy_factory)
    denied = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}'
    fake.enqueue(Script(status=401, error_body=denied, headers=[("x-should-retry", "true")]))
    resp = await ask(proxy, "POST", path, headers, body)
    assert resp.status == 401, resp.body
    expected = ["true"] if path == "/v1/chat/completions" else []
    assert resp.head.header_all("x-should-retry") == expected
