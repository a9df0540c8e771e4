"""The measured phases of the benchmark: the arms (what each sends, to which port, and how its answer
is checked), the smoke test, the latency, streaming, pacing, request-size, routing and throughput phases,
and the statistics that summarise them.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import canned_upstream
import payloads
import validate
from loadgen import FIRST_TOKEN, Arm, Request, RoundsResult, closed_loop, percentile, run_rounds, verdict
from processes import HOST, ROUTES, cpu_seconds
from validate import Tally

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
PACED_KIND = "short"  # its answer: 5 text events, so 4 gaps


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
    ports: Ports, pids: dict[str, int], warmup: float, seconds: float, tally: Tally
) -> dict[str, Any]:
    """64 clients back to back on each arm, non-streamed then streamed, for ``seconds`` after ``warmup``:
    requests a second, latency, and the CPU each process spent a request."""
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
                    warmup=warmup,
                    duration=seconds,
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
    return {"concurrency": 64, "seconds": seconds, **out}
