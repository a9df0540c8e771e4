"""The ``--config FILE`` TOML file -> plain, validated values. Pure but for reading the file.

The file has top-level settings (the same names as the command-line flags, with underscores: the rows of
settings.py's ``SETTINGS`` that allow the file), named ``[[upstreams]]``, ``[[routes]]`` and a ``[rules]``
table; see the README's "Configuration file". The entries become the specs routing is built from
(``rawproxy.routing.specs``). Every mistake is a ``ConfigError`` that names the file, the entry and the
key, so a bad reload can say exactly what is wrong. The environment is passed in (``api_key_env``), never
read here: load.py is the only reader of ``os.environ``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..profiles import CLIENT_PROFILES, PROFILES
from ..routing.specs import DEFAULT_LONG_CONTEXT, RULE_NAMES, Route, Rules, Target, UpstreamSpec
from .settings import SETTINGS, file_types

__all__ = [
    "DEFAULT_LONG_CONTEXT",
    "RULE_NAMES",
    "FileSettings",
    "Route",
    "Rules",
    "Target",
    "UpstreamSpec",
    "load",
    "parse",
    "parse_target",
]

OVERRIDES = ("max_tokens", "temperature", "top_p", "top_k")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSettings:
    upstreams: tuple[UpstreamSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: Rules = field(default_factory=Rules)
    force_model: Target | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # the top-level flag-like values


# Top-level keys and the types each takes, from the SETTINGS table (a flag of the same name overrides it).
# The tables of the file (and force_model, which names its upstreams) are parsed here, not as settings.
_TABLES = ("upstreams", "routes", "rules", "force_model")
_TOP: dict[str, tuple[type, ...]] = {
    setting.name: file_types(setting) for setting in SETTINGS if setting.file and setting.name not in _TABLES
}
_UPSTREAM_KEYS = frozenset(
    {
        "name",
        "protocol",
        "base_url",
        "api_key",
        "api_key_env",
        "profile",
        "client_profile",
        "headers",
        "timeout",
        "max_output_tokens",
        "models",
        "forward_client_key",
        "retries",
        "api_version",
        "proxy",
        "ca_file",
        "cert_file",
        "key_file",
        "verify",
    }
)
_ROUTE_KEYS = frozenset({"match", "upstream", "model", "fallbacks", "compact", *OVERRIDES})


def load(path: str | Path, environ: Mapping[str, str]) -> FileSettings:
    """Read and check ``path``; raises ConfigError naming the file and what is wrong in it."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # TOML is UTF-8; tomllib decodes first
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    try:
        return parse(data, environ)
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None


def parse(data: Mapping[str, Any], environ: Mapping[str, str]) -> FileSettings:
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TABLES:
            continue
        if key not in _TOP:
            raise ConfigError(f"unknown setting {key!r}")
        settings[key] = _typed(key, value, _TOP[key])
    if "api_keys" in settings:
        settings["api_keys"] = tuple(_strings("api_keys", settings["api_keys"]))
    if "model_map" in settings:
        settings["model_map"] = {
            str(k): _typed(f"model_map.{k}", v, (str,)) for k, v in settings["model_map"].items()
        }
    upstreams = tuple(
        _upstream(i, entry, environ)
        for i, entry in enumerate(_tables("upstreams", data.get("upstreams", [])))
    )
    names = [u.name for u in upstreams]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"two upstreams are named {name!r}")
    known = frozenset(names)
    routes = tuple(
        _route(i, entry, known) for i, entry in enumerate(_tables("routes", data.get("routes", [])))
    )
    rules = _rules(data.get("rules", {}), known)
    force = data.get("force_model")
    force_model = (
        parse_target("force_model", _typed("force_model", force, (str,)), known, bare_model=True)
        if force is not None
        else None
    )
    return FileSettings(
        upstreams=upstreams, routes=routes, rules=rules, force_model=force_model, settings=settings
    )


# ---------------------------------------------------------------------------------------- entries


