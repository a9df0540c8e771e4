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

Results: bench/results/bench-<time>.json and latest.json, latest.md (the table, also printed) and
latest.png (the TTFT-overhead chart; needs matplotlib, skipped with a note without it).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import dataclasses
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import canned_upstream
import payloads
import validate
from loadgen import (
    FIRST_TOKEN,
    Arm,
    Request,
    RoundsResult,
    Tally,
    closed_loop,
    loop_factory,
    percentile,
    run_rounds,
    verdict,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# path -> (client dialect, model the client asks for, direct arm it is compared with)
PATHS: dict[str, tuple[str, str, str]] = {
    "a2o": ("anthropic", "gpt-bench", "direct-openai"),
    "o2a": ("openai", "claude-sonnet-4-6", "direct-anthropic"),
    "pass-anthropic": ("anthropic", "claude-sonnet-4-6", "direct-anthropic"),
    "pass-openai": ("openai", "gpt-bench", "direct-openai"),
    "relay-openai": ("openai", "gpt-bench", "direct-openai"),
    "relay-anthropic": ("anthropic", "claude-sonnet-4-6", "direct-anthropic"),
}
PROXY_PATHS = ("a2o", "o2a", "pass-anthropic", "pass-openai")
STREAM_KINDS = ("stream200", "text100", "tool100")
DIRECT = {"direct-openai": ("openai", "gpt-bench"), "direct-anthropic": ("anthropic", "claude-sonnet-4-6")}
GAP_MS = 20  # the paced arm: ms between two tokens, as a model generating about 50 tokens/s
PACED_KIND = "short"  # its answer: 5 text events, so 4 gaps


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
ROUTES = 20


# ------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the bench dies, however it dies (Linux only; no-op elsewhere)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_env() -> dict[str, str]:
    """The environment without anything that would change the proxy's behaviour (keys, proxies, config)."""
    drop = ("RAWPROXY_", "OPENAI_", "ANTHROPIC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


class Children:
    """The processes the bench started; all stopped on exit, error or Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: Sequence[str], log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv``; its stderr (the proxy's log) to the file ``log``, else nowhere."""
        with open(log, "ab") if log is not None else contextlib.nullcontext(subprocess.DEVNULL) as err:
            proc = subprocess.Popen(
                list(argv),
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=BENCH,  # no .env there
                env=child_env(),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.procs.append(proc)
        return proc

    def start(
        self, argv: Sequence[str], banner: str, timeout: float = 20.0, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        proc = self.spawn(argv, log)
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if banner.encode() in line or not line:
                break
        if banner.encode() not in line:
            self.stop(proc)
            raise SystemExit(f"bench: could not start {' '.join(argv)}: {line!r}")
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def proxy_argv(port: int, upstream_port: int, log_level: str | None = None) -> list[str]:
    """The proxy as users run it; ``log_level`` None leaves its default (info: the access log on)."""
    return [
        sys.executable,
        "-m",
        "rawproxy",
        "--port",
        str(port),
        "--openai-upstream",
        f"http://{HOST}:{upstream_port}/v1",
        "--openai-key",
        "bench",
        "--anthropic-upstream",
        f"http://{HOST}:{upstream_port}",
        "--anthropic-key",
        "bench",
        *(("--log-level", log_level) if log_level else ()),
    ]


def routes_file(upstream_port: int, directory: Path) -> Path:
    """A configuration of the same two upstreams with 20 glob routes, the bench's models matching only
    the last ones: the routing work of a large file, with the same upstream calls as the flags."""
    lines = [
        "[[upstreams]]",
        'name = "openai"',
        'protocol = "openai"',
        f'base_url = "http://{HOST}:{upstream_port}/v1"',
        'api_key = "bench"',
        "[[upstreams]]",
        'name = "anthropic"',
        'protocol = "anthropic"',
        f'base_url = "http://{HOST}:{upstream_port}"',
        'api_key = "bench"',
    ]
    for i in range(ROUTES - 2):
        upstream = "openai" if i % 2 else "anthropic"
        lines += [
            "[[routes]]",
            f'match = "no-such-model-{i}-*"',
            f'upstream = "{upstream}"',
            f'model = "m{i}"',
        ]
    lines += ["[[routes]]", 'match = "gpt-*"', 'upstream = "openai"']
    lines += ["[[routes]]", 'match = "claude-*-4-6"', 'upstream = "anthropic"']
    path = directory / "bench-routes.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def decide_cost_us(config_path: Path, calls: int = 20000) -> dict[str, float]:
    """The routing decision alone, in this process: µs per ``Router.decide`` for each bench model, with
    the 20-route file and with flags alone (the work the TTFT comparison cannot resolve below its noise)."""
    from rawproxy.config import Config
    from rawproxy.routing import RequestFacts

    out: dict[str, float] = {}
    for label, argv in (("routes", ["--config", str(config_path)]), ("flags", proxy_argv(0, 1)[3:])):
        router = Config.from_env(argv, environ={}, dotenv=None).router()
        for model in ("gpt-bench", "claude-sonnet-4-6"):
            data = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            began = time.perf_counter()
            for _ in range(calls):
                router.decide(model, RequestFacts(data, "anthropic"))
            out[f"{label} {model}"] = round((time.perf_counter() - began) / calls * 1e6, 3)
    return out


def routes_argv(port: int, config: Path, log_level: str | None = None) -> list[str]:
    # python -m rawproxy --port N, then the file in place of the upstream flags
    return [
        *proxy_argv(port, 0)[:5],
        "--config",
        str(config),
        *(("--log-level", log_level) if log_level else ()),
    ]


def relay_argv(port: int, upstream_port: int, max_seconds: float) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "relay_floor.py"),
        "--port",
        str(port),
        "--upstream-port",
        str(upstream_port),
        "--max-seconds",
        str(max_seconds),
    ]


# ----------------------------------------------------------------------------------------- arms


@dataclass(frozen=True, slots=True)
class Ports:
    upstream: int
    proxy: int
    relay: int
    routes: int = 0  # the proxy with the 20-route configuration file
    flags: int = 0  # twins started with flags, for the same comparison: the three serve that phase only
    flags2: int = 0
    routes_file: Path = Path()
    warning: int = 0  # --log-level both: the proxy at warning, for its arms ``path@warning``


def _target(name: str, ports: Ports) -> int:
    if name.startswith("direct"):
        return ports.upstream
    if name.startswith("relay"):
        return ports.relay
    if name.endswith("@routes"):
        return ports.routes
    if name.endswith("@flags"):
        return ports.flags
    if name.endswith("@flags2"):
        return ports.flags2
    if name.endswith("@warning"):
        return ports.warning
    return ports.proxy


def _spec(name: str) -> tuple[str, str]:
    """(client dialect, model) of an arm; ``path@routes``, ``@flags``, ``@flags2`` and ``@warning`` are
    ``path``'s."""
    name = name.partition("@")[0]
    if name in DIRECT:
        return DIRECT[name]
    dialect, model, _ = PATHS[name]
    return dialect, model


def make_arm(
    name: str,
    ports: Ports,
    *,
    kind: str = "short",
    delay_ms: int = 0,
    gap_ms: int = 0,
    stream: bool = True,
    big: bool = False,
) -> Arm:
    """An arm's request, with the check of its response: what ``canned_upstream.answer`` says the
    upstream sends for the marker's kind, as the client's dialect carries it."""
    dialect, model = _spec(name)
    marker = f"bench:{kind}:{delay_ms}" + (f":{gap_ms}" if gap_ms else "")
    port = _target(name, ports)
    pattern = FIRST_TOKEN[dialect, "tool" if kind == "tool100" else "text"] if stream else None
    check = validate.expect(dialect, kind, stream).check
    if dialect == "anthropic":
        body = payloads.anthropic_body(model, marker, stream=stream, big=big)
        req = Request.post(HOST, port, "/v1/messages", body, payloads.ANTHROPIC_HEADERS, pattern, check)
    else:
        body = payloads.openai_body(model, marker, stream=stream, big=big)
        req = Request.post(HOST, port, "/v1/chat/completions", body, (), pattern, check)
    return Arm(name, HOST, port, req)


def all_arms(ports: Ports | None = None) -> list[str]:
    """The direct, proxied and relayed arms; with a proxy at warning beside (``--log-level both``), its
    arms too."""
    extra = [f"{p}@warning" for p in PROXY_PATHS] if ports is not None and ports.warning else []
    return [*DIRECT, *PATHS, *extra]


# ------------------------------------------------------------------------------------- summaries


def ms(values: Sequence[float]) -> list[float]:
    return [v * 1000 for v in values if not math.isnan(v)]


def quantiles(values: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q / 100), 4) for q in (50, 90, 99)}


