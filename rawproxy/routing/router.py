"""Client model name -> (upstream, upstream model name): the :class:`Router`. Pure and table-driven (A2O-R32).

A ``Router`` is compiled from a :class:`~.specs.RouterSpec` (``Config.router_spec()``; this package never
imports the configuration). Precedence, first that applies wins: ``force_model``, the content rules, the
routes (exact, then globs in file order), the flags' model map and tiers, the client's model unchanged.

The flags' map and tiers (:func:`resolve_model`), first match wins:
1. an exact entry of the model map (``--model-map 'from=to,...'``);
2. the tier keyword in the name: ``opus`` -> big, ``sonnet`` -> middle, ``haiku`` -> small, when that
   tier has a target;
3. a Claude model name (``claude...``) that no tier took -> the default model, when one is set; an empty
   name -> the default model;
4. anything else passes through unchanged (``gpt-4o`` stays ``gpt-4o``).
The same function serves ``/v1/messages``, ``/v1/chat/completions`` and count_tokens. Then the target
model picks the upstream (:func:`~.upstreams.upstream_for`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .facts import RequestFacts
from .specs import RULE_NAMES, ModelRoutes, Route, RouterSpec, Rules, Target, UpstreamSpec
from .upstreams import Upstream, build_upstreams, upstream_for

__all__ = ["Decision", "Router", "parse_model_map", "resolve_model"]


# Claude Code 2.1.33x names its models claude-fable-*, claude-mythos-* (the top tier, above Opus), and
# claude-opus-*, claude-sonnet-*, claude-haiku-* of the 4 and 5 generations (CONFORMANCE.md M26-09).
_TIERS = (("fable", "top"), ("mythos", "top"), ("opus", "big"), ("sonnet", "middle"), ("haiku", "small"))


def resolve_model(client_model: str, routes: ModelRoutes) -> str:
    if client_model in routes.model_map:
        return routes.model_map[client_model]
    lowered = client_model.lower()
    for keyword, tier in _TIERS:
        target: str | None = getattr(routes, tier)
        if tier == "top":
            target = target or routes.big  # unset: the big model serves the top tier too
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


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one request goes: the upstream and model, why, and what the route adds."""

    upstream: Upstream
    model: str
    why: str  # force_model | rule:<name> | route:<match> | model_map | default
    overrides: tuple[tuple[str, float], ...] = ()
    fallbacks: tuple[tuple[Upstream, str], ...] = ()
    compact: bool = False


