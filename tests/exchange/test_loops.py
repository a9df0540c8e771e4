"""NET-03: loop detection across proxies (rawproxy/exchange/loops.py).

Every request rawproxy sends upstream carries ``Via: 1.1 rawproxy-<id>`` (RFC 9110 7.6.3: Via "is used for
detecting forwarding loops") and ``x-rawproxy-hops``; a request that comes back, or has passed too many
rawproxies, is a 508 Loop Detected (RFC 5842 7.2) in the client's own error shape, with
``x-should-retry: false`` so that no SDK sends it round again. The loops themselves are real processes
(``python -m rawproxy``) pointed at each other: before this, one request there multiplied until timeouts.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

from rawproxy.exchange.loops import MAX_HOPS
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.processes import free_port, rawproxy
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T, messages_body, start

pytestmark = pytest.mark.integration

CHAT = json.dumps({"model": "gpt-loop", "messages": [{"role": "user", "content": "hi"}]}).encode()
ACCESS = re.compile(r"rawproxy\.access: \d{6} POST ")


def access_lines(*logs: Path, at_least: int) -> int:
    """How many exchanges the proxies logged, once at least ``at_least`` are there (each is logged just
    after its answer) and the count has stayed put a moment."""
    deadline = time.monotonic() + 5
    count = -1
    while time.monotonic() < deadline:
        now = sum(len(ACCESS.findall(log.read_text())) for log in logs)
        if now >= at_least and now == count:
            return now
        count = now
        time.sleep(0.2)
    return count


def post(
    port: int, path: str, body: bytes, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection (a fresh one each time: with --workers, any worker may take it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = [
            f"POST {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Connection: close",
            f"Content-Length: {len(body)}",
        ]
        head += [f"{k}: {v}" for k, v in headers]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    fields = dict((k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:]))
    return int(lines[0].split()[1]), fields, payload


def test_net03_two_proxies_pointed_at_each_other_answer_one_508(tmp_path: Path) -> None:
    """A -> B -> A: A sees its own mark come back and answers 508; B relays it, A relays it to the client.
    Three exchanges in all (not one per hop until something times out), in well under a second each, for
    a passthrough (Chat Completions) and a translated request (Messages to an OpenAI upstream) alike."""
    port_a, port_b = free_port(), free_port()
    up = ("--openai-key", "sk-loop")
    with (
        rawproxy(
            tmp_path, "a", "--port", str(port_a), "--openai-upstream", f"http://127.0.0.1:{port_b}/v1", *up
        ) as a,
        rawproxy(
            tmp_path, "b", "--port", str(port_b), "--openai-upstream", f"http://127.0.0.1:{port_a}/v1", *up
        ) as b,
    ):
        began = time.monotonic()
        status, headers, body = post(
            port_a, "/v1/chat/completions", CHAT, [("content-type", "application/json")]
        )
        assert time.monotonic() - began < 5
        assert status == 508, body
        assert headers["x-should-retry"] == "false"
        error = json.loads(body)["error"]  # OpenAI's shape, for an OpenAI client
        assert "loop detected" in error["message"] and "came back to this proxy" in error["message"]
        assert access_lines(a, b, at_least=3) == 3

        status, headers, body = post(port_a, "/v1/messages", messages_body(), ANTHROPIC)
        assert status == 508, body
        assert headers["x-should-retry"] == "false"
        answer = json.loads(body)  # Anthropic's shape, for an Anthropic client
        assert answer["type"] == "error" and "loop detected" in answer["error"]["message"], answer
        assert access_lines(a, b, at_least=6) == 6


def test_net03_a_loop_through_workers_is_caught_on_its_first_return(tmp_path: Path) -> None:
    """A with ``--workers 2`` -> B -> A: the request may come back to the other worker, which must know
    the mark as its own (the supervisor hands every worker one id). Each of 8 requests, on a fresh
    connection each, makes exactly three exchanges; with an id per worker, a request that came back to the
    other worker would go round again."""
    port_a, port_b = free_port(), free_port()
    up = ("--openai-key", "sk-loop")
    to_a, to_b = f"http://127.0.0.1:{port_a}/v1", f"http://127.0.0.1:{port_b}/v1"
    with (
        rawproxy(tmp_path, "a", "--workers", "2", "--port", str(port_a), "--openai-upstream", to_b, *up) as a,
        rawproxy(tmp_path, "b", "--port", str(port_b), "--openai-upstream", to_a, *up) as b,
    ):
        for n in range(1, 9):
            status, _, body = post(
                port_a, "/v1/chat/completions", CHAT, [("content-type", "application/json")]
            )
            assert status == 508, body
            assert access_lines(a, b, at_least=3 * n) == 3 * n, f"request {n} went round more than once"


async def test_net03_marks_forwarded_requests_and_keeps_the_clients_via(
    proxy_factory, fake: FakeUpstream
) -> None:
    """What goes upstream: the client's Via with ours appended, and one hop more than the client's count
    (none counts as 0); a hop count at the limit, or our own mark coming back, is a 508 that never leaves."""
    proxy = await start(proxy_factory)
    chat = [("content-type", "application/json")]
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("POST", "/v1/chat/completions", chat, CHAT, timeout=T)
        assert resp.status == 200, resp.body
        via = fake.requests[-1].headers["via"]
        assert re.fullmatch(r"1\.1 rawproxy-[0-9a-f]{12}", via), via
        assert fake.requests[-1].headers["x-rawproxy-hops"] == "1"

        sent = [*chat, ("via", "1.1 nginx"), ("x-rawproxy-hops", str(MAX_HOPS - 1))]
        resp = await conn.request("POST", "/v1/messages", [*ANTHROPIC, *sent[1:]], messages_body(), timeout=T)
        assert resp.status == 200, resp.body
        assert fake.requests[-1].headers["via"] == f"1.1 nginx, {via}"
        assert fake.requests[-1].headers["x-rawproxy-hops"] == str(MAX_HOPS)

        seen = len(fake.requests)
        resp = await conn.request(
            "POST",
            "/v1/messages",
            [*ANTHROPIC, ("x-rawproxy-hops", str(MAX_HOPS))],
            messages_body(),
            timeout=T,
        )
        assert resp.status == 508
        assert resp.header("x-should-retry") == "false"
        assert resp.json()["error"]["type"] == "invalid_request_error"
        assert f"passed through {MAX_HOPS} rawproxies" in resp.json()["error"]["message"]

        resp = await conn.request(
            "POST", "/v1/chat/completions", [*chat, ("via", f"1.0 squid, {via} (x)")], CHAT, timeout=T
        )
        assert resp.status == 508
        assert "came back to this proxy" in resp.json()["error"]["message"]
        assert len(fake.requests) == seen  # neither went upstream


async def test_net03_no_mark_on_a_presented_identity_unless_chained(
    proxy_factory, fake: FakeUpstream
) -> None:
    """A ``client_profile`` that presents Claude Code's exact header set (CONFORMANCE.md, "Claude Code
    masquerade header set") gets no mark of ours; a request that came through a rawproxy already still
    carries it on, so a loop through such an upstream is caught from its second round."""
    proxy = await start(
        proxy_factory,
        openai_key=None,
        anthropic_upstream=fake.anthropic_url,
        anthropic_key="sk-ant-upstream",
        client_profile="claude-cli",
    )
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body(), timeout=T)
        assert resp.status == 200, resp.body
        assert {"via", "x-rawproxy-hops"}.isdisjoint(fake.requests[-1].headers)
        chained = [*ANTHROPIC, ("via", "1.1 rawproxy-0123456789ab"), ("x-rawproxy-hops", "1")]
        resp = await conn.request("POST", "/v1/messages", chained, messages_body(), timeout=T)
        assert resp.status == 200, resp.body
        assert fake.requests[-1].headers["via"].startswith("1.1 rawproxy-0123456789ab, 1.1 rawproxy-")
        assert fake.requests[-1].headers["x-rawproxy-hops"] == "2"