def overhead(arm: Sequence[float], direct: Sequence[float]) -> dict[str, float]:
    """Percentile of the arm minus the same percentile of its direct arm (ms in, ms out)."""
    return {f"p{q}": round(percentile(arm, q / 100) - percentile(direct, q / 100), 4) for q in (50, 90, 99)}


def overhead_curve(arm: Sequence[float], direct: Sequence[float]) -> list[float]:
    """The overhead at every percentile 1..99, for the chart."""
    return [round(percentile(arm, q / 100) - percentile(direct, q / 100), 4) for q in range(1, 100)]


def summarise_rounds(
    res: RoundsResult, metric: Callable[[Any], float], suffix: str = "", proxy: str = ""
) -> dict[str, dict[str, Any]]:
    """Per path: n, the direct and proxied percentiles and the overhead, for one metric of the samples
    (``proxy``: the arms ``path@<proxy>`` instead of ``path``)."""
    values = {name: ms([metric(s) for s in samples]) for name, samples in res.samples.items()}
    out: dict[str, dict[str, Any]] = {}
    for path, (_, _, direct) in PATHS.items():
        name = path + (f"@{proxy}" if proxy else "") + suffix
        arm, base = values.get(name), values.get(direct + suffix)
        if arm is None or base is None:
            continue
        out[path] = {
            "n": len(arm),
            "errors": res.errors.get(name, 0),
            "direct_ms": quantiles(base),
            "arm_ms": quantiles(arm),
            "overhead_ms": overhead(arm, base),
            "curve_ms": overhead_curve(arm, base),
        }
    return out


