"""A/B: the proxy at another git revision against the working tree, on one upstream, in the same rounds.

A change that saves 0.2 ms at the 32-stream p50 is invisible across two bench runs on a machine whose
speed drifts by a quarter within an hour; two proxies measured in the same interleaved rounds see it.
``--base`` is checked out in a temporary git worktree and run from there (proxy A); the working tree is
proxy B. Two proxies of the same code differ by up to about 0.2 ms at the 32-stream p50 (try
``--base HEAD`` on a clean tree): smaller differences are noise.

As in ``run.py``, both proxies run at their default log level (info: the access log on, written to a
file) unless ``--log-level warning``, and every response is checked (``validate.py``): a run with any
failure says so and exits with status 1.

    python bench/ab.py --base HEAD~1 [--paths a2o,o2a] [--rounds 250] [--log-level warning]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from loadgen import Arm, loop_factory, percentile, run_rounds
from phases import PATHS, Ports, make_arm
from processes import BENCH, ROOT, Children, free_port, proxy_argv
from validate import Tally

# Run the proxy package from another tree: the bench starts its children in bench/, where the editable
# install would otherwise win.
_FROM_TREE = (
    "import runpy, sys; sys.path.insert(0, {tree!r}); import rawproxy; "
    "assert rawproxy.__file__.startswith({tree!r}), rawproxy.__file__; "
    "sys.argv[0] = 'rawproxy'; runpy.run_module('rawproxy', run_name='__main__', alter_sys=True)"
)


def _arm(name: str, port: int, delay_ms: int) -> Arm:
    """``phases.make_arm``'s streamed short request (and the check of its answer), to the proxy at ``port``."""
    arm = make_arm(name, Ports(upstream=0, proxy=port, relay=0), delay_ms=delay_ms)
    arm.name = f"{name}@{port}"
    return arm


async def compare(paths: list[str], upstream: int, a: int, b: int, rounds: int, tally: Tally) -> None:
    print("| path | streams | upstream first token | percentile | A (base) | B (working tree) | B - A |")
    print("|---|---|---|---|---|---|---|")
    for name in paths:
        direct_name = PATHS[name][2]
        for concurrency, count, delay in ((32, rounds, 0), (1, 500, 0), (1, 100, 50)):
            direct = make_arm(direct_name, Ports(upstream=upstream, proxy=0, relay=0), delay_ms=delay)
            arms = [_arm(name, a, delay), _arm(name, b, delay), direct]
            try:
                res = await run_rounds(
                    arms, concurrency=concurrency, rounds=count, time_limit=120, tally=tally
                )
            finally:
                for arm in arms:
                    arm.close()
            for q in (0.5, 0.9, 0.99):
                ttft = {k: percentile([s.ttft for s in v], q) for k, v in res.samples.items()}
                base = ttft[direct.name]
                over_a, over_b = ((ttft[arm.name] - base) * 1000 for arm in arms[:2])
                print(
                    f"| {name} | {concurrency} | {delay} ms | p{round(q * 100)} | {over_a:.2f} | {over_b:.2f} "
                    f"| {over_b - over_a:+.2f} |",
                    flush=True,
                )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="TTFT overhead of the proxy at --base against the working tree")
    p.add_argument("--base", required=True, help="a git revision (HEAD, HEAD~1, a commit...)")
    p.add_argument(
        "--paths", default="a2o,o2a", help="comma-separated: a2o, o2a, pass-anthropic, pass-openai"
    )
    p.add_argument("--rounds", type=int, default=250, help="rounds at 32 streams (default 250)")
    p.add_argument(
        "--log-level",
        choices=["default", "warning"],
        default="default",
        help="both proxies': their default (info, access log on) or warning",
    )
    args = p.parse_args(argv)
    level = "warning" if args.log_level == "warning" else None
    paths = args.paths.split(",")
    for name in paths:
        if name not in ("a2o", "o2a", "pass-anthropic", "pass-openai"):
            p.error(f"unknown path {name!r}")
    children = Children()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="rawproxy-ab-") as tmp:
        tree = str(Path(tmp) / "base")
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", tree, args.base], check=True
        )
        try:
            upstream, port_a, port_b = free_port(), free_port(), free_port()
            children.start(
                [
                    sys.executable,
                    str(BENCH / "canned_upstream.py"),
                    "--port",
                    str(upstream),
                    "--max-seconds",
                    "1800",
                ],
                "listening",
            )
            argv_a = proxy_argv(port_a, upstream, level)
            argv_a[1:3] = ["-c", _FROM_TREE.format(tree=tree)]
            children.start(argv_a, "listening", log=Path(tmp) / "a.log")
            children.start(proxy_argv(port_b, upstream, level), "listening", log=Path(tmp) / "b.log")
            print(
                f"A: {args.base} ({tree}), B: the working tree, log level {level or 'default (info)'}; "
                "TTFT overhead against the direct upstream, ms\n"
            )
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(compare(paths, upstream, port_a, port_b, args.rounds, tally))
        finally:
            children.stop_all()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree], check=False)
    if tally.failures:
        print(f"\n{tally.failures} of {tally.checked} responses FAILED their check:", file=sys.stderr)
        for arm, n in sorted(tally.failed.items()):
            print(f"  {arm}: {n}, the first: {tally.first[arm]}", file=sys.stderr)
        return 1
    print(f"\nall {tally.checked} responses checked: pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
