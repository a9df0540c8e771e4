"""server.py over real sockets: HTTP/1.1 edge cases (X-01, X-03, X-04), paths (A2O-M03), auth (A2O-M04),
headers not forwarded upstream (A2O-M05, X-02), TCP_NODELAY on both sockets.

Requests are raw bytes through ``rawhttp.HTTPConnection`` so that pipelining, 100-continue, garbage and
oversized heads can be written exactly; the fake upstream records what reached it.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import socket
from typing import Any

import pytest

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


async def health_ok(proxy: Any) -> None:
    """A fresh connection is served: the server survived whatever the test did before."""
    async with await connect(proxy) as conn:
        resp = await conn.request("GET", "/health", timeout=T)
        assert resp.status == 200, resp
        assert resp.json() == {"status": "ok"}


def assert_anthropic_error(body: Any, error_type: str) -> None:
    assert body["type"] == "error", body
    assert body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def assert_message(resp: Any, text: str) -> None:
    assert resp.status == 200, (resp.status, resp.body[:500])
    body = resp.json()
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert [b["text"] for b in body["content"] if b["type"] == "text"] == [text]


# ----------------------------------------------------------------------------------------


async def test_x03_keep_alive_two_requests_on_one_connection(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="first answer"), Script(text="second answer"))
    async with await connect(proxy) as conn:
        first = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("one"), timeout=T)
        assert_message(first, "first answer")
        assert (first.header("connection") or "").lower() != "close"
        second = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("two"), timeout=T)
        assert_message(second, "second answer")
    assert [r.body["messages"][-1]["content"] for r in fake.requests] == ["one", "two"]


async def test_x03_pipelining_back_to_back_answered_in_order(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="one two three four five", token_interval=0.1), Script(text="second answer"))
    first = build_request("POST", "/v1/messages", ANTHROPIC, messages_body("first", stream=True))
    second = build_request("POST", "/v1/messages", ANTHROPIC, messages_body("second"))
    async with await connect(proxy) as conn:
        await conn.send(first + second, timeout=T)  # both before reading anything
        head = await conn.read_head(timeout=T)
        assert head.status == 200
        stream = SSEStream(conn, head)
        await stream.until(lambda e: e.event == "content_block_delta", timeout=T)
        # The first response is still streaming: the second request must not have started.
        assert len(fake.requests) == 1
        events = await stream.rest(timeout=T)
        assert events[-1].event == "message_stop"
        assert fake.streams_completed == 1
        resp = await conn.read_response(timeout=T)
        assert_message(resp, "second answer")
    assert [r.body["messages"][-1]["content"] for r in fake.requests] == ["first", "second"]


@pytest.mark.parametrize("cut", [1, 17, -40, -1])
async def test_x03_body_in_pieces_with_the_next_request_glued_to_its_end(
    proxy_factory: Any, fake: FakeUpstream, cut: int
) -> None:
    """A body that arrives over several reads, the last of which also carries the next request: each
    body is exactly its declared length, and the rest starts the next request."""
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="first answer"), Script(text="second answer"))
    first = build_request("POST", "/v1/messages", ANTHROPIC, messages_body("one"))
    second = build_request("POST", "/v1/messages", ANTHROPIC, messages_body("two"))
    head_end = first.index(b"\r\n\r\n") + 4
    split = head_end + (cut if cut > 0 else len(first) - head_end + cut)
    async with await connect(proxy) as conn:
        await conn.send(first[:split], timeout=T)
        await asyncio.sleep(0.05)  # the proxy has the head and part of the body: it must wait for the rest
        await conn.send(first[split:] + second, timeout=T)
        assert_message(await conn.read_response(timeout=T), "first answer")
        assert_message(await conn.read_response(timeout=T), "second answer")
    assert [r.body["messages"][-1]["content"] for r in fake.requests] == ["one", "two"]


async def test_x03_pipelined_request_sent_while_streaming(proxy_factory: Any, fake: FakeUpstream) -> None:
    """The second request arrives while the disconnect watcher is reading: it must be kept, not lost."""
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="one two three four five", token_interval=0.1), Script(text="second answer"))
    async with await connect(proxy) as conn:
        await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("a", stream=True)))
        head = await conn.read_head(timeout=T)
        stream = SSEStream(conn, head)
        await stream.until(lambda e: e.event == "content_block_delta", timeout=T)
        await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("b")))
        events = await stream.rest(timeout=T)
        assert text_of(events).startswith(" two")
        assert events[-1].event == "message_stop"
        resp = await conn.read_response(timeout=T)
        assert_message(resp, "second answer")


async def test_x03_connection_close_honoured(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        headers = [*ANTHROPIC, ("connection", "close")]
        resp = await conn.request("POST", "/v1/messages", headers, messages_body("bye"), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")
        assert (resp.header("connection") or "").lower() == "close"
        assert await conn.at_eof(timeout=T)


# ----------------------------------------------------------------------------------------


async def test_x04_chunked_request_body(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    body = messages_body("chunked body text " * 50)
    pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
    wire = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = build_request("POST", "/v1/messages", [*ANTHROPIC, ("transfer-encoding", "chunked")])
    async with await connect(proxy) as conn:
        await conn.send(head)
        for i in range(0, len(wire), 333):  # in several TCP writes, across chunk boundaries
            await conn.send(wire[i : i + 333])
            await asyncio.sleep(0.005)
        resp = await conn.read_response(timeout=T)
    assert_message(resp, "Hello from the fake upstream.")
    assert fake.requests[0].body["messages"][-1]["content"] == "chunked body text " * 50


async def test_x04_expect_100_continue(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    body = messages_body("after the 100")
    head = build_request(
        "POST",
        "/v1/messages",
        [*ANTHROPIC, ("expect", "100-continue"), ("content-length", str(len(body)))],
    )
    async with await connect(proxy) as conn:
        await conn.send(head)
        interim = await conn.read_head(timeout=T)  # before any body byte is sent
        assert interim.status == 100
        assert fake.requests == []
        await conn.send(body)
        resp = await conn.read_response(timeout=T)
    assert_message(resp, "Hello from the fake upstream.")
    assert fake.requests[0].body["messages"][-1]["content"] == "after the 100"


# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_x01_body_over_limit_is_413_request_too_large(
    proxy_factory: Any, fake: FakeUpstream, framing: str
) -> None:
    proxy = await start(proxy_factory, max_body_bytes=1000)
    body = messages_body("x" * 3000)
    async with await connect(proxy) as conn:
        if framing == "chunked":
            head = build_request("POST", "/v1/messages", [*ANTHROPIC, ("transfer-encoding", "chunked")])
            await conn.send(head + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body))
        else:
            await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, body))
        resp = await conn.read_response(timeout=T)
        assert resp.status == 413
        assert_anthropic_error(resp.json(), "request_too_large")
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await health_ok(proxy)
    async with await connect(proxy) as conn:  # a body under the limit still works
        resp = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("small"), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")


async def test_x01_declared_length_over_limit_rejected_before_the_body(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """A Content-Length over the limit with ``Expect: 100-continue``: answer 413 at once instead of
    inviting the body (RFC 9110 §10.1.1), so that curl does not upload megabytes to be refused."""
    proxy = await start(proxy_factory, max_body_bytes=1000)
    head = build_request(
        "POST", "/v1/messages", [*ANTHROPIC, ("expect", "100-continue"), ("content-length", "50000")]
    )
    async with await connect(proxy) as conn:
        await conn.send(head)
        first = await conn.read_head(timeout=2.0)
        assert first.status == 413, f"got {first.status} before any body byte was sent"
    assert fake.requests == []
    await health_ok(proxy)


async def test_x01_body_under_limit_at_megabytes(proxy_factory: Any, fake: FakeUpstream) -> None:
    """Claude Code sends 1-5 MB requests: under the default limit they pass whole."""
    proxy = await start(proxy_factory)
    text = "large system prompt " * 100_000  # ~2 MB
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body(text), timeout=T)
    assert_message(resp, "Hello from the fake upstream.")
    assert fake.requests[0].body["messages"][-1]["content"] == text


@pytest.mark.parametrize("writes", ["one-write", "trickled"])
async def test_x01_oversized_head_is_431_and_closed(
    proxy_factory: Any, fake: FakeUpstream, writes: str
) -> None:
    """max_head_bytes bounds the head however it arrives: whole in one read, or in pieces."""
    proxy = await start(proxy_factory, max_head_bytes=2000)
    async with await connect(proxy) as conn:
        head = build_request("POST", "/v1/messages", [*ANTHROPIC, ("x-big", "a" * 5000)], messages_body())
        if writes == "one-write":
            await conn.send(head)
        else:
            for i in range(0, 3000, 500):  # past the limit, then stop: nothing left unread on close
                await conn.send(head[i : i + 500])
                await asyncio.sleep(0.01)
        resp = await conn.read_response(timeout=T)
        assert resp.status in (431, 400), f"a 5000-byte head with max_head_bytes=2000 got {resp.status}"
        assert resp.status == 431, "an oversized head should be 431 Request Header Fields Too Large"
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await health_ok(proxy)


@pytest.mark.parametrize(
    "garbage",
    [
        b"THIS IS NOT HTTP AT ALL\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n",  # a TLS hello
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ],
    ids=["text", "tls", "bad-header", "bad-length"],
)
async def test_x01_malformed_request_is_400_and_server_keeps_serving(
    proxy_factory: Any, fake: FakeUpstream, garbage: bytes
) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        await conn.send(garbage)
        resp = await conn.read_response(timeout=T)
        assert resp.status == 400
        assert "error" in resp.json()
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await health_ok(proxy)


async def test_http10_request_answered_then_closed(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        await conn.send(b"GET /health HTTP/1.0\r\n\r\n")
        resp = await conn.read_response(timeout=T)
        assert resp.status == 200
        assert resp.json() == {"status": "ok"}
        assert await conn.at_eof(timeout=T)


async def test_idle_keep_alive_connection_closed_after_idle_timeout(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, idle_timeout=0.5)
    async with await connect(proxy) as conn:
        resp = await conn.request("GET", "/health", timeout=T)
        assert resp.status == 200
        assert await conn.at_eof(timeout=2.5), "idle keep-alive connection was not closed"
    async with await connect(proxy) as conn:  # a connection that never sends a request
        assert await conn.at_eof(timeout=2.5)
    await health_ok(proxy)


async def test_slow_request_head_within_idle_timeout_is_served(proxy_factory: Any) -> None:
    """A head that trickles in (each piece inside the idle timeout) is still parsed."""
    proxy = await start(proxy_factory, idle_timeout=0.5)
    wire = build_request("GET", "/health")
    async with await connect(proxy) as conn:
        for i in range(0, len(wire), 10):
            await conn.send(wire[i : i + 10])
            await asyncio.sleep(0.02)
        resp = await conn.read_response(timeout=T)
    assert resp.status == 200


# ----------------------------------------------------------------------------------- A2O-M03


async def test_a2o_m03_head_probes_and_health(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:  # one connection: a leaked HEAD body would break parsing
        for target in ("/", "/v1"):
            resp = await conn.request("HEAD", target, timeout=T)
            assert resp.status == 200, target
            assert resp.body == b""
        resp = await conn.request("GET", "/health", timeout=T)
        assert resp.status == 200
        assert resp.json() == {"status": "ok"}
        resp = await conn.request("HEAD", "/health", timeout=T)
        assert resp.status == 200
        resp = await conn.request("GET", "/health", timeout=T)
        assert resp.json() == {"status": "ok"}
        for headers in ([("anthropic-version", "2023-06-01")], []):  # both list shapes
            get = await conn.request("GET", "/v1/models", headers, timeout=T)
            head = await conn.request("HEAD", "/v1/models", headers, timeout=T)
            assert get.status == head.status == 200
            assert head.body == b"" and get.json()["data"]
            assert head.header("content-length") == str(len(get.body))


async def test_a2o_m03_unknown_path_404_anthropic_shape(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", "/api/event_logging/batch", ANTHROPIC, b'{"events":[]}', timeout=T)
    assert resp.status == 404
    assert_anthropic_error(resp.json(), "not_found_error")
    assert fake.requests == []


async def test_a2o_m03_unknown_path_404_openai_shape(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        resp = await conn.request(
            "POST", "/api/event_logging/batch", [("content-type", "application/json")], b"{}", timeout=T
        )
        resp2 = await conn.request("GET", "/v1/nothing-here", timeout=T)
    for r in (resp, resp2):
        assert r.status == 404
        body = r.json()
        assert "type" not in body, body
        assert isinstance(body["error"], dict) and body["error"]["message"]
    assert fake.requests == []


@pytest.mark.parametrize("target", ["/v1/messages?beta=true", "/v1/v1/messages", "/v1/v1/messages?beta=true"])
async def test_a2o_m03_message_path_variants(proxy_factory: Any, fake: FakeUpstream, target: str) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", target, ANTHROPIC, messages_body("variant"), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")
        stream = await conn.request("POST", target, ANTHROPIC, messages_body("v", stream=True), timeout=T)
    assert stream.status == 200
    assert "text/event-stream" in (stream.header("content-type") or "")
    assert len(fake.requests) == 2
    assert all(r.path == "/v1/chat/completions" for r in fake.requests)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v1/messages"),
        ("PUT", "/v1/messages/count_tokens"),
        ("POST", "/health"),
        ("DELETE", "/v1/models"),
    ],
)
async def test_wrong_method_is_405(proxy_factory: Any, fake: FakeUpstream, method: str, target: str) -> None:
    proxy = await start(proxy_factory)
    async with await connect(proxy) as conn:
        body = b"{}" if method in ("POST", "PUT") else None
        resp = await conn.request(method, target, ANTHROPIC, body, timeout=T)
        assert resp.status == 405
        assert resp.json()["type"] == "error"
        resp = await conn.request("GET", "/health", timeout=T)  # the connection is still usable
        assert resp.status == 200
    assert fake.requests == []


# ------------------------------------------------------------------------------------ TCP_NODELAY


def _live_sockets(local: tuple[str, int] | None = None, peer: tuple[str, int] | None = None) -> list[Any]:
    found = []
    for obj in gc.get_objects():
        if not isinstance(obj, socket.socket) or obj.fileno() < 0 or obj.family != socket.AF_INET:
            continue
        try:
            if local is not None and obj.getsockname()[:2] != local:
                continue
            if peer is not None and obj.getpeername()[:2] != peer:
                continue
        except OSError:
            continue
        found.append(obj)
    return found


async def test_tcp_nodelay_on_client_and_upstream_sockets(proxy_factory: Any, fake: FakeUpstream) -> None:
    """Nagle would hold small SSE frames back: both of the proxy's sockets must set TCP_NODELAY.

    Everything runs in this process, so the proxy's own socket objects are found with ``gc``: the accepted
    client socket by its address pair, the upstream socket by its peer (the fake upstream).
    """
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="slow enough to look", stall=0.5))
    async with await connect(proxy) as conn:
        await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("x", stream=True)))
        head = await conn.read_head(timeout=T)
        stream = SSEStream(conn, head)
        await stream.until(lambda e: e.event == "content_block_delta", timeout=T)
        client_addr = conn.writer.get_extra_info("sockname")[:2]
        accepted = _live_sockets(local=(proxy.host, proxy.port), peer=client_addr)
        outbound = _live_sockets(peer=("127.0.0.1", fake.port))
        outbound = [s for s in outbound if s.getsockname()[1] != fake.port]
        await stream.rest(timeout=T)
    assert len(accepted) == 1, "could not find the proxy's accepted socket"
    assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    if not outbound:
        pytest.skip("the upstream socket object is not reachable through gc here")
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in outbound)


# ----------------------------------------------------------------------------------- A2O-M04


@pytest.mark.parametrize(
    "auth",
    [("x-api-key", "client-key-one"), ("authorization", "Bearer client-key-two")],
    ids=["x-api-key", "bearer"],
)
async def test_a2o_m04_accepted_key_forms(
    proxy_factory: Any, fake: FakeUpstream, auth: tuple[str, str]
) -> None:
    proxy = await start(proxy_factory, api_keys=("client-key-one", "client-key-two"))
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", "/v1/messages", [*ANTHROPIC, auth], messages_body("hi"), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")
        stream = await conn.request(
            "POST", "/v1/messages", [*ANTHROPIC, auth], messages_body("s", stream=True)
        )
        assert stream.status == 200
    assert len(fake.requests) == 2
    for recorded in fake.requests:
        headers = {k.lower(): v for k, v in recorded.headers.items()}
        assert headers["authorization"] == "Bearer sk-upstream-secret"
        assert "x-api-key" not in headers
        assert not any("client-key" in v for v in headers.values()), headers


@pytest.mark.parametrize(
    "auth",
    [
        [],
        [("x-api-key", "wrong")],
        [("authorization", "Bearer wrong")],
        [("authorization", "Basic Y2xpZW50")],
    ],
    ids=["missing", "wrong-x-api-key", "wrong-bearer", "basic"],
)
async def test_a2o_m04_missing_or_wrong_key_is_401(
    proxy_factory: Any, fake: FakeUpstream, auth: list[tuple[str, str]]
) -> None:
    proxy = await start(proxy_factory, api_keys=("client-key-one", "client-key-two"))
    async with await connect(proxy) as conn:
        for target, body in (
            ("/v1/messages", messages_body("hi")),
            ("/v1/messages?beta=true", messages_body("hi", stream=True)),
            ("/v1/messages/count_tokens", messages_body("hi")),
        ):
            resp = await conn.request("POST", target, [*ANTHROPIC, *auth], body, timeout=T)
            assert resp.status == 401, target
            assert_anthropic_error(resp.json(), "authentication_error")
        resp = await conn.request("GET", "/v1/models", [*ANTHROPIC, *auth], timeout=T)
        assert resp.status == 401
    assert fake.requests == []


async def test_a2o_m04_health_open_without_key(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, api_keys=("client-key-one",))
    await health_ok(proxy)


# ------------------------------------------------------------------------------ A2O-M05, X-02


async def test_a2o_m05_client_headers_not_forwarded_upstream(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    client_headers = [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-version", "2023-06-01"),  # duplicated, as some clients send it
        ("anthropic-beta", "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"),
        ("x-stainless-lang", "js"),
        ("x-stainless-retry-count", "0"),
        ("X-Claude-Code-Session-Id", "session-1234"),
        ("x-app", "cli"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("user-agent", "claude-cli/2.1.0 (external, cli)"),
        ("x-api-key", "client-key-zzz"),
        ("content-type", "application/json"),
    ]
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", "/v1/messages", client_headers, messages_body("h"), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")
        stream = await conn.request("POST", "/v1/messages", client_headers, messages_body("s", stream=True))
        assert stream.status == 200
    assert len(fake.requests) == 2
    for recorded in fake.requests:
        headers = {k.lower(): v for k, v in recorded.headers.items()}
        for name in ("anthropic-version", "anthropic-beta", "x-claude-code-session-id", "x-app", "x-api-key"):
            assert name not in headers, (name, headers)
        assert not any(k.startswith("x-stainless") for k in headers), headers
        assert headers["accept-encoding"] == "identity"
        assert "claude-cli" not in headers.get("user-agent", "")
        assert headers["authorization"] == "Bearer sk-upstream-secret"
        assert not any("client-key-zzz" in v or "session-1234" in v for v in headers.values())


async def test_x02_upstream_response_head_not_leaked_to_client(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """Upstream hop-by-hop/custom headers are not copied onto the client's response."""
    proxy = await start(proxy_factory)
    fake.enqueue(Script(text="hdr", headers=[("x-upstream-secret", "leak"), ("openai-processing-ms", "5")]))
    async with await connect(proxy) as conn:
        resp = await conn.request(
            "POST", "/v1/messages", ANTHROPIC, messages_body("h", stream=True), timeout=T
        )
    assert resp.status == 200
    assert resp.header("x-upstream-secret") is None
    assert len(resp.head.header_all("transfer-encoding")) <= 1


