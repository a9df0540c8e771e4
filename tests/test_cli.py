"""The command line as users run it: a real process, its ready line, signals and refusals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

READY = re.compile(r"^rawproxy (\S+) listening on http://127\.0\.0\.1:(\d+)$")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}
    env.update(extra)
    return env


def _start(args: list[str], cwd: Path, **env: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "--port", "0", *args],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    match = READY.match(line)
    if match is None:
        _, err = _stop(proc, signal.SIGKILL)
        raise AssertionError(f"no ready line: {line!r} {err}")
    return proc, int(match.group(2))


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    """Signal the process, reap it and close its pipes: (exit code, stderr)."""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_ready_line_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc, port = _start([], tmp_path)
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    finally:
        assert _stop(proc)[0] == 0


def test_sigint_stops_gracefully_too(tmp_path: Path) -> None:
    proc, _ = _start([], tmp_path)
    assert _stop(proc, signal.SIGINT)[0] in (0, 130)


def test_never_takes_anthropic_base_url_and_reads_dotenv(tmp_path: Path) -> None:
    # Claude Code's own variable points at us; the upstream must come from our settings only.
    (tmp_path / ".env").write_text(
        'RAWPROXY_OPENAI_UPSTREAM="http://127.0.0.1:9/v1"\nRAWPROXY_BIG_MODEL=gpt-from-dotenv\n'
    )
    proc, port = _start([], tmp_path, ANTHROPIC_BASE_URL="http://127.0.0.1:1/should-not-be-used")
    try:
        summary = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["config"]
        assert summary["openai_upstream"] == "http://127.0.0.1:9/v1"
        assert summary["big_model"] == "gpt-from-dotenv"
    finally:
        _stop(proc)


def test_flag_beats_environment_beats_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RAWPROXY_BIG_MODEL=from-dotenv\nRAWPROXY_SMALL_MODEL=small-from-dotenv\n")
    proc, port = _start(
        ["--big-model", "from-flag"], tmp_path, RAWPROXY_BIG_MODEL="from-env", RAWPROXY_MIDDLE_MODEL="mid-env"
    )
    try:
        summary = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["config"]
        assert (summary["big_model"], summary["middle_model"], summary["small_model"]) == (
            "from-flag",
            "mid-env",
            "small-from-dotenv",
        )
    finally:
        _stop(proc)


def test_refuses_an_upstream_that_points_back_at_itself(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rawproxy",
            "--port",
            "18999",
            "--openai-upstream",
            "http://localhost:18999/v1",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "points back at this proxy" in result.stderr


def test_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "rawproxy", "--version"], capture_output=True, text=True, timeout=20
    )
    assert version.returncode == 0 and version.stdout.startswith("rawproxy ")
    helptext = subprocess.run(
        [sys.executable, "-m", "rawproxy", "--help"], capture_output=True, text=True, timeout=20
    ).stdout
    for flag in (
        "--host",
        "--port",
        "--openai-upstream",
        "--openai-key",
        "--api-key",
        "--big-model",
        "--middle-model",
        "--small-model",
        "--model-map",
        "--default-model",
        "--max-output-tokens",
        "--timeout",
        "--log-level",
    ):
        assert flag in helptext


def test_keys_never_reach_the_log(tmp_path: Path) -> None:
    """A full run at debug level with --log-bodies, client and upstream keys in use and a key pasted into
    a message: none of them appears on stderr (issue 6, security)."""
    upstream_key, client_key = "sk-upstream-SECRET-1234", "client-SECRET-5678"
    anthropic_key = "sk-ant-SECRET-9012"
    pasted_key = "sk-proj-PASTEDSECRET3456"
    fake = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "fake-upstream", "--port", "0"],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    fake_url = re.search(r"http://\S+/v1", fake.stdout.readline())
    assert fake_url is not None
    fake_base = fake_url.group(0).removesuffix("/v1")
    proc, port = _start(
        [
            *("--openai-upstream", fake_url.group(0), "--anthropic-upstream", fake_base),
            *("--api-key", client_key, "--log-level", "debug", "--log-bodies"),
        ],
        tmp_path,
        OPENAI_API_KEY=upstream_key,
        ANTHROPIC_API_KEY=anthropic_key,
    )
    log = ""
    try:
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": f"hi, my other key is {pasted_key}"}],
        }
        for stream in (False, True):
            for model in ("gpt-4o", "claude-sonnet-4-6"):  # to the OpenAI upstream, to the Anthropic one
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    json={**body, "model": model, "stream": stream},
                    headers={"x-api-key": client_key},
                    timeout=5,
                )
                assert r.status_code == 200, (model, r.text)
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/v1/messages",
                json=body,
                headers={"authorization": "Bearer wrong-SECRET-0000"},
                timeout=5,
            ).status_code
            == 401
        )
    finally:
        log = _stop(proc)[1]
        fake.terminate()
        fake.communicate(timeout=5)
    assert "rawproxy.access" in log and "POST /v1/messages" in log
    assert "my other key is <redacted>" in log  # the bodies were logged, and redacted
    for secret in (upstream_key, client_key, anthropic_key, pasted_key, "wrong-SECRET-0000", "SECRET"):
        assert secret not in log
    assert "authorization" not in log.lower()


def test_ops05_each_command_has_its_own_help() -> None:
    """Issue 18: ``rawproxy demo --help`` prints demo's help and runs nothing; ``rawproxy doctor -h``
    prints doctor's (tests/test_doctor.py has it too); the main ``--help`` names both commands."""

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rawproxy", *argv], capture_output=True, text=True, timeout=20
        )

    for flag in ("-h", "--help"):
        demo = run("demo", flag)
        assert demo.returncode == 0, demo.stderr
        assert demo.stdout.startswith("usage: rawproxy demo")
        assert "overhead" not in demo.stdout and "message_start" not in demo.stdout  # the demo did not run
    doctor = run("doctor", "-h")
    assert doctor.returncode == 0 and doctor.stdout.startswith("usage: rawproxy doctor")
    main_help = " ".join(run("--help").stdout.split())  # argparse wraps lines
    assert "'rawproxy doctor' checks a setup" in main_help and "'rawproxy demo'" in main_help
    wrong = run("demo", "--no-such-flag")
    assert wrong.returncode == 2 and "usage: rawproxy demo" in wrong.stderr
