"""The bench's load generator: a raw asyncio HTTP/1.1 client, far cheaper than the thing it measures.

Each :class:`Client` keeps one keep-alive connection (an :class:`asyncio.Protocol`, uvloop when installed)
and sends requests whose bytes were built once. The response parser does the least that is correct for
the servers under test: the status line, ``Content-Length`` or chunked framing (decoded incrementally,
sizes only, no copies once the first token is seen), and a regex over the first body bytes to spot the
first token:

* Anthropic SSE: the first ``text_delta`` (or, for tool calls, the first non-empty ``partial_json``);
* OpenAI SSE: the first non-empty ``delta.content`` (or the first non-empty ``arguments`` fragment).

Times are ``time.perf_counter()`` from just before the request is written to the read that holds the
first token (``ttft``) and the read that ends the response (``total``). The body's reads are kept as they
come (one list append a read) and every response is checked after it was read, off the timed path: the
status, and the request's ``check`` (``validate.py``: the whole body, right for its dialect, with the text
the bench upstream sent). A response that fails counts as an error, and the drivers' tally
(:class:`validate.Tally`) keeps the count and the first failure of each arm. Two drivers use it:
:func:`run_rounds` (interleaved arms, fixed concurrency, for latency) and :func:`closed_loop` (N clients
each sending back to back, for throughput). Standalone, as a quick probe:

    python bench/loadgen.py http://127.0.0.1:8082/v1/messages --dialect anthropic -c 32 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import orjson
import validate
from validate import Tally

# first-token patterns (compact JSON is what every server under test writes; one optional space is allowed)
FIRST_TOKEN = {
    ("anthropic", "text"): re.compile(rb'"text_delta"'),
    ("anthropic", "tool"): re.compile(rb'"partial_json": ?"[^"]'),
    ("openai", "text"): re.compile(rb'"content": ?"[^"]'),
    ("openai", "tool"): re.compile(rb'"arguments": ?"[^"]'),
}
_TAIL = 64  # bytes kept between reads so a pattern split across two reads is still found


@dataclass(slots=True)
class Sample:
    status: int
    ttft: float  # seconds; nan when no first token was seen (non-streamed, or none in the body)
    total: float  # seconds, write to the end of the response
    size: int  # body bytes (for chunked responses, after the first token: wire bytes)
    body: bytes = b""  # as received (chunked framing included), for the check; dropped once checked
    chunked: bool = False


# (status, body as received, chunked) -> None when the response is right, else what is wrong with it
Check = Callable[[int, bytes, bool], str | None]


@dataclass(frozen=True, slots=True)
class Request:
    """A request's bytes (built once), what marks its first token and what checks its response."""

    raw: bytes
    first_token: re.Pattern[bytes] | None = None
    check: Check | None = None  # without one, a 200 is enough

    @classmethod
    def post(
        cls,
        host: str,
        port: int,
        path: str,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        first_token: re.Pattern[bytes] | None = None,
        check: Check | None = None,
    ) -> Request:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers),
        ]
        return cls(("\r\n".join(lines) + "\r\n\r\n").encode() + body, first_token, check)


