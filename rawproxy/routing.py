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

import fnmatch
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import orjson

from . import tokens
from .config_file import RULE_NAMES, Route, Target, UpstreamSpec
from .dialects import Dialect, anthropic_messages, openai_chat
from .profiles import BETA_QUERY_PROFILES, CLIENT_PROFILES, SESSION_ID_PROFILES, Profile, guess_profile

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "Decision",
    "ModelRoutes",
    "RequestFacts",
    "Router",
    "Upstream",
    "build_upstreams",
    "parse_model_map",
    "resolve_model",
    "upstream_for",
]


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


class Upstream:
    """One configured upstream: where, how to authenticate, which dialect, which headers; built once
    per configuration and shared by every request routed to it."""

    __slots__ = (
        "_auths",
        "_turn",
        "api_version",
        "base",
        "beta_query",
        "defaults",
        "dialect",
        "forward_client_key",
        "headers",
        "max_output_tokens",
        "models",
        "name",
        "profile",
        "protocol",
        "retries",
        "timeout",
        "translated_headers",
    )

    def __init__(
        self,
        *,
        name: str,
        protocol: Literal["openai", "anthropic"],
        base: str,
        profile: Profile,
        keys: Sequence[str] = (),
        headers: tuple[tuple[str, str], ...] = (),
        defaults: tuple[tuple[str, str], ...] = (),
        beta_query: bool = False,
        timeout: float | None = None,
        max_output_tokens: int | None = None,
        models: tuple[str, ...] = (),
        forward_client_key: bool = False,
        retries: int = 0,
        api_version: str | None = None,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.base = base
        self.dialect: Dialect = anthropic_messages if protocol == "anthropic" else openai_chat
        self.profile = profile
        self.headers = headers  # identity preset, then configured headers (later wins)
        self.defaults = defaults  # sent unless the client (passthrough) sent its own
        self.beta_query = beta_query
        self.timeout = timeout
        self.max_output_tokens = max_output_tokens
        self.models = models
        self.forward_client_key = forward_client_key
        self.retries = retries
        self.api_version = api_version or AZURE_API_VERSION
        self._auths = tuple(self._auth(key) for key in keys) or ((),)
        self._turn = 0
        # The headers of a translated call depend on the upstream and the key alone: built once each.
        self.translated_headers = tuple(self._merge(auth) for auth in self._auths)

    def _auth(self, key: str) -> tuple[tuple[str, str], ...]:
        if self.protocol == "anthropic":
            return (("x-api-key", key),)
        if self.profile.name == "azure":
            return (("api-key", key),)
        return (("authorization", f"Bearer {key}"),)

    @property
    def has_key(self) -> bool:
        return self._auths != ((),)

    def _next_auth(self) -> int:
        """Several keys are used in turn, one per request."""
        turn = self._turn
        self._turn = (turn + 1) % len(self._auths)
        return turn

    def url(self, path: str, model: str = "") -> str:
        if self.beta_query and path.startswith("/v1/messages"):
            return f"{self.base}{path}?beta=true"
        if self.profile.name == "azure":
            return self._azure_url(path, model)
        return self.base + path

    def _azure_url(self, path: str, model: str) -> str:
        """Azure OpenAI: the v1 API (``.../openai/v1``) takes the standard paths; a resource URL takes
        the model as its deployment name, and every classic call carries ``api-version``."""
        base = self.base
        if base.endswith("/openai/v1"):
            return base + path
        if "/openai/deployments/" not in base and path == "/chat/completions":
            base = f"{base.removesuffix('/openai')}/openai/deployments/{quote(model, safe='')}"
        elif path == "/models":
            base = base.split("/openai/", 1)[0].removesuffix("/openai") + "/openai"
        return f"{base}{path}?api-version={self.api_version}"

    def call_headers(self, client: ClientKey = None) -> list[tuple[str, str]]:
        """The headers of one translated call: auth (the next key, or the client's own where that is
        configured), preset and configured headers."""
        if client is not None and not self.has_key and self.forward_client_key:
            return self._merge(self._auth(client))
        return self.translated_headers[self._next_auth()]

    def request_headers(
        self, client: Sequence[tuple[bytes, bytes]] = (), client_key: ClientKey = None
    ) -> list[tuple[str, str]]:
        """Auth, preset and configured headers; in passthrough (``client`` = the client's header lines)
        the client's anthropic-version and anthropic-beta too. Every anthropic-beta line, from the
        preset, a setting or the client, is one list (RFC 9110 5.3), merged without duplicates
        (O2A-M03, A2O-M05); of repeated anthropic-version lines only the first counts."""
        if client_key is not None and not self.has_key and self.forward_client_key:
            auth = self._auth(client_key)
        else:
            auth = self._auths[self._next_auth()]
        return self._merge(auth, client)

    def _merge(
        self, auth: tuple[tuple[str, str], ...], client: Sequence[tuple[bytes, bytes]] = ()
    ) -> list[tuple[str, str]]:
        merged: dict[str, tuple[str, str]] = {}
        betas: list[str] = []
        for name, value in (*self.defaults, *auth, *self.headers):
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

    def serves(self, model: str) -> bool:
        return any(fnmatchcase(model, pattern) for pattern in self.models)


ClientKey = str | None  # the key the client presented (x-api-key or Bearer), for forwarding
AZURE_API_VERSION = "2024-10-21"  # the newest GA api-version of Azure OpenAI's classic data plane


def make_upstream(spec: UpstreamSpec) -> Upstream:
    if spec.protocol == "openai":
        base = spec.base_url.rstrip("/")
        return Upstream(
            name=spec.name,
            protocol="openai",
            base=base,
            profile=guess_profile(base, spec.profile),
            keys=spec.api_keys,
            headers=spec.headers,
            timeout=spec.timeout,
            max_output_tokens=spec.max_output_tokens,
            models=spec.models,
            forward_client_key=spec.forward_client_key,
            retries=spec.retries,
            api_version=spec.api_version,
        )
    base = spec.base_url.rstrip("/").removesuffix("/v1")  # tolerate the OpenAI-style form
    preset = CLIENT_PROFILES[spec.client_profile]
    if spec.client_profile in SESSION_ID_PROFILES:
        preset = (*preset, ("x-claude-code-session-id", str(uuid.uuid4())))
    # Without an identity to present, the preset is only a default: a passthrough client's own
    # anthropic-version reaches the upstream (Claude Code's gateway contract).
    identity = spec.client_profile != "none"
    return Upstream(
        name=spec.name,
        protocol="anthropic",
        base=base,
        profile=guess_profile(base, "generic"),
        keys=spec.api_keys,
        headers=(*preset, *spec.headers) if identity else spec.headers,
        defaults=() if identity else preset,
        beta_query=spec.client_profile in BETA_QUERY_PROFILES,
        timeout=spec.timeout,
        max_output_tokens=spec.max_output_tokens,
        models=spec.models,
        forward_client_key=spec.forward_client_key,
        retries=spec.retries,
    )


def build_upstreams(config: Config) -> dict[str, Upstream]:
    return {spec.name: make_upstream(spec) for spec in config.upstream_list()}


def upstream_for(model: str, upstreams: Mapping[str, Upstream]) -> Upstream:
    """The upstream for a model no route names: one that lists it in ``models``; else, with both
    protocols configured, ``claude*`` models to the first Anthropic upstream and all others to the
    first OpenAI one; else the first upstream."""
    for up in upstreams.values():
        if up.models and up.serves(model):
            return up
    first = next(iter(upstreams.values()))
    protocol = "anthropic" if model.lower().startswith("claude") else "openai"
    return next((up for up in upstreams.values() if up.protocol == protocol), first)


# ------------------------------------------------------------------------------- content rules


class RequestFacts:
    """What the content rules look at, read from the client's request body (either dialect), each
    computed only when a configured rule asks for it: a proxy with no rules pays nothing."""

    __slots__ = ("_data", "_image", "_tokens", "dialect")

    def __init__(self, data: Mapping[str, Any], dialect: Literal["anthropic", "openai"]) -> None:
        self._data = data
        self.dialect = dialect
        self._tokens: int | None = None
        self._image: bool | None = None

    @property
    def thinking(self) -> bool:
        """Thinking asked for on purpose. Claude Code sends ``adaptive`` thinking at medium effort on
        every turn, so that alone is not a thinking turn: ``enabled`` (a budget) is, and so is
        ``adaptive`` at high or max effort; for OpenAI clients any reasoning effort above minimal."""
        data = self._data
        if self.dialect == "anthropic":
            thinking = data.get("thinking")
            if not isinstance(thinking, dict):
                return False
            if thinking.get("type") == "enabled":
                return True
            config = data.get("output_config")
            effort = config.get("effort") if isinstance(config, dict) else None
            return thinking.get("type") == "adaptive" and effort in ("high", "max")
        effort = data.get("reasoning_effort")
        reasoning = data.get("reasoning")
        if isinstance(reasoning, dict):
            effort = effort or reasoning.get("effort") or ("medium" if reasoning.get("enabled") else None)
        return isinstance(effort, str) and effort not in ("none", "minimal")

    @property
    def web_search(self) -> bool:
        data = self._data
        if self.dialect == "openai" and isinstance(data.get("web_search_options"), dict):
            return True
        tools = data.get("tools")
        return isinstance(tools, list) and any(
            isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools
        )

    @property
    def image(self) -> bool:
        if self._image is None:
            self._walk()
        return bool(self._image)

    @property
    def tokens(self) -> int:
        """Estimated input tokens: the text of the system prompt, messages and tools (tokens.py's rules
        of thumb), images at a fixed cost; base64 data is never counted as text."""
        if self._tokens is None:
            self._walk()
        return self._tokens or 0

    def _walk(self) -> None:
        data = self._data
        counter = _Counter()
        counter.add(data.get("system"))
        counter.add(data.get("messages"))
        counter.add(data.get("instructions"))  # the Responses API's
        counter.add(data.get("input"))
        tools = data.get("tools")
        if isinstance(tools, list):
            counter.total += tokens.estimate_text_tokens(orjson.dumps(tools).decode())
        self._tokens, self._image = counter.total, counter.image


_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})


