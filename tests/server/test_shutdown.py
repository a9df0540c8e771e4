"""Issue 6, graceful shutdown, with streams in flight through a real ``python -m rawproxy`` process: SIGTERM
stops accepting and lets streams finish within the grace period, then closes; a second signal stops at
once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import (
    ANTHROPIC,
    HTTPConnection,
    SSEStream,
    T,
    build_request,
    messages_body,
    parse_sse,
    text_of,
)

pytestmark = pytest.mark.integration

READY = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")
WORDS = " ".join(f"w{i}" for i in range(12))


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port


@pytest.fixture
async def launch(fake: FakeUpstream) -> AsyncIterator[Any]:
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> Proc:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rawproxy",
            "--port",
            "0",
            "--openai-upstream",
            fake.url,
            "--openai-key",
            "sk-upstream",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        match = READY.search(line)
        assert match is not None, line
        return Proc(proc, int(match.group(1)))

    yield start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def open_stream(port: int) -> tuple[HTTPConnection, SSEStream]:
    conn = await HTTPConnection.open("127.0.0.1", port, timeout=T)
    await conn.send(build_request("POST", "/v1/messages", ANTHROPIC, messages_body("hi", stream=True)))
    head = await conn.read_head(timeout=T)
    assert head.status == 200
    stream = SSEStream(conn, head)
    await stream.until(lambda e: e.event == "content_block_delta", timeout=T)  # the stream is flowing
    return conn, stream


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_issue6_sigterm_stops_accepting_and_lets_streams_finish(
    launch: Any, fake: FakeUpstream
) -> None:
    fake.default = Script(text=WORDS, token_interval=0.08)  # about a second
    proxy = await launch("--grace-seconds", "10")
    conns = [await open_stream(proxy.port) for _ in range(3)]
    began = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert await refused(proxy.port), "a stopping proxy still accepts connections"
    for conn, stream in conns:
        async with conn:
            events = await stream.rest(timeout=T)
        assert events[-1].event == "message_stop"
        assert text_of(events).endswith("w11")  # whole (the first delta was read before the signal)
    assert await asyncio.wait_for(proxy.proc.wait(), 10) == 0
    assert time.monotonic() - began < 5  # it left as soon as the streams were done, not after the grace


async def test_issue6_streams_past_the_grace_period_are_closed(launch: Any, fake: FakeUpstream) -> None:
    fake.default = Script(text=WORDS, token_interval=0.5)  # six seconds
    proxy = await launch("--grace-seconds", "0.5")
    conn, stream = await open_stream(proxy.port)
    began = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    async with conn:
        try:
            events = await stream.rest(timeout=T)
            completed = bool(events) and events[-1].event == "message_stop"
        except (asyncio.IncompleteReadError, ConnectionError):
            completed = False  # the connection closed in the middle of the chunked body
    assert not completed  # cut short at the end of the grace period
    assert await asyncio.wait_for(proxy.proc.wait(), 10) == 0
    assert 0.4 < time.monotonic() - began < 3


async def test_issue6_a_second_signal_stops_at_once(launch: Any, fake: FakeUpstream) -> None:
    fake.default = Script(text=WORDS, token_interval=0.5)
    proxy = await launch("--grace-seconds", "30")
    conn, _ = await open_stream(proxy.port)
    async with conn:
        proxy.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert proxy.proc.returncode is None  # waiting for the stream
        began = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proxy.proc.wait(), 5)
    assert code == 130
    assert time.monotonic() - began < 2


# ----------------------------------------------------------- issue 19, defect 5: cut at grace expiry


async def _stopped_mid_stream(proxy_factory: Any, fake: FakeUpstream, path: str, body: bytes) -> bytes:
    """Start a stream through an in-process proxy with a short grace period, stop the proxy while it
    flows, and return all the client received."""
    from tests.support.rawhttp import start

    fake.default = Script(text=WORDS, token_interval=0.3)  # longer than the grace period
    proxy = await start(proxy_factory, grace_seconds=0.3)
    conn = await HTTPConnection.open(proxy.host, proxy.port, timeout=T)
    async with conn:
        await conn.send(build_request("POST", path, ANTHROPIC, body))
        head = await conn.read_head(timeout=T)
        assert head.status == 200
        stream = SSEStream(conn, head)
        await stream.next_event(timeout=T)  # the stream is flowing
        stopping = asyncio.create_task(proxy.proxy.stop())
        try:
            await stream.rest(timeout=T)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # cut: what arrived is in stream.raw
        await asyncio.wait_for(stopping, 5)
    return bytes(stream.raw)


async def test_issue19_d5_anthropic_stream_cut_at_grace_expiry_ends_with_an_error_event(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    # issue 19, defect 5
    raw = await _stopped_mid_stream(proxy_factory, fake, "/v1/messages", messages_body("hi", stream=True))
    events = parse_sse(raw)
    assert events[-1].event == "error", [e.event for e in events]
    error = events[-1].json()["error"]
    assert error["type"] == "overloaded_error" and "shutting down" in error["message"], error
    assert "message_stop" not in [e.event for e in events]


async def test_issue19_d5_openai_stream_cut_at_grace_expiry_ends_with_an_error_chunk(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    # issue 19, defect 5
    body = json.dumps(
        {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    raw = await _stopped_mid_stream(proxy_factory, fake, "/v1/chat/completions", body)
    data = [e.data for e in parse_sse(raw)]
    assert data[-1] == "[DONE]", data
    error = json.loads(data[-2])["error"]
    assert "shutting down" in error["message"], error
