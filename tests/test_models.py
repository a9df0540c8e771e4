"""models.py, the capability registry: which family a name belongs to, and efforts on its scale
(tests/CONFORMANCE.md M26; the sources are in the module's docstring)."""

from __future__ import annotations

import pytest

from rawproxy.models import UNKNOWN, anthropic_effort, family_of


@pytest.mark.parametrize(
    "model, family",
    [
        ("claude-fable-1-0", "always-thinking"),
        ("claude-fable-5-1", "always-thinking"),
        ("claude-mythos-5", "always-thinking"),
        ("claude-opus-5-5", "always-thinking"),  # before claude-opus-5*: it refuses "disabled"
        ("claude-mythos-preview", "mythos-preview"),
        ("claude-sonnet-5-0", "claude-5"),
        ("claude-opus-5", "claude-5"),
        ("claude-opus-4-8", "opus-4.7+"),
        ("claude-opus-4-7-20260416", "opus-4.7+"),
        ("CLAUDE-OPUS-4-8", "opus-4.7+"),  # names are matched lower-cased
        ("claude-sonnet-4-6", "claude-4.6"),
        ("claude-opus-4-6", "claude-4.6"),
        ("claude-opus-4-5-20251101", "opus-4.5"),
        ("claude-sonnet-4-5", UNKNOWN.name),  # budgets, sampling, no effort: the pre-2026 rules
        ("claude-haiku-4-5-20251001", UNKNOWN.name),
        ("claude-3-7-sonnet-latest", UNKNOWN.name),
        ("claude-opus-4-1", UNKNOWN.name),
    ],
)
def test_m26_01_a_name_finds_its_family(model: str, family: str) -> None:
    assert family_of(model).name == family


def test_m26_02_adaptive_only_families_refuse_budgets_and_the_rest_take_them() -> None:
    for model in ("claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-5-0", "claude-fable-1"):
        assert not family_of(model).budgets and family_of(model).adaptive, model
    for model in ("claude-sonnet-4-6", "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"):
        assert family_of(model).budgets, model
    assert not family_of("claude-sonnet-4-5").adaptive and not family_of("claude-haiku-4-5").adaptive


def test_m26_03_sampling_removed_from_opus_4_7_on() -> None:
    assert not family_of("claude-opus-4-7").sampling and not family_of("claude-sonnet-5-0").sampling
    assert family_of("claude-sonnet-4-6").sampling and family_of("claude-haiku-4-5").sampling


@pytest.mark.parametrize(
    "model, asked, sent",
    [
        ("claude-opus-4-8", "minimal", "low"),
        ("claude-opus-4-8", "low", "low"),
        ("claude-opus-4-8", "medium", "medium"),
        ("claude-opus-4-8", "high", "high"),
        ("claude-opus-4-8", "xhigh", "xhigh"),
        ("claude-sonnet-4-6", "xhigh", "high"),  # the 4.6 models refuse xhigh: the nearest lower value
        ("claude-mythos-preview", "xhigh", "high"),  # so does Mythos Preview
        ("claude-opus-4-5", "xhigh", "high"),  # Opus 4.5 takes low, medium, high
        ("claude-sonnet-4-5", "high", None),  # refuses output_config.effort altogether
        ("claude-haiku-4-5", "low", None),
        ("claude-opus-4-8", None, None),
        ("claude-opus-4-8", "bogus", None),
    ],
)
def test_m26_04_effort_on_the_familys_scale(model: str, asked: str | None, sent: str | None) -> None:
    assert anthropic_effort(asked, family_of(model)) == sent


def test_m26_06_fable_and_mythos_think_unasked_and_refuse_disabled() -> None:
    for model in ("claude-fable-1", "claude-mythos-1"):
        family = family_of(model)
        assert family.thinks_unasked and not family.may_disable
    assert family_of("claude-sonnet-5-0").thinks_unasked and family_of("claude-sonnet-5-0").may_disable
    assert not family_of("claude-opus-4-8").thinks_unasked  # Opus 4.7/4.8 think only when asked
