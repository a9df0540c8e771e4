"""Client model name -> upstream model name. Pure and table-driven (A2O-R32).

Order, first match wins:
1. an exact entry of the model map (``--model-map 'from=to,...'``);
2. the tier keyword in the name: ``opus`` -> big, ``sonnet`` -> middle, ``haiku`` -> small, when that
   tier has a target;
3. a Claude model name (``claude...``) that no tier took -> the default model, when one is set; an empty
   name -> the default model;
4. anything else passes through unchanged (``gpt-4o`` stays ``gpt-4o``).
The same function serves ``/v1/messages`` and ``/v1/messages/count_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ModelRoutes", "parse_model_map", "resolve_model"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRoutes:
    model_map: Mapping[str, str] = field(default_factory=dict)
    big: str | None = None
    middle: str | None = None
    small: str | None = None
    default: str | None = None


_TIERS = (("opus", "big"), ("sonnet", "middle"), ("haiku", "small"))


def resolve_model(client_model: str, routes: ModelRoutes) -> str:
    if client_model in routes.model_map:
        return routes.model_map[client_model]
    lowered = client_model.lower()
    for keyword, tier in _TIERS:
        target: str | None = getattr(routes, tier)
        if keyword in lowered and target:
            return target
    if routes.default and (not client_model or lowered.startswith("claude")):
        return routes.default
    return client_model


def parse_model_map(text: str) -> dict[str, str]:
    """``'a=b,c=d'`` -> ``{'a': 'b', 'c': 'd'}``; raises ValueError naming a malformed entry."""
    mapping: dict[str, str] = {}
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        source, sep, target = entry.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"model map entry {entry!r} is not of the form from=to")
        mapping[source.strip()] = target.strip()
    return mapping
