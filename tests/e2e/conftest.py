"""Fixtures for the e2e tests: the pinned Claude Code CLI, run headless against a proxy on 127.0.0.1.

The binary is, in this order: ``$RAWPROXY_CLAUDE_BIN``; ``<repo>/.e2e/node_modules/.bin/claude`` when it
is already the pinned version; else whatever ``install-claude-code.sh`` installs there (npm). The tests
skip only when an install is needed and ``node``/``npm`` are not on PATH; any other problem is an error.

Each run gets a fresh HOME and working directory and an environment built from scratch (nothing of the
caller's leaks in: no real API key, no proxy settings), pointed at the proxy. Claude Code is started as
an asyncio subprocess, so the proxy and the fake upstream keep serving in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CLAUDE_VERSION = "2.1.332"
REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install-claude-code.sh"
DEFAULT_BIN = REPO / ".e2e" / "node_modules" / ".bin" / "claude"
RUN_TIMEOUT = 90.0  # seconds for one whole `claude -p` run; each takes about one second


def _version(binary: Path) -> str:
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<{binary} --version failed: {exc}>"
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[0] if lines else f"<{binary} --version printed nothing (exit {done.returncode})>"


def _install() -> Path:
    if shutil.which("node") is None:  # the one reason to skip: no Node.js on this machine
        pytest.skip(
            f"node is not on PATH: Claude Code {CLAUDE_VERSION} cannot run here "
            f"(install Node.js, then run {INSTALL_SCRIPT.relative_to(REPO)}, or set RAWPROXY_CLAUDE_BIN)"
        )
    if shutil.which("npm") is None:
        pytest.fail(
            f"node is here but npm is not, so Claude Code {CLAUDE_VERSION} cannot be installed at "
            f"{DEFAULT_BIN} (install npm, or set RAWPROXY_CLAUDE_BIN)",
            pytrace=False,
        )
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{INSTALL_SCRIPT.name} did not finish in {exc.timeout:.0f} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{INSTALL_SCRIPT.name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}{done.stdout[-2000:]}",
            pytrace=False,
        )
    lines = done.stdout.strip().splitlines()
    return Path(lines[-1]) if lines else DEFAULT_BIN


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned Claude Code binary (installed on first use)."""
    override = os.environ.get("RAWPROXY_CLAUDE_BIN")
    if override:
        binary = Path(override)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(f"RAWPROXY_CLAUDE_BIN={override} is not an executable file", pytrace=False)
    elif DEFAULT_BIN.exists() and _version(DEFAULT_BIN).startswith(CLAUDE_VERSION):
        binary = DEFAULT_BIN
    else:
        binary = _install()
    version = _version(binary)
    assert version.startswith(CLAUDE_VERSION), (
        f"{binary} --version says {version!r}; the e2e tests are pinned to Claude Code {CLAUDE_VERSION}"
    )
    return binary


@dataclass
class ClaudeRun:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path
    home: Path
    seconds: float

    @property
    def output(self) -> dict[str, Any]:
        """The ``--output-format json`` result object (the last JSON line of stdout)."""
        for line in reversed(self.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    break
                if isinstance(value, dict):
                    return value
        raise AssertionError(f"no JSON result on Claude Code's stdout\n{self.describe()}")

    def describe(self) -> str:
        return (
            f"claude exited {self.returncode} after {self.seconds:.2f} s in {self.cwd}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )

    def assistant_blocks(self) -> list[dict[str, Any]]:
        """The content blocks of the assistant messages in Claude Code's session transcript, in order."""
        blocks: list[dict[str, Any]] = []
        for transcript in sorted((self.home / ".claude" / "projects").glob("*/*.jsonl")):
            for line in transcript.read_text().splitlines():
                entry = json.loads(line) if line.strip() else {}
                message = entry.get("message") if entry.get("type") == "assistant" else None
                if isinstance(message, dict) and isinstance(message.get("content"), list):
                    blocks += [b for b in message["content"] if isinstance(b, dict)]
        return blocks

    def file(self, name: str) -> str:
        path = self.cwd / name
        assert path.is_file(), f"{name} was not written in {self.cwd}\n{self.describe()}"
        return path.read_text()


RunClaude = Callable[..., Awaitable[ClaudeRun]]


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    """A from-scratch environment: only loopback traffic, to the proxy."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-dummy-rawproxy-e2e-0123456789",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, error reports, auto-update
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "API_TIMEOUT_MS": "30000",
        # Anything that still tried to leave the machine would go to a closed loopback port and fail.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }


@pytest.fixture
async def run_claude(claude_bin: Path, tmp_path: Path) -> RunClaude:
    """``await run_claude(prompt, base_url)``: one headless ``claude -p`` run in a fresh HOME and cwd."""
    runs = 0

    async def run(prompt: str, base_url: str, *extra: str, timeout: float = RUN_TIMEOUT) -> ClaudeRun:
        nonlocal runs
        runs += 1
        home = tmp_path / f"home{runs}"
        cwd = tmp_path / f"cwd{runs}"
        home.mkdir()
        cwd.mkdir()
        argv = [str(claude_bin), "-p", prompt, "--output-format", "json", "--allowedTools", "Bash", *extra]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=claude_env(home, base_url),
            start_new_session=True,  # its own process group, so a timeout kills the Bash children too
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = await proc.communicate()
            partial = ClaudeRun(
                -9, stdout.decode(errors="replace"), stderr.decode(errors="replace"), cwd, home, timeout
            )
            pytest.fail(
                f"claude did not finish in {timeout:.0f} s; killed\n{partial.describe()}", pytrace=False
            )
        finally:
            if proc.returncode is None:  # cancelled: do not leave it behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        assert proc.returncode is not None
        return ClaudeRun(
            proc.returncode,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
            cwd,
            home,
            time.monotonic() - started,
        )

    return run
