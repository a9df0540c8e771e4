"""NET-06: one port, one rawproxy. A second one started on a port a rawproxy already serves, alone or with
``--workers``, fails at start with a clear message and a non-zero exit; SO_REUSEPORT is shared only among
one supervisor's own workers (workers.py ``_port_taken``).

Linux lets any socket of the same user that sets SO_REUSEPORT join a port's group (socket(7)), so before
this a second ``--workers`` rawproxy joined the first one's port silently and took half its connections.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.support.processes import free_port, rawproxy, run_rawproxy

pytestmark = pytest.mark.integration


def serves(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param((), (), id="single-then-single"),
        pytest.param((), ("--workers", "2"), id="single-then-workers"),
        pytest.param(("--workers", "2"), ("--workers", "2"), id="workers-then-workers"),
        pytest.param(("--workers", "2"), (), id="workers-then-single"),
    ],
)
def test_net06_a_second_rawproxy_on_a_served_port_fails_at_start(
    tmp_path: Path, first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    port = free_port()
    with rawproxy(tmp_path, "first", "--port", str(port), *first):
        began = time.monotonic()
        done = run_rawproxy(tmp_path, "--port", str(port), *second)
        assert done.returncode != 0, f"the second rawproxy started:\n{done.stdout}\n{done.stderr}"
        assert "listening on" not in done.stdout
        assert f"port {port} on 127.0.0.1 is already in use" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - began < 15
        assert serves(port)  # the first one is untouched