# -------------------------------------------------------------------------------------- phases


async def smoke(ports: Ports, gap_ms: int) -> None:
    """One request of each kind on every arm, checked, before anything is measured."""
    problems = []
    kinds = [("short", False, 0), ("short", True, 0), *((k, True, 0) for k in STREAM_KINDS)]
    kinds.append((PACED_KIND, True, gap_ms))
    for name in [
        *all_arms(ports),
        *(f"{p}{twin}" for p in PROXY_PATHS for twin in ("@routes", "@flags", "@flags2")),
    ]:
        for kind, stream, gap in kinds:
            arm = make_arm(name, ports, kind=kind, stream=stream, gap_ms=gap)
            label = f"{name} {kind} stream={stream}" + (f" gap={gap}ms" if gap else "")
            try:
                s = await asyncio.wait_for(arm.ensure_clients(1)[0].call(arm.request), 10)
            except (OSError, TimeoutError) as exc:
                problems.append(f"{label}: {exc!r}")
                continue
            finally:
                arm.close()
            why = verdict(arm.request, s)
            if why is None and stream and math.isnan(s.ttft):
                why = "no first token seen"
            if why is not None:
                problems.append(f"{label}: {why}")
    if problems:
        raise SystemExit("bench: the smoke test failed:\n  " + "\n  ".join(problems))


async def ttft_phase(
    ports: Ports, delay_ms: int, concurrency: int, rounds: int, limit: float, tally: Tally
) -> dict[str, Any]:
    arms = [make_arm(n, ports, delay_ms=delay_ms) for n in all_arms(ports)]
    try:
        res = await run_rounds(arms, concurrency=concurrency, rounds=rounds, time_limit=limit, tally=tally)
    finally:
        for a in arms:
            a.close()
    extra = (
        {"paths_warning": summarise_rounds(res, lambda s: s.ttft, proxy="warning")} if ports.warning else {}
    )
    return {
        "upstream_ttft_ms": delay_ms,
        "concurrency": concurrency,
        "rounds": res.rounds,
        "seconds": round(res.seconds, 2),
        "client_cpu_us_per_request": round(res.client_cpu_s / max(1, res.requests) * 1e6, 1),
        "client_user_cpu_us_per_request": round(res.client_user_s / max(1, res.requests) * 1e6, 1),
        "paths": summarise_rounds(res, lambda s: s.ttft),
        **extra,
    }


