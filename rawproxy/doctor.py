"""``rawproxy doctor``: check a setup before trusting it. Exit 0 when all is well (notes included), 1 on
any problem, 2 when the configuration itself is invalid.

It takes the same flags (and environment, ``.env`` and ``--config`` file) as the proxy, and reports:
1. the configuration: valid, and what it says (upstreams, routes, rules);
2. each upstream, reached: its model list (``--live``: also a one-token request to the model the
   routes send it, which proves the key works for generation and not only for listing);
3. each route's and rule's target, and whether the upstream lists that model;
4. the Claude Code side: where ``ANTHROPIC_BASE_URL`` (environment, or ``env`` in
   ``~/.claude/settings.json``) points, and whether the proxy would accept the token Claude Code sends.

A finding is a problem (exit 1) or a note (exit 0). Claude Code's side is made of notes unless Claude Code
is installed (``claude`` on PATH) or configured (its variables, or ``~/.claude/settings.json``): a proxy
for other clients has no Claude Code to point at it (issue 18). A route's model that the upstream does not
list is no problem when ``--live`` showed that model answer (a list can be partial).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import client as upstream_client
from .config import Config, ConfigError, claude_code_environment
from .dialects import (
    ANTHROPIC_MODELS_PATH,
    OPENAI_MODELS_PATH,
    VERSION_PREFIX,
    openai_model_entries,
    upstream_spec,
)
from .errors import ProxyError, UpstreamStatus
from .routing import Router, Upstream

__all__ = ["Report", "check", "main"]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: int = 0
    notes: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def note(self, text: str) -> None:
        """Worth knowing, and no reason to fail: exit 0."""
        self.notes += 1
        self.lines.append(f"  note  {text}")

    def problem(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"  FAIL  {text}")

    def section(self, title: str) -> None:
        self.lines.append(title)

    def text(self) -> str:
        verdict = "no problems found" if not self.problems else f"{self.problems} problem(s) found"
        verdict += f" ({self.notes} note(s))" if self.notes else ""
        return "\n".join([*self.lines, "", f"rawproxy doctor: {verdict}"])


async def _models(client: upstream_client.Client, up: Upstream) -> list[str]:
    if up.protocol == "openai":
        url = up.url(OPENAI_MODELS_PATH)
    else:
        url = f"{up.base}{ANTHROPIC_MODELS_PATH}?limit=1000"
    status, body = await upstream_client.fetch(client, url, headers=up.request_headers(), route=up.route)
    if status != 200:
        raise UpstreamStatus(up.dialect.parse_error(status, body))
    return [m["id"] for m in openai_model_entries(status, body)]  # the first page's shape is the same


async def _one_token(client: upstream_client.Client, up: Upstream, model: str) -> str:
    """A one-token generation: the cheapest proof that the key may generate with that model."""
    if up.protocol == "openai":
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }
    else:
        body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    path = upstream_spec(up.protocol).passthrough_path or ""
    status, _, answer = await upstream_client.request(
        client,
        "POST",
        up.url(path, model),
        headers=up.call_headers(),
        body=orjson.dumps(body),
        timeout=30,
        route=up.route,
    )
    if status != 200:
        raise UpstreamStatus(up.dialect.parse_error(status, answer))
    return f"{model} answered"


def _targets(config: Config) -> list[tuple[str, str, str | None]]:
    """(what, upstream name, model or None) of every route, fallback, rule and force_model."""
    out: list[tuple[str, str, str | None]] = []
    for route in config.route_table:
        out.append((f"route {route.match!r}", route.upstream, route.model))
        out += [
            (f"route {route.match!r} fallback", t.upstream or route.upstream, t.model)
            for t in route.fallbacks
        ]
    rules = config.rules
    for name in ("long_context", "image", "web_search", "background", "think"):
        target = getattr(rules, name)
        if target is not None and target.upstream is not None:
            out.append((f"rule {name}", target.upstream, target.model))
    force = config.force_model
    if force is not None and force.upstream is not None:
        out.append(("force_model", force.upstream, force.model))
    return out


# Claude Code's own variables (https://code.claude.com/docs/en/env-vars): one set means Claude Code is
# configured on this machine. Not ANTHROPIC_API_KEY: every Anthropic SDK, and this proxy's
# --anthropic-key, read it too.
_CLAUDE_CODE_VARIABLES = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CONFIG_DIR")


def _claude_code_present(environ: Mapping[str, str], home: Path) -> str | None:
    """Why Claude Code's side matters here (installed or configured), or None."""
    if shutil.which("claude", path=environ.get("PATH", "")):
        return "claude is on PATH"
    named = [k for k in environ if k in _CLAUDE_CODE_VARIABLES or k.startswith("CLAUDE_CODE_")]
    if named:
        return f"{sorted(named)[0]} is set"
    if (home / ".claude" / "settings.json").is_file():
        return "~/.claude/settings.json exists"
    return None


