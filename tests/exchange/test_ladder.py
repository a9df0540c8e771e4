"""The ladder (CONFORMANCE.md M26-08, exchange/retry.py and lessons.py): an Anthropic upstream's 400 in a
known wording is cured once by rewriting the request as it says, before any byte reaches the client, and
the lesson is kept for that upstream and model; any other error is relayed as it came."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.exchange.retry import rewrite_for
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.testing.fake_upstream import anthropic_rules as rules

pytestmark = pytest.mark.integration

ANTHROPIC_ONLY: dict[str, Any] = {"openai_upstream": DEFAULT_OPENAI_UPSTREAM, "openai_key": None}


def sent(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/v1/messages")]


@pytest.mark.parametrize("stream", [False, True])
async def test_m26_08_a_model_no_table_knows_is_right_after_one_rewrite_then_at_once(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    """``claude-opus-6-0`` (no family in models.py: budgets assumed) behaves like Opus 4.8 upstream."""
    caplog.set_level(logging.INFO, logger="rawproxy")
    fake.behaves_like["claude-opus-6-0"] = "claude-opus-4-8"
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY)
    body = {
        "model": "claude-opus-6-0",
        "reasoning_effort": "high",
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with httpx.AsyncClient(timeout=5) as client:
        first = await client.post(proxy.url + "/v1/chat/completions", json=body)
        after_first = len(sent(fake))
        second = await client.post(proxy.url + "/v1/chat/completions", json=body)
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    bodies = sent(fake)
    assert after_first == 2 and len(bodies) == 3  # one rewrite for the first, none for the second
    assert bodies[0]["thinking"]["type"] == "enabled"  # the registry's guess, refused upstream
    for rewritten in bodies[1:]:
        assert rewritten["thinking"] == {"type": "adaptive", "display": "summarized"}
        assert rewritten["output_config"] == {"effort": "high"}
    learned = [r.getMessage() for r in caplog.records if "learned from upstream" in r.getMessage()]
    assert learned == [
        "learned from upstream anthropic that claude-opus-6-0 takes adaptive thinking only; retrying once"
    ]


async def test_m26_08_an_error_no_rule_matches_is_relayed_unmodified_and_not_retried(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    message = "prompt is too long: 300000 tokens > 200000 maximum"
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    fake.enqueue(Script(status=400, error_body=orjson.dumps(error)))
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY)
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(proxy.url + "/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == message  # Claude Code and the SDKs read it
    assert len(sent(fake)) == 1


async def test_m26_08_a_known_wording_about_a_field_we_did_not_send_is_not_retried(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """A refusal that teaches nothing new (the registry already says so) is the client's to read."""
    message = "`temperature` is deprecated for this model."
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    fake.enqueue(Script(status=400, error_body=orjson.dumps(error)))
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY)
    body = {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(proxy.url + "/v1/chat/completions", json=body)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == message
    assert len(sent(fake)) == 1


def _prepared(model: str) -> Any:
    from tests.support.openai_sse import prepare

    return prepare({"model": model, "messages": [{"role": "user", "content": "hi"}]}, upstream_model=model)


def _refused(message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}})


@pytest.mark.parametrize(
    "model, message, what",
    [
        (
            "claude-opus-6-0",
            rules.ENABLED_REFUSED,
            lambda f: not f.budgets and f.adaptive and not f.shows_thinking,
        ),
        (
            "claude-sonnet-4-6",
            rules.ADAPTIVE_REFUSED,
            lambda f: f.budgets and not f.adaptive and not f.efforts,
        ),
        ("claude-opus-4-6", rules.EFFORT_REFUSED, lambda f: f.efforts == ()),
        (
            "claude-opus-4-8",
            "This model does not support effort level 'max'. Supported levels: high, low, medium.",
            lambda f: f.efforts == ("low", "medium", "high"),
        ),
        ("claude-opus-6-0", "`top_p` is deprecated for this model.", lambda f: not f.sampling),
        (
            "claude-opus-6-0",
            "temperature is deprecated for this model.",
            lambda f: not f.sampling,
        ),  # Bedrock's
        ("claude-opus-6-0", rules.FORCED_TOOL_REFUSED, lambda f: f.thinks_unasked),
        ("claude-opus-6-0", rules.SAMPLING_PAIR_REFUSED, lambda f: not f.sampling_pair),
        ("claude-opus-4-8", rules.FORMAT_REFUSED, lambda f: not f.json_schema),
        ("claude-opus-4-6", "output_config.effort: Extra inputs are not permitted", lambda f: not f.efforts),
    ],
)
def test_m26_08_each_known_refusal_teaches_what_it_says(model: str, message: str, what: Any) -> None:
    rewrite = rewrite_for(_prepared(model), 400, _refused(message))
    assert rewrite is not None and rewrite.family is not None and what(rewrite.family), rewrite


def test_m26_08_only_a_400_teaches() -> None:
    assert rewrite_for(_prepared("claude-opus-6-0"), 500, _refused(rules.ENABLED_REFUSED)) is None


async def test_m26_08_a_gateway_without_structured_outputs_gets_the_forced_tool_after_one_rewrite(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Bedrock refuses ``output_config.format`` on Opus 4.7/4.8 (models.dev#1765) where the direct API
    takes it: played by an upstream whose claude-opus-4-8 behaves like Opus 4.1. The answer comes back
    as the message content either way."""
    caplog.set_level(logging.INFO, logger="rawproxy")
    fake.behaves_like["claude-opus-4-8"] = "claude-opus-4-1"
    fake.enqueue(Script(text="", tool_calls=[ToolCall(name="json_answer", arguments={"n": 1})]))
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY)
    body = {
        "model": "claude-opus-4-8",
        "messages": [{"role": "user", "content": "n?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}},
        },
    }
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(proxy.url + "/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert orjson.loads(answer.json()["choices"][0]["message"]["content"]) == {"n": 1}
    first, second = sent(fake)
    assert first["output_config"]["format"]["type"] == "json_schema" and "tools" not in first
    assert "output_config" not in second and second["tool_choice"] == {"type": "tool", "name": "json_answer"}
    assert any("no JSON schema" in r.getMessage() for r in caplog.records)


async def test_m26_08_temperature_and_top_p_together_are_cured_once(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """A model no table knows that takes one or the other (as Claude 4.6 does): top_p is left out."""
    fake.behaves_like["claude-opus-6-0"] = "claude-sonnet-4-6"
    proxy = await proxy_factory(anthropic_upstream=fake.anthropic_url, anthropic_key="k", **ANTHROPIC_ONLY)
    body = {
        "model": "claude-opus-6-0",
        "temperature": 0.2,
        "top_p": 0.9,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with httpx.AsyncClient(timeout=5) as client:
        first = await client.post(proxy.url + "/v1/chat/completions", json=body)
        second = await client.post(proxy.url + "/v1/chat/completions", json=body)
    assert first.status_code == 200 and second.status_code == 200
    bodies = sent(fake)
    assert len(bodies) == 3 and "top_p" in bodies[0]
    assert all(b["temperature"] == 0.2 and "top_p" not in b for b in bodies[1:])
