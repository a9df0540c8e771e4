"""The providers that think, and their request-side switches (issue 16, CONFORMANCE.md RS-06): guessed from
the base URL like the others; what they send back rides the carrier with any profile, so a profile holds
only what the request must say. Sources: tests/fixtures/research/reasoning_state_2026.md (GLM's
thinking-mode docs, DashScope's deep-thinking docs, MiniMax's OpenAI API docs, Moonshot's K2 guide)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rawproxy import ir, profiles
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import prepare_request


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://api.moonshot.ai/v1", "kimi"),
        ("https://api.moonshot.cn/v1", "kimi"),
        ("https://open.bigmodel.cn/api/paas/v4", "glm"),
        ("https://api.z.ai/api/paas/v4/", "glm"),
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen"),
        ("https://api.minimax.io/v1", "minimax"),
        ("https://api.minimaxi.com/v1", "minimax"),
    ],
)
def test_rs_06_the_thinking_providers_are_known_by_their_url(url: str, name: str) -> None:
    assert profiles.guess_profile(url).name == name


def _body(profile: str, thinking: bool) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4000,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if thinking:
        request["thinking"] = {"type": "enabled", "budget_tokens": 2000}
    prepared = prepare_request(
        anthropic_messages,
        openai_chat,
        anthropic_messages.parse_request(orjson.dumps(request)),
        upstream_model="m",
        profile=profiles.PROFILES[profile],
        max_output_tokens=None,
    )
    out: dict[str, Any] = orjson.loads(prepared.body)
    return out


@pytest.mark.parametrize(
    ("profile", "fields"),
    [
        ("glm", {"thinking": {"type": "enabled", "clear_thinking": False}}),
        ("qwen", {"enable_thinking": True, "preserve_thinking": True}),
    ],
)
def test_rs_06_a_thinking_request_carries_the_providers_switch(profile: str, fields: dict[str, Any]) -> None:
    body = _body(profile, thinking=True)
    assert {k: body[k] for k in fields} == fields
    assert not fields.keys() & _body(profile, thinking=False).keys()  # only when the client asked


def test_rs_04_minimax_splits_its_reasoning_on_every_request() -> None:
    """MiniMax M2.x thinks whether asked or not; reasoning_split puts that reasoning in reasoning_details
    (which go back unchanged) instead of <think> tags in the content."""
    for thinking in (True, False):
        assert _body("minimax", thinking=thinking)["reasoning_split"] is True


def test_rs_06_kimi_needs_no_switch_and_generic_gets_none() -> None:
    for name in ("kimi", "generic"):
        body = _body(name, thinking=True)
        assert not {"thinking", "enable_thinking", "preserve_thinking", "reasoning_split"} & body.keys()


def test_rs_06_minimax_think_tags_become_thinking() -> None:
    """Where reasoning_split is ignored, MiniMax writes <think> into the content: still thinking."""
    answer = {
        "id": "c",
        "model": "MiniMax-M2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "<think>Why not.</think>Yes."}}],
    }
    ctx = ir.Context(
        client_model="c", upstream_model="MiniMax-M2", thinking=True, profile=profiles.PROFILES["minimax"]
    )
    content = openai_chat.parse_response(orjson.dumps(answer), ctx).content
    assert [(type(b).__name__, getattr(b, "thinking", getattr(b, "text", ""))) for b in content] == [
        ("ThinkingBlock", "Why not."),
        ("TextBlock", "Yes."),
    ]