def _claude_code_side(
    config: Config, env: Mapping[str, str], home: Path, report: Report, present: str | None
) -> None:
    report.section("Claude Code")
    # Not installed nor configured: what would be wrong for Claude Code is only worth a note.
    problem = report.problem if present else report.note
    if present is None:
        report.note(
            "Claude Code is neither installed (no claude on PATH) nor configured (none of its variables, "
            "no ~/.claude/settings.json): what follows is for when it is"
        )
    settings_path = home / ".claude" / "settings.json"
    settings_env: dict[str, str] = {}
    if settings_path.is_file():
        try:
            data = json.loads(settings_path.read_text(encoding="utf-8"))
            settings_env = {k: str(v) for k, v in (data.get("env") or {}).items()}
        except (OSError, ValueError, AttributeError) as exc:
            problem(f"{settings_path} cannot be read as JSON: {exc}")
    # Claude Code's own precedence: its settings' env block wins over the shell's.
    merged = {**env, **settings_env}
    where = "settings.json" if "ANTHROPIC_BASE_URL" in settings_env else "environment"
    base = merged.get("ANTHROPIC_BASE_URL")
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    ours = f"http://{f'[{host}]' if ':' in host else host}:{config.port}"  # --host ::1: a URL's brackets
    if not base:
        problem(f"ANTHROPIC_BASE_URL is not set: Claude Code talks to api.anthropic.com, not to {ours}")
    else:
        parts = urlsplit(base)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1", config.host)
        if not (local and (parts.port or (443 if parts.scheme == "https" else 80)) == config.port):
            problem(f"ANTHROPIC_BASE_URL ({where}) is {base}, not this proxy at {ours}")
        elif parts.path.rstrip("/") not in ("", VERSION_PREFIX):
            problem(f"ANTHROPIC_BASE_URL ({where}) {base} has a path the proxy does not serve")
        else:
            report.ok(f"ANTHROPIC_BASE_URL ({where}) points at this proxy: {base}")
    # Claude Code sends ANTHROPIC_AUTH_TOKEN as a bearer token, else ANTHROPIC_API_KEY as x-api-key; the
    # token wins when both are set (https://code.claude.com/docs/en/env-vars).
    token = merged.get("ANTHROPIC_AUTH_TOKEN") or merged.get("ANTHROPIC_API_KEY")
    which = "ANTHROPIC_AUTH_TOKEN" if merged.get("ANTHROPIC_AUTH_TOKEN") else "ANTHROPIC_API_KEY"
    if config.api_keys:
        if token is None:
            problem(
                "the proxy requires a key, and Claude Code has none: set ANTHROPIC_AUTH_TOKEN (or "
                "ANTHROPIC_API_KEY) to one of --api-key"
            )
        elif not any(hmac.compare_digest(token.encode(), k.encode()) for k in config.api_keys):
            problem(f"the proxy will refuse the key Claude Code sends ({which} is not one of --api-key)")
        else:
            report.ok(f"the proxy accepts the key Claude Code sends ({which})")
    elif token is None:
        report.note(
            "Claude Code sends no key (neither ANTHROPIC_AUTH_TOKEN nor ANTHROPIC_API_KEY); the proxy asks "
            "for none (any value works)"
        )


