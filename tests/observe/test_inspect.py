"""Issue 7: ``--inspect`` shows each exchange as a panel, payloads redacted and cut."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T, messages_body, start

pytestmark = pytest.mark.integration

SECRET = "sk-ant-api03-PANELSECRETPANELSECRET"


def panels(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rawproxy.inspect"]


@pytest.mark.parametrize("stream", [False, True])
async def test_issue7_inspect_panels_show_request_and_response_redacted(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.inspect")
    proxy = await start(proxy_factory, inspect=True, inspect_limit=150)
    body = messages_body(f"my key is {SECRET} " + "padding " * 200, stream=stream)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        response = await conn.request("POST", "/v1/messages", ANTHROPIC, body, timeout=T)
    assert response.status == 200
    (panel,) = panels(caplog)
    assert "POST /v1/messages  claude-sonnet-4-5 -> openai:claude-sonnet-4-5" in panel
    assert "my key is <redacted>" in panel and SECRET not in panel
    assert "<cut at 150 characters>" in panel  # the long request
    assert "200" in panel and "tokens in 12 out 5" in panel
    assert ("message_start" if stream else '"type":"message"') in panel
    assert "\x1b[" not in panel  # no colour off a terminal


async def test_issue7_no_panels_without_inspect(proxy_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.inspect")
    proxy = await start(proxy_factory)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        assert (
            await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("hi"), timeout=T)
        ).status == 200
    assert panels(caplog) == []
