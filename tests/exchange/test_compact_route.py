"""Issue 5 item 7: a route with ``compact = true`` sends Claude Code's long system prompt shortened (to an
OpenAI upstream, translated, and to an Anthropic one, passthrough); tools and user messages go unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.config.file import Route, UpstreamSpec
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support import FIXTURES_DIR
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, T

pytestmark = pytest.mark.integration

CAPTURE = FIXTURES_DIR / "claude_code" / "tool_bash.json"


def system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    return "".join(block.get("text", "") for block in system)


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("compact", [False, True])
async def test_issue5_compact_route_shortens_the_system_prompt_only(
    proxy_factory: Any, fake: FakeUpstream, protocol: str, compact: bool
) -> None:
    body = orjson.loads(CAPTURE.read_bytes())
    body["stream"] = False
    url = fake.url if protocol == "openai" else fake.anthropic_url
    upstream = UpstreamSpec(name="local", protocol=protocol, base_url=url, api_keys=("k",))  # type: ignore[arg-type]
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        upstreams=(upstream,),
        route_table=(Route(match="claude-*", upstream="local", model="small-local", compact=compact),),
    )
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        response = await conn.request("POST", "/v1/messages", ANTHROPIC, orjson.dumps(body), timeout=T)
    assert response.status == 200, response.body
    (sent,) = [r for r in fake.requests if r.method == "POST"]
    original = system_text(body["system"])
    in_messages = "".join(system_text(m["content"]) for m in body["messages"] if m["role"] == "system")
    if protocol == "anthropic":  # passthrough: the same body but its system prompt and model
        sent_system = system_text(sent.body["system"])
        assert sent.body["tools"] == body["tools"]
        assert [m for m in sent.body["messages"] if m["role"] == "user"] == [
            m for m in body["messages"] if m["role"] == "user"
        ]
    else:  # translated: the system message(s) come first
        sent_system = "".join(
            m["content"]
            if isinstance(m["content"], str)
            else "".join(p.get("text", "") for p in m["content"])
            for m in sent.body["messages"]
            if m["role"] == "system"
        )
        assert [t["function"]["name"] for t in sent.body["tools"]] == [t["name"] for t in body["tools"]]
        original += in_messages  # Claude Code's system message inside messages is compacted too
    if compact:
        assert len(sent_system) < len(original) * 0.97
        assert "x-anthropic-billing-header" not in sent_system
    else:
        assert len(sent_system) >= len(original) * 0.99


CODEX = Path(__file__).resolve().parents[1] / "conformance" / "fixtures" / "codex-0.171.0-request.json"


def developer_text(items: list[Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in items
        if item.get("role") in ("developer", "system")
        for part in (item["content"] if isinstance(item["content"], list) else [{"text": item["content"]}])
    )


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("compact", [False, True])
async def test_issue14_compact_route_shortens_a_responses_requests_developer_messages(
    proxy_factory: Any, fake: FakeUpstream, protocol: str, compact: bool
) -> None:
    """The house found it: the compaction read only ``messages``, so a Codex request (Responses API, whose
    system prompt is ``developer`` input items) went up whole. Codex CLI 0.171.0's recorded request."""
    body = orjson.loads(CODEX.read_bytes())["body"]
    body["stream"] = False
    url = fake.url if protocol == "openai" else fake.anthropic_url
    upstream = UpstreamSpec(name="local", protocol=protocol, base_url=url, api_keys=("k",))  # type: ignore[arg-type]
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        upstreams=(upstream,),
        route_table=(Route(match="*", upstream="local", model="small-local", compact=compact),),
    )
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        response = await conn.request("POST", "/v1/responses", [], orjson.dumps(body), timeout=T)
    assert response.status == 200, response.body
    (sent,) = [r for r in fake.requests if r.method == "POST"]
    original = developer_text(body["input"])
    if protocol == "anthropic":
        sent_system = system_text(sent.body["system"])
        users = [m for m in sent.body["messages"] if m["role"] == "user"]
    else:
        sent_system = "".join(
            system_text(m["content"]) for m in sent.body["messages"] if m["role"] == "system"
        )
        users = [m for m in sent.body["messages"] if m["role"] == "user"]
    user_texts = [i["content"][0]["text"] for i in body["input"] if i.get("role") == "user"]
    assert "".join(system_text(m["content"]) for m in users) == "".join(user_texts)  # users untouched
    # Codex's prompt has little of the boilerplate compaction removes: shorter, not much shorter
    assert (len(sent_system) < len(original)) is compact, (len(sent_system), len(original))
