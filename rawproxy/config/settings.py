"""Every setting, once: the ``SETTINGS`` table, from which the rest of the configuration is built.

A row says all there is to know about one setting: its name (the ``Config`` field, and the key in the
``--config`` file), type and default, its ``--help`` text, flag, environment variable, whether the file may
set it at top level, its check, how ``GET /`` shows it, and whether a hot reload applies it (``live``) or
it needs a restart. From the table come the command-line parser and the reading of flags, environment
and file (load.py), the file's accepted top-level keys (file.py), the defaults, validation and
``summary()`` (model.py) and the reload rules (reload.py). Adding a setting is adding a row (and its
``Config`` field); ``tests/config/test_config.py`` fails when the two disagree.

Kinds of row: ``value`` (a flag with a value, a variable, a file key: the first set wins), ``switch`` (a
flag without value or a variable turns it to ``not default``, else the file's ``true``/``false``) and
``special``: read by dedicated code in load.py (the client keys, the model map, ``--force-model``, the
upstream headers, ``--config`` itself). The named upstreams, routes and rules of the file are no rows:
they are tables of the file (file.py), listed in ``NOT_IN_TABLE`` with the other fields that are no row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..profiles import CLIENT_PROFILES, PROFILES

__all__ = [
    "DEFAULT_ANTHROPIC_UPSTREAM",
    "DEFAULT_OPENAI_UPSTREAM",
    "NOT_IN_TABLE",
    "SETTINGS",
    "Setting",
    "by_name",
    "default",
    "file_types",
    "restart_only",
]

DEFAULT_OPENAI_UPSTREAM = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_UPSTREAM = "https://api.anthropic.com"

Check = Callable[[Any], "str | None"]  # the error message for a bad value, None when it is fine
Show = Callable[[Any], Any]  # the Config -> what GET / shows (never a secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    name: str  # the Config field (with part_of: a part of one) and the file's top-level key
    type: type  # str, int, float, bool; list or dict for special rows (their type in the file)
    default: Any
    help: str  # the --help text (a description, for rows without a flag)
    flag: str | None
    env: str | None
    file: bool  # the --config file may set it at top level
    live: bool  # a reload applies it; False: logged as needing a restart
    kind: Literal["value", "switch", "special"] = "value"
    check: Check | None = None
    choices: tuple[str, ...] | None = None  # the flag's, for argparse
    metavar: str | None = None
    repeat: bool = False  # a flag given once per value
    group: str | None = None  # the --help section
    fallback: str | None = None  # a variable read last (OPENAI_API_KEY), after the file
    env_presence: bool = False  # a switch the variable's presence turns, whatever its value (NO_COLOR)
    part_of: str | None = None  # the Config field this is a part of (big_model: routes)
    shown: tuple[str, Show] | None = None  # summary()'s key, and the value shown
    secret: bool = False  # never in repr() or summary(): its Config field is declared repr=False


def _row(
    name: str,
    kind_of: type,
    default_value: Any,
    help_text: str,
    *,
    flag: str | bool = True,
    env: str | bool = True,
    file: bool = True,
    live: bool,
    **rest: Any,
) -> Setting:
    """A row whose flag and variable are derived from the name unless given (``False``: none)."""
    return Setting(
        name=name,
        type=kind_of,
        default=default_value,
        help=help_text,
        flag=("--" + name.replace("_", "-")) if flag is True else (flag or None),
        env=("RAWPROXY_" + name.upper()) if env is True else (env or None),
        file=file,
        live=live,
        **rest,
    )


def _check(ok: Callable[[Any], bool], message: str) -> Check:
    """A check from a test and its message (``{value}`` in it is the value); None passes (unset)."""

    def check(value: Any) -> str | None:
        return None if value is None or ok(value) else message.format(value=value)

    return check


def _positive(name: str) -> Check:
    return _check(lambda v: v > 0, name.replace("_", "-") + " must be positive, got {value}")


def _as_is(name: str) -> tuple[str, Show]:
    return name, lambda config: getattr(config, name)


def _is_set(name: str) -> tuple[str, Show]:
    return name + "_set", lambda config: getattr(config, name) is not None


_OPENAI_SIDE = "OpenAI clients and Anthropic upstreams"
_SIZE = "request size limits must be positive"

SETTINGS: tuple[Setting, ...] = (
    # ------------------------------------------------------------------ the main section of --help
    _row("config_file", str, None, "TOML file: upstreams, routes, rules (README)", flag="--config",
         env="RAWPROXY_CONFIG", file=False, live=False, kind="special", metavar="FILE",
         shown=_as_is("config_file")),
    _row("host", str, "127.0.0.1", "address to listen on (default 127.0.0.1)", live=False),
    _row("port", int, 8082, "port to listen on (default 8082)", live=False,
         check=_check(lambda v: 0 <= v < 65536, "--port {value} is out of range")),
    _row("openai_upstream", str, DEFAULT_OPENAI_UPSTREAM,
         f"upstream base URL including /v1 (default {DEFAULT_OPENAI_UPSTREAM})", file=False, live=True,
         metavar="URL",
         shown=("openai_upstream", lambda c: c.openai_base if c.openai_enabled else None)),
    _row("openai_key", str, None, "upstream API key (default: $OPENAI_API_KEY)", file=False, live=True,
         metavar="KEY", fallback="OPENAI_API_KEY", secret=True, shown=_is_set("openai_key")),
    _row("upstream_profile", str, None, "upstream quirks (default: guessed from the URL)", file=False,
         live=True, choices=tuple(sorted(PROFILES)),
         shown=("upstream_profile", lambda c: c.upstream_profile or "auto"),
         check=_check(lambda v: v in PROFILES, f"--upstream-profile must be one of {', '.join(PROFILES)}")),
    _row("api_keys", list, (), "key clients must present (repeatable; none = open)", flag="--api-key",
         env="RAWPROXY_API_KEY", live=True, kind="special", metavar="KEY", repeat=True, secret=True,
         shown=("client_auth", lambda c: "required" if c.api_keys else "open")),
    _row("carrier_key", str, None, "key that seals reasoning state handed to clients (default: one per "
         "process group; set it when several machines serve the same clients)", live=False, metavar="KEY",
         secret=True, shown=_is_set("carrier_key")),
    _row("top_model", str, None, "target for client models containing 'fable' or 'mythos' (default: the big model's)",
         live=True, metavar="MODEL", part_of="routes", shown=("top_model", lambda c: c.routes.top)),
    _row("big_model", str, None, "target for client models containing 'opus'", live=True, metavar="MODEL",
         part_of="routes", shown=("big_model", lambda c: c.routes.big)),
    _row("middle_model", str, None, "target for client models containing 'sonnet'", live=True,
         metavar="MODEL", part_of="routes", shown=("middle_model", lambda c: c.routes.middle)),
    _row("small_model", str, None, "target for client models containing 'haiku'", live=True,
         metavar="MODEL", part_of="routes", shown=("small_model", lambda c: c.routes.small)),
    _row("model_map", dict, None, "exact names, 'from=to,...'; wins over the tiers", live=True,
         kind="special", metavar="MAP", part_of="routes",
         shown=("model_map", lambda c: dict(c.routes.model_map))),
    _row("default_model", str, None, "target for other claude* models and requests without one",
         live=True, metavar="MODEL", part_of="routes", shown=("default_model", lambda c: c.routes.default)),
    # The file's force_model is parsed with its upstreams (file.py); the flag's here (load.py).
    _row("force_model", str, None, "send every request to this model ('upstream:model' with a file)",
         live=True, kind="special", metavar="MODEL",
         shown=("force_model", lambda c: c.force_model.model if c.force_model else None)),
    _row("max_output_tokens", int, None, "cap on the upstream's output tokens", live=True, metavar="N",
         check=_check(lambda v: v >= 1, "--max-output-tokens must be at least 1, got {value}"),
         shown=_as_is("max_output_tokens")),
    _row("timeout", float, 600.0, "upstream read timeout in seconds (default 600)", live=False,
         metavar="S", check=_positive("timeout"), shown=_as_is("timeout")),
    # log_level and log_format: a reload re-configures the root handler (logs.apply_logging).
    _row("log_level", str, "info", "default info", live=True, choices=("debug", "info", "warning", "error")),
    _row("inspect", bool, False, "show each exchange as a panel on stderr", env=False, file=False,
         live=False, kind="switch"),  # its panel handler is installed at start
    _row("inspect_limit", int, 2000, "characters of a payload an --inspect panel shows (2000)", file=False,
         live=True, metavar="N"),
    _row("workers", int, 1, "processes serving one port (default 1)", live=False, metavar="N",
         check=_check(lambda v: 1 <= v <= 256, "--workers must be between 1 and 256, got {value}")),
    _row("responses_store", int, 0,
         "keep the last N Responses API answers in memory for previous_response_id (default 0: off)",
         live=True, metavar="N",
         check=_check(lambda v: v >= 0, "--responses-store must be 0 or more, got {value}")),
    _row("log_format", str, "text", "text (default) or one JSON object a line", live=True,
         choices=("text", "json"),
         check=_check(lambda v: v in ("text", "json"), "log-format must be text or json, got {value!r}")),
    _row("log_bodies", bool, False,
         "log each client request body, redacted (keys, base64, long strings); off by default", live=True,
         kind="switch"),
    # ------------------------------------------------------- OpenAI clients and Anthropic upstreams
    _row("anthropic_upstream", str, DEFAULT_ANTHROPIC_UPSTREAM,
         f"Anthropic base URL without /v1 (default {DEFAULT_ANTHROPIC_UPSTREAM})", file=False, live=True,
         metavar="URL", group=_OPENAI_SIDE,
         shown=("anthropic_upstream", lambda c: c.anthropic_base if c.anthropic_enabled else None)),
    _row("anthropic_key", str, None, "Anthropic API key (default: $ANTHROPIC_API_KEY)", file=False,
         live=True, metavar="KEY", group=_OPENAI_SIDE, fallback="ANTHROPIC_API_KEY", secret=True,
         shown=_is_set("anthropic_key")),
    _row("client_profile", str, "none", "identity presented upstream (default none)", file=False, live=True,
         choices=tuple(CLIENT_PROFILES), group=_OPENAI_SIDE, shown=_as_is("client_profile"),
         check=_check(lambda v: v in CLIENT_PROFILES,
                      f"--client-profile must be one of {', '.join(CLIENT_PROFILES)}")),
    _row("upstream_headers", list, (), "extra upstream header, repeatable; overrides a preset",
         flag="--upstream-header", env="RAWPROXY_UPSTREAM_HEADER", file=False, live=True, kind="special",
         metavar="'NAME: VALUE'", repeat=True, group=_OPENAI_SIDE, secret=True,
         shown=("upstream_header_names", lambda c: [name for name, _ in c.upstream_headers])),
    _row("system_prompt", str, None, "system prompt for requests that have none", live=True, metavar="TEXT",
         group=_OPENAI_SIDE, shown=_is_set("system_prompt")),
    _row("default_max_tokens", int, 16384, "max_tokens for requests that have none (default 16384)",
         live=True, metavar="N", group=_OPENAI_SIDE, shown=_as_is("default_max_tokens"),
         check=_check(lambda v: v >= 1, "--default-max-tokens must be at least 1, got {value}")),
    _row("auto_cache", bool, True, "no automatic prompt-caching breakpoints", flag="--no-auto-cache",
         env="RAWPROXY_NO_AUTO_CACHE", live=True, kind="switch", group=_OPENAI_SIDE,
         shown=_as_is("auto_cache")),
    # ------------------------------------------------------- company networks (NET-01, NET-02)
    # The flags' upstreams' own proxy (the file's upstreams have a proxy key each); it wins over the
    # environment's HTTPS_PROXY and the rest, which --no-env-proxy turns off for every upstream.
    _row("upstream_proxy", str, None, "HTTP proxy for the flags' upstreams, http://[user:pass@]host:port "
         "(default: $HTTPS_PROXY, $HTTP_PROXY, $ALL_PROXY unless NO_PROXY names the host)", file=False,
         live=True, metavar="URL", group="company networks", secret=True, shown=_is_set("upstream_proxy")),
    _row("env_proxy", bool, True, "ignore HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY",
         flag="--no-env-proxy", env="RAWPROXY_NO_ENV_PROXY", live=True, kind="switch",
         group="company networks", shown=_as_is("env_proxy")),
    _row("upstream_ca_file", str, None, "CA bundle (PEM) the flags' upstreams' certificates are checked "
         "against (default: $SSL_CERT_FILE, else certifi's)", file=False, live=True, metavar="FILE",
         group="company networks", shown=_as_is("upstream_ca_file")),
    # OpenSSL's variables: the default trust of every upstream without a ca_file of its own (tls.py).
    _row("ssl_cert_file", str, None, "CA bundle (PEM) replacing the default for every upstream",
         flag=False, env="SSL_CERT_FILE", file=False, live=True),
    _row("ssl_cert_dir", str, None, "directory of hashed CA certificates replacing the default",
         flag=False, env="SSL_CERT_DIR", file=False, live=True),
    # ---------------------------------------------------------------------------------- limits
    # The server reads the client-side limits from the configuration of the moment (server/loop.py): live.
    # The upstream client (connect_timeout) and the shutdown (grace_seconds) take theirs at start.
    _row("connect_timeout", float, 10.0, "seconds to connect to an upstream (default 10)", live=False,
         metavar="N", group="limits", check=_positive("connect_timeout")),
    _row("idle_timeout", float, 75.0, "seconds an idle keep-alive client connection stays open (default 75)",
         live=True, metavar="N", group="limits", check=_positive("idle_timeout")),
    _row("head_timeout", float, 30.0,
         "seconds a client has to send a whole request head, else 408 (default 30)", live=True, metavar="N", group="limits", check=_positive("head_timeout")),
    _row("max_stream_seconds", float, 3600.0, "the longest a response may run, in seconds (default 3600)",
         live=True, metavar="N", group="limits", check=_positive("max_stream_seconds")),
    _row("max_connections", int, 1024,
         "client connections at once; beyond, 503 with Retry-After (default 1024)", live=True, metavar="N",
         group="limits",
         check=_check(lambda v: v >= 1, "max-connections must be at least 1, got {value}")),
    _row("max_head_bytes", int, 64 * 1024, "largest request head, else 431 (default 65536)", live=True,
         metavar="N", group="limits", check=_check(lambda v: v >= 1, _SIZE)),
    _row("max_body_bytes", int, 32 * 1024 * 1024,
         "largest request body, else 413 (default 33554432, Anthropic's own limit)", live=True, metavar="N",
         group="limits", check=_check(lambda v: v >= 1, _SIZE)),
    _row("grace_seconds", float, 30.0, "on SIGTERM, how long streams in flight may finish (default 30)",
         live=False, metavar="N", group="limits", check=_positive("grace_seconds")),
    # ------------------------------------------------------------------------- the file's only
    _row("ping_interval", float, 10.0, "keep-alive event when the upstream is silent, seconds (A2O-S16)",
         flag=False, env=False, live=True, check=_positive("ping_interval")),  # for streams begun after
    _row("retry_backoff", float, 0.5, "the first wait before retrying an upstream; doubles each time",
         flag=False, env=False, live=True, check=_positive("retry_backoff")),
    _row("retry_backoff_max", float, 8.0, "the longest wait, also for Retry-After: longer means move on",
         flag=False, env=False, live=True, check=_positive("retry_backoff_max")),
    _row("reload_interval", float, 1.0, "how often the --config file is checked for changes, seconds",
         flag=False, env=False, live=True, check=_positive("reload_interval")),
    # ---------------------------------------------------------------------- the environment's only
    _row("reuse_port", bool, False, "SO_REUSEPORT: set for the workers by their supervisor", flag=False,
         file=False, live=False, kind="switch"),
    _row("colour", bool, True, "off with NO_COLOR (https://no-color.org); panels colour a terminal only",
         flag=False, env="NO_COLOR", env_presence=True, file=False, live=True, kind="switch"),
)  # fmt: skip

# Config fields that are no row, and where each comes from; all are taken on reload.
NOT_IN_TABLE: Mapping[str, str] = {
    "routes": "the rows part_of='routes': --big-model, --middle-model, --small-model, --default-model, "
    "--model-map",
    "upstreams": "the file's [[upstreams]]",
    "route_table": "the file's [[routes]]",
    "rules": "the file's [rules]",
    "models_cache_seconds": "programs embedding the proxy only: Config(models_cache_seconds=...)",
    "proxy_environment": "the environment's https_proxy, http_proxy, all_proxy, no_proxy (either case)",
    "origins": "no setting: where the built-in upstreams' settings came from, for the start lines",
}

_BY_NAME = {setting.name: setting for setting in SETTINGS}
_FILE_TYPES: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),  # TOML's 30 is an integer; a number of seconds may be one
    bool: (bool,),
    list: (list,),
    dict: (dict,),
}


def by_name(name: str) -> Setting:
    return _BY_NAME[name]


def default(name: str) -> Any:
    """The default of a setting, for its ``Config`` field."""
    return _BY_NAME[name].default


def file_types(setting: Setting) -> tuple[type, ...]:
    """The TOML types the file may give the setting."""
    return _FILE_TYPES[setting.type]


def restart_only() -> tuple[str, ...]:
    """The settings a reload cannot apply: a change is logged as needing a restart."""
    return tuple(setting.name for setting in SETTINGS if not setting.live)
