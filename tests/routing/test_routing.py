"""A2O-R32 and issue 5: rawproxy/routing/ (the Router: force_model, content rules, routes, the flags'
map and tiers, unchanged; resolve_model and parse_model_map, pure and table-driven), RequestFacts in both
client dialects, upstream choice, and Upstream's keys, client-key forwarding and Azure URLs. Table-driven:
(config, dialect, body, client model) -> (upstream name, model, why)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rawproxy.config import Config
from rawproxy.routing import (
    AZURE_API_VERSION,
    ModelRoutes,
    RequestFacts,
    Route,
    Router,
    RouterSpec,
    Rules,
    Target,
    UpstreamSpec,
    make_upstream,
    parse_model_map,
    resolve_model,
    upstream_for,
)

# ---------------------------------------------------------------------------------- configurations

CHEAP = UpstreamSpec(
    name="cheap", protocol="openai", base_url="http://127.0.0.1:18081/v1", api_keys=("sk-cheap",)
)
BIG = UpstreamSpec(
    name="big",
    protocol="openai",
    base_url="http://127.0.0.1:18083/v1",
    models=("llama*", "qwen3-coder", "tier-*"),
)
CLAUDE = UpstreamSpec(
    name="claude", protocol="anthropic", base_url="http://127.0.0.1:18082", api_keys=("sk-ant",)
)
THRESHOLD = 5000
RULES = Rules(
    long_context=Target("big", "long-model"),
    image=Target("big", "vision-model"),
    web_search=Target("big", "search-model"),
    background=Target("cheap", "bg-model"),
    think=Target("big", "reasoner-model"),
    long_context_threshold=THRESHOLD,
)
ROUTES = (
    Route(match="claude-*haiku*", upstream="cheap", model="small-model", fallbacks=(Target("big", None),)),
    Route(match="claude-*-4-6", upstream="claude"),
    Route(
        match="claude-sonnet-4-6", upstream="big", model="exact-sonnet"
    ),  # exact, after a glob that matches
    Route(match="*haiku*", upstream="big", model="second-haiku-glob"),
    Route(
        match="gpt-*",
        upstream="cheap",
        overrides=(("max_tokens", 4096), ("temperature", 0.2)),
        fallbacks=(Target("big", None), Target("claude", "claude-fallback")),
        compact=True,
    ),
)
TIERS = ModelRoutes(
    model_map={"my-alias": "claude-3-7-sonnet-latest", "claude-opus-4-8": "tier-mapped"},
    big="tier-big",
    middle="tier-middle",
    small="tier-small",
    default="tier-default",
)
FULL = Config(port=0, upstreams=(CHEAP, BIG, CLAUDE), route_table=ROUTES, rules=RULES, routes=TIERS)
CONFIGS: dict[str, Config] = {
    "full": FULL,
    "no_rules": replace(FULL, rules=Rules()),
    "no_tiers": replace(FULL, rules=Rules(), routes=ModelRoutes()),
    "globs_swapped": replace(
        FULL,
        rules=Rules(),
        route_table=(
            Route(match="*haiku*", upstream="big", model="first-glob"),
            Route(match="claude-*haiku*", upstream="cheap", model="second-glob"),
        ),
    ),
    "long_context_only": replace(
        FULL, rules=Rules(long_context=Target("cheap", None), long_context_threshold=THRESHOLD)
    ),
    "forced": replace(FULL, force_model=Target("cheap", "forced-model")),
    "forced_bare_claude": replace(FULL, force_model=Target(None, "claude-forced-1")),
    "forced_bare_listed": replace(FULL, force_model=Target(None, "qwen3-coder")),
    "forced_upstream_only": replace(FULL, force_model=Target("big", None)),
}

# ------------------------------------------------------------------------------------------ bodies

LONG_TEXT = "word " * 6000  # 30000 characters: about 7500 tokens, over THRESHOLD
BASE64 = "A" * 400_000  # would be about 100000 tokens if it were counted as text
IMAGE: dict[str, Any] = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": BASE64},
}
IMAGE_URL = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + BASE64}}
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
THINK_ENABLED = {"thinking": {"type": "enabled", "budget_tokens": 8000}}
# Claude Code's every turn (CONFORMANCE.md, "Claude Code traffic profile"): not a thinking turn.
CLAUDE_CODE = {"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "medium"}}


def anth(*content: Any, **extra: Any) -> dict[str, Any]:
    """An Anthropic Messages body with one user turn."""
    return {"max_tokens": 1024, "messages": [{"role": "user", "content": list(content) or "hi"}], **extra}


def oai(*content: Any, **extra: Any) -> dict[str, Any]:
    """An OpenAI Chat Completions body with one user turn."""
    return {"messages": [{"role": "user", "content": list(content) or "hi"}], **extra}


A_TEXT = {"type": "text", "text": "what is this?"}
O_TEXT = {"type": "text", "text": "what is this?"}
A_LONG = {"type": "text", "text": LONG_TEXT}
A_TOOL_RESULT_IMAGE = {
    "type": "tool_result",
    "tool_use_id": "toolu_01",
    "content": [{"type": "text", "text": "screenshot"}, IMAGE],
}


def decide(config: str, dialect: Any, body: dict[str, Any], model: str) -> tuple[str, str, str]:
    decision = CONFIGS[config].router().decide(model, RequestFacts({**body, "model": model}, dialect))
    return decision.upstream.name, decision.model, decision.why


Row = tuple[str, Any, dict[str, Any], str, tuple[str, str, str]]


def table(rows: dict[str, Row]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        ("config", "dialect", "body", "model", "expected"),
        [pytest.param(*row, id=name) for name, row in rows.items()],
    )


# ------------------------------------------------------------------------- every rule, both dialects

THINK = ("big", "reasoner-model", "rule:think")
ROUTE_46 = ("claude", "claude-opus-4-6", "route:claude-*-4-6")
WEB = ("big", "search-model", "rule:web_search")
IMG = ("big", "vision-model", "rule:image")
LONG = ("big", "long-model", "rule:long_context")
GPT = ("cheap", "gpt-4o", "route:gpt-*")
M46 = "claude-opus-4-6"

RULE_ROWS: dict[str, Row] = {
    # think: Anthropic
    "think_enabled_budget": ("full", "anthropic", anth(**THINK_ENABLED), M46, THINK),
    "think_adaptive_high": (
        "full",
        "anthropic",
        anth(**{**CLAUDE_CODE, "output_config": {"effort": "high"}}),
        M46,
        THINK,
    ),
    "think_adaptive_max": (
        "full",
        "anthropic",
        anth(**{**CLAUDE_CODE, "output_config": {"effort": "max"}}),
        M46,
        THINK,
    ),
    "no_think_claude_code_adaptive_medium": ("full", "anthropic", anth(**CLAUDE_CODE), M46, ROUTE_46),
    "no_think_adaptive_low": (
        "full",
        "anthropic",
        anth(**{**CLAUDE_CODE, "output_config": {"effort": "low"}}),
        M46,
        ROUTE_46,
    ),
    "no_think_adaptive_without_effort": (
        "full",
        "anthropic",
        anth(thinking={"type": "adaptive"}),
        M46,
        ROUTE_46,
    ),
    "no_think_disabled": ("full", "anthropic", anth(thinking={"type": "disabled"}), M46, ROUTE_46),
    "no_think_without_thinking": ("full", "anthropic", anth(), M46, ROUTE_46),
    "no_think_openai_field_in_anthropic_body": (
        "full",
        "anthropic",
        anth(reasoning_effort="high"),
        M46,
        ROUTE_46,
    ),
    # think: OpenAI
    "think_openai_reasoning_effort_high": ("full", "openai", oai(reasoning_effort="high"), "gpt-4o", THINK),
    "think_openai_reasoning_effort_low": ("full", "openai", oai(reasoning_effort="low"), "gpt-4o", THINK),
    "think_openai_reasoning_object_effort": (
        "full",
        "openai",
        oai(reasoning={"effort": "high"}),
        "gpt-4o",
        THINK,
    ),
    "think_openai_reasoning_object_enabled": (
        "full",
        "openai",
        oai(reasoning={"enabled": True}),
        "gpt-4o",
        THINK,
    ),
    "no_think_openai_reasoning_effort_minimal": (
        "full",
        "openai",
        oai(reasoning_effort="minimal"),
        "gpt-4o",
        GPT,
    ),
    "no_think_openai_reasoning_effort_none": ("full", "openai", oai(reasoning_effort="none"), "gpt-4o", GPT),
    "no_think_openai_plain": ("full", "openai", oai(), "gpt-4o", GPT),
    # web_search
    "web_search_anthropic_tool_20250305": ("full", "anthropic", anth(tools=[WEB_SEARCH_TOOL]), M46, WEB),
    "web_search_openai_web_search_options": ("full", "openai", oai(web_search_options={}), "gpt-4o", WEB),
    "no_web_search_openai_function_named_web_search": (
        "full",
        "openai",
        oai(tools=[{"type": "function", "function": {"name": "web_search", "parameters": {}}}]),
        "gpt-4o",
        GPT,
    ),
    "no_web_search_anthropic_custom_tool": (
        "full",
        "anthropic",
        anth(tools=[{"name": "web_search", "input_schema": {"type": "object"}}]),
        M46,
        ROUTE_46,
    ),
    # image
    "image_anthropic_top_level_block": ("full", "anthropic", anth(A_TEXT, IMAGE), M46, IMG),
    "image_anthropic_inside_tool_result": ("full", "anthropic", anth(A_TOOL_RESULT_IMAGE), M46, IMG),
    "image_openai_image_url_part": ("full", "openai", oai(O_TEXT, IMAGE_URL), "gpt-4o", IMG),
    "no_image_anthropic_text_blocks": ("full", "anthropic", anth(A_TEXT), M46, ROUTE_46),
    "no_image_openai_text_part": ("full", "openai", oai(O_TEXT), "gpt-4o", GPT),
    # long_context: over / under the threshold; base64 never counts as text
    "long_context_anthropic_over_threshold": ("full", "anthropic", anth(A_LONG), M46, LONG),
    "long_context_anthropic_string_content_over": (
        "full",
        "anthropic",
        {"messages": [{"role": "user", "content": LONG_TEXT}]},
        M46,
        LONG,
    ),
    "long_context_anthropic_system_over": ("full", "anthropic", anth(system=LONG_TEXT), M46, LONG),
    "long_context_openai_over_threshold": ("full", "openai", oai(LONG_TEXT), "gpt-4o", LONG),
    "no_long_context_under_threshold": ("full", "anthropic", anth(A_TEXT), M46, ROUTE_46),
    "huge_base64_image_is_image_not_long_context": ("full", "anthropic", anth(A_TEXT, IMAGE), M46, IMG),
    "upstream_only_target_keeps_model": (
        "long_context_only",
        "openai",
        oai(LONG_TEXT),
        "gpt-4o",
        ("cheap", "gpt-4o", "rule:long_context"),
    ),
    "huge_base64_image_alone_is_not_long_context": (
        "long_context_only",
        "anthropic",
        anth(IMAGE),
        M46,
        ROUTE_46,
    ),
    "huge_base64_image_in_tool_result_is_not_long_context": (
        "long_context_only",
        "anthropic",
        anth(A_TOOL_RESULT_IMAGE),
        M46,
        ROUTE_46,
    ),
    "huge_data_url_image_is_not_long_context": ("long_context_only", "openai", oai(IMAGE_URL), "gpt-4o", GPT),
    # background: Claude Code's haiku side calls
    "background_haiku": (
        "full",
        "anthropic",
        anth(**CLAUDE_CODE),
        "claude-haiku-4-5-20251001",
        ("cheap", "bg-model", "rule:background"),
    ),
    "background_haiku_any_case": (
        "full",
        "anthropic",
        anth(),
        "Claude-3-Haiku",
        ("cheap", "bg-model", "rule:background"),
    ),
    "no_background_for_sonnet": (
        "full",
        "anthropic",
        anth(**CLAUDE_CODE),
        "claude-sonnet-4-6",
        ("big", "exact-sonnet", "route:claude-sonnet-4-6"),
    ),
    "background_haiku_openai_client": (
        "full",
        "openai",
        oai(),
        "claude-3-5-haiku-latest",
        ("cheap", "bg-model", "rule:background"),
    ),
}


@table(RULE_ROWS)
def test_a2o_r32_each_content_rule_fires_only_on_its_request_shape(
    config: str, dialect: Any, body: dict[str, Any], model: str, expected: tuple[str, str, str]
) -> None:
    assert decide(config, dialect, body, model) == expected


# ------------------------------------------------------------------------------ precedence pairs

EVERYTHING_A = anth(A_LONG, IMAGE, tools=[WEB_SEARCH_TOOL], **THINK_ENABLED)
EVERYTHING_O = oai(LONG_TEXT, IMAGE_URL, web_search_options={}, reasoning_effort="high")
HAIKU = "claude-haiku-4-5-20251001"
FORCED = ("cheap", "forced-model", "force_model")

PRECEDENCE_ROWS: dict[str, Row] = {
    # force_model beats every rule and every route
    "force_model_beats_all_rules_anthropic": ("forced", "anthropic", EVERYTHING_A, HAIKU, FORCED),
    "force_model_beats_all_rules_openai": ("forced", "openai", EVERYTHING_O, "gpt-4o", FORCED),
    "force_model_beats_route": ("forced", "openai", oai(), "gpt-4o", FORCED),
    "force_model_beats_tiers": ("forced", "anthropic", anth(), "claude-opus-4-1", FORCED),
    "force_bare_model_upstream_by_claude_heuristic": (
        "forced_bare_claude",
        "anthropic",
        EVERYTHING_A,
        "gpt-4o",
        ("claude", "claude-forced-1", "force_model"),
    ),
    "force_bare_model_upstream_by_models_list": (
        "forced_bare_listed",
        "anthropic",
        anth(),
        HAIKU,
        ("big", "qwen3-coder", "force_model"),
    ),
    "force_upstream_only_keeps_client_model": (
        "forced_upstream_only",
        "anthropic",
        anth(),
        HAIKU,
        ("big", HAIKU, "force_model"),
    ),
    # rules in the documented order when several apply: long_context, image, web_search, background, think
    "long_context_beats_image_web_search_background_think": ("full", "anthropic", EVERYTHING_A, HAIKU, LONG),
    "image_beats_web_search_background_think": (
        "full",
        "anthropic",
        anth(IMAGE, tools=[WEB_SEARCH_TOOL], **THINK_ENABLED),
        HAIKU,
        IMG,
    ),
    "web_search_beats_background_think": (
        "full",
        "anthropic",
        anth(tools=[WEB_SEARCH_TOOL], **THINK_ENABLED),
        HAIKU,
        WEB,
    ),
    "background_beats_think": (
        "full",
        "anthropic",
        anth(**THINK_ENABLED),
        HAIKU,
        ("cheap", "bg-model", "rule:background"),
    ),
    "openai_long_context_beats_image_web_search_think": ("full", "openai", EVERYTHING_O, "gpt-4o", LONG),
    "openai_image_beats_web_search_think": (
        "full",
        "openai",
        oai(IMAGE_URL, web_search_options={}, reasoning_effort="high"),
        "gpt-4o",
        IMG,
    ),
    "openai_web_search_beats_think": (
        "full",
        "openai",
        oai(web_search_options={}, reasoning_effort="high"),
        "gpt-4o",
        WEB,
    ),
    # each rule beats the routes (gpt-4o has the route gpt-*, haiku the route claude-*haiku*)
    "long_context_beats_route": ("full", "openai", oai(LONG_TEXT), "gpt-4o", LONG),
    "image_beats_route": ("full", "openai", oai(IMAGE_URL), "gpt-4o", IMG),
    "web_search_beats_route": ("full", "openai", oai(web_search_options={}), "gpt-4o", WEB),
    "background_beats_route": ("full", "openai", oai(), HAIKU, ("cheap", "bg-model", "rule:background")),
    "think_beats_route": ("full", "openai", oai(reasoning_effort="high"), "gpt-4o", THINK),
    "think_beats_exact_route": ("full", "anthropic", anth(**THINK_ENABLED), "claude-sonnet-4-6", THINK),
    # routes: an exact match beats an earlier glob; globs in file order
    "exact_route_beats_earlier_glob": (
        "no_rules",
        "anthropic",
        anth(),
        "claude-sonnet-4-6",
        ("big", "exact-sonnet", "route:claude-sonnet-4-6"),
    ),
    "glob_route_when_no_exact": ("no_rules", "anthropic", anth(), M46, ROUTE_46),
    "first_glob_in_file_order": (
        "no_rules",
        "anthropic",
        anth(),
        HAIKU,
        ("cheap", "small-model", "route:claude-*haiku*"),
    ),
    "first_glob_in_file_order_swapped": (
        "globs_swapped",
        "anthropic",
        anth(),
        HAIKU,
        ("big", "first-glob", "route:*haiku*"),
    ),
    "later_glob_when_earlier_does_not_match": (
        "no_rules",
        "anthropic",
        anth(),
        "my-haiku",
        ("big", "second-haiku-glob", "route:*haiku*"),
    ),
    "glob_is_case_sensitive": ("no_rules", "openai", oai(), "GPT-4o", ("cheap", "GPT-4o", "default")),
    # routes beat the flags' tiers and model map
    "route_beats_small_tier": (
        "no_rules",
        "anthropic",
        anth(),
        HAIKU,
        ("cheap", "small-model", "route:claude-*haiku*"),
    ),
    "route_beats_big_tier": ("no_rules", "anthropic", anth(), M46, ROUTE_46),
    "route_without_model_keeps_client_model": (
        "no_rules",
        "openai",
        oai(),
        "gpt-4o-mini",
        ("cheap", "gpt-4o-mini", "route:gpt-*"),
    ),
    # model map and tiers beat unchanged
    "model_map_beats_tier_keyword": (
        "no_rules",
        "anthropic",
        anth(),
        "claude-opus-4-8",
        ("big", "tier-mapped", "model_map"),
    ),
    "model_map_target_upstream_by_claude_heuristic": (
        "no_rules",
        "openai",
        oai(),
        "my-alias",
        ("claude", "claude-3-7-sonnet-latest", "model_map"),
    ),
    "big_tier": ("no_rules", "anthropic", anth(), "claude-opus-4-1", ("big", "tier-big", "model_map")),
    "middle_tier": (
        "no_rules",
        "anthropic",
        anth(),
        "claude-sonnet-4-5",
        ("big", "tier-middle", "model_map"),
    ),
    "default_for_other_claude_names": (
        "no_rules",
        "anthropic",
        anth(),
        "claude-instant-1",
        ("big", "tier-default", "model_map"),
    ),
    "default_for_an_empty_model": ("no_rules", "anthropic", anth(), "", ("big", "tier-default", "model_map")),
    # unchanged
    "unchanged_non_claude_to_first_openai_upstream": (
        "no_rules",
        "openai",
        oai(),
        "mistral-large",
        ("cheap", "mistral-large", "default"),
    ),
    "unchanged_to_upstream_listing_it_by_glob": (
        "no_rules",
        "openai",
        oai(),
        "llama3:70b",
        ("big", "llama3:70b", "default"),
    ),
    "unchanged_to_upstream_listing_it_exactly": (
        "no_rules",
        "openai",
        oai(),
        "qwen3-coder",
        ("big", "qwen3-coder", "default"),
    ),
    "unchanged_claude_without_tiers_to_anthropic": (
        "no_tiers",
        "anthropic",
        anth(),
        "claude-fable-1",
        ("claude", "claude-fable-1", "default"),
    ),
    "unchanged_opus_without_tiers": (
        "no_tiers",
        "anthropic",
        anth(),
        "claude-opus-4-1",
        ("claude", "claude-opus-4-1", "default"),
    ),
}


@table(PRECEDENCE_ROWS)
def test_a2o_r32_router_precedence_force_rules_routes_tiers_unchanged(
    config: str, dialect: Any, body: dict[str, Any], model: str, expected: tuple[str, str, str]
) -> None:
    assert decide(config, dialect, body, model) == expected


def test_a2o_r32_rules_are_skipped_without_request_facts() -> None:
    decision = FULL.router().decide(HAIKU)
    assert (decision.upstream.name, decision.model, decision.why) == (
        "cheap",
        "small-model",
        "route:claude-*haiku*",
    )


def test_a2o_r32_a_proxy_without_rules_never_reads_the_body() -> None:
    class Exploding(dict[str, Any]):
        def get(self, *args: Any) -> Any:
            raise AssertionError("the body was read")

    facts = RequestFacts(Exploding(), "anthropic")
    assert CONFIGS["no_rules"].router().decide("gpt-4o", facts).why == "route:gpt-*"
    with pytest.raises(AssertionError, match="the body was read"):
        FULL.router().decide("gpt-4o", facts)


# ---------------------------------------------------------------------- what a route adds to a decision


def test_a2o_r32_route_overrides_fallbacks_and_compact_are_carried_in_the_decision() -> None:
    router = CONFIGS["no_rules"].router()
    decision = router.decide("gpt-4o", RequestFacts(oai(), "openai"))
    assert decision.overrides == (("max_tokens", 4096), ("temperature", 0.2))
    assert [(up.name, model) for up, model in decision.fallbacks] == [
        ("big", "gpt-4o"),
        ("claude", "claude-fallback"),
    ]
    assert decision.fallbacks[0][0] is router.upstreams["big"]
    assert decision.compact is True


def test_a2o_r32_fallback_naming_an_upstream_alone_takes_the_routes_model() -> None:
    decision = CONFIGS["no_rules"].router().decide(HAIKU, RequestFacts(anth(), "anthropic"))
    assert decision.model == "small-model"
    assert [(up.name, model) for up, model in decision.fallbacks] == [("big", "small-model")]
    assert (decision.overrides, decision.compact) == ((), False)


def test_a2o_r32_rule_and_tier_decisions_carry_no_route_extras() -> None:
    router = FULL.router()
    for decision in (
        router.decide("gpt-4o", RequestFacts(oai(reasoning_effort="high"), "openai")),  # gpt-* route not used
        router.decide("claude-opus-4-1", RequestFacts(anth(), "anthropic")),
    ):
        assert (decision.overrides, decision.fallbacks, decision.compact) == ((), (), False)


# ------------------------------------------------------------------------------- choosing an upstream


def ups(*specs: UpstreamSpec) -> dict[str, Any]:
    return {spec.name: make_upstream(spec) for spec in specs}


@pytest.mark.parametrize(
    ("specs", "model", "expected"),
    [
        pytest.param((CHEAP, BIG, CLAUDE), "llama3.1:8b", "big", id="models_glob"),
        pytest.param((CHEAP, BIG, CLAUDE), "qwen3-coder", "big", id="models_exact"),
        pytest.param((CHEAP, BIG, CLAUDE), "qwen3-coder-plus", "cheap", id="models_exact_is_not_a_prefix"),
        pytest.param((CHEAP, BIG, CLAUDE), "claude-sonnet-4-6", "claude", id="claude_to_anthropic"),
        pytest.param((CHEAP, BIG, CLAUDE), "Claude-Sonnet-4-6", "claude", id="claude_heuristic_ignores_case"),
        pytest.param((CLAUDE, CHEAP), "gpt-4o", "cheap", id="other_to_first_openai_even_if_listed_second"),
        pytest.param((CHEAP, CLAUDE), "anthropic/claude-x", "cheap", id="provider_prefixed_claude_is_other"),
        pytest.param((CLAUDE,), "gpt-4o", "claude", id="only_anthropic_takes_everything"),
        pytest.param((CHEAP, BIG), "claude-sonnet-4-6", "cheap", id="only_openai_takes_claude_names"),
        pytest.param(
            (CHEAP, replace(CLAUDE, models=("gpt-4o",))), "gpt-4o", "claude", id="models_list_beats_heuristic"
        ),
        pytest.param(
            (replace(CHEAP, models=("m*",)), replace(BIG, models=("m-*",))),
            "m-1",
            "cheap",
            id="first_listing_wins",
        ),
    ],
)
def test_a2o_r32_upstream_for_models_list_then_claude_heuristic(
    specs: tuple[UpstreamSpec, ...], model: str, expected: str
) -> None:
    assert upstream_for(model, ups(*specs)).name == expected


def test_a2o_r32_configured_models_lists_named_models_and_leaves_globs_out() -> None:
    config = replace(
        FULL,
        force_model=Target("cheap", "forced-model"),
        route_table=(*ROUTES, Route(match="my-exact", upstream="big", model="exact-target")),
    )
    models = config.router().configured_models()
    assert len(models) == len(set(models))
    assert set(models) == {
        # the flags' tiers and map (names and targets)
        "tier-big",
        "tier-middle",
        "tier-small",
        "tier-default",
        "my-alias",
        "claude-opus-4-8",
        "claude-3-7-sonnet-latest",
        "tier-mapped",
        # routes' exact matches and targets
        "claude-sonnet-4-6",
        "exact-sonnet",
        "my-exact",
        "exact-target",
        "small-model",
        "second-haiku-glob",
        # force_model and rule targets
        "forced-model",
        "long-model",
        "vision-model",
        "search-model",
        "bg-model",
        "reasoner-model",
        # upstreams' listed names (not their globs)
        "qwen3-coder",
    }


def test_a2o_r32_configured_models_is_empty_for_a_bare_configuration() -> None:
    assert Config(port=0, upstreams=(CHEAP,)).router().configured_models() == []


def test_a2o_r32_glob_match_cache_stays_bounded_for_5000_distinct_models() -> None:
    router = CONFIGS["no_rules"].router()
    for i in range(5000):
        decision = router.decide(f"gpt-{i}" if i % 2 else f"other-{i}")
        assert decision.why == ("route:gpt-*" if i % 2 else "default")
    assert 0 < len(router._matched) <= 1024
    assert router.decide("gpt-4999").why == "route:gpt-*"  # past the cache, still matched
    assert router.decide("x" * 300 + "haiku").why == "route:*haiku*"  # too long to cache, still matched
    assert len(router._matched) <= 1024


def test_a2o_r32_glob_match_cache_returns_the_same_route_twice() -> None:
    router = CONFIGS["no_rules"].router()
    first = router.decide("claude-3-5-haiku-latest")
    assert "claude-3-5-haiku-latest" in router._matched
    assert router.decide("claude-3-5-haiku-latest") == first


# ------------------------------------------------------------------------------- RequestFacts details


def test_request_facts_type_that_is_not_a_string_is_no_type_error() -> None:
    body = anth({"type": ["image"]}, {"type": {"nested": True}, "text": "hi"})
    facts = RequestFacts(body, "anthropic")
    assert facts.image is False
    assert facts.tokens > 0


def test_request_facts_counts_openai_tool_call_arguments_like_anthropic_tool_input() -> None:
    arguments = '{"path": "' + "x" * 40_000 + '"}'
    openai_body = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": arguments}}
                ],
            }
        ]
    }
    anthropic_body = {
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "x" * 40_000}}
                ],
            }
        ]
    }
    openai_tokens = RequestFacts(openai_body, "openai").tokens
    anthropic_tokens = RequestFacts(anthropic_body, "anthropic").tokens
    assert openai_tokens > 10_000
    assert abs(openai_tokens - anthropic_tokens) < 100


def test_request_facts_base64_counts_as_one_image_not_as_text() -> None:
    small = RequestFacts(anth(A_TEXT, {**IMAGE, "source": {**IMAGE["source"], "data": "AAAA"}}), "anthropic")
    huge = RequestFacts(anth(A_TEXT, IMAGE), "anthropic")
    assert huge.image and small.image
    assert huge.tokens == small.tokens < 2000


def test_request_facts_tool_definitions_count_toward_tokens() -> None:
    tools = [
        {"name": f"tool{i}", "description": "d" * 2000, "input_schema": {"type": "object"}} for i in range(20)
    ]
    assert RequestFacts(anth(tools=tools), "anthropic").tokens > 10_000
    assert RequestFacts(anth(), "anthropic").tokens < 20


# ------------------------------------------------------------------------------ keys and their headers


def auth_of(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n, v) for n, v in headers if n.lower() in ("authorization", "x-api-key", "api-key")]


@pytest.mark.parametrize(
    ("protocol", "base_url", "form"),
    [
        pytest.param("openai", "http://127.0.0.1:18081/v1", ("authorization", "Bearer {}"), id="openai"),
        pytest.param("anthropic", "http://127.0.0.1:18082", ("x-api-key", "{}"), id="anthropic"),
        pytest.param("openai", "https://res.openai.azure.com", ("api-key", "{}"), id="azure"),
    ],
)
def test_several_keys_are_used_in_turn_one_per_call(
    protocol: Any, base_url: str, form: tuple[str, str]
) -> None:
    up = make_upstream(
        UpstreamSpec(name="u", protocol=protocol, base_url=base_url, api_keys=("k1", "k2", "k3"))
    )
    seen = [auth_of(up.call_headers()) for _ in range(4)]
    assert seen == [[(form[0], form[1].format(k))] for k in ("k1", "k2", "k3", "k1")]
    # request_headers (passthrough) takes its turn in the same rotation
    assert auth_of(up.request_headers()) == [(form[0], form[1].format("k2"))]


@pytest.mark.parametrize(
    ("protocol", "base_url", "expected"),
    [
        pytest.param(
            "openai", "http://127.0.0.1:18081/v1", ("authorization", "Bearer client-key"), id="openai"
        ),
        pytest.param("anthropic", "http://127.0.0.1:18082", ("x-api-key", "client-key"), id="anthropic"),
        pytest.param("openai", "https://res.openai.azure.com", ("api-key", "client-key"), id="azure"),
    ],
)
def test_forward_client_key_without_a_key_sends_the_clients_key_in_the_upstreams_form(
    protocol: Any, base_url: str, expected: tuple[str, str]
) -> None:
    up = make_upstream(UpstreamSpec(name="u", protocol=protocol, base_url=base_url, forward_client_key=True))
    assert auth_of(up.call_headers("client-key")) == [expected]
    assert auth_of(up.request_headers(client_key="client-key")) == [expected]
    assert auth_of(up.call_headers()) == []  # no client key: nothing to forward


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_forward_client_key_with_a_configured_key_never_sends_the_clients(protocol: Any) -> None:
    up = make_upstream(
        UpstreamSpec(
            name="u",
            protocol=protocol,
            base_url="http://127.0.0.1:18081",
            api_keys=("configured",),
            forward_client_key=True,
        )
    )
    for headers in (up.call_headers("client-key"), up.request_headers(client_key="client-key")):
        assert not any("client-key" in value for _, value in headers)
        assert any("configured" in value for _, value in auth_of(headers))


def test_without_forward_client_key_the_clients_key_is_not_sent() -> None:
    up = make_upstream(UpstreamSpec(name="u", protocol="openai", base_url="http://127.0.0.1:18081/v1"))
    assert auth_of(up.call_headers("client-key")) == []
    assert auth_of(up.request_headers(client_key="client-key")) == []


def test_configured_headers_ride_with_every_key() -> None:
    up = make_upstream(replace(CHEAP, api_keys=("k1", "k2"), headers=(("X-Team", "core"),)))
    assert all(("X-Team", "core") in up.call_headers() for _ in range(3))


# ------------------------------------------------------------------------------------------- Azure


@pytest.mark.parametrize(
    ("base_url", "api_version", "path", "model", "expected"),
    [
        pytest.param(
            "https://res.openai.azure.com",
            None,
            "/chat/completions",
            "gpt-4o",
            f"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version={AZURE_API_VERSION}",
            id="resource_url_deployment_path",
        ),
        pytest.param(
            "https://res.openai.azure.com/openai/",
            None,
            "/chat/completions",
            "gpt-4o",
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            id="resource_url_with_openai_suffix",
        ),
        pytest.param(
            "https://res.openai.azure.com/openai/deployments/mine",
            None,
            "/chat/completions",
            "gpt-4o",
            "https://res.openai.azure.com/openai/deployments/mine/chat/completions?api-version=2024-10-21",
            id="deployment_url_kept",
        ),
        pytest.param(
            "https://res.openai.azure.com/openai/v1",
            None,
            "/chat/completions",
            "gpt-4o",
            "https://res.openai.azure.com/openai/v1/chat/completions",
            id="v1_base_standard_path_no_api_version",
        ),
        pytest.param(
            "https://res.openai.azure.com",
            "2025-04-01-preview",
            "/chat/completions",
            "gpt-4o",
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview",
            id="api_version_setting_honoured",
        ),
        pytest.param(
            "https://res.openai.azure.com/openai/deployments/mine",
            "2025-04-01-preview",
            "/models",
            "",
            "https://res.openai.azure.com/openai/models?api-version=2025-04-01-preview",
            id="models_on_the_resource",
        ),
        pytest.param(
            "https://res.openai.azure.com",
            None,
            "/chat/completions",
            "a/b?x=1#",
            "https://res.openai.azure.com/openai/deployments/a%2Fb%3Fx%3D1%23/chat/completions?api-version=2024-10-21",
            id="deployment_name_is_escaped",
        ),
    ],
)
def test_azure_urls(base_url: str, api_version: str | None, path: str, model: str, expected: str) -> None:
    up = make_upstream(
        UpstreamSpec(
            name="az", protocol="openai", base_url=base_url, api_keys=("az-key",), api_version=api_version
        )
    )
    assert up.profile.name == "azure"
    assert up.url(path, model) == expected


def test_azure_sends_its_key_as_api_key_not_bearer() -> None:
    up = make_upstream(
        UpstreamSpec(
            name="az", protocol="openai", base_url="https://res.openai.azure.com", api_keys=("az-key",)
        )
    )
    assert auth_of(up.call_headers()) == [("api-key", "az-key")]


@pytest.mark.parametrize(
    ("base_url", "profile"),
    [
        pytest.param("https://res.openai.azure.com", "azure", id="openai_azure_com"),
        pytest.param("https://res.services.ai.azure.com/openai/v1", "azure", id="services_ai_azure_com"),
        pytest.param("https://res.cognitiveservices.azure.com", "azure", id="cognitiveservices_azure_com"),
        pytest.param("https://api.openai.com/v1", "openai", id="openai_not_azure"),
        pytest.param("http://127.0.0.1:11434/v1", "generic", id="local_not_azure"),
    ],
)
def test_azure_profile_is_guessed_from_the_host(base_url: str, profile: str) -> None:
    up = make_upstream(UpstreamSpec(name="u", protocol="openai", base_url=base_url))
    assert up.profile.name == profile


def test_azure_profile_named_explicitly_for_a_custom_domain() -> None:
    up = make_upstream(
        UpstreamSpec(
            name="u", protocol="openai", base_url="https://gw.example.com", profile="azure", api_keys=("k",)
        )
    )
    assert up.url("/chat/completions", "gpt-4o") == (
        "https://gw.example.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert auth_of(up.call_headers()) == [("api-key", "k")]


def test_non_azure_openai_upstream_takes_the_standard_path() -> None:
    up = make_upstream(CHEAP)
    assert up.url("/chat/completions", "gpt-4o") == "http://127.0.0.1:18081/v1/chat/completions"


# ------------------------------------------------------------------ built from specs, not from Config


def test_a_router_is_built_from_specs_alone_and_decides_as_the_configs() -> None:
    spec = RouterSpec(upstreams=(CHEAP, BIG, CLAUDE), routes=TIERS, route_table=ROUTES, rules=RULES)
    assert FULL.router_spec() == spec

    def decisions(router: Router) -> list[tuple[str, str, str]]:
        out = []
        for model in ("gpt-4o", HAIKU, "claude-opus-4-1", "claude-sonnet-4-6", "mistral-large"):
            decision = router.decide(model, RequestFacts(anth(), "anthropic"))
            out.append((decision.upstream.name, decision.model, decision.why))
        return out

    expected = decisions(FULL.router())
    assert decisions(Router(spec)) == expected
    assert decisions(Router.from_specs((CHEAP, BIG, CLAUDE), TIERS, ROUTES, RULES)) == expected


def test_a_router_from_specs_refuses_a_route_to_an_unknown_upstream() -> None:
    with pytest.raises(ValueError, match="no upstream is named 'nowhere'"):
        Router.from_specs((CHEAP,), route_table=(Route(match="x", upstream="nowhere"),))
    with pytest.raises(ValueError, match="no upstream is configured"):
        Router.from_specs(())


def test_routing_never_imports_the_configuration() -> None:
    """config imports routing (for its specs); routing importing config back would be a cycle."""
    import ast
    import pathlib
    import subprocess
    import sys

    import rawproxy.routing

    package = pathlib.Path(rawproxy.routing.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "config" not in (node.module or ""), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any("config" in alias.name for alias in node.names), path.name
    code = "import sys, rawproxy.routing; print('rawproxy.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------- the flags' model map and tiers (A2O-R32)

MAP_TIERS = ModelRoutes(big="gpt-5", middle="gpt-4.1", small="gpt-4o-mini")
MAP_FULL = ModelRoutes(
    model_map={"claude-sonnet-4-6": "deepseek-chat", "my-alias": "qwen3-coder", "claude-opus-4-8": "o3"},
    big="gpt-5",
    middle="gpt-4.1",
    small="gpt-4o-mini",
    default="gpt-4o",
)


@pytest.mark.parametrize(
    ("client_model", "expected"),
    [
        ("claude-haiku-4-5-20251001", "gpt-4o-mini"),
        ("claude-3-5-haiku-latest", "gpt-4o-mini"),
        ("claude-sonnet-4-6", "gpt-4.1"),
        ("claude-sonnet-4-5-20250929", "gpt-4.1"),
        ("claude-opus-4-8", "gpt-5"),
        ("claude-opus-5-5", "gpt-5"),
        ("Claude-Opus-4-1", "gpt-5"),  # the tier keyword is case-insensitive
        ("anthropic/claude-sonnet-4", "gpt-4.1"),
        ("gpt-4o", "gpt-4o"),  # unmapped non-claude names pass through unchanged
        ("deepseek-chat", "deepseek-chat"),
        ("claude-unknown-1", "claude-unknown-1"),  # no tier, no default: unchanged
        ("", ""),
    ],
)
def test_a2o_r32_tier_keywords(client_model: str, expected: str) -> None:
    assert resolve_model(client_model, MAP_TIERS) == expected


@pytest.mark.parametrize(
    ("client_model", "expected"),
    [
        ("claude-sonnet-4-6", "deepseek-chat"),  # exact map wins over the sonnet keyword
        ("claude-opus-4-8", "o3"),  # ... and over the opus keyword
        ("claude-opus-4-1", "gpt-5"),  # near miss of an exact entry: the keyword applies
        ("claude-sonnet-4-6-20260101", "gpt-4.1"),
        ("my-alias", "qwen3-coder"),
        ("claude-haiku-4-5-20251001", "gpt-4o-mini"),
        ("claude-instant-1", "gpt-4o"),  # a claude name no tier took -> default
        ("claude-fable-1", "gpt-5"),  # the top tier (M26-09): unset, so the big model's
        ("claude-mythos-preview", "gpt-5"),
        ("CLAUDE-mystery", "gpt-4o"),
        ("", "gpt-4o"),  # no model at all -> default
        ("gpt-4o-mini", "gpt-4o-mini"),  # non-claude names never take the default
        ("o3", "o3"),
        ("llama3:70b", "llama3:70b"),
    ],
)
def test_a2o_r32_exact_map_wins_then_tiers_then_default(client_model: str, expected: str) -> None:
    assert resolve_model(client_model, MAP_FULL) == expected


def test_a2o_r32_tier_without_target_falls_to_default_or_passes_through() -> None:
    only_big = ModelRoutes(big="gpt-5")
    assert resolve_model("claude-sonnet-4-6", only_big) == "claude-sonnet-4-6"
    with_default = ModelRoutes(big="gpt-5", default="gpt-4o")
    assert resolve_model("claude-sonnet-4-6", with_default) == "gpt-4o"
    assert resolve_model("claude-opus-4-8", with_default) == "gpt-5"


def test_a2o_r32_no_routes_is_identity() -> None:
    for name in ("claude-sonnet-4-6", "gpt-4o", "", "x/y"):
        assert resolve_model(name, ModelRoutes()) == name


def test_a2o_r32_exact_map_is_case_sensitive() -> None:
    routes = ModelRoutes(model_map={"claude-sonnet-4-6": "a"}, middle="b")
    assert resolve_model("claude-sonnet-4-6", routes) == "a"
    assert resolve_model("Claude-Sonnet-4-6", routes) == "b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("a=b", {"a": "b"}),
        ("a=b,c=d", {"a": "b", "c": "d"}),
        (" a = b , c=d ,", {"a": "b", "c": "d"}),
        (",,a=b,,", {"a": "b"}),
        ("claude-sonnet-4-6=openai/gpt-4.1", {"claude-sonnet-4-6": "openai/gpt-4.1"}),
        ("a=b=c", {"a": "b=c"}),  # only the first '=' separates
        ("a=b,a=c", {"a": "c"}),  # the last entry for a name wins
    ],
)
def test_a2o_r32_parse_model_map(text: str, expected: dict[str, str]) -> None:
    assert parse_model_map(text) == expected


@pytest.mark.parametrize("text", ["gpt-4o", "=b", "a=", " = ", "a=b,c", "a=b, =d"])
def test_a2o_r32_parse_model_map_rejects_malformed_entries(text: str) -> None:
    with pytest.raises(ValueError, match="from=to"):
        parse_model_map(text)


def test_a2o_r32_config_flags_feed_the_same_routes() -> None:
    config = Config.from_env(
        [
            "--big-model",
            "gpt-5",
            "--middle-model",
            "gpt-4.1",
            "--small-model",
            "gpt-4o-mini",
            "--default-model",
            "gpt-4o",
            "--model-map",
            "claude-sonnet-4-6=deepseek-chat",
        ],
        {},
        dotenv=None,
    )
    routes = config.routes
    assert resolve_model("claude-sonnet-4-6", routes) == "deepseek-chat"
    assert resolve_model("claude-sonnet-4-5", routes) == "gpt-4.1"
    assert resolve_model("claude-haiku-4-5-20251001", routes) == "gpt-4o-mini"
    assert resolve_model("claude-opus-4-8", routes) == "gpt-5"
    assert resolve_model("claude-x", routes) == "gpt-4o"
    assert resolve_model("gpt-4o-mini", routes) == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("client_model", "expected"),
    [
        ("claude-fable-1-0", "top-model"),
        ("claude-mythos-1", "top-model"),
        ("claude-opus-5-0", "big-model"),  # the 5 generation keeps its tier words
        ("claude-sonnet-5-0", "middle-model"),
        ("claude-haiku-5-0", "small-model"),
    ],
)
def test_m26_09_claude_codes_2026_names_map_to_tiers(client_model: str, expected: str) -> None:
    routes = ModelRoutes(top="top-model", big="big-model", middle="middle-model", small="small-model")
    assert resolve_model(client_model, routes) == expected


@pytest.mark.parametrize(
    "headers, rules, expected",
    [
        (
            [(b"x-claude-code-agent-id", b"agent-7")],
            Rules(subagent=Target("cheap", "sub-model")),
            "sub-model",
        ),
        ([], Rules(subagent=Target("cheap", "sub-model")), "tier-middle"),  # no header: not a subagent
        ([(b"x-app", b"cli-bg")], Rules(background=Target("cheap", "bg-model")), "bg-model"),
        ([(b"x-app", b"CLI-BG ")], Rules(background=Target("cheap", "bg-model")), "bg-model"),
        ([(b"x-app", b"cli")], Rules(background=Target("cheap", "bg-model")), "tier-middle"),  # foreground
        (  # a subagent's background work: the subagent rule comes first
            [(b"x-app", b"cli-bg"), (b"x-claude-code-agent-id", b"a")],
            Rules(subagent=Target("cheap", "sub-model"), background=Target("cheap", "bg-model")),
            "sub-model",
        ),
    ],
)
def test_m26_09_rules_match_subagent_and_background_requests_by_their_headers(
    headers: list[tuple[bytes, bytes]], rules: Rules, expected: str
) -> None:
    config = replace(FULL, route_table=(), rules=rules)
    facts = RequestFacts(anth(), "anthropic", headers)
    assert config.router().decide("claude-sonnet-4-6", facts).model == expected
