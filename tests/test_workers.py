"""Issue 7: ``--workers N`` runs N processes on one port (SO_REUSEPORT) under a supervisor that restarts
a worker that dies and stops them all gracefully."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+) \((\d+) workers\)")


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return sorted(out)


def reads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr")


def health(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "--workers", "3", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = READY.search(line)
    assert match is not None and match.group(2) == "3", line
    try:
        yield proc, int(match.group(1))
    finally:
        for pid in children(proc.pid):  # first: they hold the pipes open
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_issue7_workers_share_one_port_restart_and_stop(
    supervisor: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = supervisor
    workers = children(proc.pid)
    assert len(workers) == 3
    before = {pid: reads(pid) for pid in workers}
    assert all(health(port) for _ in range(150))  # a new connection each: the kernel spreads them
    busy = [pid for pid in workers if reads(pid) - before[pid] >= 10]
    assert len(busy) >= 2, {pid: reads(pid) - before[pid] for pid in workers}

    os.kill(workers[0], signal.SIGKILL)  # a worker dies: another takes its place
    for _ in range(100):
        now = children(proc.pid)
        if len(now) == 3 and workers[0] not in now:
            break
        time.sleep(0.05)
    assert len(now) == 3 and workers[0] not in now
    assert all(health(port) for _ in range(30))

    proc.send_signal(signal.SIGTERM)  # all stop, gracefully
    assert proc.wait(timeout=15) == 0
    assert children(proc.pid) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_rs_07_every_worker_gets_the_groups_sealing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """An envelope a client got from one worker opens in any other: the supervisor hands every worker it
    starts (and starts again) one key, unless the environment already has one (a supervisor's own)."""
    from rawproxy import workers
    from rawproxy.carrier import GROUP_KEY_VARIABLE

    started: list[dict[str, str]] = []

    class Started:
        stdout = type("Out", (), {"readline": staticmethod(lambda: "listening on http://127.0.0.1:1\n")})()

    def popen(argv: list[str], env: dict[str, str], **_: object) -> Started:
        started.append(env)
        return Started()

    monkeypatch.delenv(GROUP_KEY_VARIABLE, raising=False)
    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    group = workers._Supervisor([], 2, "127.0.0.1", 1, 1.0)
    group.spawn(), group.spawn()
    keys = {env[GROUP_KEY_VARIABLE] for env in started}
    assert len(keys) == 1 and len(next(iter(keys))) >= 32
    assert workers._Supervisor([], 2, "127.0.0.1", 1, 1.0).group_key not in keys  # a new group: a new key
    monkeypatch.setenv(GROUP_KEY_VARIABLE, "given")
    assert workers._Supervisor([], 2, "127.0.0.1", 1, 1.0).group_key == "given"


def test_rs_07_the_configured_key_wins_then_the_groups_then_the_processs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rawproxy.carrier import GROUP_KEY_VARIABLE
    from rawproxy.config import Config
    from rawproxy.exchange.app import carrier_key

    monkeypatch.setenv(GROUP_KEY_VARIABLE, "group")
    assert carrier_key(Config(carrier_key="mine")) == b"mine"
    assert carrier_key(Config()) == b"group"
    monkeypatch.delenv(GROUP_KEY_VARIABLE)
    own = carrier_key(Config())
    assert own == carrier_key(Config()) and len(own) == 32 and own not in (b"group", b"mine")
