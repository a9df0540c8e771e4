"""The data the router is built from: plain frozen values, no behaviour, no imports of the rest.

Both sides read these: the configuration (``rawproxy.config``) produces them from flags, the environment
and the ``--config`` file, and the router (this package) consumes them. They live here, below both, so
that routing never imports the configuration: :class:`RouterSpec` is everything a ``Router`` needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_LONG_CONTEXT",
    "RULE_NAMES",
    "ModelRoutes",
    "Route",
    "RouterSpec",
    "Rules",
    "Target",
    "UpstreamSpec",
]

RULE_NAMES = ("long_context", "image", "web_search", "subagent", "background", "think")  # checked in order
DEFAULT_LONG_CONTEXT = 60000


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSpec:
    """One ``[[upstreams]]`` entry (or an upstream made from the legacy flags)."""

    name: str
    protocol: Literal["openai", "anthropic"]
    base_url: str
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # used in turn, one per request
    profile: str | None = None  # the OpenAI-compatible quirks; None: guessed from the URL
    client_profile: str = "none"  # the identity presented to an Anthropic upstream (decision 7)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout: float | None = None  # read timeout; None: the global one
    max_output_tokens: int | None = None
    models: tuple[str, ...] = ()  # names (or globs) it serves, for routing and /v1/models
    forward_client_key: bool = False  # with no api_key: send the client's own key upstream
    retries: int = 0  # extra tries of this upstream on a failure before the first byte
    api_version: str | None = None  # Azure's api-version query
    # How it is reached (NET-01, NET-02): the proxy URL (None: by the environment; "": directly), which
    # the configuration resolves before routing sees it, and TLS (None: the default bundle, certifi's).
    proxy: str | None = field(default=None, repr=False)  # may hold user:password@
    ca_file: str | None = None
    ca_dir: str | None = None
    cert_file: str | None = None  # a client certificate for mutual TLS, with key_file
    key_file: str | None = None
    verify: bool = True  # False only by an explicit setting; logged at every start


@dataclass(frozen=True, slots=True)
class Target:
    """``"upstream:model"``, ``"upstream"`` (the model unchanged) or, for ``force_model``, a bare model."""

    upstream: str | None
    model: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    match: str
    upstream: str
    model: str | None = None  # None: the client's model name, unchanged
    overrides: tuple[tuple[str, float], ...] = ()
    fallbacks: tuple[Target, ...] = ()
    compact: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    long_context: Target | None = None
    image: Target | None = None
    web_search: Target | None = None
    subagent: Target | None = None  # a Claude Code subagent's requests (x-claude-code-agent-id)
    background: Target | None = None
    think: Target | None = None
    long_context_threshold: int = DEFAULT_LONG_CONTEXT

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in RULE_NAMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRoutes:
    """The flags' model map and tiers (``--model-map``, ``--big-model`` ...): see ``resolve_model``."""

    model_map: Mapping[str, str] = field(default_factory=dict)
    top: str | None = None  # Claude Code's 2026 top tier (Fable, Mythos); unset: the big model serves it
    big: str | None = None
    middle: str | None = None
    small: str | None = None
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterSpec:
    """Everything a ``Router`` is built from (``Config.router_spec()`` makes one)."""

    upstreams: tuple[UpstreamSpec, ...]  # every upstream, in order: the first is the last resort
    routes: ModelRoutes = field(default_factory=ModelRoutes)
    route_table: tuple[Route, ...] = ()
    rules: Rules = field(default_factory=Rules)
    force_model: Target | None = None