async def _check_upstreams(config: Config, router: Router, live: bool, report: Report) -> None:
    client = upstream_client.make_client(
        connect_timeout=config.connect_timeout, read_timeout=min(config.timeout, 30)
    )
    listed: dict[str, list[str] | None] = {}
    try:
        report.section("Upstreams")
        for up in router.upstreams.values():
            what = f"{up.name} ({up.protocol}, {up.profile.name}) {up.base}"
            if not up.has_key and not up.forward_client_key:
                report.note(f"{up.name}: no key configured")
            try:
                async with asyncio.timeout(10):
                    names = await _models(client, up)
                listed[up.name] = names
                report.ok(f"{what}: reachable, {len(names)} models listed")
            except (ProxyError, TimeoutError, ValueError) as exc:
                listed[up.name] = None
                message = exc.info.message if isinstance(exc, ProxyError) else type(exc).__name__
                report.problem(f"{what}: {message}")
        targets = _targets(config)
        unlisted = [
            (name, model)
            for _, name, model in targets
            if model and listed.get(name) and model not in (listed[name] or ())
        ]
        # The live check runs before the routes are reported: a model it saw answer is no problem there.
        answered: set[tuple[str, str]] = set()
        found: list[tuple[Callable[[str], None], str]] = []
        if live:
            for up in router.upstreams.values():
                model = next((m for _, n, m in targets if n == up.name and m), None)
                available = listed.get(up.name)
                model = model or (available[0] if available else None)
                if model is None:
                    found.append((report.note, f"{up.name}: no model to try"))
                    continue
                # The routes' models the upstream does not list are tried too: only an answer proves them.
                for each in dict.fromkeys([model, *(m for n, m in unlisted if n == up.name)]):
                    try:
                        found.append((report.ok, f"{up.name}: {await _one_token(client, up, each)}"))
                        answered.add((up.name, each))
                    except ProxyError as exc:
                        found.append((report.problem, f"{up.name}: {each}: {exc.info.message}"))
        report.section("Routes")
        if not targets:
            report.note("no routes or rules: models go to the upstream their name suggests (claude* or not)")
        for what, name, model in targets:
            shown = f"{name}:{model}" if model else f"{name} (the client's model)"
            if model and (name, model) in unlisted:
                if (name, model) in answered:
                    report.note(
                        f"{what} -> {shown}: {name} does not list {model!r}, but it answered (--live)"
                    )
                else:
                    hint = "" if live else " (--live tries it)"
                    report.problem(f"{what} -> {shown}: {name} does not list {model!r}{hint}")
            else:
                report.ok(f"{what} -> {shown}")
        if live:
            report.section("Live (one token each)")
            for say, text in found:
                say(text)
    finally:
        await client.aclose()


def check(
    argv: Sequence[str],
    *,
    live: bool = False,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[int, str]:
    """Run every check; (exit code, report)."""
    report = Report()
    report.section("Configuration")
    try:
        config = Config.from_env(argv, environ=environ)
        router = config.router()
    except (ConfigError, ValueError) as exc:
        report.problem(str(exc))
        return 2, report.text()
    report.ok(
        f"valid: {len(router.upstreams)} upstream(s), {len(config.route_table)} route(s)"
        + (f", from {config.config_file}" if config.config_file else ", from flags and the environment")
    )
    asyncio.run(_check_upstreams(config, router, live, report))
    env, default_home = claude_code_environment(environ)
    home = home or default_home
    present = _claude_code_present(os.environ if environ is None else environ, home)
    _claude_code_side(config, env, home, report, present)
    return (1 if report.problems else 0), report.text()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rawproxy doctor",
        description="Check the configuration, each upstream, the routes and Claude Code's settings. "
        "Takes the proxy's own flags, environment, .env and --config (see 'rawproxy --help'). "
        "Exit 0: no problems (notes are fine); 1: a problem; 2: the configuration is invalid.",
    )
    parser.add_argument("--live", action="store_true", help="also send a one-token request to each upstream")
    own, rest = parser.parse_known_args(argv)
    code, text = check(rest, live=own.live)
    print(text)
    return code