class _Counter:
    __slots__ = ("image", "total")

    def __init__(self) -> None:
        self.total = 0
        self.image = False

    def add(self, value: Any, depth: int = 0) -> None:
        if depth > 32:
            return
        if isinstance(value, str):
            self.total += tokens.estimate_text_tokens(value)
        elif isinstance(value, list):
            for item in value:
                self.add(item, depth + 1)
        elif isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str) and kind in _IMAGE_TYPES:  # a client's list or object: no TypeError
                self.image = True
                self.total += tokens.IMAGE_TOKENS
                return
            for key in (
                "text",
                "content",
                "thinking",
                "input",
                "arguments",
                "tool_calls",
                "function",
                "output",
            ):
                if key in value:
                    item = value[key]
                    self.add(item if not isinstance(item, dict) else orjson.dumps(item).decode(), depth + 1)
            self.total += tokens.MESSAGE_OVERHEAD if "role" in value else 0


# ---------------------------------------------------------------------------------------- router


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
    """The configuration's routing, compiled: a pure function of a request and the configuration.

    Precedence, first that applies wins:
    1. ``force_model``;
    2. the content rules, in this order: ``long_context``, ``image``, ``web_search``, ``background``,
       ``think`` (capabilities the request cannot do without come before cost and preference);
    3. the routes: an exact ``match`` first, then the globs in file order;
    4. the flags' model map and tiers (:func:`resolve_model`);
    5. the client's model, unchanged.
    The upstream of 4 and 5 is :func:`upstream_for` the resulting model.
    """

    def __init__(self, config: Config) -> None:
        self.upstreams = build_upstreams(config)
        if not self.upstreams:
            raise ValueError("no upstream is configured")
        self.tiers = config.routes
        self.rules = config.rules
        self._rules = [
            (name, getattr(config.rules, name)) for name in RULE_NAMES if getattr(config.rules, name)
        ]
        self.force = config.force_model
        self._exact: dict[str, Route] = {}
        self._globs: list[tuple[re.Pattern[str], Route]] = []
        for route in config.route_table:
            if any(ch in route.match for ch in "*?["):
                self._globs.append((re.compile(fnmatch.translate(route.match)), route))
            else:
                self._exact.setdefault(route.match, route)
        self._matched: dict[str, Route | None] = {}  # model name -> route, bounded below
        self._by_model: dict[str, Decision] = {}  # model name -> decision without rules, bounded
        for target in (self.force, *(t for _, t in self._rules)):
            if target is not None and target.upstream is not None and target.upstream not in self.upstreams:
                raise ValueError(f"no upstream is named {target.upstream!r}")
        for route in config.route_table:
            for name in (route.upstream, *(t.upstream for t in route.fallbacks)):
                if name is not None and name not in self.upstreams:
                    raise ValueError(f"route {route.match!r}: no upstream is named {name!r}")

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
        if name == "background":
            return "haiku" in model.lower()  # Claude Code's small-model side calls (titles, summaries)
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