# ------------------------------------------------------------------- issue 19: absolute-form targets


@pytest.mark.parametrize(
    "target",
    [
        "http://{host}/v1/messages",
        "HTTP://{host}/v1/messages?beta=true",
        "https://api.anthropic.com/v1/messages",  # the authority is not ours to check: the path is served
        "http://{host}/v1/v1/messages",
    ],
)
async def test_issue19_an_absolute_form_target_is_served_by_its_path(
    proxy_factory: Any, fake: FakeUpstream, target: str
) -> None:
    # issue 19, defect 11: RFC 9112 3.2.2, a server must accept the absolute form
    proxy = await start(proxy_factory)
    target = target.format(host=f"{proxy.host}:{proxy.port}")
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", target, ANTHROPIC, messages_body(), timeout=T)
        assert_message(resp, "Hello from the fake upstream.")
        health = await conn.request("GET", f"http://{proxy.host}:{proxy.port}/health", timeout=T)
        assert health.status == 200, health.body


async def test_issue19_an_absolute_form_target_gets_the_error_shape_of_its_path(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    # issue 19, defect 11
    proxy = await start(proxy_factory)
    base = f"http://{proxy.host}:{proxy.port}"
    async with await connect(proxy) as conn:
        resp = await conn.request(
            "POST", base + "/v1/messages", [("content-type", "application/json")], b"{nope", timeout=T
        )
        assert resp.status == 400, resp.body
        assert resp.json()["type"] == "error", resp.body  # Anthropic's, by the path alone
        resp = await conn.request("GET", base + "/no/such/path", timeout=T)
        assert resp.status == 404, resp.body
        assert "no such endpoint: GET /no/such/path" in resp.json()["error"]["message"]
    assert fake.requests == []


# ------------------------------------------------------------- issue 19: the 431's shape, however sent

OPENAI_HEADERS = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]
HEAD_SHAPES = {
    "anthropic_path": ("/v1/messages", [("content-type", "application/json")], "anthropic"),
    "anthropic_absolute": ("http://example.test/v1/messages?beta=true", [], "anthropic"),
    "anthropic_headers": ("/v1/models", ANTHROPIC, "anthropic"),
    "openai_path": ("/v1/chat/completions", OPENAI_HEADERS, "openai"),
}