async def routes_phase(ports: Ports, rounds: int, limit: float, tally: Tally) -> dict[str, Any]:
    """TTFT at 1 stream through three proxies that serve only this phase, interleaved: two started with
    flags alone and one with the 20-route file. Two processes of the same code and settings differ by a
    few tens of microseconds (memory layout, hash seeds), so the flags twins' difference is the noise the
    routes' difference is judged against. Per path and pair: the median of the per-round differences,
    with a 95 % bootstrap interval."""
    names = [f"{p}{suffix}" for p in PROXY_PATHS for suffix in ("@flags", "@flags2", "@routes")]
    arms = [make_arm(n, ports) for n in names]
    try:
        res = await run_rounds(arms, concurrency=1, rounds=rounds, time_limit=limit, tally=tally)
    finally:
        for a in arms:
            a.close()
    out: dict[str, Any] = {"routes": ROUTES, "rounds": res.rounds, "errors": dict(res.errors), "paths": {}}
    for path in PROXY_PATHS:
        flags, flags2, routes = (
            ms([s.ttft for s in res.samples[path + t]]) for t in ("@flags", "@flags2", "@routes")
        )
        out["paths"][path] = {
            "flags_p50_ms": round(percentile(flags, 0.5), 4),
            "flags2_p50_ms": round(percentile(flags2, 0.5), 4),
            "routes_p50_ms": round(percentile(routes, 0.5), 4),
            "routes_minus_flags_ms": paired_median(routes, flags),
            "routes_minus_flags2_ms": paired_median(routes, flags2),
            "flags2_minus_flags_ms": paired_median(flags2, flags),
        }
    return out


def paired_median(arm: Sequence[float], base: Sequence[float], resamples: int = 1000) -> dict[str, float]:
    """Median of the per-round differences (the arms ran in the same rounds) and its 95 % bootstrap
    interval, in ms."""
    diffs = sorted(a - b for a, b in zip(arm, base, strict=False))
    rng = random.Random(7)
    medians = (
        sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(resamples))
        if diffs
        else [math.nan]
    )
    return {
        "median": round(statistics.median(diffs), 4) if diffs else math.nan,
        "low": round(medians[int(0.025 * len(medians))], 4),
        "high": round(medians[min(len(medians) - 1, int(0.975 * len(medians)))], 4),
    }


async def stream_phase(ports: Ports, rounds: int, limit: float, tally: Tally) -> dict[str, Any]:
    arms = []
    for kind in STREAM_KINDS:
        for n in all_arms():
            arm = make_arm(n, ports, kind=kind)
            arm.name = f"{n}/{kind}"
            arms.append(arm)
    try:
        res = await run_rounds(arms, concurrency=1, rounds=rounds, time_limit=limit, tally=tally)
    finally:
        for a in arms:
            a.close()
    out: dict[str, Any] = {"rounds": res.rounds, "seconds": round(res.seconds, 2)}
    for kind in STREAM_KINDS:
        out[kind] = {
            "total": summarise_rounds(res, lambda s: s.total, f"/{kind}"),
            "first_token": summarise_rounds(res, lambda s: s.ttft, f"/{kind}"),
        }
    return out


