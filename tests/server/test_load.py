"""Issue 6, load: 500 concurrent streaming clients through one proxy process against the fake upstream (both
in processes of their own), every stream checked whole; then the proxy's memory and file descriptors are
back where they were.

``make load`` runs it for 30 seconds; ``make test`` (and CI) for ``RAWPROXY_LOAD_SECONDS`` (default 5),
asserting the same properties. Each client keeps one keep-alive connection and sends streamed requests
back to back, cycling through the four paths (A2O, O2A and both passthroughs).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

CLIENTS = int(os.environ.get("RAWPROXY_LOAD_CLIENTS", "500"))
SECONDS = float(os.environ.get("RAWPROXY_LOAD_SECONDS", "5"))
TEXT = "load test answer in a few words"
RSS_GROWTH_MB = 20
POOL_IDLE = 100  # transport.ConnectionPool's idle connections per origin (the fake is one origin)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}


def _spawn(args: list[str], ready: re.Pattern[str]) -> tuple[subprocess.Popen[str], re.Match[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = ready.search(line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no ready line: {line!r} {proc.communicate()[1][-2000:]}")
    return proc, match


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(key)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def processes() -> Iterator[tuple[subprocess.Popen[str], int]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # 500 client sockets here
    fake, url = _spawn(
        ["fake-upstream", "--port", "0", "--text", TEXT, "--token-interval-ms", "5"],
        re.compile(r"(http://127\.0\.0\.1:\d+)/v1"),
    )
    base = url.group(1)
    proxy, port = _spawn(
        [
            *("--port", "0", "--openai-upstream", f"{base}/v1", "--openai-key", "sk-load"),
            *("--anthropic-upstream", base, "--anthropic-key", "sk-ant-load", "--log-level", "warning"),
        ],
        re.compile(r"listening on http://127\.0\.0\.1:(\d+)"),
    )
    try:
        yield proxy, int(port.group(1))
    finally:
        for proc in (proxy, fake):
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --------------------------------------------------------------------------------------- the client

PATHS = (
    ("/v1/messages", "anthropic", "gpt-4o"),  # A2O
    ("/v1/chat/completions", "openai", "claude-sonnet-4-6"),  # O2A
    ("/v1/messages", "anthropic", "claude-sonnet-4-6"),  # passthrough
    ("/v1/chat/completions", "openai", "gpt-4o"),  # passthrough
)


def _request(port: int, path: str, dialect: str, model: str) -> bytes:
    body = orjson.dumps(
        {"model": model, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    extra = "anthropic-version: 2023-06-01\r\n" if dialect == "anthropic" else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _text_of(dialect: str, body: bytes) -> tuple[str, bool]:
    """(the streamed text, whether the stream ended as it should) of one SSE body."""
    pieces: list[str] = []
    ended = False
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            ended = dialect == "openai"
            continue
        event = orjson.loads(data)
        if dialect == "anthropic":
            if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
                pieces.append(event["delta"]["text"])
            ended = ended or event.get("type") == "message_stop"
        else:
            for choice in event.get("choices") or ():
                pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces), ended


@dataclass
class Tally:
    streams: int = 0
    errors: list[str] = field(default_factory=list)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))
        parts[-1] = parts[-1][:-2]


async def _client(number: int, port: int, deadline: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    turn = number
    try:
        while time.monotonic() < deadline:
            path, dialect, model = PATHS[turn % len(PATHS)]
            turn += 1
            writer.write(_request(port, path, dialect, model))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            status = head.split(b" ", 2)[1]
            if status != b"200" or b"chunked" not in head.lower():
                tally.errors.append(f"{path} {model}: {head[:200]!r}")
                return
            text, ended = _text_of(dialect, await asyncio.wait_for(_read_chunked(reader), 60))
            if text != TEXT or not ended:
                tally.errors.append(f"{path} {model}: incomplete stream {text!r} ended={ended}")
                return
            tally.streams += 1
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        tally.errors.append(f"client {number}: {exc!r}")
    finally:
        writer.close()


async def _run(port: int, clients: int, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_client(i, port, deadline, tally) for i in range(clients)))
    return tally


def test_issue6_load_500_streaming_clients_no_errors_no_growth(
    processes: tuple[subprocess.Popen[str], int],
) -> None:
    proxy, port = processes
    warm = asyncio.run(_run(port, 50, 0.5))  # every path and import warmed, the pool filled
    assert not warm.errors, warm.errors[:5]
    time.sleep(0.5)
    rss_before, fds_before = _status(proxy.pid, "VmRSS"), _fds(proxy.pid)

    began = time.monotonic()
    tally = asyncio.run(_run(port, CLIENTS, SECONDS))
    elapsed = time.monotonic() - began
    time.sleep(1.0)  # the proxy notices the closed client connections
    rss_after, fds_after, peak = _status(proxy.pid, "VmRSS"), _fds(proxy.pid), _status(proxy.pid, "VmHWM")

    print(
        f"\nload: {CLIENTS} clients, {elapsed:.1f} s, {tally.streams} streams ({tally.streams / elapsed:.0f}/s), "
        f"{len(tally.errors)} errors; proxy RSS {rss_before:.1f} -> {rss_after:.1f} MB (peak {peak:.1f}), "
        f"fds {fds_before} -> {fds_after}"
    )
    assert not tally.errors, tally.errors[:5]
    assert tally.streams >= CLIENTS  # every client completed at least one stream
    assert rss_after - rss_before <= RSS_GROWTH_MB
    # Client sockets are all gone; the upstream pool keeps at most POOL_IDLE idle connections (then
    # retires them after a minute): the bound, and a second burst must not add to it.
    assert fds_after <= fds_before + POOL_IDLE + 8, (fds_before, fds_after)
    again = asyncio.run(_run(port, CLIENTS, 1.0))
    time.sleep(1.0)
    assert not again.errors, again.errors[:5]
    assert _fds(proxy.pid) <= fds_after + 8, (fds_after, _fds(proxy.pid))
    assert _status(proxy.pid, "VmRSS") - rss_before <= RSS_GROWTH_MB