# where the head is cut into writes: whole; past the limit, then the rest (the defect's case: h11 refuses
# the head before it is complete); trickled in pieces of 500 bytes, never sent whole
WRITES: dict[str, list[int]] = {"one": [], "two": [2500], "trickled": list(range(500, 3000, 500))}


@pytest.mark.parametrize(("case", "writes"), [(c, w) for c in HEAD_SHAPES for w in WRITES])
async def test_issue19_an_oversized_head_gets_the_error_shape_of_its_path_however_it_arrives(
    proxy_factory: Any, fake: FakeUpstream, case: str, writes: str
) -> None:
    # issue 19, defect 10
    target, headers, shape = HEAD_SHAPES[case]
    proxy = await start(proxy_factory, max_head_bytes=2000)
    wire = build_request("POST", target, [*headers, ("x-big", "a" * 3000)], messages_body())
    head = wire[: wire.index(b"\r\n\r\n") + 4]
    cuts = [0, *WRITES[writes], len(head) if writes != "trickled" else 3000]
    async with await connect(proxy) as conn:
        for start_at, end in itertools.pairwise(cuts):
            await conn.send(head[start_at:end])
            await asyncio.sleep(0.02)
        resp = await conn.read_response(timeout=T)
        assert resp.status == 431, resp.body
        body = resp.json()
        if shape == "anthropic":
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        else:
            assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error", body
        assert body["error"]["message"] == "request head too large"
    assert fake.requests == []
