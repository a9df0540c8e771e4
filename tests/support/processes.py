"""Real ``python -m rawproxy`` processes for the tests that need more than one proxy (loops across
proxies, port ownership): started with a clean environment, waited for by their ready line, always
stopped."""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["READY", "clean_env", "free_port", "rawproxy", "run_rawproxy"]

READY = re.compile(r"listening on http://\S+:(\d+)")
START_TIMEOUT = 20.0


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (for a proxy that must know another's port in advance)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The caller's environment less anything of rawproxy's or a provider's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))}


def _argv(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "rawproxy", "--host", "127.0.0.1", "--log-level", "info", *args]


@contextmanager
def rawproxy(tmp_path: Path, name: str, *args: str) -> Iterator[Path]:
    """``python -m rawproxy`` with ``args`` until the block ends; yields the file its stderr (the log)
    goes to."""
    log = tmp_path / f"{name}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            _argv(args), stdout=subprocess.PIPE, stderr=err, text=True, env=clean_env(), cwd=tmp_path
        )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(START_TIMEOUT), f"{name} printed no ready line:\n{log.read_text()}"
        line = proc.stdout.readline()
        assert READY.search(line), f"{name} did not start: {line!r}\n{log.read_text()}"
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run_rawproxy(
    tmp_path: Path, *args: str, timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``python -m rawproxy`` with ``args`` that is expected to end by itself (a refusal to start)."""
    return subprocess.run(
        _argv(args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=timeout,
    )
