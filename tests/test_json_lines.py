"""Issue 18, item 7: with ``--log-format json`` every line the program writes parses as JSON, its own lines
too: the ready banner ("listening on ...") on stdout, the ``--workers`` supervisor's lines (its banner, a
worker that died and was started again) and an error at start on stderr. A log shipper reading either
stream line by line never meets text. Real processes, on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_workers import children

pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}
    return {**env, "OPENAI_API_KEY": "sk-test"}


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "--log-format", "json", "--log-level", "info", *args],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(text: str) -> list[dict[str, Any]]:
    """Each line of ``text`` as the JSON object it must be (a line that is not one fails here)."""
    parsed = []
    for line in text.splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


def _health(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop gracefully (SIGTERM), reap: the rest of stdout and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        return proc.communicate(timeout=5)


def test_ops04_single_process_writes_only_json_lines(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--port", "0")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    banner = json.loads(first)  # the ready line itself
    assert banner["event"] == "listening" and banner["level"] == "info" and banner["logger"] == "rawproxy"
    assert banner["message"] == f"rawproxy {banner['version']} listening on {banner['url']}"
    port = int(banner["url"].rsplit(":", 1)[1])
    _health(port)  # an access line on stderr
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert _lines(out) == []
    logged = _lines(err)
    assert any(line.get("path") == "/health" for line in logged), logged  # the access line came


def test_ops04_an_error_at_start_is_a_json_line(tmp_path: Path) -> None:
    """The port is taken (a plain listening socket): the error is one JSON line on stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _start(tmp_path, "--port", str(taken.getsockname()[1]))
        out, err = proc.communicate(timeout=20)  # it stops by itself
    assert proc.returncode == 1
    lines = _lines(out) + _lines(err)
    assert any(line["level"] == "error" and "rawproxy: error:" in line["message"] for line in lines), lines


def test_ops04_the_workers_supervisor_writes_only_json_lines(tmp_path: Path) -> None:
    """``--workers 2``: the supervisor's banner, and its line about a worker that died and was started
    again, are JSON like the workers' own log lines."""
    proc = _start(tmp_path, "--port", "0", "--workers", "2")
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
        assert banner["event"] == "listening" and banner["workers"] == 2
        assert banner["message"].endswith("(2 workers)")
        port = int(banner["url"].rsplit(":", 1)[1])
        _health(port)
        workers = children(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # the supervisor says so on stderr and starts another
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = children(proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.05)
        _health(port)
    finally:
        out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert _lines(out) == []
    logged = _lines(err)
    restarted = [line for line in logged if f"worker {workers[0]} exited" in line.get("message", "")]
    assert restarted and restarted[0]["level"] == "warning", logged
