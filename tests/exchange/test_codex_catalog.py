"""CX-03: Codex's model catalog on ``GET /v1/models?client_version=...``; and (issue 18) a model list
that cannot be had is the upstream's error, not an empty 200.

The required fields and what ``base_instructions`` does were found against Codex 0.171.0 itself
(tests/fixtures/research/codex_2026.md §1.3-1.4): one entry missing one of the eleven voids the whole
catalog; ``base_instructions`` replaces Codex's prompt, so it must be Codex's own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.exchange.test_endpoints import CannedUpstream, call, canned
from tests.support.rawhttp import ANTHROPIC, start

pytestmark = pytest.mark.integration

REQUIRED = {
    "slug",
    "display_name",
    "supported_reasoning_levels",
    "shell_type",
    "visibility",
    "supported_in_api",
    "priority",
    "base_instructions",
    "support_verbosity",
    "truncation_policy",
    "experimental_supported_tools",
}
CODEX = "/v1/models?client_version=0.171.0"
CODEX_HEADERS = [("originator", "codex_exec"), ("authorization", "Bearer sk-dummy")]


async def test_cx03_codex_gets_its_catalog_with_every_required_field(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await start(
        proxy_factory,
        anthropic_upstream=fake.anthropic_url,
        anthropic_key="sk-ant-test",
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        routes=ModelRoutes(big="claude-opus-4-8", small="claude-sonnet-4-5"),
    )
    resp = await call(proxy, "GET", CODEX, CODEX_HEADERS)
    assert resp.status == 200
    models = {m["slug"]: m for m in resp.json()["models"]}
    assert {"claude-opus-4-8", "claude-sonnet-4-5"} <= models.keys()
    for entry in models.values():
        assert entry.keys() >= REQUIRED, REQUIRED - entry.keys()
        assert entry["base_instructions"].startswith("You are a coding agent running in the Codex CLI")
        assert len(entry["base_instructions"]) == 16979  # what Codex 0.171.0 sends without a catalog
        assert entry["apply_patch_tool_type"] == "freeform" and entry["shell_type"] == "shell_command"
        assert entry["visibility"] == "list" and entry["supported_in_api"] is True
    opus, sonnet = models["claude-opus-4-8"], models["claude-sonnet-4-5"]
    assert opus["context_window"] == 1_000_000 and sonnet["context_window"] == 200_000
    assert [level["effort"] for level in opus["supported_reasoning_levels"]] == [
        "low",
        "medium",
        "high",
        "xhigh",
    ]
    assert [level["effort"] for level in sonnet["supported_reasoning_levels"]] == ["low", "medium", "high"]
    assert opus["default_reasoning_level"] == "medium"
    # and everyone else still gets the plain list
    plain = await call(proxy, "GET", "/v1/models", [])
    assert plain.json()["object"] == "list" and "models" not in plain.json()


async def test_cx03_a_long_upstream_list_is_cut_to_what_codex_reads(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """Codex reads 1 MiB of catalog at most, and a catalog it cannot read is no catalog: the configured
    names first, then as many listed ones as fit."""
    fake.openai_models = [{"id": f"listed-{i:03d}", "object": "model"} for i in range(300)]
    proxy = await start(proxy_factory, routes=ModelRoutes(big="gpt-big", small="gpt-small"))
    resp = await call(proxy, "GET", CODEX, CODEX_HEADERS)
    assert resp.status == 200
    assert len(resp.body) <= 1024 * 1024
    slugs = [m["slug"] for m in resp.json()["models"]]
    assert slugs[:2] == ["gpt-big", "gpt-small"] and 40 <= len(slugs) < 300


@pytest.mark.parametrize(
    ("headers", "shape"),
    [([], "openai"), (ANTHROPIC, "anthropic")],
    ids=["openai-client", "anthropic-client"],
)
async def test_issue18_a_model_list_that_cannot_be_had_is_the_upstreams_error(
    proxy_factory: Any, headers: list[tuple[str, str]], shape: str
) -> None:
    """No route configured and the upstream's list refused: its 401 and its words, in the client's
    shape, not 200 with no model (issue 18). With configured names, they are listed (A2O-M02)."""
    said = b'{"error":{"message":"Incorrect API key provided: sk-up***","type":"invalid_request_error"}}'
    async with CannedUpstream(canned(401, said, "content-type: application/json")) as upstream:
        proxy = await start(proxy_factory, openai_upstream=upstream.url + "/v1", openai_key="sk-up")
        resp = await call(proxy, "GET", "/v1/models", headers)
    assert resp.status == 401, resp.body
    body = json.loads(resp.body)
    assert "Incorrect API key provided" in body["error"]["message"]
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