def verdict(request: Request, res: Sample | BaseException) -> str | None:
    """None when ``res`` is a right answer to ``request``, else what is wrong (one line)."""
    if not isinstance(res, Sample):
        return f"no response: {res!r}"
    if request.check is not None:
        return request.check(res.status, res.body, res.chunked)
    return None if res.status == 200 else f"status {res.status}"


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.future: asyncio.Future[Sample] | None = None
        self._reset(None)

    def _reset(self, pattern: re.Pattern[bytes] | None) -> None:
        self.pattern = pattern
        self.state = 0  # 0 idle, 1 head, 2 length body, 3 chunked body
        self.head = b""
        self.start = 0.0
        self.ttft = math.nan
        self.tail = b""
        self.status = 0
        self.remaining = 0  # length body: bytes still to come
        self.chunk_left = 0  # chunked: data bytes left in the current chunk
        self.skip = 0  # chunked: CRLF bytes to skip after a chunk's data
        self.line = b""  # chunked: a size line split across reads
        self.trailer = False  # chunked: after the last chunk, until the empty line
        self.raw_tail = b""  # chunked: the last bytes on the wire, for the end check
        self.fast = False  # chunked: first token seen, only the end check is left
        self.size = 0
        self.close_after = False
        self.parts: list[bytes] = []  # the body's reads, joined when the response ends
        self.chunked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.future is not None and not self.future.done():
            self.future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def send(self, request: Request) -> asyncio.Future[Sample]:
        assert self.transport is not None and self.state == 0
        self._reset(request.first_token)
        self.state = 1
        self.future = asyncio.get_running_loop().create_future()
        self.start = time.perf_counter()
        self.transport.write(request.raw)
        return self.future

    def _scan(self, now: float, piece: bytes) -> None:
        hay = self.tail + piece
        assert self.pattern is not None
        if self.pattern.search(hay) is not None:
            self.ttft = now - self.start
            self.pattern = None
        else:
            self.tail = hay[-_TAIL:]

    def _done(self, now: float) -> None:
        self.state = 0
        body = b"".join(self.parts)
        self.parts = []
        if self.future is not None and not self.future.done():
            self.future.set_result(
                Sample(self.status, self.ttft, now - self.start, self.size, body, self.chunked)
            )
        if self.close_after and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.state == 1:
            data = self.head + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.head = data
                return
            head = data[:end].lower()
            self.status = int(head[9:12])
            data = data[end + 4 :]
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                self.remaining = int(head[i + 17 : j if j >= 0 else len(head)])
                self.state = 2
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.state = 3
                self.chunked = True
            else:  # a body ending at close is not something the servers under test send
                self.remaining = 0
                self.state = 2
            self.close_after = b"\r\nconnection: close" in head
        if data:
            self.parts.append(data)
        if self.state == 2:
            self.size += len(data)
            self.remaining -= len(data)
            if self.pattern is not None and data:
                self._scan(now, data)
            if self.remaining <= 0:
                self._done(now)
        elif self.state == 3:
            self._chunked(now, data)

    def _chunked(self, now: float, data: bytes) -> None:
        if self.fast:
            self._end_check(now, data)
            return
        pos, n = 0, len(data)
        while pos < n:
            if self.chunk_left:
                take = min(self.chunk_left, n - pos)
                if self.pattern is not None:
                    self._scan(now, data[pos : pos + take])
                    if self.pattern is None:  # first token seen: from here on only the end matters
                        self.fast = True
                        self.size += take
                        self._end_check(now, data)
                        return
                self.size += take
                self.chunk_left -= take
                pos += take
                if not self.chunk_left:
                    self.skip = 2
            elif self.skip:
                k = min(self.skip, n - pos)
                self.skip -= k
                pos += k
            else:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    self.line += data[pos:]
                    return
                line = (self.line + data[pos:eol]).strip()
                self.line = b""
                pos = eol + 1
                if self.trailer:
                    if not line:
                        self._done(now)
                        return
                    continue
                size = int(line.split(b";")[0], 16)
                if size:
                    self.chunk_left = size
                else:
                    self.trailer = True
        self.raw_tail = (self.raw_tail + data)[-8:]

    def _end_check(self, now: float, data: bytes) -> None:
        """After the first token only the end matters: the terminating ``\\r\\n0\\r\\n\\r\\n``. Chunk data
        never holds a CRLF here (SSE lines end in LF and JSON escapes CR), so a suffix check is exact and
        costs O(1) a read instead of a parse per event. ``size`` then counts wire bytes."""
        self.size += len(data)
        wire = self.raw_tail + data
        if wire.endswith(b"\r\n0\r\n\r\n"):
            self._done(now)
        else:
            self.raw_tail = wire[-8:]


class Client:
    """A keep-alive client for one server; reconnects when the server closed the connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: _Connection | None = None

    async def call(self, request: Request) -> Sample:
        if self.conn is None or self.conn.closed:
            loop = asyncio.get_running_loop()
            _, self.conn = await loop.create_connection(_Connection, self.host, self.port)
        return await self.conn.send(request)

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None


@dataclass(slots=True)
class Arm:
    """One way to send one request: a name, a server and the request's bytes."""

    name: str
    host: str
    port: int
    request: Request
    clients: list[Client] = field(default_factory=list)

    def ensure_clients(self, n: int) -> list[Client]:
        while len(self.clients) < n:
            self.clients.append(Client(self.host, self.port))
        return self.clients[:n]

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()


