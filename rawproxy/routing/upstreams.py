"""Upstreams: where each one is, how to authenticate to it, its dialect and quirks, and which one serves a
model that no route names.

An :class:`Upstream` is built once per configuration from an :class:`~.specs.UpstreamSpec`
(:func:`make_upstream`) and shared by every request routed to it: the headers of a translated call depend
on the upstream and the key alone, so they are built up front, and several keys are used in turn.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import quote

from ..dialects import OPENAI_MODELS_PATH, VERSION_PREFIX, Dialect, anthropic_messages, openai_chat
from ..profiles import BETA_QUERY_PROFILES, CLIENT_PROFILES, SESSION_ID_PROFILES, Profile, guess_profile
from .reach import Route, TLSSettings, parse_proxy
from .reach import route as make_route
from .specs import UpstreamSpec

__all__ = ["AZURE_API_VERSION", "ClientKey", "Upstream", "build_upstreams", "make_upstream", "upstream_for"]

log = logging.getLogger("rawproxy")


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
        "route",
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
        route: Route | None = None,
    ) -> None:
        self.name = name
        # How it is reached (reach.py): handed to the upstream client with every call (route=...).
        self.route = route or make_route(name, None, TLSSettings())
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
        if self.beta_query and path.startswith(anthropic_messages.UPSTREAM_PATH):
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
        if "/openai/deployments/" not in base and path == openai_chat.UPSTREAM_PATH:
            base = f"{base.removesuffix('/openai')}/openai/deployments/{quote(model, safe='')}"
        elif path == OPENAI_MODELS_PATH:
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


def route_of(spec: UpstreamSpec) -> Route:
    """How ``spec``'s upstream is reached: its proxy (already resolved against the environment by the
    configuration) and TLS; raises ValueError for a proxy URL that cannot be used (never showing its
    credentials)."""
    proxy = parse_proxy(spec.proxy) if spec.proxy else None
    tls = TLSSettings(spec.ca_file, spec.ca_dir, spec.cert_file, spec.key_file, spec.verify)
    if not spec.verify:
        log.warning(
            "upstream %r: TLS certificate verification is off (verify = false): anyone on the path can "
            "read and change its traffic, the API key included",
            spec.name,
        )
    return make_route(spec.name, proxy, tls)


def make_upstream(spec: UpstreamSpec) -> Upstream:
    way = route_of(spec)
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
            route=way,
        )
    base = spec.base_url.rstrip("/").removesuffix(VERSION_PREFIX)  # tolerate the OpenAI-style form
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
        route=way,
    )


def build_upstreams(specs: Iterable[UpstreamSpec]) -> dict[str, Upstream]:
    """Name -> upstream, in the order given (the first is the last resort of :func:`upstream_for`)."""
    return {spec.name: make_upstream(spec) for spec in specs}


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
