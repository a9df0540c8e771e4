"""Reading the settings: argv, the environment, ``.env`` and the ``--config`` file -> ``Config`` values.

Precedence, highest first: command-line flag, ``RAWPROXY_*`` environment variable, the same name in a
``.env`` file in the working directory, the ``--config`` TOML file (file.py), a documented fallback
(``OPENAI_API_KEY``), the default. The command-line parser and the generic reading are built from the
``SETTINGS`` table (settings.py); only the ``special`` rows have code of their own here.

This is the only module that reads ``os.environ``, and it never reads ``ANTHROPIC_BASE_URL``: that is
Claude Code's own variable, pointing at *us*, and taking it as our upstream would make a loop.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError
from ..routing import ModelRoutes, parse_model_map
from ..routing.reach import ProxyEnvironment
from . import file as config_file
from .origins import ORIGIN_SETTINGS, said
from .settings import SETTINGS, Setting, by_name

__all__ = ["build_parser", "claude_code_environment", "collect", "read_dotenv"]


def build_parser() -> argparse.ArgumentParser:
    """The command line: one flag per row that has one, in the table's order and sections."""
    p = argparse.ArgumentParser(
        prog="rawproxy",
        description="Anthropic Messages API in, OpenAI-compatible Chat Completions upstream. "
        "Every flag also reads RAWPROXY_<FLAG> (e.g. RAWPROXY_OPENAI_UPSTREAM) from the environment or .env. "
        "Other commands (each with its own -h): 'rawproxy doctor' checks a setup, 'rawproxy demo' shows "
        "the proxy at work with no key and no network, 'rawproxy fake-upstream' is a scripted fake LLM server.",
    )
    p.add_argument("--version", action="version", version=f"rawproxy {__version__}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        section: argparse._ActionsContainer = p
        if setting.group is not None:
            if setting.group not in groups:
                groups[setting.group] = p.add_argument_group(setting.group)
            section = groups[setting.group]
        options: dict[str, Any] = {"dest": setting.name, "help": setting.help}
        if setting.kind == "switch":  # default None: "not given", so the environment and file count
            options.update(action="store_true", default=None)
        else:
            options.update(metavar=setting.metavar, choices=setting.choices)
            if setting.repeat:
                options["action"] = "append"
        section.add_argument(setting.flag, **options)
    return p


def collect(
    argv: Sequence[str] | None, environ: Mapping[str, str] | None, dotenv: Path | None
) -> dict[str, Any]:
    """The ``Config`` keyword arguments that argv, the environment, ``.env`` and the file set; raises
    ConfigError (bad values) or SystemExit (--help, bad flags)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    dotenv_values = read_dotenv(dotenv) if dotenv is not None else {}
    env = dict(dotenv_values)
    env.update(os.environ if environ is None else environ)
    path = args.config_file or env.get(by_name("config_file").env or "") or None
    file = config_file.load(path, env) if path else config_file.FileSettings()
    top = file.settings
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # where each value setting's value came from (origins.said)
    for setting in SETTINGS:
        if setting.kind == "value":
            raw, source = _picked(setting, args, env, top)
            values[setting.name] = _typed(setting, raw)
            if source is not None:
                sources[setting.name] = source
        elif setting.kind == "switch":
            values[setting.name] = _switch(setting, args, env, top)
    # The special rows.
    values["config_file"] = str(path) if path else None
    try:
        raw_map = _pick(by_name("model_map"), args, env, top) or ""
        model_map = {**top.get("model_map", {}), **parse_model_map(raw_map)}
    except ValueError as exc:
        raise ConfigError(f"--model-map: {exc}") from None
    values["routes"] = ModelRoutes(
        model_map=model_map,
        top=values.pop("top_model"),
        big=values.pop("big_model"),
        middle=values.pop("middle_model"),
        small=values.pop("small_model"),
        default=values.pop("default_model"),
    )
    keys = _pick(by_name("api_keys"), args, env, top) or ",".join(top.get("api_keys", ()))
    values["api_keys"] = tuple(k.strip() for k in keys.split(",") if k.strip()) if keys else None
    force = _pick(by_name("force_model"), args, env, top)  # the flag or the environment: the file's is parsed
    known = frozenset(spec.name for spec in file.upstreams) | {"openai", "anthropic"}
    values["force_model"] = (
        config_file.parse_target("--force-model", force, known, bare_model=True)
        if force
        else file.force_model
    )
    header_env = by_name("upstream_headers").env or ""
    values["upstream_headers"] = _headers(args.upstream_headers or env.get(header_env, "").splitlines())
    values.update(upstreams=file.upstreams, route_table=file.routes, rules=file.rules)
    # HTTPS_PROXY and the rest: read here, once; applied per upstream by Config.router_spec (NET-01).
    values["proxy_environment"] = ProxyEnvironment.of(env)
    values["origins"] = tuple(
        (name, said(sources[name], env, dotenv_values, path)) for name in ORIGIN_SETTINGS if name in sources
    )
    return {k: v for k, v in values.items() if v is not None}


def _pick(
    setting: Setting, args: argparse.Namespace, env: Mapping[str, str], top: Mapping[str, Any]
) -> str | None:
    return _picked(setting, args, env, top)[0]


def _picked(
    setting: Setting, args: argparse.Namespace, env: Mapping[str, str], top: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """The first of: the flag, the variable (when not empty), the file's value, the fallback variable;
    with where it came from (``--flag``, the variable's name, ``file``), for the start lines."""
    name = setting.name
    value = getattr(args, name) if setting.flag is not None else None
    if value is not None:
        return (str(value) if not isinstance(value, list) else ",".join(value)), "--" + name.replace("_", "-")
    if setting.env is not None and env.get(setting.env):
        return env[setting.env], setting.env
    if setting.file and name in top and not isinstance(top[name], tuple | dict):  # lists and tables: special
        return str(top[name]), "file"
    if setting.fallback and setting.fallback in env:
        return env[setting.fallback], setting.fallback
    return None, None


def _typed(setting: Setting, raw: str | None) -> Any:
    if raw is None or setting.type is str:
        return raw
    try:
        return setting.type(raw)
    except ValueError:
        raise ConfigError(f"--{setting.name.replace('_', '-')} expects a number, got {raw!r}") from None


def _switch(
    setting: Setting, args: argparse.Namespace, env: Mapping[str, str], top: Mapping[str, Any]
) -> Any:
    """A flag or variable turns the switch away from its default; else the file's true or false."""
    flagged = setting.flag is not None and bool(getattr(args, setting.name))
    variable = setting.env is not None and (
        setting.env in env if setting.env_presence else _truthy(env.get(setting.env))
    )
    if flagged or variable:
        return not setting.default
    if setting.file and setting.name in top:
        return bool(top[setting.name])
    return None


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
        values[key.strip()] = _dotenv_value(value.strip())
    return values


def _dotenv_value(value: str) -> str:
    r"""python-dotenv's rules (its parser.py, ``parse_value``): a quoted value ends at its closing quote,
    ``#`` inside kept, and a comment may follow it; in an unquoted value a ``#`` preceded by whitespace
    starts a comment (``sk-abc   # my key`` is ``sk-abc``), one without (``a#b``) is part of the value
    (https://github.com/theskumar/python-dotenv, ``re.sub(r"\s+#.*", "", part).rstrip()``)."""
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        if end > 0 and (not value[end + 1 :].strip() or value[end + 1 :].lstrip().startswith("#")):
            return value[1:end]
        if len(value) >= 2 and value[-1] == value[0]:  # a quote inside, e.g. escaped: as before
            return value[1:-1]
    return re.sub(r"\s+#.*", "", value).rstrip()


def claude_code_environment(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], Path]:
    """What ``rawproxy doctor`` looks at on Claude Code's side: its ``ANTHROPIC_*`` variables and the
    home directory holding ``~/.claude/settings.json``. (This module is the one reader of the
    environment; the proxy itself never takes ``ANTHROPIC_BASE_URL``.)"""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    return {k: v for k, v in env.items() if k.startswith("ANTHROPIC_")}, home
