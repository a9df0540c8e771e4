"""Both upstreams configured: the TARGET model (after the model map) picks the upstream, claude* to the
Anthropic one and the rest to the OpenAI one; the same protocol on both sides is a passthrough, the other
a translation. With one upstream configured, everything goes to it.

Two separate fakes, because one fake answers both protocols and could not tell us which upstream the proxy
chose. The Anthropic fake lists its own model names so that ``/v1/models`` shows where names came from.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import call, parse_sse, start

pytestmark = pytest.mark.integration

OPENAI_KEY = "sk-oai-upstream-secret"
ANTHROPIC_KEY = "sk-ant-upstream-secret"
ANTHROPIC_MODELS = ("claude-ant-listed-a", "claude-ant-listed-b")

ANTHROPIC_CLIENT = [
    ("x-api-key", "sk-client"),
    ("anthropic-version", "2023-06-01"),
    ("content-type", "application/json"),
]
OPENAI_CLIENT = [("authorization", "Bearer sk-client"), ("content-type", "application/json")]


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(models=ANTHROPIC_MODELS) as upstream:
        yield upstream


async def both(proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, **config: Any) -> Any:
    proxy = await start(
        proxy_factory,
        openai_upstream=fake.url,
        openai_key=OPENAI_KEY,
        anthropic_upstream=anthropic_fake.anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
        **config,
    )
    assert proxy.config.openai_enabled and proxy.config.anthropic_enabled
    return proxy


def messages_request(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "which upstream?"}],
    }


def chat_request(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "which upstream?"}]}


async def anthropic_client(proxy: Any, model: str, stream: bool) -> str:
    """Send an Anthropic request; check the answer is Anthropic-shaped; return its text."""
    resp = await call(proxy, "POST", "/v1/messages", ANTHROPIC_CLIENT, messages_request(model, stream))
    if not stream:
        data = resp.json()
        assert data["type"] == "message"
        return "".join(b["text"] for b in data["content"] if b["type"] == "text")
    events = parse_sse(resp.body)
    assert events[0].event == "message_start" and events[-1].event == "message_stop", events
    return "".join(
        e.json()["delta"].get("text", "")
        for e in events
        if e.event == "content_block_delta" and e.json()["delta"]["type"] == "text_delta"
    )


async def openai_client(proxy: Any, model: str, stream: bool) -> str:
    """Send an OpenAI request; check the answer is OpenAI-shaped; return its text."""
    resp = await call(proxy, "POST", "/v1/chat/completions", OPENAI_CLIENT, chat_request(model, stream))
    if not stream:
        data = resp.json()
        assert data["object"] == "chat.completion"
        return str(data["choices"][0]["message"]["content"])
    events = parse_sse(resp.body)
    assert events[-1].data == "[DONE]", events
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def only_call(upstream: FakeUpstream, path: str) -> Any:
    (recorded,) = upstream.requests
    assert (recorded.method, recorded.path) == ("POST", path)
    return recorded


TEXT = "Hello from the fake upstream."


# --------------------------------------------------------------------------- both upstreams configured


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_client_claude_model_goes_to_anthropic_upstream_as_passthrough(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, stream: bool
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake)
    assert await anthropic_client(proxy, "claude-sonnet-4-6", stream) == TEXT
    recorded = only_call(anthropic_fake, "/v1/messages")
    assert recorded.body == messages_request("claude-sonnet-4-6", stream)  # passthrough: unchanged
    assert recorded.headers["x-api-key"] == ANTHROPIC_KEY
    assert fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_client_mapped_to_gpt_goes_to_openai_upstream_translated(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, stream: bool
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake, routes=ModelRoutes(middle="gpt-4.1"))
    assert await anthropic_client(proxy, "claude-sonnet-4-6", stream) == TEXT
    recorded = only_call(fake, "/v1/chat/completions")
    assert recorded.body["model"] == "gpt-4.1"
    assert recorded.body["messages"][-1] == {"role": "user", "content": "which upstream?"}
    assert "max_tokens" not in recorded.body or recorded.body["max_tokens"] == 64
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert anthropic_fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_client_gpt_model_goes_to_openai_upstream_as_passthrough(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, stream: bool
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake)
    assert await openai_client(proxy, "gpt-4o", stream) == TEXT
    recorded = only_call(fake, "/v1/chat/completions")
    assert recorded.body == chat_request("gpt-4o", stream)  # passthrough: no max_tokens added
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert anthropic_fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_client_claude_model_goes_to_anthropic_upstream_translated(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, stream: bool
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake)
    assert await openai_client(proxy, "claude-opus-4-8", stream) == TEXT
    recorded = only_call(anthropic_fake, "/v1/messages")
    assert recorded.body["model"] == "claude-opus-4-8"
    assert isinstance(recorded.body["max_tokens"], int)  # translated: Anthropic requires it
    assert recorded.headers["x-api-key"] == ANTHROPIC_KEY
    assert fake.requests == []


async def test_the_mapped_target_not_the_client_name_picks_the_upstream(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream
) -> None:
    routes = ModelRoutes(model_map={"fast": "claude-haiku-4-5", "claude-sonnet-4-6": "gpt-4o-mini"})
    proxy = await both(proxy_factory, fake, anthropic_fake, routes=routes)

    assert await openai_client(proxy, "fast", False) == TEXT  # OpenAI client, Anthropic target
    assert only_call(anthropic_fake, "/v1/messages").body["model"] == "claude-haiku-4-5"
    assert fake.requests == []

    assert await openai_client(proxy, "claude-sonnet-4-6", False) == TEXT  # claude name, OpenAI target
    recorded = only_call(fake, "/v1/chat/completions")
    assert recorded.body == {**chat_request("claude-sonnet-4-6", False), "model": "gpt-4o-mini"}
    assert len(anthropic_fake.requests) == 1


# ------------------------------------------------------------------------------ one upstream configured


@pytest.mark.parametrize(
    ("client", "model"),
    [
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "gpt-4o"),
        ("openai", "gpt-4o"),
        ("openai", "claude-x"),
    ],
)
async def test_only_openai_configured_everything_goes_to_it(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, client: str, model: str
) -> None:
    proxy = await start(proxy_factory, openai_upstream=fake.url, openai_key=OPENAI_KEY)
    assert not proxy.config.anthropic_enabled
    send = anthropic_client if client == "anthropic" else openai_client
    assert await send(proxy, model, True) == TEXT
    assert only_call(fake, "/v1/chat/completions").body["model"] == model
    assert anthropic_fake.requests == []


@pytest.mark.parametrize(
    ("client", "model"),
    [
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "gpt-4o"),
        ("openai", "gpt-4o"),
        ("openai", "claude-x"),
    ],
)
async def test_only_anthropic_configured_everything_goes_to_it(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, client: str, model: str
) -> None:
    proxy = await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=anthropic_fake.anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
    )
    assert not proxy.config.openai_enabled
    send = anthropic_client if client == "anthropic" else openai_client
    assert await send(proxy, model, True) == TEXT
    assert only_call(anthropic_fake, "/v1/messages").body["model"] == model
    assert fake.requests == []


# ----------------------------------------------------------------------------------------- /v1/models


@pytest.mark.parametrize("shape", ["openai", "anthropic"])
async def test_models_lists_configured_names_and_both_upstreams(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream, shape: str
) -> None:
    routes = ModelRoutes(big="gpt-big", middle="gpt-4.1", model_map={"my-alias": "claude-opus-4-8"})
    proxy = await both(proxy_factory, fake, anthropic_fake, routes=routes)
    headers = ANTHROPIC_CLIENT if shape == "anthropic" else OPENAI_CLIENT
    resp = await call(proxy, "GET", "/v1/models", headers)
    data = resp.json()
    names = [m["id"] for m in data["data"]]
    assert len(names) == len(set(names)), names
    configured = {"gpt-big", "gpt-4.1", "my-alias", "claude-opus-4-8"}
    assert configured <= set(names)
    assert "fake-model" in names  # the OpenAI upstream's list
    assert set(ANTHROPIC_MODELS) <= set(names)  # the Anthropic upstream's list
    if shape == "anthropic":
        assert data["has_more"] is False and all(m["type"] == "model" for m in data["data"])
    else:
        assert data["object"] == "list" and all(m["object"] == "model" for m in data["data"])
    (openai_call,) = fake.requests
    assert (openai_call.method, openai_call.path) == ("GET", "/v1/models")
    assert openai_call.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    (anthropic_call,) = anthropic_fake.requests
    assert (anthropic_call.method, anthropic_call.path) == ("GET", "/v1/models")
    assert anthropic_call.headers["x-api-key"] == ANTHROPIC_KEY


# ----------------------------------------------------------------------------------------- count_tokens


def count_body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "count these words please"}]}


async def test_count_tokens_forwarded_when_the_target_is_anthropic(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake)
    resp = await call(
        proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC_CLIENT, count_body("claude-sonnet-4-6")
    )
    recorded = only_call(anthropic_fake, "/v1/messages/count_tokens")
    assert recorded.body == count_body("claude-sonnet-4-6")
    assert recorded.headers["x-api-key"] == ANTHROPIC_KEY
    # the fake's answer (len(body) // 4), relayed
    assert resp.json() == {"input_tokens": max(1, len(json.dumps(recorded.body, separators=(",", ":"))) // 4)}
    assert fake.requests == []


async def test_count_tokens_forwarded_with_the_mapped_anthropic_model(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream
) -> None:
    proxy = await both(
        proxy_factory, fake, anthropic_fake, routes=ModelRoutes(model_map={"alias": "claude-x"})
    )
    await call(proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC_CLIENT, count_body("alias"))
    assert only_call(anthropic_fake, "/v1/messages/count_tokens").body["model"] == "claude-x"
    assert fake.requests == []


async def test_count_tokens_answered_locally_when_the_target_is_openai(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream
) -> None:
    proxy = await both(proxy_factory, fake, anthropic_fake, routes=ModelRoutes(middle="gpt-4.1"))
    resp = await call(
        proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC_CLIENT, count_body("claude-sonnet-4-6")
    )
    count = resp.json()["input_tokens"]
    assert isinstance(count, int) and count > 0
    assert fake.requests == [] and anthropic_fake.requests == []


async def test_count_tokens_local_with_only_openai_and_forwarded_with_only_anthropic(
    proxy_factory: Any, fake: FakeUpstream, anthropic_fake: FakeUpstream
) -> None:
    openai_proxy = await start(proxy_factory, openai_upstream=fake.url, openai_key=OPENAI_KEY)
    await call(openai_proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC_CLIENT, count_body("claude-x"))
    assert fake.requests == [] and anthropic_fake.requests == []

    anthropic_proxy = await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=anthropic_fake.anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
        routes=ModelRoutes(middle="gpt-4.1"),  # even a non-claude target: the only upstream speaks Anthropic
    )
    await call(
        anthropic_proxy,
        "POST",
        "/v1/messages/count_tokens",
        ANTHROPIC_CLIENT,
        count_body("claude-sonnet-4-6"),
    )
    assert only_call(anthropic_fake, "/v1/messages/count_tokens").body["model"] == "gpt-4.1"
    assert fake.requests == []
