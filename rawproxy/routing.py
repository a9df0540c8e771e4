"""Client model name -> (upstream, upstream model name). Pure and table-driven (A2O-R32).

Order, first match wins:
1. an exact entry of the model map (``--model-map 'from=to,...'``);
2. the tier keyword in the name: ``opus`` -> big, ``sonnet`` -> middle, ``haiku`` -> small, when that
   tier has a target;
3. a Claude model name (``claude...``) that no tier took -> the default model, when one is set; an empty
   name -> the default model;
4. anything else passes through unchanged (``gpt-4o`` stays ``gpt-4o``).
The same function serves ``/v1/messages``, ``/v1/chat/completions`` and count_tokens.

Then the target model picks the upstream (:func:`upstream_for`): with both configured, ``claude*`` names
go to the Anthropic upstream and all others to the OpenAI one. :class:`Upstream` describes one upstream:
where it is, its dialect and quirks, and the headers every call to it carries.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .dialects import Dialect, anthropic_messages, openai_chat
from .profiles import BETA_QUERY_PROFILES, CLIENT_PROFILES, SESSION_ID_PROFILES, Profile, guess_profile

if TYPE_CHECKING:
    from .config import Config

__all__ = ["ModelRoutes", "Upstream", "build_upstreams", "parse_model_map", "resolve_model", "upstream_for"]


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


@dataclass(frozen=True, slots=True)
class Upstream:
    """One configured upstream: where, how to authenticate, which dialect, which headers."""

    protocol: Literal["openai", "anthropic"]
    base: str
    dialect: Dialect
    profile: Profile
    auth: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]  # identity preset, then --upstream-header (later wins)
    beta_query: bool = False
    defaults: tuple[tuple[str, str], ...] = ()  # sent unless the client (passthrough) sent its own

    def url(self, path: str) -> str:
        if self.beta_query and path.startswith("/v1/messages"):
            return f"{self.base}{path}?beta=true"
        return self.base + path

    def request_headers(self, client: Sequence[tuple[bytes, bytes]] = ()) -> list[tuple[str, str]]:
        """Auth, preset and configured headers; in passthrough (``client`` = the client's header lines)
        the client's anthropic-version and anthropic-beta too. Every anthropic-beta line, from the
        preset, a setting or the client, is one list (RFC 9110 5.3), merged without duplicates
        (O2A-M03, A2O-M05); of repeated anthropic-version lines only the first counts."""
        merged: dict[str, tuple[str, str]] = {}
        betas: list[str] = []
        for name, value in (*self.defaults, *self.auth, *self.headers):
            if name.lower() == "anthropic-beta":
                betas += [b.strip() for b in value.split(",") if b.strip()]
            else:
                merged[name.lower()] = (name, value)
        if self.protocol == "anthropic":
            client_betas: list[str] = []
            version: str | None = None
            for key, raw in client:
                if key == b"anthropic-beta":
                    client_betas += [b.strip() for b in raw.decode("latin-1").split(",") if b.strip()]
                elif key == b"anthropic-version" and version is None:
                    version = raw.decode("latin-1")
            betas = client_betas + betas
            if version is not None and "anthropic-version" not in {n.lower() for n, _ in self.headers}:
                merged["anthropic-version"] = ("anthropic-version", version)  # a preset or setting wins
        if betas:
            merged["anthropic-beta"] = ("anthropic-beta", ",".join(dict.fromkeys(betas)))
        return list(merged.values())


def build_upstreams(config: Config) -> dict[str, Upstream]:
    upstreams: dict[str, Upstream] = {}
    extra = tuple(config.upstream_headers)
    if config.openai_enabled:
        auth = (("authorization", f"Bearer {config.openai_key}"),) if config.openai_key else ()
        upstreams["openai"] = Upstream(
            protocol="openai",
            base=config.openai_base,
            dialect=openai_chat,
            profile=guess_profile(config.openai_base, config.upstream_profile),
            auth=auth,
            headers=extra,
        )
    if config.anthropic_enabled:
        auth = (("x-api-key", config.anthropic_key),) if config.anthropic_key else ()
        preset = CLIENT_PROFILES[config.client_profile]
        if config.client_profile in SESSION_ID_PROFILES:
            preset = (*preset, ("x-claude-code-session-id", str(uuid.uuid4())))
        # Without an identity to present, the preset is only a default: a passthrough client's own
        # anthropic-version reaches the upstream (Claude Code's gateway contract).
        identity = config.client_profile != "none"
        upstreams["anthropic"] = Upstream(
            protocol="anthropic",
            base=config.anthropic_base,
            dialect=anthropic_messages,
            profile=guess_profile(config.anthropic_base, "generic"),
            auth=auth,
            headers=(*preset, *extra) if identity else extra,
            defaults=() if identity else preset,
            beta_query=config.client_profile in BETA_QUERY_PROFILES,
        )
    return upstreams


def upstream_for(model: str, upstreams: Mapping[str, Upstream]) -> Upstream:
    """Both configured: claude* models to the Anthropic upstream, others to the OpenAI one."""
    if len(upstreams) == 1:
        return next(iter(upstreams.values()))
    return upstreams["anthropic" if model.lower().startswith("claude") else "openai"]
