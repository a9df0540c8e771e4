"""Issue 7: ``rawproxy doctor`` checks the configuration, reaches each upstream, reports each route's
target, and looks at Claude Code's side (ANTHROPIC_BASE_URL, the token); non-zero exit on a problem."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rawproxy.doctor import check
from rawproxy.testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.integration


def config_file(
    tmp_path: Path, fake: FakeUpstream, *, model: str = "small-model", port: int | None = None
) -> Path:
    base = f"http://127.0.0.1:{port}" if port else fake.anthropic_url
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        f"""
api_keys = ["sk-team"]

[[upstreams]]
name = "cheap"
protocol = "openai"
base_url = "{base}/v1"
api_key = "sk-cheap"

[[upstreams]]
name = "claude"
protocol = "anthropic"
base_url = "{base}"
api_key = "sk-ant"

[[routes]]
match = "claude-*haiku*"
upstream = "cheap"
model = "{model}"
"""
    )
    return path


def home_with(tmp_path: Path, env: dict[str, str]) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": env}))
    return home


GOOD_CLAUDE = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8082", "ANTHROPIC_AUTH_TOKEN": "sk-team"}


@pytest.fixture
def listed(fake: FakeUpstream) -> FakeUpstream:
    fake.openai_models = [{"id": "small-model", "object": "model", "created": 0, "owned_by": "fake"}]
    return fake


async def doctor(
    path: Path, home: Path, *flags: str, environ: dict[str, str] | None = None
) -> tuple[int, str]:
    argv = ["--config", str(path), *flags]
    live = "--live" in flags
    argv = [a for a in argv if a != "--live"]
    return await asyncio.to_thread(check, argv, live=live, environ=environ or {}, home=home)


async def test_issue7_doctor_a_good_setup_passes(tmp_path: Path, listed: FakeUpstream) -> None:
    code, report = await doctor(config_file(tmp_path, listed), home_with(tmp_path, GOOD_CLAUDE))
    assert code == 0, report
    assert "valid: 2 upstream(s), 1 route(s)" in report
    assert "cheap (openai, generic)" in report and "reachable, 1 models listed" in report
    assert "route 'claude-*haiku*' -> cheap:small-model" in report
    assert "points at this proxy" in report and "accepts the key Claude Code sends" in report
    assert "no problems found" in report
    assert "sk-cheap" not in report and "sk-ant" not in report and "sk-team" not in report


async def test_issue7_doctor_finds_claude_code_pointing_elsewhere(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    home = home_with(tmp_path, {**GOOD_CLAUDE, "ANTHROPIC_BASE_URL": "https://api.anthropic.com"})
    code, report = await doctor(config_file(tmp_path, listed), home)
    assert code == 1
    assert "ANTHROPIC_BASE_URL (settings.json) is https://api.anthropic.com, not this proxy" in report


async def test_issue7_doctor_reads_the_environment_when_settings_say_nothing(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    code, report = await doctor(config_file(tmp_path, listed), home, environ=GOOD_CLAUDE)
    assert code == 0, report
    assert "ANTHROPIC_BASE_URL (environment) points at this proxy" in report
    code, report = await doctor(config_file(tmp_path, listed), home, environ={})
    assert code == 1 and "ANTHROPIC_BASE_URL is not set" in report


async def test_issue7_doctor_finds_a_token_the_proxy_will_refuse(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    home = home_with(tmp_path, {**GOOD_CLAUDE, "ANTHROPIC_AUTH_TOKEN": "sk-someone-else"})
    code, report = await doctor(config_file(tmp_path, listed), home)
    assert code == 1 and "the proxy will refuse the key Claude Code sends" in report
    assert "sk-someone-else" not in report


async def test_issue7_doctor_finds_an_unreachable_upstream(tmp_path: Path, listed: FakeUpstream) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code, report = await doctor(config_file(tmp_path, listed, port=closed), home_with(tmp_path, GOOD_CLAUDE))
    assert code == 1
    assert report.count("FAIL") >= 2 and "could not connect" in report


async def test_issue7_doctor_finds_a_route_to_a_model_the_upstream_does_not_list(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    code, report = await doctor(
        config_file(tmp_path, listed, model="no-such-model"), home_with(tmp_path, GOOD_CLAUDE)
    )
    assert code == 1 and "cheap does not list 'no-such-model'" in report


async def test_issue7_doctor_live_sends_one_token_to_each_upstream(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    code, report = await doctor(config_file(tmp_path, listed), home_with(tmp_path, GOOD_CLAUDE), "--live")
    assert code == 0, report
    posts = [r for r in listed.requests if r.method == "POST"]
    assert sorted(r.path for r in posts) == ["/v1/chat/completions", "/v1/messages"]
    assert all(r.body["max_tokens"] == 1 for r in posts)
    assert "cheap: small-model answered" in report


async def test_issue7_doctor_an_invalid_configuration_exits_2(tmp_path: Path, listed: FakeUpstream) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[routes]]\nmatch = "*"\nupstream = "nowhere"\n')
    code, report = await doctor(path, home_with(tmp_path, GOOD_CLAUDE))
    assert code == 2 and "no upstream is named 'nowhere'" in report


def test_issue7_doctor_command_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not = [valid")
    result = subprocess.run(
        [sys.executable, "-m", "rawproxy", "doctor", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "not valid TOML" in result.stdout and "problem(s) found" in result.stdout