def _cpu() -> tuple[float, float]:
    """This process's (user + system, user) CPU seconds, at getrusage's resolution."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_utime


@dataclass(slots=True)
class RoundsResult:
    samples: dict[str, list[Sample]]  # the right answers of the recorded rounds (bodies dropped)
    errors: dict[str, int]  # no answer, a wrong status or a wrong body, in the recorded rounds
    rounds: int
    seconds: float
    client_cpu_s: float  # user + system
    client_user_s: float
    requests: int
    tally: Tally = field(default_factory=Tally)  # every response checked, warm-up rounds included


async def run_rounds(
    arms: Sequence[Arm],
    *,
    concurrency: int,
    rounds: int,
    time_limit: float,
    warmup_rounds: int = 2,
    seed: int = 1,
    request_timeout: float = 30.0,
    tally: Tally | None = None,
) -> RoundsResult:
    """Interleaved rounds: every round sends each arm's batch of ``concurrency`` simultaneous requests,
    the arms in a fresh random order, so all arms see the same machine noise. Stops after ``rounds`` or
    ``time_limit`` seconds, whichever comes first (warm-up rounds are not recorded).

    Every response is checked at the end of its round, after the last batch, so that within a round the
    batches follow each other as they did before responses were checked; the verdicts go to ``tally`` (a
    fresh one when none is given), the failures of recorded rounds to ``errors`` too. The checks' time
    is left out of the client's CPU figures."""
    tally = Tally() if tally is None else tally
    rng = random.Random(seed)
    samples: dict[str, list[Sample]] = {a.name: [] for a in arms}
    errors: dict[str, int] = {a.name: 0 for a in arms}
    order = list(arms)
    verdicts = _Verdicts()
    checking = 0.0  # seconds spent in checks
    t0, cpu0 = time.perf_counter(), _cpu()
    deadline = t0 + time_limit
    done = 0
    for r in range(warmup_rounds + rounds):
        if r >= warmup_rounds and time.perf_counter() > deadline:
            break
        rng.shuffle(order)
        answers: list[tuple[Arm, list[Sample | BaseException]]] = []
        for arm in order:
            clients = arm.ensure_clients(concurrency)
            batch = [c.call(arm.request) for c in clients]
            try:
                results: list[Sample | BaseException] = await asyncio.wait_for(
                    asyncio.gather(*batch, return_exceptions=True), request_timeout
                )
            except TimeoutError:
                arm.close()  # connections left mid-response are not reused
                results = [TimeoutError()] * len(batch)
            if not all(isinstance(res, Sample) for res in results):
                arm.close()
            answers.append((arm, results))
        began = time.perf_counter()
        for arm, results in answers:
            for res in results:
                ok = tally.record(arm.name, verdicts(arm, res))
                if isinstance(res, Sample):
                    res.body = b""
                if r < warmup_rounds:
                    continue
                if ok and isinstance(res, Sample):
                    samples[arm.name].append(res)
                else:
                    errors[arm.name] += 1
        checking += time.perf_counter() - began
        if r >= warmup_rounds:
            done += 1
    seconds = time.perf_counter() - t0
    cpu1 = _cpu()
    requests = (done + warmup_rounds) * concurrency * len(arms)
    return RoundsResult(
        samples,
        errors,
        done,
        seconds,
        max(0.0, cpu1[0] - cpu0[0] - checking),
        max(0.0, cpu1[1] - cpu0[1] - checking),
        requests,
        tally,
    )


