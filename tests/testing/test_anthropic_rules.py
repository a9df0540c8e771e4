"""The fake upstream's strict mode against the real API: on every recorded exchange with api.anthropic.com
(tests/fixtures/transcripts/anthropic_messages, each with its provenance), the fake must take what the
API took, and refuse what it refused with the API's own words (M26; anthropic_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rawproxy.testing.fake_upstream.anthropic_rules import (
    ADAPTIVE_REFUSED,
    DISABLED_REFUSED,
    ENABLED_REFUSED,
    FORCED_TOOL_REFUSED,
    SAMPLING_PAIR_REFUSED,
    TEMPERATURE_WITH_THINKING,
    refusal,
)
from tests.support.transcripts import Transcript, load

RECORDED = [t for t in load("anthropic_messages") if isinstance(t.request_body.get("model"), str)]


@pytest.mark.parametrize("t", [t for t in RECORDED if t.status < 400], ids=lambda t: t.name)
def test_m26_the_fake_takes_what_the_api_took(t: Transcript) -> None:
    assert refusal(t.request_body) is None


def _message(t: Transcript) -> str:
    data: Any = t.json()
    return str(data["error"]["message"])


@pytest.mark.parametrize(
    "t", [t for t in RECORDED if t.status == 400 and refusal(t.request_body)], ids=lambda t: t.name
)
def test_m26_what_the_fake_refuses_the_api_refused_in_the_same_words(t: Transcript) -> None:
    assert refusal(t.request_body) == _message(t)


def test_m26_at_least_one_recorded_refusal_is_reproduced() -> None:
    """So that the test above cannot pass by refusing nothing."""
    assert any(t.status == 400 and refusal(t.request_body) for t in RECORDED)


def body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 2048, "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize(
    "request_body, refused",
    [
        (body("claude-opus-4-8", thinking={"type": "enabled", "budget_tokens": 1024}), ENABLED_REFUSED),
        (body("claude-opus-4-8", thinking={"type": "adaptive"}), None),
        (body("claude-opus-4-8", thinking={"type": "disabled"}), None),  # Opus 4.7/4.8 may switch it off
        (body("claude-fable-5", thinking={"type": "disabled"}), DISABLED_REFUSED),
        (body("claude-sonnet-4-5", thinking={"type": "adaptive"}), ADAPTIVE_REFUSED),
        (body("claude-sonnet-4-5", thinking={"type": "enabled", "budget_tokens": 1024}), None),
        (
            body("claude-haiku-4-5", output_config={"effort": "low"}),
            "This model does not support the effort parameter.",
        ),
        (body("claude-opus-4-8", temperature=0.2), "`temperature` is deprecated for this model."),
        (body("claude-opus-4-8", temperature=1), None),  # 1 is the value it has
        (body("claude-opus-4-8", top_p=1), "`top_p` is deprecated for this model."),  # any top_p
        (body("claude-opus-4-7", top_k=0), "`top_k` is deprecated for this model."),
        (body("claude-sonnet-4-6", temperature=0.2), None),
        (body("claude-sonnet-4-6", top_p=0.9), None),
        (body("claude-sonnet-4-6", temperature=0.2, top_p=0.9), SAMPLING_PAIR_REFUSED),  # one or the other
        (body("claude-opus-4-1", temperature=0.2, top_p=0.9), SAMPLING_PAIR_REFUSED),
        (body("claude-3-7-sonnet-latest", temperature=0.2, top_p=0.9), None),  # before Opus 4.1: both
        (
            body("claude-sonnet-4-6", thinking={"type": "adaptive"}, temperature=0.5),
            TEMPERATURE_WITH_THINKING,  # with thinking on, this wins over "deprecated"
        ),
        (body("claude-fable-5", tool_choice={"type": "any"}), FORCED_TOOL_REFUSED),  # thinks unasked
        (body("claude-opus-4-8", tool_choice={"type": "any"}), None),  # thinks only when asked
        (body("some-local-model", thinking={"type": "adaptive"}, temperature=0.3), None),  # not Claude
    ],
)
def test_m26_refusals_at_each_rule(request_body: dict[str, Any], refused: str | None) -> None:
    assert refusal(request_body) == refused