class Router:
    """The configuration's routing, compiled: a pure function of a request and a :class:`RouterSpec`.

    Precedence, first that applies wins:
    1. ``force_model``;
    2. the content rules, in this order: ``long_context``, ``image``, ``web_search``, ``subagent``,
       ``background``, ``think`` (capabilities the request cannot do without come before cost and preference);
    3. the routes: an exact ``match`` first, then the globs in file order;
    4. the flags' model map and tiers (:func:`resolve_model`);
    5. the client's model, unchanged.
    The upstream of 4 and 5 is :func:`upstream_for` the resulting model.
    """

    def __init__(self, spec: RouterSpec) -> None:
        self.spec = spec
        self.upstreams = build_upstreams(spec.upstreams)
        if not self.upstreams:
            raise ValueError("no upstream is configured")
        self.tiers = spec.routes
        self.rules = spec.rules
        self._rules = [(name, getattr(spec.rules, name)) for name in RULE_NAMES if getattr(spec.rules, name)]
        self.force = spec.force_model
        self._exact: dict[str, Route] = {}
        self._globs: list[tuple[re.Pattern[str], Route]] = []
        for route in spec.route_table:
            if any(ch in route.match for ch in "*?["):
                self._globs.append((re.compile(fnmatch.translate(route.match)), route))
            else:
                self._exact.setdefault(route.match, route)
        self._matched: dict[str, Route | None] = {}  # model name -> route, bounded below
        self._by_model: dict[str, Decision] = {}  # model name -> decision without rules, bounded
        for target in (self.force, *(t for _, t in self._rules)):
            if target is not None and target.upstream is not None and target.upstream not in self.upstreams:
                raise ValueError(f"no upstream is named {target.upstream!r}")
        for route in spec.route_table:
            for name in (route.upstream, *(t.upstream for t in route.fallbacks)):
                if name is not None and name not in self.upstreams:
                    raise ValueError(f"route {route.match!r}: no upstream is named {name!r}")

    @classmethod
    def from_specs(
        cls,
        upstreams: Sequence[UpstreamSpec],
        routes: ModelRoutes | None = None,
        route_table: Sequence[Route] = (),
        rules: Rules | None = None,
        force_model: Target | None = None,
    ) -> Router:
        """A router from its parts, for programs and tests that have no ``Config``."""
        return cls(
            RouterSpec(
                upstreams=tuple(upstreams),
                routes=routes or ModelRoutes(),
                route_table=tuple(route_table),
                rules=rules or Rules(),
                force_model=force_model,
            )
        )

    def decide(self, model: str, facts: RequestFacts | None = None) -> Decision:
        if self._rules and facts is not None and self.force is None:
            for name, target in self._rules:
                if self._rule_applies(name, model, facts):
                    return self._to(target, model, f"rule:{name}")
        # What follows depends on the model name alone: decided once per name (Decision is frozen).
        decision = self._by_model.get(model)
        if decision is None:
            decision = self._by_name(model)
            if len(self._by_model) < 1024 and len(model) <= 256:  # clients choose model names: bounded
                self._by_model[model] = decision
        return decision

    def _by_name(self, model: str) -> Decision:
        if self.force is not None:
            return self._to(self.force, model, "force_model")
        route = self._route(model)
        if route is not None:
            target_model = route.model or model
            return Decision(
                upstream=self.upstreams[route.upstream],
                model=target_model,
                why=f"route:{route.match}",
                overrides=route.overrides,
                fallbacks=tuple(
                    (self.upstreams[t.upstream or route.upstream], t.model or target_model)
                    for t in route.fallbacks
                ),
                compact=route.compact,
            )
        target_model = resolve_model(model, self.tiers)
        why = "model_map" if target_model != model else "default"
        return Decision(upstream=upstream_for(target_model, self.upstreams), model=target_model, why=why)

    def _rule_applies(self, name: str, model: str, facts: RequestFacts) -> bool:
        if name == "long_context":
            return facts.tokens > self.rules.long_context_threshold
        if name == "image":
            return facts.image
        if name == "web_search":
            return facts.web_search
        if name == "subagent":
            return facts.subagent
        if name == "background":  # Claude Code's side calls: small-model ones (titles), or marked cli-bg
            return "haiku" in model.lower() or facts.background
        return facts.thinking

    def _to(self, target: Target, model: str, why: str) -> Decision:
        chosen = target.model or model
        if target.upstream is None:  # a bare force_model: the upstream that serves it
            return Decision(upstream=upstream_for(chosen, self.upstreams), model=chosen, why=why)
        return Decision(upstream=self.upstreams[target.upstream], model=chosen, why=why)

    def _route(self, model: str) -> Route | None:
        if model in self._exact:
            return self._exact[model]
        if not self._globs:
            return None
        try:
            return self._matched[model]
        except KeyError:
            pass
        route = next((r for pattern, r in self._globs if pattern.match(model)), None)
        if len(self._matched) < 1024 and len(model) <= 256:  # clients choose model names: bounded
            self._matched[model] = route
        return route

    def configured_models(self) -> list[str]:
        """Model names the configuration mentions, for ``/v1/models``: routes' exact matches and
        targets, rule targets, upstreams' listed names, the flags' tiers and map (globs left out)."""
        tiers = self.tiers
        names = [m for m in (tiers.big, tiers.middle, tiers.small, tiers.default) if m]
        names += [*tiers.model_map, *tiers.model_map.values()]
        names += [*self._exact, *(r.model for _, r in self._globs if r.model)]
        names += [r.model for r in self._exact.values() if r.model]
        names += [t.model for t in (self.force, *(t for _, t in self._rules)) if t is not None and t.model]
        names += [m for up in self.upstreams.values() for m in up.models if not any(c in m for c in "*?[")]
        return list(dict.fromkeys(names))
