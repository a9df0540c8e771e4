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
from rawproxy.testing.fake_upstream import FakeUpstream, Script

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


def claude_on_path(tmp_path: Path) -> str:
    """A directory with a ``claude`` executable in it: Claude Code installed, for ``PATH``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    claude = bin_dir / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(0o755)
    return str(bin_dir)


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
    code, report = await doctor(
        config_file(tmp_path, listed), home, environ={"PATH": claude_on_path(tmp_path)}
    )
    assert code == 1 and "FAIL  ANTHROPIC_BASE_URL is not set" in report


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
    assert code == 1 and "cheap does not list 'no-such-model' (--live tries it)" in report


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


async def test_ops06_doctor_without_claude_code_its_side_is_notes(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    """Issue 18: a proxy for other clients, on a machine with no Claude Code (not on PATH, none of its
    variables, no ~/.claude/settings.json): what Claude Code would need is a note, and the exit is 0."""
    home = tmp_path / "empty-home"
    home.mkdir()
    code, report = await doctor(config_file(tmp_path, listed), home, environ={"PATH": str(tmp_path)})
    assert code == 0, report
    assert "note  Claude Code is neither installed" in report
    assert "note  ANTHROPIC_BASE_URL is not set" in report and "FAIL" not in report
    assert "no problems found (" in report and "note(s))" in report


@pytest.mark.parametrize(
    "environ",
    [{"ANTHROPIC_AUTH_TOKEN": "sk-team"}, {"CLAUDE_CODE_USE_BEDROCK": "1"}, {"CLAUDE_CONFIG_DIR": "/x"}],
    ids=["auth-token", "claude-code-variable", "config-dir"],
)
async def test_ops06_doctor_claude_code_configured_by_its_variables_is_checked(
    tmp_path: Path, listed: FakeUpstream, environ: dict[str, str]
) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    code, report = await doctor(config_file(tmp_path, listed), home, environ=environ)
    assert code == 1 and "FAIL  ANTHROPIC_BASE_URL is not set" in report
    assert "neither installed" not in report


async def test_ops06_doctor_anthropic_api_key_alone_does_not_mean_claude_code(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    """ANTHROPIC_API_KEY is every Anthropic SDK's (and --anthropic-key's default): no sign of Claude Code."""
    home = tmp_path / "empty-home"
    home.mkdir()
    code, report = await doctor(config_file(tmp_path, listed), home, environ={"ANTHROPIC_API_KEY": "sk-x"})
    assert code == 0 and "neither installed" in report, report


async def test_ops06_doctor_key_check_names_both_variables(tmp_path: Path, listed: FakeUpstream) -> None:
    """Claude Code sends ANTHROPIC_AUTH_TOKEN (bearer), else ANTHROPIC_API_KEY (x-api-key): the check
    says which it found, and names both when it found neither."""
    base = {"ANTHROPIC_BASE_URL": GOOD_CLAUDE["ANTHROPIC_BASE_URL"]}
    code, report = await doctor(config_file(tmp_path, listed), home_with(tmp_path, base))
    assert code == 1
    missing = next(line for line in report.splitlines() if "Claude Code has none" in line)
    assert "ANTHROPIC_AUTH_TOKEN" in missing and "ANTHROPIC_API_KEY" in missing
    code, report = await doctor(
        config_file(tmp_path, listed), home_with(tmp_path / "2", {**base, "ANTHROPIC_API_KEY": "sk-team"})
    )
    assert code == 0 and "the proxy accepts the key Claude Code sends (ANTHROPIC_API_KEY)" in report
    code, report = await doctor(
        config_file(tmp_path, listed), home_with(tmp_path / "3", {**base, "ANTHROPIC_API_KEY": "sk-other"})
    )
    assert code == 1 and "ANTHROPIC_API_KEY is not one of --api-key" in report and "sk-other" not in report


async def test_ops06_doctor_live_answer_clears_a_model_the_list_lacks(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    """A model list can be partial: with --live the route's unlisted model is tried, and its answer makes
    "does not list" a note (exit 0) instead of a problem."""
    path = config_file(tmp_path, listed, model="unlisted-model")
    code, report = await doctor(path, home_with(tmp_path, GOOD_CLAUDE), "--live")
    assert code == 0, report
    assert (
        "note  route 'claude-*haiku*' -> cheap:unlisted-model: cheap does not list 'unlisted-model', but it answered"
        in report
    )
    assert "cheap: unlisted-model answered" in report
    assert [r.body["model"] for r in listed.requests if r.path == "/v1/chat/completions"] == [
        "unlisted-model"
    ]


async def test_ops06_doctor_live_failure_keeps_the_unlisted_model_a_problem(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    listed.default = Script(  # the upstream refuses every generation
        status=404,
        error_body=b'{"error":{"message":"The model does not exist","type":"invalid_request_error"}}',
    )
    code, report = await doctor(
        config_file(tmp_path, listed, model="unlisted-model"), home_with(tmp_path, GOOD_CLAUDE), "--live"
    )
    assert code == 1
    assert (
        "FAIL  route 'claude-*haiku*' -> cheap:unlisted-model: cheap does not list 'unlisted-model'" in report
    )


def test_ops05_doctor_help_is_its_own(tmp_path: Path) -> None:
    """``rawproxy doctor -h`` prints doctor's help (not the proxy's) and checks nothing."""
    for flag in ("-h", "--help"):
        result = subprocess.run(
            [sys.executable, "-m", "rawproxy", "doctor", flag],
            capture_output=True,
            text=True,
            timeout=30,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: rawproxy doctor") and "--live" in result.stdout
        assert "--openai-upstream" not in result.stdout and "Configuration" not in result.stdout


async def test_ops03_doctor_knows_the_proxy_by_its_bracketed_ipv6_host(
    tmp_path: Path, listed: FakeUpstream
) -> None:
    """``--host [::1]``: Claude Code pointed at http://[::1]:8082 points at this proxy, and a wrong URL is
    told apart from the proxy's own, written as a URL writes it."""
    home = home_with(tmp_path, {**GOOD_CLAUDE, "ANTHROPIC_BASE_URL": "http://[::1]:8082"})
    code, report = await doctor(config_file(tmp_path, listed), home, "--host", "[::1]")
    assert code == 0 and "points at this proxy: http://[::1]:8082" in report, report
    code, report = await doctor(
        config_file(tmp_path, listed),
        home_with(tmp_path / "2", {**GOOD_CLAUDE, "ANTHROPIC_BASE_URL": "http://gateway.example:8082"}),
        "--host",
        "::1",
    )
    assert code == 1 and "not this proxy at http://[::1]:8082" in report, report
