"""The access log: one line per request with id, models, status, TTFT, duration and tokens."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import Script

pytestmark = pytest.mark.integration

LINE = re.compile(
    r"^(?P<rid>\d{6}) POST /v1/messages model=(?P<client>\S+)->(?P<upstream>\S+) status=(?P<status>\d+) "
    r"ttft=(?P<ttft>[\d.]+ms|-) dur=(?P<dur>[\d.]+)ms in=(?P<inp>\S+) out=(?P<out>\S+) cached=(?P<cached>\S+)"
    r" upstream=(?P<name>\S+)(?: error=(?P<error>\S+))?$"
)


async def test_one_line_per_request_with_models_status_ttft_and_tokens(proxy_factory, fake, caplog) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    proxy = await proxy_factory(routes=ModelRoutes(middle="gpt-middle"))
    fake.enqueue(
        Script(text="one two three", prompt_tokens=100, cached_tokens=40),
        Script(status=429, error_body=b"{}"),
    )
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.post(proxy.url + "/v1/messages", json=body)).status_code == 200
        assert (await client.post(proxy.url + "/v1/messages", json=body)).status_code == 429
    lines = [r.getMessage() for r in caplog.records if r.name == "rawproxy.access"]
    assert len(lines) == 2
    first, second = (LINE.match(line) for line in lines)
    assert first is not None and second is not None, lines
    assert (first["client"], first["upstream"], first["status"]) == ("claude-sonnet-4-6", "gpt-middle", "200")
    assert first["ttft"] != "-" and (first["inp"], first["cached"]) == ("60", "40")
    assert int(first["out"]) > 0
    assert second["status"] == "429" and second["rid"] != first["rid"]
    assert first["error"] is None and second["error"] == "upstream_status"  # whose fault the 429 was
