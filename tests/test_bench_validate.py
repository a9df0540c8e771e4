"""The bench checks what it counts (issue 19): every response's status, its whole body for its dialect,
the text the bench upstream sent and the terminal event; a response that fails is an error, not a sample.

The sans-I/O tests feed ``bench/validate.py`` the bench upstream's own bytes (which must pass) and broken
copies of them (which must not); the socket tests run the bench's client (``bench/loadgen.py``) against
the bench upstream and against a server that answers with a broken stream, through both drivers.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """bench/'s modules import each other by bare name (bench/ is their script directory)."""
    sys.path.insert(0, str(BENCH))
    try:
        return (
            importlib.import_module("canned_upstream"),
            importlib.import_module("validate"),
            importlib.import_module("loadgen"),
        )
    finally:
        sys.path.remove(str(BENCH))


cu, validate, loadgen = _bench_modules()

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _stream(dialect: str, kind: str = "short") -> bytes:
    """The bench upstream's whole chunked body for a streamed answer of ``kind``."""
    return b"".join(cu.STREAMS[dialect, kind])


def _without_last_event(dialect: str, kind: str = "short") -> bytes:
    """The same stream, well framed and terminated, but its last event (``message_stop`` for Anthropic,
    the usage chunk and ``data: [DONE]`` for OpenAI) never sent: a truncated stream that still ends."""
    return b"".join(cu.STREAMS[dialect, kind][:-1]) + b"0\r\n\r\n"


# ------------------------------------------------------------------------------------ sans-I/O


def test_the_validators_self_test_passes() -> None:
    """Every kind in both dialects, back to back and paced, passes; cut, truncated, altered, mislabelled
    and non-200 copies are rejected (``python bench/validate.py``; ``run.py`` runs it before a bench)."""
    assert validate.self_test() == []


