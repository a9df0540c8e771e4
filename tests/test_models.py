"""models.py, the capability registry: which family a name belongs to, and efforts on its scale
(tests/CONFORMANCE.md M26; the sources are in the module's docstring)."""

from __future__ import annotations

import pytest

from rawproxy.models import UNKNOWN, anthropic_effort, family_of, openai_effort


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
        ("claude-sonnet-4-5", "claude-4.5"),  # budgets, sampling, no effort, structured outputs
        ("claude-haiku-4-5-20251001", "claude-4.5"),
        ("us.anthropic.claude-opus-4-6-v1:0", "claude-4.6"),  # a Bedrock id
        ("anthropic/claude-opus-4-8", "opus-4.7+"),  # a router's provider prefix
        ("claude-3-7-sonnet-latest", UNKNOWN.name),  # the pre-2026 rules: budgets, sampling
        ("claude-opus-4-1", "opus-4.1"),
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


@pytest.mark.parametrize(
    "model, family, reasoning",
    [
        ("gpt-5.6-terra", "gpt-5.6", True),
        ("gpt-5.5-pro", "gpt-5.4/5.5", True),
        ("gpt-5.2-codex", "gpt-5.2", True),
        ("gpt-5.1-codex-max", "gpt-5.1-codex-max", True),  # before gpt-5.1*: it takes xhigh
        ("gpt-5.1", "gpt-5.1", True),
        ("gpt-5-pro", "gpt-5-pro", True),  # before gpt-5*: high only
        ("openai/gpt-5-mini", "gpt-5", True),
        ("o3-mini", "o-series", True),
        ("o4-mini-2025-04-16", "o-series", True),
        ("gpt-4.1-mini", "gpt-4.1", False),
        ("gpt-4o", "gpt-4o", False),
        ("deepseek-chat", "deepseek-chat", False),
        ("qwen3-coder", UNKNOWN.name, False),
    ],
)
def test_m26_01_openai_names_find_their_family_on_the_same_table(
    model: str, family: str, reasoning: bool
) -> None:
    assert (family_of(model).name, family_of(model).reasoning) == (family, reasoning)


@pytest.mark.parametrize(
    "model, asked, sent",
    [
        ("gpt-5.6", "max", "max"),  # gpt-5.6 added max
        ("gpt-5.2", "max", "xhigh"),  # clamped to the nearest lower value the model takes
        ("gpt-5.1", "max", "high"),
        ("gpt-5.1", "xhigh", "high"),
        ("gpt-5", "xhigh", "high"),
        ("gpt-5", "low", "low"),
        ("gpt-5-pro", "low", "high"),  # high only: the lowest it takes
        ("o3", "max", "high"),
        ("qwen3-coder", "max", "high"),  # unknown: low, medium or high, what every reasoning API takes
        ("qwen3-coder", "xhigh", "high"),
        ("qwen3-coder", "medium", "medium"),
        ("claude-opus-4-8", "max", "high"),  # a Claude name behind an OpenAI upstream: the classic scale
    ],
)
def test_m26_04_anthropic_effort_on_the_openai_models_scale(model: str, asked: str, sent: str) -> None:
    assert openai_effort(asked, family_of(model)) == sent


@pytest.mark.parametrize(
    "model, cap, window",
    [
        ("claude-opus-4-8", 128_000, 1_000_000),  # platform.claude.com/docs/*/models/opus-4-8/overview
        ("claude-sonnet-4-6", 128_000, 1_000_000),
        ("claude-fable-5-1", 128_000, 1_000_000),  # the models overview table
        ("claude-haiku-4-5", 64_000, 200_000),
        ("claude-opus-4-5", 64_000, 200_000),
        ("gpt-5", 128_000, 400_000),
        ("gpt-4o-mini", 16384, 128_000),
        ("deepseek-chat", 8192, None),
        ("claude-3-7-sonnet", None, None),  # not known: the upstream's own /models decides
    ],
)
def test_the_registry_knows_output_caps_and_context_windows(
    model: str, cap: int | None, window: int | None
) -> None:
    assert (family_of(model).output_cap, family_of(model).context_window) == (cap, window)


def test_m26_07_structured_outputs_from_the_4_5_generation_on() -> None:
    for model in (
        "claude-haiku-4-5",
        "claude-opus-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-8",
        "claude-fable-5",
    ):
        assert family_of(model).json_schema, model
    assert not family_of("claude-opus-4-1").json_schema and not family_of("claude-3-7-sonnet").json_schema
    assert not family_of("deepseek-chat").json_schema and family_of("gpt-4o").json_schema
