"""The endpoints an OpenAI client meets in front of an Anthropic upstream: models and auth."""

from __future__ import annotations

import httpx
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.integration

CHAT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_ONLY = {"openai_upstream": DEFAULT_OPENAI_UPSTREAM, "openai_key": None, "grace_seconds": 1.0}


async def test_o2a_m01_models_in_openai_shape_from_configuration_and_the_paginated_upstream_list(
    proxy_factory,
) -> None:
    models = [f"claude-model-{i}" for i in range(5)]
    async with FakeUpstream(models=models) as anthropic:
        proxy = await proxy_factory(
            anthropic_upstream=anthropic.anthropic_url,
            anthropic_key="k",
            routes=ModelRoutes(big="claude-opus-4-8"),
            **ANTHROPIC_ONLY,
        )
        async with httpx.AsyncClient(timeout=5) as client:
            listed = (await client.get(proxy.url + "/v1/models")).json()
            again = (await client.get(proxy.url + "/v1/models")).json()
        calls = [r for r in anthropic.requests if r.path.endswith("/models")]
    assert listed["object"] == "list"
    ids = [m["id"] for m in listed["data"]]
    assert ids[0] == "claude-opus-4-8" and ids[1:] == models
    assert all(m["object"] == "model" and "owned_by" in m and "created" in m for m in listed["data"])
    assert again == listed and len(calls) >= 1
    # cached: the second listing did not ask again
    assert len([r for r in calls if "after_id" not in r.query]) == 1


async def test_o2a_m01_anthropic_models_are_followed_page_by_page(proxy_factory) -> None:
    """The fake pages at its own limit: make it small, and every page must be fetched."""
    models = [f"claude-page-{i}" for i in range(3)]
    async with FakeUpstream(models=models) as anthropic:
        proxy = await proxy_factory(
            anthropic_upstream=anthropic.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY
        )
        async with httpx.AsyncClient(timeout=5) as client:
            listed = (await client.get(proxy.url + "/v1/models")).json()
    assert [m["id"] for m in listed["data"]] == models


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer k1"}, 200),
        ({"x-api-key": "k2"}, 200),
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic k1"}, 401),
    ],
)
async def test_o2a_m02_client_auth_bearer_and_x_api_key(proxy_factory, fake, headers, status) -> None:
    proxy = await proxy_factory(
        anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant", api_keys=("k1", "k2"), **ANTHROPIC_ONLY
    )
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(proxy.url + "/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["type"] == "authentication_error"  # OpenAI's error shape
    else:
        assert fake.requests[-1].headers["x-api-key"] == "sk-ant"  # never the client's key


async def test_o2a_m02_no_configured_key_means_any_key_is_accepted(proxy_factory, fake) -> None:
    proxy = await proxy_factory(
        anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant", **ANTHROPIC_ONLY
    )
    async with httpx.AsyncClient(timeout=5) as client:
        for headers in ({"Authorization": "Bearer whatever"}, {}):
            assert (
                await client.post(proxy.url + "/v1/chat/completions", json=CHAT, headers=headers)
            ).status_code == 200


async def test_o2a_r27_a_request_without_model_gets_the_default_model(proxy_factory) -> None:
    """An OpenAI client that names no model is served with --default-model, which reaches the upstream."""
    async with FakeUpstream() as anthropic:
        proxy = await proxy_factory(
            anthropic_upstream=anthropic.anthropic_url,
            anthropic_key="k",
            routes=ModelRoutes(default="claude-haiku-4-5"),
            **ANTHROPIC_ONLY,
        )
        body = {"messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(proxy.url + "/v1/chat/completions", json=body)
            without_default = await proxy_factory(
                anthropic_upstream=anthropic.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY
            )
            refused = await client.post(without_default.url + "/v1/chat/completions", json=body)
        sent = [r for r in anthropic.requests if r.path.endswith("/v1/messages")]
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "claude-haiku-4-5"
    assert len(sent) == 1 and sent[0].body["model"] == "claude-haiku-4-5"
    assert refused.status_code == 400 and "model" in refused.json()["error"]["message"]
