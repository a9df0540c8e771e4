"""rawproxy's benchmark suite: what the proxy adds, measured against the direct upstream and a bare relay.

Three processes are started on free ports of 127.0.0.1: the bench upstream (``canned_upstream.py``, canned bytes
for both dialects), the proxy (``python -m rawproxy`` at its default log level, info, so with its access log,
written to a file; both upstreams pointing at the bench upstream) and the relay floor (``relay_floor.py``).
This script is the client (``loadgen.py``). ``--log-level warning`` runs the proxy at warning instead (the
figures before issue 19); ``--log-level both`` adds a second proxy at warning, its arms in the same rounds,
and reports the two side by side.

Every response is checked (``validate.py``): status 200, the whole body right for its dialect, with the
text the upstream sent and the terminal event. A response that fails counts as an error; the run reports
the count and the first failure of each arm, and exits with status 1 when there was any.

Paths: A2O (Anthropic client, OpenAI upstream), O2A (OpenAI client, Anthropic upstream), both
passthroughs, and the relay floor. Each is compared with the direct arm of its upstream's dialect, the
arms interleaved in rounds in a fresh random order so machine noise hits all of them alike. Overhead at a
percentile is that percentile of the arm minus the same percentile of its direct arm.

    python bench/run.py            # the full suite (a few minutes)
    python bench/run.py --quick    # reduced counts, about two minutes
    python bench/run.py --tiny --results /tmp/b   # a handful of rounds a phase: the harness works

This module is the command line and the run's sequence (start the processes, measure, write the
results); ``processes.py`` starts and watches the processes, ``phases.py`` holds the measured phases.

Results: bench/results/bench-<time>.json and latest.json, latest.md (the table, also printed) and
latest.png (the TTFT-overhead chart; needs matplotlib, skipped with a note without it).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import validate
from loadgen import loop_factory
from phases import (
    PACED_KIND,
    Ports,
    big_phase,
    make_arm,
    paced_phase,
    routes_phase,
    smoke,
    stream_phase,
    throughput_phase,
    ttft_phase,
)
from processes import (
    BENCH,
    HOST,
    RESULTS,
    ROUTES,
    Children,
    cold_start,
    decide_cost_us,
    free_port,
    import_time,
    log_summary,
    machine,
    memory_mb,
    proxy_argv,
    relay_argv,
    routes_argv,
    routes_file,
)
from validate import Tally

GAP_MS = 20  # the paced arm: ms between two tokens, as a model generating about 50 tokens/s


@dataclass(frozen=True, slots=True)
class Counts:
    """How much of each measurement to take (rounds, seconds); every loop also has a time limit."""

    ttft_rounds_1: int  # rounds at 1 stream, upstream first token at 0 ms
    ttft_rounds_1_delay: int  # rounds at 1 stream, upstream first token at 50 ms
    ttft_rounds_32: int
    ttft_rounds_32_delay: int
    stream_rounds: int  # 200-event stream and 100-fragment tool call
    big_rounds: int
    throughput_warmup: float
    throughput_seconds: float
    cold_starts: int
    phase_limit: float  # seconds, per latency phase
    total_limit: float  # seconds, the whole run

    routes_rounds: int = 0  # rounds of flags-only vs a 20-route configuration file, 1 stream
    paced_rounds_1: int = 0  # rounds at 1 stream of the short answer back to back and paced
    paced_rounds_32: int = 0  # the same at 32 streams


FULL = Counts(2000, 300, 100, 40, 400, 600, 1.0, 5.0, 10, 150.0, 1400.0, 1500, 100, 30)
QUICK = Counts(400, 30, 10, 6, 80, 150, 0.3, 1.2, 3, 14.0, 130.0, 300, 10, 4)
TINY = Counts(20, 3, 3, 2, 5, 10, 0.1, 0.3, 1, 4.0, 60.0, 10, 3, 2)  # proves the harness, not the figures


async def measure(
    ports: Ports, pids: dict[str, int], counts: Counts, gap_ms: int, tally: Tally, log: Callable[[str], None]
) -> dict[str, Any]:
    await smoke(ports, gap_ms)
    # warm every arm, then the idle memory
    await ttft_phase(ports, 0, 4, 20, 10, tally)
    await asyncio.sleep(0.5)
    memory_idle = {who: memory_mb(pids[who]) for who in ("proxy", "relay")}

    ttft = []
    for delay, conc, rounds in (
        (0, 1, counts.ttft_rounds_1),
        (50, 1, counts.ttft_rounds_1_delay),
        (0, 32, counts.ttft_rounds_32),
        (50, 32, counts.ttft_rounds_32_delay),
    ):
        log(f"TTFT: upstream first token at {delay} ms, {conc} concurrent, {rounds} rounds")
        ttft.append(await ttft_phase(ports, delay, conc, rounds, counts.phase_limit, tally))
    paced = []
    for conc, rounds in ((1, counts.paced_rounds_1), (32, counts.paced_rounds_32)):
        log(
            f"pacing: {PACED_KIND} answer back to back and {gap_ms} ms a token, {conc} concurrent, {rounds} rounds"
        )
        paced.append(await paced_phase(ports, gap_ms, conc, rounds, counts.phase_limit, tally))
    log(f"streams: 200 text events and a 100-fragment tool call, {counts.stream_rounds} rounds")
    streams = await stream_phase(ports, counts.stream_rounds, counts.phase_limit, tally)
    log(f"request size: small vs Claude-Code-sized, {counts.big_rounds} rounds")
    big = await big_phase(ports, counts.big_rounds, counts.phase_limit, tally)
    log(f"routing: flags alone vs {ROUTES} routes in a file, {counts.routes_rounds} rounds")
    routes = await routes_phase(ports, counts.routes_rounds, counts.phase_limit, tally)
    routes["decide_us"] = decide_cost_us(ports.routes_file)
    log(f"throughput: 64 clients, {counts.throughput_seconds} s an arm")
    throughput = await throughput_phase(
        ports, pids, counts.throughput_warmup, counts.throughput_seconds, tally
    )
    memory_peak = {who: memory_mb(pids[who]) for who in ("proxy", "relay")}
    return {
        "ttft": ttft,
        "paced": paced,
        "streams": streams,
        "request_size": big,
        "routing": routes,
        "throughput": throughput,
        "memory_mb": {
            who: {"idle": memory_idle[who]["VmRSS"], "peak": memory_peak[who]["VmHWM"]} for who in memory_idle
        },
    }


def run(counts: Counts, mode: str, log_level: str, gap_ms: int) -> dict[str, Any]:
    """``log_level``: "default" (the proxy's own, info), "warning", or "both" (a second proxy at warning,
    its arms ``path@warning`` beside)."""
    children = Children()
    tally = Tally()
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    level = "warning" if log_level == "warning" else None  # None: no flag, the proxy's default
    try:
        scratch = Path(tempfile.mkdtemp(prefix="rawproxy-bench-"))
        atexit.register(shutil.rmtree, scratch, True)
        ports = Ports(*(free_port() for _ in range(6)))
        ports = dataclasses.replace(
            ports,
            routes_file=routes_file(ports.upstream, scratch),
            warning=free_port() if log_level == "both" else 0,
        )
        life = str(counts.total_limit + 60)
        upstream = children.start(
            [
                sys.executable,
                str(BENCH / "canned_upstream.py"),
                "--port",
                str(ports.upstream),
                "--max-seconds",
                life,
            ],
            "listening",
        )
        relay = children.start(relay_argv(ports.relay, ports.upstream, counts.total_limit + 60), "listening")
        proxy_log = scratch / "proxy.log"
        proxy = children.start(proxy_argv(ports.proxy, ports.upstream, level), "listening", log=proxy_log)
        children.start(
            routes_argv(ports.routes, ports.routes_file, level), "listening", log=scratch / "routes.log"
        )
        children.start(proxy_argv(ports.flags, ports.upstream, level), "listening", log=scratch / "flags.log")
        children.start(
            proxy_argv(ports.flags2, ports.upstream, level), "listening", log=scratch / "flags2.log"
        )
        pids = {"upstream": upstream.pid, "proxy": proxy.pid, "relay": relay.pid}
        if ports.warning:
            warning = children.start(
                proxy_argv(ports.warning, ports.upstream, "warning"), "listening", log=scratch / "warning.log"
            )
            pids["proxy_warning"] = warning.pid
        time.sleep(0.3)
        memory_start = {who: memory_mb(pids[who])["VmRSS"] for who in ("proxy", "relay")}
        log(
            f"upstream :{ports.upstream}, proxy :{ports.proxy} (log level {level or 'default'}), relay :{ports.relay}"
            + (f", proxy at warning :{ports.warning}" if ports.warning else "")
        )

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            data = runner.run(measure(ports, pids, counts, gap_ms, tally, log))
        for who, mem in memory_start.items():
            data["memory_mb"][who]["start"] = mem

        log("cold start and import time")
        a2o = make_arm("a2o", ports, stream=False)
        assert a2o.request.check is not None

        def a2o_request(port: int) -> bytes:
            return a2o.request.raw.replace(
                f"Host: {HOST}:{ports.proxy}".encode(), f"Host: {HOST}:{port}".encode()
            )

        data["cold_start"] = {
            "proxy": cold_start(
                children,
                lambda p: proxy_argv(p, ports.upstream, level),
                a2o_request,
                counts.cold_starts,
                a2o.request.check,
            ),
            "relay": cold_start(
                children,
                lambda p: relay_argv(p, ports.upstream, 30),
                a2o_request,
                counts.cold_starts,
                a2o.request.check,
            ),
        }
        data["import_ms"] = {m: import_time(m) for m in ("rawproxy", "rawproxy.__main__")}
    finally:
        children.stop_all()
    logs = {"proxy": log_summary(proxy_log)}
    if ports.warning:
        logs["proxy_warning"] = log_summary(scratch / "warning.log")
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": mode,
        "counts": asdict(counts),
        "machine": machine(),
        "seconds": round(time.perf_counter() - t_start, 1),
        "proxy": {
            "log_level": level or "default (info)",
            "log_level_compared": "warning" if ports.warning else None,
            "logs": logs,
        },
        "validation": tally.summary(),
        **data,
    }


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Ctrl-C, SIGTERM and the time limit end the run at once, through ``finally``: children stopped.

    SIGINT gets a handler of its own too: asyncio.Runner's (cancel the main task) did not always wake
    uvloop's loop here, and the run went on."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(f"bench: stopped by {signal.Signals(signum).name} (time limit {seconds:.0f} s)")

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        for sig, handler in old.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="rawproxy's benchmark suite")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="reduced counts: about two minutes")
    size.add_argument(
        "--tiny", action="store_true", help="a handful of rounds a phase (under a minute): the harness works"
    )
    p.add_argument(
        "--log-level",
        choices=["default", "warning", "both"],
        default="default",
        help="the proxy's: its default (info, access log on), warning, or both side by side",
    )
    p.add_argument(
        "--gap-ms", type=int, default=GAP_MS, help=f"the paced arm: ms between two tokens (default {GAP_MS})"
    )
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where the JSON, table and chart go (default bench/results)",
    )
    p.add_argument("--no-chart", action="store_true")
    args = p.parse_args(argv)
    if args.gap_ms <= 0:
        p.error("--gap-ms must be positive")
    counts, mode = (QUICK, "quick") if args.quick else (TINY, "tiny") if args.tiny else (FULL, "full")

    from report import markdown, validation_lines, write_chart

    problems = validate.self_test()  # the check rejects what it must before it is trusted with a run
    if problems:
        raise SystemExit("bench: the response check's self-test failed:\n  " + "\n  ".join(problems))
    with bounded(counts.total_limit + 30):
        result = run(counts, mode, args.log_level, args.gap_ms)
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(result, indent=1)
    (out / f"bench-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    table = markdown(result)
    (out / "latest.md").write_text(table)
    print(table)
    if not args.no_chart:
        print(write_chart(result, out / "latest.png"))
    print(f"\nresults: {out / f'bench-{stamp}.json'} (and latest.json, latest.md)")
    failures = result["validation"]["failures"]
    if failures:
        print("\n".join(validation_lines(result)), file=sys.stderr)
        print(
            f"bench: {failures} responses failed their check: the figures above are not to be quoted",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
