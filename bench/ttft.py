"""Time-to-first-token overhead of rawproxy against the direct upstream, in one run.

The fake upstream and the proxy run as separate processes (as users run them); this script is the
client. Each round sends one request straight to the fake upstream and one through the proxy, so both
arms see the same machine noise. The overhead is proxied minus direct, reported at p50/p90/p99.

    python bench/ttft.py [--rounds 500] [--upstream-ttft-ms 0]

Results go to bench/results/ttft-<time>.json; a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

from rawproxy.demo import post_stream

ROOT = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], banner: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if banner not in line:
        proc.kill()
        raise SystemExit(f"could not start {args[:1]}: {line!r}")
    return proc


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(rounds: int, upstream: str, proxy: str) -> dict[str, list[float]]:
    direct_body = orjson.dumps(
        {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    proxied_body = orjson.dumps(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    headers = [("anthropic-version", "2023-06-01")]
    direct, proxied = [], []
    for i in range(rounds + rounds // 10):  # the first tenth warms up both arms and is dropped
        d = (await post_stream(upstream + "/chat/completions", direct_body, []))[0]
        p = (await post_stream(proxy + "/v1/messages", proxied_body, headers))[0]
        if i >= rounds // 10:
            direct.append(d * 1000)
            proxied.append(p * 1000)
    return {"direct_ms": direct, "proxied_ms": proxied}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--upstream-ttft-ms", type=float, default=0.0)
    args = parser.parse_args()
    fake_port, proxy_port = free_port(), free_port()
    fake = start(
        ["fake-upstream", "--port", str(fake_port), "--ttft-ms", str(args.upstream_ttft_ms)], "listening"
    )
    proxy = start(
        [
            "--port",
            str(proxy_port),
            "--openai-upstream",
            f"http://127.0.0.1:{fake_port}/v1",
            "--openai-key",
            "bench",
            "--log-level",
            "warning",
        ],
        "listening",
    )
    try:
        data = asyncio.run(
            measure(args.rounds, f"http://127.0.0.1:{fake_port}/v1", f"http://127.0.0.1:{proxy_port}")
        )
    finally:
        for proc in (proxy, fake):
            proc.terminate()
            proc.wait(5)
    overhead = [p - d for d, p in zip(data["direct_ms"], data["proxied_ms"], strict=True)]
    summary = {
        name: {f"p{int(q * 100)}": round(pct(values, q), 3) for q in (0.5, 0.9, 0.99)}
        for name, values in (
            ("direct", data["direct_ms"]),
            ("proxied", data["proxied_ms"]),
            ("overhead", overhead),
        )
    }
    result = {
        "rounds": args.rounds,
        "upstream_ttft_ms": args.upstream_ttft_ms,
        "cpus": os.cpu_count(),
        "summary_ms": summary,
    }
    out = ROOT / "results" / f"ttft-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**result, "raw_ms": data}, indent=1))
    print("| arm | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|")
    for name, row in summary.items():
        print(f"| {name} | {row['p50']} | {row['p90']} | {row['p99']} |")
    print(f"\n{args.rounds} interleaved rounds, upstream TTFT {args.upstream_ttft_ms} ms; raw data in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
