"""Issue 18, item 7: the forms ``--host`` takes. ``[::1]`` (an IPv6 address as a URL writes it) is the
address without its brackets; ``::`` listens on every address of both families, IPv4 included, on one
dual-stack socket (IPV6_V6ONLY off: asyncio and uvloop set it on by themselves, GNS3/gns3-server#1673;
https://docs.python.org/3/library/socket.html#socket.create_server).

Clients connect over 127.0.0.1 and ::1 only. The IPv6 cases are skipped, with that reason, only on a
machine without IPv6 (no ::1 to bind); this one has it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rawproxy.config import Config

pytestmark = pytest.mark.integration


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return socket.has_ipv6


IPV6 = pytest.mark.skipif(not _has_ipv6(), reason="this machine has no IPv6 (::1 cannot be bound)")
DUAL = pytest.mark.skipif(
    not _has_ipv6() or not socket.has_dualstack_ipv6(), reason="this machine has no dual-stack IPv6"
)


async def health(address: str, port: int) -> bytes:
    """The status line of ``GET /health`` over a new connection to ``address``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 5)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


def test_ops03_a_bracketed_host_is_the_address() -> None:
    """The brackets go whether the host comes from a flag, the environment or a keyword."""
    assert Config(host="[::1]", openai_key="x").host == "::1"
    assert Config.from_flags("--host", "[::1]", "--openai-key", "x").host == "::1"
    assert (
        Config.from_env([], environ={"RAWPROXY_HOST": "[::]", "OPENAI_API_KEY": "x"}, dotenv=None).host
        == "::"
    )
    assert Config(host="127.0.0.1", openai_key="x").host == "127.0.0.1"


@IPV6
async def test_ops03_bracketed_ipv6_loopback_serves_on_it(proxy_factory) -> None:
    proxy = await proxy_factory(host="[::1]")
    assert proxy.url == f"http://[::1]:{proxy.port}"
    assert await health("::1", proxy.port) == b"HTTP/1.1 200 OK\r\n"


@DUAL
async def test_ops03_unspecified_ipv6_host_is_dual_stack(proxy_factory) -> None:
    """``--host ::`` takes IPv4 too: 127.0.0.1 and ::1 reach the same listener."""
    proxy = await proxy_factory(host="::")
    for address in ("127.0.0.1", "::1"):
        assert await health(address, proxy.port) == b"HTTP/1.1 200 OK\r\n", address


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}
    return {**env, "OPENAI_API_KEY": "sk-test"}


@DUAL
@pytest.mark.parametrize("workers", [1, 2], ids=["single", "workers"])
def test_ops03_the_command_line_takes_both_forms(tmp_path: Path, workers: int) -> None:
    """As users type them: ``--host [::]`` (brackets and all) serves 127.0.0.1 and ::1, alone and under
    the ``--workers`` supervisor (each worker's socket is dual-stack and shares the port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "--host", "[::]", "--port", "0", "--workers", str(workers)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ready = re.search(r"listening on http://\[::\]:(\d+)", line)
        assert ready is not None, line
        port = int(ready.group(1))
        for address in ("127.0.0.1", "::1"):
            for _ in range(4):  # new connections: with workers the kernel may pick either
                assert asyncio.run(health(address, port)) == b"HTTP/1.1 200 OK\r\n", address
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