def _upstream(index: int, entry: Mapping[str, Any], environ: Mapping[str, str]) -> UpstreamSpec:
    where = f"upstreams[{index}]"
    name = _required(where, entry, "name")
    where = f"upstream {name!r}"
    _no_unknown(where, entry, _UPSTREAM_KEYS)
    protocol = _required(where, entry, "protocol")
    if protocol not in ("openai", "anthropic"):
        raise ConfigError(f"{where}: protocol must be 'openai' or 'anthropic', got {protocol!r}")
    base_url = _required(where, entry, "base_url")
    keys = _strings(f"{where}: api_key", entry.get("api_key", []))
    for var in _strings(f"{where}: api_key_env", entry.get("api_key_env", [])):
        value = environ.get(var)
        if not value:
            raise ConfigError(f"{where}: api_key_env names {var!r}, which is not set in the environment")
        keys += [k.strip() for k in value.split(",") if k.strip()]  # several keys in one variable
    profile = entry.get("profile")
    if profile is not None and _typed(f"{where}: profile", profile, (str,)) not in PROFILES:
        raise ConfigError(f"{where}: profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    client_profile = _typed(f"{where}: client_profile", entry.get("client_profile", "none"), (str,))
    if client_profile not in CLIENT_PROFILES:
        raise ConfigError(f"{where}: client_profile must be one of {', '.join(CLIENT_PROFILES)}")
    headers = entry.get("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f'{where}: headers must be a table of name = "value"')
    timeout = entry.get("timeout")
    if timeout is not None and (_typed(f"{where}: timeout", timeout, (int, float)) <= 0):
        raise ConfigError(f"{where}: timeout must be positive")
    cap = entry.get("max_output_tokens")
    if cap is not None and _typed(f"{where}: max_output_tokens", cap, (int,)) < 1:
        raise ConfigError(f"{where}: max_output_tokens must be at least 1")
    retries = _typed(f"{where}: retries", entry.get("retries", 0), (int,))
    if not 0 <= retries <= 10:
        raise ConfigError(f"{where}: retries must be between 0 and 10")
    proxy = entry.get("proxy")
    if proxy is not None and not isinstance(proxy, str):  # never its value in the message: a secret
        raise ConfigError(f'{where}: proxy must be a string ("" for none), got {type(proxy).__name__}')
    files = {
        key: _typed(f"{where}: {key}", entry[key], (str,))
        for key in ("ca_file", "cert_file", "key_file")
        if key in entry
    }
    return UpstreamSpec(
        name=name,
        protocol="openai" if protocol == "openai" else "anthropic",
        base_url=base_url,
        api_keys=tuple(keys),
        profile=profile,
        client_profile=client_profile,
        headers=tuple((str(k), _typed(f"{where}: headers.{k}", v, (str,))) for k, v in headers.items()),
        timeout=float(timeout) if timeout is not None else None,
        max_output_tokens=cap,
        models=tuple(_strings(f"{where}: models", entry.get("models", []))),
        forward_client_key=_typed(
            f"{where}: forward_client_key", entry.get("forward_client_key", False), (bool,)
        ),
        retries=retries,
        api_version=_typed(f"{where}: api_version", entry["api_version"], (str,))
        if "api_version" in entry
        else None,
        proxy=proxy,
        **files,
        verify=_typed(f"{where}: verify", entry.get("verify", True), (bool,)),
    )


def _route(index: int, entry: Mapping[str, Any], known: frozenset[str]) -> Route:
    where = f"routes[{index}]"
    _no_unknown(where, entry, _ROUTE_KEYS)
    match = _required(where, entry, "match")
    where = f"route {match!r}"
    upstream = _required(where, entry, "upstream")
    if upstream not in known:
        raise ConfigError(f"{where}: no upstream is named {upstream!r}")
    model = entry.get("model")
    overrides = []
    for key in OVERRIDES:
        if key in entry:
            value = _typed(
                f"{where}: {key}", entry[key], (int,) if key in ("max_tokens", "top_k") else (int, float)
            )
            overrides.append((key, value))
    fallbacks = tuple(
        parse_target(f"{where}: fallbacks", text, known)
        for text in _strings(f"{where}: fallbacks", entry.get("fallbacks", []))
    )
    return Route(
        match=match,
        upstream=upstream,
        model=_typed(f"{where}: model", model, (str,)) if model is not None else None,
        overrides=tuple(overrides),
        fallbacks=fallbacks,
        compact=_typed(f"{where}: compact", entry.get("compact", False), (bool,)),
    )


def _rules(entry: Any, known: frozenset[str]) -> Rules:
    if not isinstance(entry, dict):
        raise ConfigError("[rules] must be a table")
    _no_unknown("[rules]", entry, frozenset({*RULE_NAMES, "long_context_threshold"}))
    values: dict[str, Any] = {
        name: parse_target(f"rules.{name}", _typed(f"rules.{name}", entry[name], (str,)), known)
        for name in RULE_NAMES
        if name in entry
    }
    if "long_context_threshold" in entry:
        threshold = _typed("rules.long_context_threshold", entry["long_context_threshold"], (int,))
        if threshold < 1:
            raise ConfigError("rules.long_context_threshold must be at least 1")
        values["long_context_threshold"] = threshold
    return Rules(**values)


def parse_target(where: str, text: str, known: frozenset[str], *, bare_model: bool = False) -> Target:
    """``upstream:model`` splits at the first colon only when the part before it names an upstream, so
    model names with colons (``qwen2.5:7b``) survive; a bare name is an upstream, or for ``force_model``
    a model."""
    head, sep, rest = text.partition(":")
    if sep and head in known:
        if not rest:
            raise ConfigError(f"{where}: {text!r} has no model after the colon")
        return Target(head, rest)
    if text in known:
        return Target(text, None)
    if bare_model and text:
        return Target(None, text)
    raise ConfigError(
        f"{where}: {text!r} does not name an upstream (known: {', '.join(sorted(known)) or 'none'})"
    )


# ------------------------------------------------------------------------------------------ types


def _typed(where: str, value: Any, kinds: tuple[type, ...]) -> Any:
    # bool is an int in Python; a port of `true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{where}: expected {_names(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise ConfigError(f"{where}: expected {_names(kinds)}, got {type(value).__name__} {value!r}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(dict.fromkeys(words[k] for k in kinds))


def _required(where: str, entry: Mapping[str, Any], key: str) -> str:
    if key not in entry:
        raise ConfigError(f"{where}: {key} is required")
    value = _typed(f"{where}: {key}", entry[key], (str,))
    if not value:
        raise ConfigError(f"{where}: {key} must not be empty")
    return str(value)


def _strings(where: str, value: Any) -> list[str]:
    """A string or a list of strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{where}: expected a string or a list of non-empty strings")
    return list(items)


def _tables(where: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where} must be an array of tables ([[{where}]])")
    return value


def _no_unknown(where: str, entry: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
