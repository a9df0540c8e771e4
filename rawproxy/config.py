"""The configuration: one frozen object, built once from argv, the environment and ``.env``.

Precedence, highest first: command-line flag, ``RAWPROXY_*`` environment variable, the same name in a
``.env`` file in the working directory, the ``--config`` TOML file (config_file.py), a documented
fallback (``OPENAI_API_KEY``), the default.

This is the only module that reads ``os.environ``, and it never reads ``ANTHROPIC_BASE_URL``: that is
Claude Code's own variable, pointing at *us*, and taking it as our upstream would make a loop.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__, config_file
from .config_file import Route, Rules, Target, UpstreamSpec
from .errors import ConfigError
from .profiles import CLIENT_PROFILES, PROFILES
from .routing import ModelRoutes, parse_model_map

__all__ = ["Config", "ConfigError", "build_parser", "read_dotenv"]

DEFAULT_OPENAI_UPSTREAM = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_UPSTREAM = "https://api.anthropic.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8082
    openai_upstream: str = DEFAULT_OPENAI_UPSTREAM
    openai_key: str | None = field(default=None, repr=False)
    upstream_profile: str | None = None  # guessed from the URL when None
    anthropic_upstream: str = DEFAULT_ANTHROPIC_UPSTREAM
    anthropic_key: str | None = field(default=None, repr=False)
    client_profile: str = "none"  # the identity presented to an Anthropic upstream (decision 7)
    upstream_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # override any preset
    system_prompt: str | None = None  # for OpenAI clients' requests that bring none (O2A-R02)
    default_max_tokens: int = 16384  # for OpenAI clients' requests that bring none (O2A-R19)
    auto_cache: bool = True  # prompt-caching breakpoints for Anthropic upstreams (decision 8)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    routes: ModelRoutes = field(default_factory=ModelRoutes)
    max_output_tokens: int | None = None
    timeout: float = 600.0  # upstream read timeout: the longest silence between two chunks
    connect_timeout: float = 10.0
    log_level: str = "info"
    workers: int = 1  # processes on one port (workers.py)
    responses_store: int = 0  # recent Responses API answers kept for previous_response_id; 0: none
    reuse_port: bool = False  # SO_REUSEPORT: set for the workers by their supervisor
    log_format: str = "text"  # or "json": one JSON object a line
    inspect: bool = False  # each exchange as a panel on stderr (panels.py)
    inspect_limit: int = 2000  # characters of a request or response shown in a panel
    colour: bool = True  # off with NO_COLOR (https://no-color.org); panels colour only a terminal anyway
    log_bodies: bool = False  # client request bodies in the access log, redacted (redact.py)
    ping_interval: float = 10.0  # keep-alive event when the upstream is silent (A2O-S16)
    max_body_bytes: int = 32 * 1024 * 1024  # Anthropic's own request limit
    max_head_bytes: int = 64 * 1024
    idle_timeout: float = 75.0  # keep-alive: how long an idle client connection stays open
    head_timeout: float = 30.0  # from a request head's first byte to its end (slowloris: 408)
    max_connections: int = 1024  # client connections at once; beyond: 503 with Retry-After
    max_stream_seconds: float = 3600.0  # the longest a response may run, however busy its upstream
    models_cache_seconds: float = 300.0
    grace_seconds: float = 30.0
    # From the --config file (config_file.py): named upstreams, routes, content rules.
    config_file: str | None = None
    upstreams: tuple[UpstreamSpec, ...] = ()
    route_table: tuple[Route, ...] = ()
    rules: Rules = field(default_factory=Rules)
    force_model: Target | None = None
    retry_backoff: float = 0.5  # the first wait before retrying an upstream; doubles each time
    retry_backoff_max: float = 8.0  # the longest wait, also for Retry-After: longer means "move on"
    reload_interval: float = 1.0  # how often the --config file is checked for changes

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        for flag, url in (
            ("--openai-upstream", self.openai_upstream),
            ("--anthropic-upstream", self.anthropic_upstream),
        ):
            self._check_upstream_url(flag, url)
        if self.client_profile not in CLIENT_PROFILES:
            raise ConfigError(f"--client-profile must be one of {', '.join(CLIENT_PROFILES)}")
        if self.default_max_tokens < 1:
            raise ConfigError(f"--default-max-tokens must be at least 1, got {self.default_max_tokens}")
        if self.upstream_profile is not None and self.upstream_profile not in PROFILES:
            raise ConfigError(f"--upstream-profile must be one of {', '.join(PROFILES)}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port {self.port} is out of range")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ConfigError(f"--max-output-tokens must be at least 1, got {self.max_output_tokens}")
        for name in (
            "timeout",
            "connect_timeout",
            "ping_interval",
            "idle_timeout",
            "head_timeout",
            "max_stream_seconds",
            "grace_seconds",
            "retry_backoff",
            "retry_backoff_max",
            "reload_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.max_body_bytes < 1 or self.max_head_bytes < 1:
            raise ConfigError("request size limits must be positive")
        if self.responses_store < 0:
            raise ConfigError(f"--responses-store must be 0 or more, got {self.responses_store}")
        if not 1 <= self.workers <= 256:
            raise ConfigError(f"--workers must be between 1 and 256, got {self.workers}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log-format must be text or json, got {self.log_format!r}")
        if self.max_connections < 1:
            raise ConfigError(f"max-connections must be at least 1, got {self.max_connections}")
        for spec in self.upstreams:
            self._check_upstream_url(f"upstream {spec.name!r}: base_url", spec.base_url)
        if self.force_model is not None and self.force_model.upstream is None and not self.force_model.model:
            raise ConfigError("force_model must name a model")
        names = {spec.name for spec in self.upstream_list()}
        if not names:
            raise ConfigError("no upstream is configured")
        targets = [("force_model", self.force_model)]
        targets += [(f"rules.{name}", getattr(self.rules, name)) for name in config_file.RULE_NAMES]
        for route in self.route_table:
            targets += [(f"route {route.match!r}", config_file.Target(route.upstream, None))]
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
                )
            )
        names = {spec.name for spec in legacy}
        return (*(spec for spec in self.upstreams if spec.name not in names), *legacy)

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
        return base.removesuffix("/v1")  # tolerate the OpenAI-style form

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
        """What ``GET /`` shows: the settings that explain behaviour, never a secret."""
        return {
            "openai_upstream": self.openai_base if self.openai_enabled else None,
            "upstream_profile": self.upstream_profile or "auto",
            "openai_key_set": self.openai_key is not None,
            "anthropic_upstream": self.anthropic_base if self.anthropic_enabled else None,
            "anthropic_key_set": self.anthropic_key is not None,
            "client_profile": self.client_profile,
            "upstream_header_names": [name for name, _ in self.upstream_headers],
            "system_prompt_set": self.system_prompt is not None,
            "default_max_tokens": self.default_max_tokens,
            "auto_cache": self.auto_cache,
            "client_auth": "required" if self.api_keys else "open",
            "big_model": self.routes.big,
            "middle_model": self.routes.middle,
            "small_model": self.routes.small,
            "default_model": self.routes.default,
            "model_map": dict(self.routes.model_map),
            "max_output_tokens": self.max_output_tokens,
            "timeout": self.timeout,
            "config_file": self.config_file,
            "upstreams": [
                {
                    "name": u.name,
                    "protocol": u.protocol,
                    "base_url": _shown(u.base_url),
                    "key_set": bool(u.api_keys),
                }
                for u in self.upstream_list()
            ],
            "routes": [route.match for route in self.route_table],
            "rules": [name for name in config_file.RULE_NAMES if getattr(self.rules, name) is not None],
            "force_model": self.force_model.model if self.force_model else None,
        }

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
        args = build_parser().parse_args(list(argv) if argv is not None else None)
        env = dict(read_dotenv(dotenv) if dotenv is not None else {})
        env.update(os.environ if environ is None else environ)
        path = args.config or env.get("RAWPROXY_CONFIG") or None
        file = config_file.load(path, env) if path else config_file.FileSettings()
        top = file.settings

        def pick(name: str, fallback: str | None = None) -> str | None:
            value = getattr(args, name)
            if value is not None:
                return str(value) if not isinstance(value, list) else ",".join(value)
            if env.get("RAWPROXY_" + name.upper()):
                return env["RAWPROXY_" + name.upper()]
            if name in top and not isinstance(top[name], tuple | dict):
                return str(top[name])
            return env.get(fallback) if fallback else None

        def number(name: str, kind: type[Any]) -> Any:
            raw = pick(name)
            if raw is None:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(f"--{name.replace('_', '-')} expects a number, got {raw!r}") from None

        try:
            model_map = {**top.get("model_map", {}), **parse_model_map(pick("model_map") or "")}
        except ValueError as exc:
            raise ConfigError(f"--model-map: {exc}") from None
        keys = pick("api_key") or ",".join(top.get("api_keys", ()))
        force = pick("force_model")  # the flag or the environment: the file's is parsed already
        known = frozenset(spec.name for spec in file.upstreams) | {"openai", "anthropic"}
        force_model = (
            config_file.parse_target("--force-model", force, known, bare_model=True)
            if force
            else file.force_model
        )
        values: dict[str, Any] = {
            "host": pick("host"),
            "port": number("port", int),
            "openai_upstream": pick("openai_upstream"),
            "openai_key": pick("openai_key", "OPENAI_API_KEY"),
            "upstream_profile": pick("upstream_profile"),
            "api_keys": tuple(k.strip() for k in keys.split(",") if k.strip()) if keys else None,
            "routes": ModelRoutes(
                model_map=model_map,
                big=pick("big_model"),
                middle=pick("middle_model"),
                small=pick("small_model"),
                default=pick("default_model"),
            ),
            "max_output_tokens": number("max_output_tokens", int),
            "anthropic_upstream": pick("anthropic_upstream"),
            "anthropic_key": pick("anthropic_key", "ANTHROPIC_API_KEY"),
            "client_profile": pick("client_profile"),
            "upstream_headers": _headers(
                args.upstream_header or env.get("RAWPROXY_UPSTREAM_HEADER", "").splitlines()
            ),
            "system_prompt": pick("system_prompt"),
            "default_max_tokens": number("default_max_tokens", int),
            "auto_cache": False if args.no_auto_cache or _truthy(env.get("RAWPROXY_NO_AUTO_CACHE")) else None,
            "timeout": number("timeout", float),
            "log_level": pick("log_level"),
            "log_format": pick("log_format"),
            "inspect": True if args.inspect else None,
            "inspect_limit": number("inspect_limit", int),
            "colour": False if "NO_COLOR" in env else None,
            "workers": number("workers", int),
            "responses_store": number("responses_store", int),
            "reuse_port": True if _truthy(env.get("RAWPROXY_REUSE_PORT")) else None,
            "log_bodies": True if args.log_bodies or _truthy(env.get("RAWPROXY_LOG_BODIES")) else None,
            "config_file": str(path) if path else None,
            "upstreams": file.upstreams,
            "route_table": file.routes,
            "rules": file.rules,
            "force_model": force_model,
        }
        for name, kind in LIMIT_FLAGS:  # flag, environment or file
            values[name] = number(name, kind)
        for name, kind in (
            ("ping_interval", float),
            ("retry_backoff", float),
            ("retry_backoff_max", float),
            ("reload_interval", float),
        ):
            if name in top:  # the file's only
                values[name] = kind(top[name])
        for name in ("auto_cache", "log_bodies"):  # switches: a flag or variable turns them, else the file
            if name in top and values[name] is None:
                values[name] = bool(top[name])
        return cls(**{k: v for k, v in values.items() if v is not None})


# The limits (issue 6), each a flag of its own (name, type; the help text below).
LIMIT_FLAGS: tuple[tuple[str, type], ...] = (
    ("connect_timeout", float),
    ("idle_timeout", float),
    ("head_timeout", float),
    ("max_stream_seconds", float),
    ("max_connections", int),
    ("max_head_bytes", int),
    ("max_body_bytes", int),
    ("grace_seconds", float),
)
_LIMIT_HELP = {
    "connect_timeout": "seconds to connect to an upstream (default 10)",
    "idle_timeout": "seconds an idle keep-alive client connection stays open (default 75)",
    "head_timeout": "seconds a client has to send a whole request head, else 408 (default 30)",
    "max_stream_seconds": "the longest a response may run, in seconds (default 3600)",
    "max_connections": "client connections at once; beyond, 503 with Retry-After (default 1024)",
    "max_head_bytes": "largest request head, else 431 (default 65536)",
    "max_body_bytes": "largest request body, else 413 (default 33554432, Anthropic's own limit)",
    "grace_seconds": "on SIGTERM, how long streams in flight may finish (default 30)",
}


def claude_code_environment(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], Path]:
    """What ``rawproxy doctor`` looks at on Claude Code's side: its ``ANTHROPIC_*`` variables and the
    home directory holding ``~/.claude/settings.json``. (This module is the one reader of the
    environment; the proxy itself never takes ``ANTHROPIC_BASE_URL``.)"""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    return {k: v for k, v in env.items() if k.startswith("ANTHROPIC_")}, home


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


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _headers(lines: Sequence[str]) -> tuple[tuple[str, str], ...] | None:
    """``'Name: value'`` strings (flags, or lines of RAWPROXY_UPSTREAM_HEADER) -> pairs."""
    pairs = []
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--upstream-header {line!r} is not of the form 'Name: value'")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs) or None


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file; comments, ``export`` and quotes handled; missing is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rawproxy",
        description="Anthropic Messages API in, OpenAI-compatible Chat Completions upstream. "
        "Every flag also reads RAWPROXY_<FLAG> (e.g. RAWPROXY_OPENAI_UPSTREAM) from the environment or .env. "
        "Other commands: 'rawproxy fake-upstream', 'rawproxy demo'.",
    )
    p.add_argument("--version", action="version", version=f"rawproxy {__version__}")
    p.add_argument("--config", metavar="FILE", help="TOML file: upstreams, routes, rules (README)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", help="port to listen on (default 8082)")
    p.add_argument(
        "--openai-upstream",
        metavar="URL",
        help=f"upstream base URL including /v1 (default {DEFAULT_OPENAI_UPSTREAM})",
    )
    p.add_argument("--openai-key", metavar="KEY", help="upstream API key (default: $OPENAI_API_KEY)")
    p.add_argument(
        "--upstream-profile", choices=sorted(PROFILES), help="upstream quirks (default: guessed from the URL)"
    )
    p.add_argument(
        "--api-key", metavar="KEY", action="append", help="key clients must present (repeatable; none = open)"
    )
    p.add_argument("--big-model", metavar="MODEL", help="target for client models containing 'opus'")
    p.add_argument("--middle-model", metavar="MODEL", help="target for client models containing 'sonnet'")
    p.add_argument("--small-model", metavar="MODEL", help="target for client models containing 'haiku'")
    p.add_argument("--model-map", metavar="MAP", help="exact names, 'from=to,...'; wins over the tiers")
    p.add_argument(
        "--default-model", metavar="MODEL", help="target for other claude* models and requests without one"
    )
    p.add_argument(
        "--force-model",
        metavar="MODEL",
        help="send every request to this model ('upstream:model' with a file)",
    )
    p.add_argument("--max-output-tokens", metavar="N", help="cap on the upstream's output tokens")
    p.add_argument("--timeout", metavar="S", help="upstream read timeout in seconds (default 600)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    p.add_argument(
        "--inspect", action="store_true", default=None, help="show each exchange as a panel on stderr"
    )
    p.add_argument(
        "--inspect-limit", metavar="N", help="characters of a payload an --inspect panel shows (2000)"
    )
    p.add_argument("--workers", metavar="N", help="processes serving one port (default 1)")
    p.add_argument(
        "--responses-store",
        metavar="N",
        help="keep the last N Responses API answers in memory for previous_response_id (default 0: off)",
    )
    p.add_argument("--log-format", choices=["text", "json"], help="text (default) or one JSON object a line")
    p.add_argument(
        "--log-bodies",
        action="store_true",
        default=None,
        help="log each client request body, redacted (keys, base64, long strings); off by default",
    )
    a = p.add_argument_group("OpenAI clients and Anthropic upstreams")
    a.add_argument(
        "--anthropic-upstream",
        metavar="URL",
        help=f"Anthropic base URL without /v1 (default {DEFAULT_ANTHROPIC_UPSTREAM})",
    )
    a.add_argument("--anthropic-key", metavar="KEY", help="Anthropic API key (default: $ANTHROPIC_API_KEY)")
    a.add_argument(
        "--client-profile", choices=list(CLIENT_PROFILES), help="identity presented upstream (default none)"
    )
    a.add_argument(
        "--upstream-header",
        metavar="'NAME: VALUE'",
        action="append",
        help="extra upstream header, repeatable; overrides a preset",
    )
    a.add_argument("--system-prompt", metavar="TEXT", help="system prompt for requests that have none")
    a.add_argument(
        "--default-max-tokens", metavar="N", help="max_tokens for requests that have none (default 16384)"
    )
    a.add_argument(
        "--no-auto-cache", action="store_true", default=None, help="no automatic prompt-caching breakpoints"
    )
    limits = p.add_argument_group("limits")
    for name, _ in LIMIT_FLAGS:
        limits.add_argument("--" + name.replace("_", "-"), metavar="N", help=_LIMIT_HELP[name])
    return p
