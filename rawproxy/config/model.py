"""The configuration: one frozen ``Config``, built once from argv, the environment and ``.env`` (load.py)
and the ``--config`` file (file.py), checked whole when it is made.

Each field's default, check and ``GET /`` line come from its row of the ``SETTINGS`` table (settings.py);
the code here is for what no row can say: the upstream URLs (and the guard against pointing one back at
this proxy), the upstreams the flags describe next to the file's, and the cross-references of routes and
rules. ``router_spec()`` and ``router()`` hand routing its plain specs: routing never imports this.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..dialects import VERSION_PREFIX
from ..errors import ConfigError
from ..routing import Router
from ..routing.reach import ProxyEnvironment, TLSSettings, parse_proxy, redacted
from ..routing.specs import RULE_NAMES, ModelRoutes, Route, RouterSpec, Rules, Target, UpstreamSpec
from .load import collect
from .settings import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, SETTINGS, default

__all__ = ["Config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    # The defaults are the SETTINGS table's; the comments say what each is for.
    host: str = default("host")
    port: int = default("port")
    openai_upstream: str = default("openai_upstream")
    openai_key: str | None = field(default=default("openai_key"), repr=False)
    upstream_profile: str | None = default("upstream_profile")  # guessed from the URL when None
    anthropic_upstream: str = default("anthropic_upstream")
    anthropic_key: str | None = field(default=default("anthropic_key"), repr=False)
    client_profile: str = default("client_profile")  # the identity presented to an Anthropic upstream
    upstream_headers: tuple[tuple[str, str], ...] = field(default=default("upstream_headers"), repr=False)
    system_prompt: str | None = default("system_prompt")  # for OpenAI clients' requests that bring none
    default_max_tokens: int = default("default_max_tokens")  # for OpenAI clients' requests without one
    auto_cache: bool = default("auto_cache")  # prompt-caching breakpoints for Anthropic upstreams
    api_keys: tuple[str, ...] = field(default=default("api_keys"), repr=False)
    carrier_key: str | None = field(default=default("carrier_key"), repr=False)  # seals reasoning state
    routes: ModelRoutes = field(default_factory=ModelRoutes)
    max_output_tokens: int | None = default("max_output_tokens")
    timeout: float = default("timeout")  # upstream read timeout: the longest silence between two chunks
    connect_timeout: float = default("connect_timeout")
    log_level: str = default("log_level")
    workers: int = default("workers")  # processes on one port (workers.py)
    responses_store: int = default("responses_store")  # Responses API answers kept; 0: none
    reuse_port: bool = default("reuse_port")  # SO_REUSEPORT: set for the workers by their supervisor
    log_format: str = default("log_format")  # or "json": one JSON object a line
    inspect: bool = default("inspect")  # each exchange as a panel on stderr (observe/panels.py)
    inspect_limit: int = default("inspect_limit")  # characters of a request or response in a panel
    colour: bool = default("colour")  # off with NO_COLOR; panels colour only a terminal anyway
    log_bodies: bool = default("log_bodies")  # client request bodies in the access log, redacted
    ping_interval: float = default("ping_interval")  # keep-alive event when the upstream is silent
    max_body_bytes: int = default("max_body_bytes")  # Anthropic's own request limit
    max_head_bytes: int = default("max_head_bytes")
    idle_timeout: float = default("idle_timeout")  # how long an idle client connection stays open
    head_timeout: float = default("head_timeout")  # a request head's first byte to its end (408)
    max_connections: int = default("max_connections")  # beyond: 503 with Retry-After
    max_stream_seconds: float = default("max_stream_seconds")  # the longest a response may run
    models_cache_seconds: float = 300.0  # no row: programs embedding the proxy may set it
    grace_seconds: float = default("grace_seconds")
    # From the --config file (file.py): named upstreams, routes, content rules.
    config_file: str | None = default("config_file")
    upstreams: tuple[UpstreamSpec, ...] = ()
    route_table: tuple[Route, ...] = ()
    rules: Rules = field(default_factory=Rules)
    force_model: Target | None = default("force_model")  # noqa: RUF009 (None: immutable)
    retry_backoff: float = default("retry_backoff")  # the first wait before a retry; doubles each time
    retry_backoff_max: float = default("retry_backoff_max")  # also for Retry-After: longer means move on
    reload_interval: float = default("reload_interval")  # how often the --config file is checked
    # Company networks (NET-01, NET-02): resolved per upstream by router_spec().
    upstream_proxy: str | None = field(default=default("upstream_proxy"), repr=False)  # may hold a password
    env_proxy: bool = default("env_proxy")  # False: the environment's proxy variables are ignored
    proxy_environment: ProxyEnvironment = field(default_factory=ProxyEnvironment)  # its repr hides passwords
    upstream_ca_file: str | None = default("upstream_ca_file")
    ssl_cert_file: str | None = default("ssl_cert_file")  # the environment's SSL_CERT_FILE
    ssl_cert_dir: str | None = default("ssl_cert_dir")  # and SSL_CERT_DIR
    # Where the built-in upstreams' settings came from, for the start lines (startup.py): (name, where).
    origins: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.host.startswith("[") and self.host.endswith("]"):  # --host [::1], as a URL writes it
            object.__setattr__(self, "host", self.host[1:-1])
        self.check()

    def check(self) -> None:
        for flag, url in (
            ("--openai-upstream", self.openai_upstream),
            ("--anthropic-upstream", self.anthropic_upstream),
        ):
            self._check_upstream_url(flag, url)
        for setting in SETTINGS:  # each row's own check, in the table's order
            if setting.check is not None and setting.part_of is None:
                problem = setting.check(getattr(self, setting.name))
                if problem is not None:
                    raise ConfigError(problem)
        for spec in self.upstreams:
            self._check_upstream_url(f"upstream {spec.name!r}: base_url", spec.base_url)
        for spec in self.reached():  # every proxy URL parses, every certificate file loads: at start
            where = f"upstream {spec.name!r}"
            try:
                if spec.proxy:
                    parse_proxy(spec.proxy)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            tls = TLSSettings(spec.ca_file, spec.ca_dir, spec.cert_file, spec.key_file, spec.verify)
            if not tls.default:  # (only then: the client package loads asyncio, not wanted for a Config)
                from ..client.tls import check as check_tls

                problem = check_tls(tls)
                if problem is not None:
                    raise ConfigError(f"{where}: {problem}")
        if self.force_model is not None and self.force_model.upstream is None and not self.force_model.model:
            raise ConfigError("force_model must name a model")
        names = {spec.name for spec in self.upstream_list()}
        if not names:
            raise ConfigError("no upstream is configured")
        targets = [("force_model", self.force_model)]
        targets += [(f"rules.{name}", getattr(self.rules, name)) for name in RULE_NAMES]
        for route in self.route_table:
            targets += [(f"route {route.match!r}", Target(route.upstream, None))]
            targets += [(f"route {route.match!r}: fallbacks", t) for t in route.fallbacks]
        for where, target in targets:
            if target is not None and target.upstream is not None and target.upstream not in names:
                raise ConfigError(
                    f"{where}: no upstream is named {target.upstream!r} (known: {', '.join(sorted(names))})"
                )

    def upstream_list(self) -> tuple[UpstreamSpec, ...]:
        """Every upstream: the file's, then those the flags describe (named ``openai`` and ``anthropic``).

        Without a file, the flags' upstreams are as they always were. With upstreams in the file, a flag's
        upstream is added only when its URL is set explicitly (flag or RAWPROXY_* variable): an
        ``OPENAI_API_KEY`` lying in the environment must not add api.openai.com behind the user's back.
        A flag's upstream replaces a file upstream of the same name (flags override the file)."""
        legacy: list[UpstreamSpec] = []
        has_file = bool(self.upstreams)
        if (self.openai_enabled and not has_file) or self.openai_upstream != DEFAULT_OPENAI_UPSTREAM:
            legacy.append(
                UpstreamSpec(
                    name="openai",
                    protocol="openai",
                    base_url=self.openai_base,
                    api_keys=(self.openai_key,) if self.openai_key else (),
                    profile=self.upstream_profile,
                    headers=self.upstream_headers,
                    proxy=self.upstream_proxy,
                    ca_file=self.upstream_ca_file,
                )
            )
        if (self.anthropic_enabled and not has_file) or self.anthropic_upstream != DEFAULT_ANTHROPIC_UPSTREAM:
            legacy.append(
                UpstreamSpec(
                    name="anthropic",
                    protocol="anthropic",
                    base_url=self.anthropic_base,
                    api_keys=(self.anthropic_key,) if self.anthropic_key else (),
                    client_profile=self.client_profile,
                    headers=self.upstream_headers,
                    proxy=self.upstream_proxy,
                    ca_file=self.upstream_ca_file,
                )
            )
        names = {spec.name for spec in legacy}
        return (*(spec for spec in self.upstreams if spec.name not in names), *legacy)

    def reached(self) -> tuple[UpstreamSpec, ...]:
        """Every upstream with how it is reached resolved, once (NET-01, NET-02): its own ``proxy``
        (``""``: directly), else, unless ``env_proxy`` is off, the environment's for its URL (``NO_PROXY``
        considered); its own ``ca_file``, else ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``."""
        return tuple(self._reached(spec) for spec in self.upstream_list())

    def _reached(self, spec: UpstreamSpec) -> UpstreamSpec:
        proxy = spec.proxy
        if proxy is None and self.env_proxy:
            chosen = self.proxy_environment.for_url(spec.base_url)
            if chosen is not None:
                name, proxy = chosen
                try:
                    parse_proxy(proxy)
                except ValueError as exc:  # say which variable: the user did not name it in the file
                    raise ConfigError(f"upstream {spec.name!r}: {name}: {exc}; or --no-env-proxy") from None
        ca_file, ca_dir = spec.ca_file, None
        if ca_file is None:
            ca_file, ca_dir = self.ssl_cert_file, self.ssl_cert_dir
        return replace(spec, proxy=proxy or None, ca_file=ca_file, ca_dir=ca_dir)

    def router_spec(self) -> RouterSpec:
        """What routing is built from: every upstream and the routing settings, nothing else."""
        return RouterSpec(
            upstreams=self.reached(),
            routes=self.routes,
            route_table=self.route_table,
            rules=self.rules,
            force_model=self.force_model,
        )

    def router(self) -> Router:
        """This configuration's router; raises ValueError when it cannot route."""
        return Router(self.router_spec())

    def _check_upstream_url(self, flag: str, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{flag} {url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if port == self.port and _is_this_host(parts.hostname, self.host):
            raise ConfigError(
                f"{flag} {url} points back at this proxy ({self.host}:{self.port}); point it at the real upstream"
            )

    @property
    def openai_base(self) -> str:
        return self.openai_upstream.rstrip("/")

    @property
    def anthropic_base(self) -> str:
        base = self.anthropic_upstream.rstrip("/")
        return base.removesuffix(VERSION_PREFIX)  # tolerate the OpenAI-style form

    @property
    def anthropic_enabled(self) -> bool:
        """An Anthropic upstream is in use once it has a key or a URL of its own."""
        return self.anthropic_key is not None or self.anthropic_upstream != DEFAULT_ANTHROPIC_UPSTREAM

    @property
    def openai_enabled(self) -> bool:
        """The OpenAI upstream is in use once configured, and whenever the Anthropic one is not."""
        configured = self.openai_key is not None or self.openai_upstream != DEFAULT_OPENAI_UPSTREAM
        return configured or not self.anthropic_enabled

    def summary(self) -> dict[str, Any]:
        """What ``GET /`` shows: the settings that explain behaviour (the rows that say how they are
        shown), then the file's upstreams, routes and rules; never a secret."""
        out = {key: show(self) for setting in SETTINGS if setting.shown for key, show in (setting.shown,)}
        out["upstreams"] = [
            {
                "name": u.name,
                "protocol": u.protocol,
                "base_url": _shown(u.base_url),
                "key_set": bool(u.api_keys),
                "proxy": redacted(u.proxy) if u.proxy else None,
            }
            for u in self.reached()
        ]
        out["routes"] = [route.match for route in self.route_table]
        out["rules"] = [name for name in RULE_NAMES if getattr(self.rules, name) is not None]
        return out

    @classmethod
    def from_flags(cls, *argv: str) -> Config:
        """The configuration the command line ``argv`` describes, with nothing from the environment or a
        ``.env`` file: for programs that embed the proxy (``Config.from_flags("--openai-upstream", url)``)."""
        return cls.from_env(argv, environ={}, dotenv=None)

    @classmethod
    def from_env(
        cls,
        argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        dotenv: Path | None = Path(".env"),
    ) -> Config:
        """Build the configuration; raises ConfigError (bad values) or SystemExit (--help, bad flags)."""
        return cls(**collect(argv, environ, dotenv))


def _shown(url: str) -> str:
    """A URL without what may hold a secret (``user:password@``, a ``?key=`` query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _local(name: str) -> bool:
    """A loopback or unspecified address, or a name for this machine."""
    if name in ("localhost", socket.gethostname()):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_this_host(name: str, bound: str) -> bool:
    """Whether ``name`` reaches a server bound to ``bound``: the same address, or, for a server bound to
    loopback or to every interface, any local name or loopback address (127.0.0.0/8, ::1)."""
    return name == bound or (_local(bound) and _local(name))
