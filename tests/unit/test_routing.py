"""A2O-R32 model mapping: rawproxy/routing.py (resolve_model, parse_model_map). Pure, table-driven."""

from __future__ import annotations

import pytest

from rawproxy.config import Config
from rawproxy.routing import ModelRoutes, parse_model_map, resolve_model

TIERS = ModelRoutes(big="gpt-5", middle="gpt-4.1", small="gpt-4o-mini")
FULL = ModelRoutes(
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
    assert resolve_model(client_model, TIERS) == expected


@pytest.mark.parametrize(
    ("client_model", "expected"),
    [
        ("claude-sonnet-4-6", "deepseek-chat"),  # exact map wins over the sonnet keyword
        ("claude-opus-4-8", "o3"),  # ... and over the opus keyword
        ("claude-opus-4-1", "gpt-5"),  # near miss of an exact entry: the keyword applies
        ("claude-sonnet-4-6-20260101", "gpt-4.1"),
        ("my-alias", "qwen3-coder"),
        ("claude-haiku-4-5-20251001", "gpt-4o-mini"),
        ("claude-fable-1", "gpt-4o"),  # a claude name no tier took -> default
        ("CLAUDE-mystery", "gpt-4o"),
        ("", "gpt-4o"),  # no model at all -> default
        ("gpt-4o-mini", "gpt-4o-mini"),  # non-claude names never take the default
        ("o3", "o3"),
        ("llama3:70b", "llama3:70b"),
    ],
)
def test_a2o_r32_exact_map_wins_then_tiers_then_default(client_model: str, expected: str) -> None:
    assert resolve_model(client_model, FULL) == expected


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
