"""NET-05: a 502 or 504 the proxy answers itself is visible in its log.

Before, such a failure left only an access line with ``status=502`` (and, in text, no upstream): nothing
said which upstream failed or why. Now: one warning line with the request id, the upstream's configured
name, the fault and its reason; and the access line names the upstream (``upstream=<name>``) beside the
fault (``error=<kind>``), so the two lines join on the request id.
"""

from __future__ import annotations

import logging
import re
import socket

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T, messages_body, start

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port  # nothing listens there once the socket is closed


@pytest.mark.parametrize(
    ("failure", "status", "kind", "reason"),
    [
        pytest.param("refused", 502, "upstream_unreachable", "could not connect", id="connect-refused"),
        pytest.param("silent", 504, "upstream_timeout", "upstream timed out", id="timeout"),
        pytest.param("garbage", 502, "upstream_protocol", "", id="bad-answer"),
    ],
)
async def test_net05_a_502_or_504_of_the_proxys_own_is_one_warning_naming_the_upstream(
    proxy_factory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, failure, status, kind, reason
) -> None:
    caplog.set_level(logging.INFO)
    config: dict[str, object] = {"timeout": 0.5}
    if failure == "refused":
        config["openai_upstream"] = f"http://127.0.0.1:{_closed_port()}/v1"
    elif failure == "silent":
        fake.enqueue(Script(head_delay=3.0))
    else:
        fake.enqueue(Script(wire=b"this is not HTTP\r\n\r\n"))
    proxy = await start(proxy_factory, **config)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body(), timeout=T)
    assert resp.status == status, resp.body

    access = [r.getMessage() for r in caplog.records if r.name == "rawproxy.access"]
    assert len(access) == 1, access
    found = re.match(r"(\d{6}) POST /v1/messages .* upstream=(\S+) error=(\S+)$", access[0])
    assert found is not None, access[0]
    rid, name, error = found.groups()
    assert (name, error) == ("openai", kind)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "rawproxy"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    line = warnings[0].getMessage()
    assert line.startswith(f"{rid} upstream openai failed ({kind}): "), line
    assert reason in line
    assert "sk-upstream-secret" not in caplog.text  # never the upstream's key


async def test_net05_an_upstreams_own_error_is_no_warning(
    proxy_factory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream that answered (a 429 here) said why itself: relayed, with the upstream named in the
    access line, and no warning of ours."""
    caplog.set_level(logging.INFO)
    fake.enqueue(Script(status=429, error_body=b'{"error":{"message":"slow down","type":"rate_limit"}}'))
    proxy = await start(proxy_factory)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        resp = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body(), timeout=T)
    assert resp.status == 429
    access = [r.getMessage() for r in caplog.records if r.name == "rawproxy.access"]
    assert len(access) == 1 and " upstream=openai error=upstream_status" in access[0], access
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
