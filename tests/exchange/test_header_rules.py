"""Routing rules that match Claude Code's subagent and background requests by their headers (M26-09):
the client's headers reach the router's facts through the whole exchange, messages and count_tokens."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import Rules, Target, UpstreamSpec
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T

pytestmark = pytest.mark.integration


async def test_m26_09_a_subagents_and_a_background_request_go_where_the_rules_say(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    main = UpstreamSpec(name="main", protocol="anthropic", base_url=fake.anthropic_url, api_keys=("k",))
    side = UpstreamSpec(name="side", protocol="openai", base_url=fake.url, api_keys=("k",))  # type: ignore[arg-type]
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        upstreams=(main, side),
        rules=Rules(subagent=Target("side", "sub-model"), background=Target("side", "bg-model")),
    )
    body = orjson.dumps(
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    )
    marks = [[], [("x-claude-code-agent-id", "agent-1")], [("x-app", "cli-bg")]]
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        for extra in marks:
            answer = await conn.request("POST", "/v1/messages", [*ANTHROPIC, *extra], body, timeout=T)
            assert answer.status == 200, answer.body
    seen = [(r.path.rsplit("/", 1)[-1], r.body["model"]) for r in fake.requests if r.method == "POST"]
    assert seen == [
        ("messages", "claude-sonnet-4-6"),
        ("completions", "sub-model"),
        ("completions", "bg-model"),
    ]