async def paced_phase(
    ports: Ports, gap_ms: int, concurrency: int, rounds: int, limit: float, tally: Tally
) -> dict[str, Any]:
    """The short answer (5 text events) with the upstream writing its events back to back, and with
    ``gap_ms`` between two tokens (the first token at once), all arms of both in the same rounds. First
    token and whole stream (the last token's arrival), each against the direct arm of the same pacing:
    the whole-stream overhead of the paced arm is what the proxy adds to a token that comes after it sat
    idle for ``gap_ms``."""
    arms = []
    for pacing, gap in (("back_to_back", 0), ("paced", gap_ms)):
        for n in all_arms(ports):
            arm = make_arm(n, ports, kind=PACED_KIND, gap_ms=gap)
            arm.name = f"{n}/{pacing}"
            arms.append(arm)
    try:
        res = await run_rounds(arms, concurrency=concurrency, rounds=rounds, time_limit=limit, tally=tally)
    finally:
        for a in arms:
            a.close()
    out: dict[str, Any] = {
        "gap_ms": gap_ms,
        "tokens": len(canned_upstream.text_tokens(PACED_KIND)),
        "concurrency": concurrency,
        "rounds": res.rounds,
        "seconds": round(res.seconds, 2),
    }
    proxies = ["", *(["warning"] if ports.warning else [])]
    metrics: dict[str, Callable[[Any], float]] = {"first_token": lambda s: s.ttft, "total": lambda s: s.total}
    for pacing in ("back_to_back", "paced"):
        out[pacing] = {
            metric: {proxy or "default": summarise_rounds(res, f, f"/{pacing}", proxy) for proxy in proxies}
            for metric, f in metrics.items()
        }
    return out


async def big_phase(ports: Ports, rounds: int, limit: float, tally: Tally) -> dict[str, Any]:
    arms = []
    for size, big in (("small", False), ("big", True)):
        for n in all_arms():
            arm = make_arm(n, ports, big=big)
            arm.name = f"{n}/{size}"
            arms.append(arm)
    sizes = {
        "anthropic_big_bytes": len(payloads.anthropic_body("m", "bench:short:0", stream=True, big=True)),
        "openai_big_bytes": len(payloads.openai_body("m", "bench:short:0", stream=True, big=True)),
    }
    try:
        res = await run_rounds(arms, concurrency=1, rounds=rounds, time_limit=limit, tally=tally)
    finally:
        for a in arms:
            a.close()
    small = summarise_rounds(res, lambda s: s.ttft, "/small")
    big = summarise_rounds(res, lambda s: s.ttft, "/big")
    paths = {
        p: {
            "small_overhead_ms": small[p]["overhead_ms"],
            "big_overhead_ms": big[p]["overhead_ms"],
            "extra_p50_ms": round(big[p]["overhead_ms"]["p50"] - small[p]["overhead_ms"]["p50"], 4),
            "errors": small[p]["errors"] + big[p]["errors"],
        }
        for p in small
        if p in big
    }
    return {"rounds": res.rounds, "seconds": round(res.seconds, 2), **sizes, "paths": paths}


async def throughput_phase(
    ports: Ports, pids: dict[str, int], counts: Counts, tally: Tally
) -> dict[str, Any]:
    names = ["direct-openai", "direct-anthropic", *PROXY_PATHS, "relay-openai"]
    if ports.warning:
        names += [f"{p}@warning" for p in PROXY_PATHS]
    out: dict[str, Any] = {}
    for stream in (False, True):
        rows: dict[str, Any] = {}
        for name in names:
            arm = make_arm(name, ports, stream=stream)
            server = (
                "upstream" if name.startswith("direct") else "relay" if name.startswith("relay") else "proxy"
            )
            pid_of = {**pids, "proxy": pids["proxy_warning" if name.endswith("@warning") else "proxy"]}
            cpu: dict[str, tuple[float, float]] = {}

            def window(
                edge: str,
                server: str = server,
                cpu: dict[str, tuple[float, float]] = cpu,
                pid_of: dict[str, int] = pid_of,
            ) -> None:
                for who in {server, "upstream"}:
                    cpu[f"{who}_{edge}"] = cpu_seconds(pid_of[who])

            try:
                res = await closed_loop(
                    arm,
                    concurrency=64,
                    warmup=counts.throughput_warmup,
                    duration=counts.throughput_seconds,
                    window=window,
                    tally=tally,
                )
            finally:
                arm.close()
            n = max(1, res.completed)

            def per_request(
                who: str, cpu: dict[str, tuple[float, float]] = cpu, n: int = n
            ) -> tuple[float, float]:
                (u0, s0), (u1, s1) = cpu[f"{who}_start"], cpu[f"{who}_end"]
                return round((u1 - u0 + s1 - s0) / n * 1000, 4), round((u1 - u0) / n * 1000, 4)

            row: dict[str, Any] = {
                "requests_per_s": round(res.completed / res.seconds, 1),
                "completed": res.completed,
                "errors": res.errors,
                "latency_ms": quantiles(ms(res.latencies)),
                "client_cpu_ms_per_request": round(res.client_cpu_s / n * 1000, 4),
                "client_user_cpu_ms_per_request": round(res.client_user_s / n * 1000, 4),
            }
            row["upstream_cpu_ms_per_request"], row["upstream_user_cpu_ms_per_request"] = per_request(
                "upstream"
            )
            if server != "upstream":
                row[f"{server}_cpu_ms_per_request"], row[f"{server}_user_cpu_ms_per_request"] = per_request(
                    server
                )
            rows[name] = row
        out["streamed" if stream else "non_streamed"] = rows
    return {"concurrency": 64, "seconds": counts.throughput_seconds, **out}