class _Verdicts:
    """:func:`verdict` with a short memory: a body identical to one already checked for the same arm (the
    canned upstream's bytes, a passthrough's or the relay's) gets the same verdict without a second parse.
    A translated stream's bodies differ (ids), so the memory is bounded."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.seen: dict[tuple[str, int, bool, bytes], str | None] = {}

    def __call__(self, arm: Arm, res: Sample | BaseException) -> str | None:
        if not isinstance(res, Sample):
            return verdict(arm.request, res)
        key = (arm.name, res.status, res.chunked, res.body)
        try:
            return self.seen[key]
        except KeyError:
            pass
        why = verdict(arm.request, res)
        if len(self.seen) >= self.size:
            self.seen.clear()
        self.seen[key] = why
        return why


@dataclass(slots=True)
class LoopResult:
    completed: int  # right answers in the measured window
    errors: int  # no answer, a wrong status or a wrong body, in the measured window
    seconds: float
    client_cpu_s: float  # user + system
    client_user_s: float
    latencies: list[float]
    tally: Tally = field(default_factory=Tally)  # every response checked, warm-up included


async def closed_loop(
    arm: Arm,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    window: Callable[[str], Awaitable[None] | None] | None = None,
    tally: Tally | None = None,
) -> LoopResult:
    """``concurrency`` clients, each sending the arm's request back to back, for ``warmup + duration``
    seconds; counts what completes in the measured window. ``window("start")``/``window("end")`` are
    called at its edges (to sample other processes' CPU).

    Every response is checked, but after the loop: in the window the client only files each body under
    (status, chunked, body, in the window), so identical answers (the direct arms' canned bytes) are
    kept and checked once, and checking costs the window nothing but a hash of the body."""
    tally = Tally() if tally is None else tally
    clients = arm.ensure_clients(concurrency)
    state = {"measuring": False, "stop": False}
    latencies: list[float] = []
    counts = [0, 0]  # completed, errors (in the window)
    bodies: dict[tuple[int, bool, bytes, bool], int] = {}

    async def worker(client: Client) -> None:
        while not state["stop"]:
            try:
                s = await client.call(arm.request)
            except (ConnectionError, OSError) as exc:
                client.close()
                tally.record(arm.name, verdict(arm.request, exc))
                if state["measuring"]:
                    counts[1] += 1
                await asyncio.sleep(0.001)
                continue
            key = (s.status, s.chunked, s.body, state["measuring"])
            bodies[key] = bodies.get(key, 0) + 1
            if state["measuring"] and s.status == 200:
                latencies.append(s.total)

    tasks = [asyncio.ensure_future(worker(c)) for c in clients]
    try:
        await asyncio.sleep(warmup)
        if window is not None:
            w = window("start")
            if w is not None:
                await w
        state["measuring"] = True
        t0, cpu0 = time.perf_counter(), _cpu()
        await asyncio.sleep(duration)
        state["measuring"] = False
        seconds, cpu1 = time.perf_counter() - t0, _cpu()
        if window is not None:
            w = window("end")
            if w is not None:
                await w
        state["stop"] = True
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    finally:
        for t in tasks:
            t.cancel()
    for (status, chunked, body, measured), n in bodies.items():
        why = verdict(arm.request, Sample(status, math.nan, math.nan, 0, body, chunked))
        if tally.record(arm.name, why, n) and measured:
            counts[0] += n
        elif measured:
            counts[1] += n
    return LoopResult(counts[0], counts[1], seconds, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], latencies, tally)


def loop_factory(enabled: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed, else asyncio's own."""
    if not enabled:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; nan for no values."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="probe one endpoint with the bench's raw client")
    p.add_argument("url")
    p.add_argument("--dialect", choices=["anthropic", "openai"], default="anthropic")
    p.add_argument("--model", default=None)
    p.add_argument("--stream", action="store_true")
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    model = args.model or ("claude-sonnet-4-6" if args.dialect == "anthropic" else "gpt-bench")
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "bench:short:0"}]}
    if args.dialect == "anthropic":
        body["max_tokens"] = 256
    if args.stream:
        body["stream"] = True
    headers = [("anthropic-version", "2023-06-01")] if args.dialect == "anthropic" else []
    pattern = FIRST_TOKEN[args.dialect, "text"] if args.stream else None
    check = validate.expect(args.dialect, "short", args.stream).check
    raw = orjson.dumps(body)
    arm = Arm("probe", host, port, Request.post(host, port, u.path, raw, headers, pattern, check))

    async def go() -> LoopResult:
        return await closed_loop(arm, concurrency=args.concurrency, warmup=0.5, duration=args.seconds)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        res = runner.run(go())
    rps = res.completed / res.seconds
    if res.tally.failures:
        print(
            f"{res.tally.failures} of {res.tally.checked} responses failed the check; the first: "
            f"{res.tally.first['probe']}"
        )
    print(
        f"{res.completed} ok, {res.errors} errors in {res.seconds:.2f}s: {rps:.0f} req/s, "
        f"p50 {percentile(res.latencies, 0.5) * 1000:.3f} ms, "
        f"client CPU {res.client_cpu_s / max(1, res.completed) * 1e6:.1f} us/req"
        f" ({res.client_user_s / max(1, res.completed) * 1e6:.1f} user)"
    )
    return 1 if res.tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
