"""Starting and watching the bench's child processes (the upstream, the proxies, the relay floor), and
what is read from them: their CPU time and memory, their cold start, import time and log, and the machine
they run on.

The shared constants of the suite (where it lives, the host it listens on) live here, the lowest of its
modules.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadgen import percentile

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUTES = 20  # routes in the routing phase's configuration file


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
