"""Codex's model catalog (CX-03, issue 17): ``{"models": [ModelInfo, ...]}`` for the models the proxy
serves, so that Codex knows their context window, reasoning levels and tools instead of guessing ("Model
metadata for `X` not found. Defaulting to fallback metadata").

Codex 0.171 fetches it only for a custom provider with ``model_catalog_url`` (``GET <url>?client_version=
0.171.0``), or reads the same JSON from ``model_catalog_json`` (any provider, the built-in one included:
``rawproxy codex-catalog`` writes that file). One entry Codex cannot decode voids the whole list, and
these fields are required: slug, display_name, supported_reasoning_levels, shell_type, visibility,
supported_in_api, priority, base_instructions, support_verbosity, truncation_policy,
experimental_supported_tools (observed field by field: tests/fixtures/research/codex_2026.md §1.3;
codex-rs ``protocol/src/openai_models.rs``).

``base_instructions`` replaces Codex's whole system prompt (an empty one sends none), and nothing else
keeps Codex's own: each entry carries the instructions Codex 0.171.0 sends for a model it has no
metadata for (``codex_instructions.md``: openai/codex, Apache-2.0, as observed on the wire), so the
catalog changes the metadata and nothing of the prompt. A user's ``model_instructions_file`` still wins.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Final

import orjson

from ...models import ModelFamily

__all__ = ["CODEX_EFFORTS", "codex_catalog", "instructions", "reasoning_levels"]

CODEX_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh")  # Codex's ReasoningEffort
_DESCRIBED: Final = {
    "none": "No reasoning",
    "minimal": "The least reasoning",
    "low": "Fast answers, light reasoning",
    "medium": "Balanced speed and reasoning",
    "high": "Deeper reasoning for hard problems",
    "xhigh": "The most reasoning the model offers",
}


@functools.cache
def instructions() -> str:
    """The instructions Codex 0.171.0 sends for a model it has no metadata for (read once)."""
    return resources.files(__package__).joinpath("codex_instructions.md").read_text(encoding="utf-8")


def reasoning_levels(family: ModelFamily) -> tuple[str, ...]:
    """The efforts Codex may ask for this model, on Codex's scale, each one the proxy maps to what the
    model takes (models.anthropic_effort clamps; budgets for the older Claude models)."""
    if family.protocol == "openai":
        if family.efforts:
            return tuple(e for e in CODEX_EFFORTS if e in family.efforts)
        return ("low", "medium", "high") if family.reasoning else ()
    if family.efforts:  # adaptive Claude models: max is beyond Codex's scale, xhigh reaches it
        top = ("xhigh",) if {"xhigh", "max"} & set(family.efforts) else ()
        return ("low", "medium", "high", *top)
    return ("low", "medium", "high") if family.budgets or family.adaptive else ()


def model_info(slug: str, family: ModelFamily, priority: int, served_by: str) -> dict[str, Any]:
    levels = reasoning_levels(family)
    info: dict[str, Any] = {
        "slug": slug,
        "display_name": slug,
        "description": f"{slug} through rawproxy ({served_by})",
        "supported_reasoning_levels": [{"effort": e, "description": _DESCRIBED[e]} for e in levels],
        "shell_type": "shell_command",
        "visibility": "list",
        "supported_in_api": True,
        "priority": priority,
        "base_instructions": instructions(),
        "supports_reasoning_summaries": bool(levels),
        "support_verbosity": False,
        "apply_patch_tool_type": "freeform",  # custom tools are translated both ways (CX-04)
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
    }
    if "medium" in levels:
        info["default_reasoning_level"] = "medium"
    if family.context_window is not None:  # Codex compacts at 90 % of it unless told otherwise
        info["context_window"] = family.context_window
    return info


def codex_catalog(models: list[tuple[str, ModelFamily, str]]) -> bytes:
    """The catalog of ``(slug, family of the model it reaches, "upstream: model")`` in that order."""
    entries = [model_info(slug, family, i, served_by) for i, (slug, family, served_by) in enumerate(models)]
    return orjson.dumps({"models": entries})
