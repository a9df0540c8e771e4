"""Profile the proxy under one bench load: where its CPU goes, function by function.

Starts the bench upstream and the proxy (under ``cProfile``, or sampled by ``py-spy`` when it is installed
and ``--py-spy`` is given), drives one path with the bench's load generator for a few seconds, stops the
proxy gracefully so the profile is written, and prints the functions that cost most. cProfile's own
overhead inflates small, frequently called functions (roughly doubling them); py-spy samples without
slowing the process, but sees only Python frames. The proxy runs at its default log level (info, its
access log to a file), as in ``run.py``, and every response is checked (``validate.py``).

    python bench/profile_proxy.py                      # A2O, streamed, 32 clients, 4 s, cProfile
    python bench/profile_proxy.py --path o2a --unary   # O2A, non-streamed
    python bench/profile_proxy.py --py-spy             # sampled instead (pip install py-spy)
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import payloads
import validate
from loadgen import FIRST_TOKEN, Arm, Request, closed_loop, loop_factory
from phases import PATHS
from processes import HOST, Children, free_port, proxy_argv

BENCH = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="profile the proxy under one bench load")
    p.add_argument("--path", choices=["a2o", "o2a", "pass-anthropic", "pass-openai"], default="a2o")
    p.add_argument("--unary", action="store_true", help="non-streamed requests (default: streamed)")
    p.add_argument("-c", "--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--py-spy", action="store_true", help="sample with py-spy instead of cProfile")
    args = p.parse_args(argv)
    stream = not args.unary
    dialect, model, _ = PATHS[args.path]
    out = Path(tempfile.mkdtemp(prefix="rawproxy-profile-"))
    children = Children()
    try:
        upstream_port, proxy_port = free_port(), free_port()
        children.start(
            [
                sys.executable,
                str(BENCH / "canned_upstream.py"),
                "--port",
                str(upstream_port),
                "--max-seconds",
                "600",
            ],
            "listening",
        )
        argv_proxy = proxy_argv(proxy_port, upstream_port)
        if not args.py_spy:
            argv_proxy[1:1] = ["-m", "cProfile", "-o", str(out / "proxy.prof")]
        proxy = children.start(argv_proxy, "listening", log=out / "proxy.log")
        sampler = None
        if args.py_spy:
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            sampler = subprocess.Popen(
                [
                    *(spy, "record", "-p", str(proxy.pid), "-r", "1000", "--nonblocking", "-f", "raw"),
                    *("-o", str(out / "proxy.txt"), "-d", str(int(args.seconds + 2))),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
        marker = "bench:short:0"
        if dialect == "anthropic":
            body = payloads.anthropic_body(model, marker, stream=stream)
            target, headers = "/v1/messages", payloads.ANTHROPIC_HEADERS
        else:
            body = payloads.openai_body(model, marker, stream=stream)
            target, headers = "/v1/chat/completions", []
        pattern = FIRST_TOKEN[dialect, "text"] if stream else None
        check = validate.expect(dialect, "short", stream).check
        req = Request.post(HOST, proxy_port, target, body, headers, pattern, check)
        arm = Arm(args.path, HOST, proxy_port, req)

        async def load() -> int:
            res = await closed_loop(arm, concurrency=args.concurrency, warmup=0.5, duration=args.seconds)
            if res.tally.failures:
                first = res.tally.first[arm.name]
                print(f"{res.tally.failures} of {res.tally.checked} responses FAILED their check: {first}")
            return res.completed

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            done = runner.run(load())
        arm.close()
        print(f"{args.path} {'streamed' if stream else 'non-streamed'}: {done} requests in {args.seconds} s")
        if sampler is not None:
            sampler.wait(30)
            _print_samples(out / "proxy.txt", args.top)
            return 0
        proxy.send_signal(signal.SIGTERM)  # a graceful stop: cProfile writes its file on the way out
        proxy.wait(10)
        stats = pstats.Stats(str(out / "proxy.prof"))
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(r"rawproxy|h11", args.top)
        return 0
    finally:
        children.stop_all()


def _print_samples(path: Path, top: int) -> None:
    """py-spy's raw (collapsed) stacks, as self and inclusive shares per function."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.rsplit(":", 1)[0] for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    for title, table in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title} ({total} samples)")
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{n / total * 100:5.1f}%  {frame}")


if __name__ == "__main__":
    sys.exit(main())