def _http_roundtrip(port: int, raw: bytes, timeout: float) -> tuple[int, bytes]:
    """Send one request on a fresh blocking socket and read the whole (Content-Length) answer: (status,
    body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return 0, b""
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(head[9:12]), body


def cold_start(
    children: Children,
    argv_for: Callable[[int], list[str]],
    request_for: Callable[[int], bytes],
    runs: int,
    check: Callable[[int, bytes, bool], str | None],
) -> dict[str, Any]:
    """Process start to the port accepting, and to the first answered request (checked), ``runs``
    times."""
    ready, answered = [], []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = children.spawn(argv_for(port))
        try:
            deadline = t0 + 10
            t_ready = math.nan
            while time.perf_counter() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection((HOST, port), timeout=1):
                        t_ready = time.perf_counter()
                        break
                except OSError:
                    time.sleep(0.001)
            if math.isnan(t_ready):
                raise SystemExit(f"bench: cold start: {argv_for(port)[:3]} never listened")
            status, body = _http_roundtrip(port, request_for(port), 10)
            t_answer = time.perf_counter()
            why = check(status, body, False)
            if why is not None:
                raise SystemExit(f"bench: cold start: the first answer failed its check: {why}")
            ready.append(t_ready - t0)
            answered.append(t_answer - t0)
        finally:
            children.stop(proc)
    return {
        "runs": runs,
        "ready_s": round(percentile(ready, 0.5), 4),
        "first_answer_s": round(percentile(answered, 0.5), 4),
        "first_answer_all_s": [round(v, 4) for v in answered],
    }


def import_time(module: str, runs: int = 3) -> float:
    """``python -X importtime -c "import <module>"``: the module's cumulative time, best of ``runs``, in ms."""
    best = math.inf
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=BENCH,
            env=child_env(),
        )
        for line in proc.stderr.splitlines():
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if len(parts) == 3 and parts[2] == module:
                best = min(best, int(parts[1]) / 1000)
    return round(best, 2)


# -------------------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop

        uv: str | None = str(uvloop.__version__)
    except ImportError:
        uv = None
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "rawproxy"], capture_output=True, text=True, cwd=ROOT
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "uvloop": uv,  # the proxy, the relay, the upstream and the client all use it when installed
        "rawproxy_commit": rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else ""),
    }


# ----------------------------------------------------------------------------------------- main


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
    throughput = await throughput_phase(ports, pids, counts, tally)
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


_LOG_LINE = re.compile(rb"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): ", re.MULTILINE)


def log_summary(path: Path) -> dict[str, Any]:
    """What a proxy wrote to its log (stderr) in the run: lines by level, access lines, the first line
    at warning or above."""
    data = path.read_bytes() if path.exists() else b""
    levels: dict[str, int] = {}
    access = 0
    first_problem = None
    for m in _LOG_LINE.finditer(data):
        level = m[1].decode()
        levels[level] = levels.get(level, 0) + 1
        access += m[2] == b"rawproxy.access"
        if first_problem is None and level in ("WARNING", "ERROR", "CRITICAL"):
            first_problem = data[m.start() : data.find(b"\n", m.start())].decode(errors="replace")[:300]
    return {"bytes": len(data), "levels": levels, "access_lines": access, "first_problem": first_problem}


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