def test_the_expected_text_is_what_the_upstream_sends() -> None:
    """One source: the check's expectation is ``canned_upstream.answer``, from which the events are built."""
    for kind in cu.KINDS:
        text, args = cu.answer(kind, True)
        e = validate.expect("anthropic", kind, True)
        assert (e.text, e.tool_args) == (text, args)
        if args is None:
            assert text == "".join(cu.TEXT[kind])
    assert validate.expect("openai", "stream200", False).text == "".join(cu.TEXT_SHORT)  # non-streamed: short


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_a_stream_without_its_terminal_event_is_rejected(dialect: str) -> None:
    e = validate.expect(dialect, "short", True)
    assert e.check(200, _stream(dialect), True) is None
    why = e.check(200, _without_last_event(dialect), True)
    assert why is not None
    assert ("message_stop" if dialect == "anthropic" else "[DONE]") in why


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize("kind", ["short", "stream200", "tool100"])
def test_a_stream_cut_short_is_rejected(dialect: str, kind: str) -> None:
    body = _stream(dialect, kind)
    e = validate.expect(dialect, kind, True)
    for cut in (len(body) // 3, len(body) // 2, len(body) - 7):
        assert e.check(200, body[:cut], True) is not None, cut


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_a_changed_token_is_rejected(dialect: str) -> None:
    body = _stream(dialect).replace(b"bench", b"bunch")  # same length: the chunk sizes still hold
    why = validate.expect(dialect, "short", True).check(200, body, True)
    assert why is not None and "text" in why


def test_a_wrong_stop_reason_and_an_error_event_are_rejected() -> None:
    a, o = validate.expect("anthropic", "short", True), validate.expect("openai", "short", True)
    sse = validate.dechunk(_stream("anthropic"))  # checked as a body without chunked framing below
    assert a.check(200, sse, False) is None
    assert "stop_reason" in (a.check(200, sse.replace(b'"end_turn"', b'"max_tokens"'), False) or "")
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'
    at = sse.index(b"event: content_block_stop")
    assert "error event" in (a.check(200, sse[:at] + error + sse[at:], False) or "")
    sse = validate.dechunk(_stream("openai"))
    assert o.check(200, sse, False) is None
    assert "finish_reason" in (o.check(200, sse.replace(b'"stop"', b'"length"'), False) or "")


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_a_non_streamed_answer_is_checked(dialect: str) -> None:
    whole = cu.WHOLE[dialect].split(b"\r\n\r\n", 1)[1]
    e = validate.expect(dialect, "short", False)
    assert e.check(200, whole, False) is None
    assert e.check(200, whole.replace(b"upstream.", b"upstream!"), False) is not None
    assert e.check(200, whole[:-1], False) is not None
    assert "status 500" in (e.check(500, whole, False) or "")


# ------------------------------------------------------------------------------- through sockets


class _Server:
    """Answers every request on 127.0.0.1 with ``reply(request body)``: the bench upstream's protocol,
    or fixed broken bytes."""

    def __init__(self, factory: Callable[[], asyncio.Protocol]) -> None:
        self.factory = factory
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> _Server:
        self.server = await asyncio.get_running_loop().create_server(self.factory, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class _Fixed(asyncio.Protocol):
    """Reads one request at a time (head and Content-Length body), answers with ``RESPONSE``."""

    RESPONSE = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15 :].split(b"\r\n")[0]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(self.RESPONSE)


def _truncated_anthropic() -> type[_Fixed]:
    return type("Truncated", (_Fixed,), {"RESPONSE": SSE_HEAD + _without_last_event("anthropic")})


def _arm(port: int, dialect: str = "anthropic", marker: str = "bench:short:0") -> Any:
    body = (
        b'{"model":"m","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"%b"}]}'
        % marker.encode()
    )
    kind = marker.split(":")[1]
    path = "/v1/messages" if dialect == "anthropic" else "/v1/chat/completions"
    request = loadgen.Request.post(
        "127.0.0.1",
        port,
        path,
        body,
        [("anthropic-version", "2023-06-01")],
        loadgen.FIRST_TOKEN[dialect, "text"],
        validate.expect(dialect, kind, True).check,
    )
    return loadgen.Arm(f"{dialect} {marker}", "127.0.0.1", port, request)


@pytest.fixture
async def upstream() -> AsyncIterator[_Server]:
    async with _Server(cu.UpstreamProtocol) as server:
        yield server


@pytest.mark.integration
@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_the_bench_upstream_passes_back_to_back_and_paced(upstream: _Server, dialect: str) -> None:
    arms = [_arm(upstream.port, dialect), _arm(upstream.port, dialect, "bench:short:0:5")]
    try:
        res = await loadgen.run_rounds(arms, concurrency=2, rounds=3, time_limit=10, warmup_rounds=1)
    finally:
        for arm in arms:
            arm.close()
    assert res.tally.failures == 0 and res.tally.checked == 2 * 2 * 4
    assert all(len(s) == 6 and not any(x.body for x in s) for s in res.samples.values())
    paced = res.samples[arms[1].name]
    assert min(s.total - s.ttft for s in paced) > 0.015  # 4 gaps of 5 ms after the first token


@pytest.mark.integration
async def test_a_truncated_stream_is_a_failure_in_the_rounds() -> None:
    """A 200 whose stream ends (framing intact) without ``message_stop`` was a success before issue 19."""
    async with _Server(_truncated_anthropic()) as server:
        arm = _arm(server.port)
        try:
            res = await loadgen.run_rounds([arm], concurrency=2, rounds=3, time_limit=10, warmup_rounds=1)
        finally:
            arm.close()
    assert res.samples[arm.name] == []
    assert res.errors[arm.name] == 6  # the recorded rounds
    assert res.tally.failures == res.tally.checked == 8  # warm-up included
    assert "message_stop" in res.tally.first[arm.name]


@pytest.mark.integration
async def test_a_truncated_stream_is_a_failure_in_the_closed_loop() -> None:
    async with _Server(_truncated_anthropic()) as server:
        arm = _arm(server.port)
        try:
            res = await loadgen.closed_loop(arm, concurrency=4, warmup=0.05, duration=0.2)
        finally:
            arm.close()
    assert res.completed == 0 and res.errors > 0
    assert res.tally.failures == res.tally.checked > res.errors
    assert "message_stop" in res.tally.first[arm.name]


@pytest.mark.integration
async def test_the_closed_loop_counts_the_upstreams_answers_as_right(upstream: _Server) -> None:
    arm = _arm(upstream.port, "openai")
    try:
        res = await loadgen.closed_loop(arm, concurrency=4, warmup=0.05, duration=0.2)
    finally:
        arm.close()
    assert res.errors == 0 and res.completed > 0
    assert res.tally.failures == 0 and res.tally.checked >= res.completed
