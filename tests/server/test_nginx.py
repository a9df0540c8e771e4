"""Issue 7: the README's nginx configuration, run with Debian's nginx on loopback in front of two proxies:
requests spread over both, and a stream's events pass through as they come."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, SSEStream, T, build_request, messages_body, start

pytestmark = pytest.mark.integration

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_nginx() -> str:
    for block in re.findall(r"```nginx\n(.*?)```", README, re.DOTALL):
        if "upstream rawproxy" in block:
            return block
    raise AssertionError("README has no nginx example")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (CI installs Debian's nginx-light)")
async def test_issue7_readme_nginx_in_front_of_two_proxies(
    proxy_factory: Any, fake: FakeUpstream, tmp_path: Path
) -> None:
    first, second = await start(proxy_factory), await start(proxy_factory)
    listen = free_port()
    site = (
        readme_nginx()
        .replace("127.0.0.1:8082", f"127.0.0.1:{first.port}")
        .replace("127.0.0.1:8083", f"127.0.0.1:{second.port}")
        .replace("127.0.0.1:8080", f"127.0.0.1:{listen}")
    )
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'} info;\nevents {{}}\n"
        + "http {\n"
        + "log_format spread '$request $upstream_addr';\n"
        + f"access_log {tmp_path / 'access.log'} spread;\n"
        + "".join(f"{name}_temp_path {path};\n" for name, path in temp.items()).replace(
            "body_temp", "client_body_temp"
        )
        + site
        + "}\n"
    )
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        # Non-streamed, on new connections each: both proxies get some.
        for _ in range(10):
            async with await HTTPConnection.open("127.0.0.1", listen, timeout=T) as conn:
                r = await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body("hi"), timeout=T)
                assert r.status == 200 and r.json()["content"][0]["text"] == "Hello from the fake upstream."
        served = len(fake.requests)
        assert served == 10
        # A slow stream: its first event reaches the client long before the stream ends.
        fake.enqueue(Script(text="one two three four five six", token_interval=0.2))
        async with await HTTPConnection.open("127.0.0.1", listen, timeout=T) as conn:
            began = time.monotonic()
            await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("s", stream=True)))
            head = await conn.read_head(timeout=T)
            stream = SSEStream(conn, head)
            await stream.until(lambda e: e.event == "content_block_delta", timeout=T)
            to_first = time.monotonic() - began
            events = await stream.rest(timeout=T)
            total = time.monotonic() - began
        assert events[-1].event == "message_stop"
        assert to_first < 0.5 and total > 0.9, (to_first, total)  # not buffered by nginx
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
    log = (tmp_path / "access.log").read_text()
    assert log.count("POST /v1/messages") == 11
    upstream_ports = set(re.findall(r"127\.0\.0\.1:(\d+)", log))
    assert upstream_ports == {str(first.port), str(second.port)}  # both proxies served
