"""``--workers N``: N proxy processes on one port (``SO_REUSEPORT``: the kernel spreads connections over
them), supervised by this one.

The supervisor runs no event loop and serves nothing. It starts each worker as ``python -m rawproxy`` with
the same arguments (so each reads the same flags, environment and ``--config`` file) and
``RAWPROXY_REUSE_PORT=1``, prints one ready line once every worker listens, starts a worker again when one
dies (at most once a second, so a worker that cannot start does not spin), passes SIGHUP on (each worker
reloads its configuration), and on SIGTERM or SIGINT passes the signal on and waits for the workers'
graceful stop; a second signal kills them. The proxy keeps no state between requests, so nothing has to
be shared.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from . import __version__
from .carrier import GROUP_KEY_VARIABLE
from .config.logs import JSONFormatter
from .exchange.loops import ID_VARIABLE

__all__ = ["banner", "run", "say"]

READY = re.compile(r"listening on http://\S+:(\d+)")
RESTART_DELAY = 1.0


def say(
    message: str, log_format: str = "text", level: int = logging.INFO, fields: Mapping[str, object] = {}
) -> str:
    """A line the program writes itself (not through logging): as it is, or with ``--log-format json`` one
    JSON object shaped like the log's lines (time, level, logger, message, ``fields``), so that every line
    on stdout and stderr parses (issue 18)."""
    if log_format != "json":
        return message
    record = logging.makeLogRecord(
        {
            "name": "rawproxy",
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": message,
            "access": {"message": message, **fields},  # JSONFormatter writes these fields as they are
        }
    )
    formatter = JSONFormatter()
    formatter.converter = time.gmtime
    return formatter.format(record)


def banner(host: str, port: int, log_format: str = "text", workers: int | None = None) -> str:
    """The ready line: ``rawproxy <version> listening on <url>`` (tests and the supervisor wait for it)."""
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    text = f"rawproxy {__version__} listening on {url}" + (f" ({workers} workers)" if workers else "")
    fields: dict[str, object] = {"event": "listening", "url": url, "version": __version__}
    if workers:
        fields["workers"] = workers
    return say(text, log_format, logging.INFO, fields)


def _without(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` less ``flag`` and its value, in either spelling (``--flag V``, ``--flag=V``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _with_port(argv: list[str], port: int) -> list[str]:
    return [*_without(argv, "--port"), "--port", str(port)]


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``.

    The workers bind with ``SO_REUSEPORT``, and Linux lets any socket of the same user that sets it too
    join the group (socket(7)): a second supervisor's workers would silently share the port with the
    first's. This probe binds as a lone rawproxy does, without ``SO_REUSEPORT``, which fails while any
    socket listens there, with the option or without it. Bound only, never listening: it takes no
    connection, and is closed before the workers start."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # a host that does not resolve: the workers say so
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(
                socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
            )  # as asyncio does: TIME_WAIT is no owner
            if family == socket.AF_INET6 and address[0] == "::" and socket.has_dualstack_ipv6():
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" takes IPv4 too
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


class _Supervisor:
    def __init__(
        self, argv: list[str], count: int, host: str, port: int, grace: float, log_format: str = "text"
    ) -> None:
        self.log_format = log_format  # the supervisor's own lines too are JSON with --log-format json
        self.argv = argv
        self.count = count
        self.host = host
        self.port = port or _free_port(host)  # one port for all: a 0 would give each worker its own
        self.grace = grace
        self.workers: list[subprocess.Popen[str]] = []
        self.group_key = os.environ.get(GROUP_KEY_VARIABLE) or secrets.token_urlsafe(32)
        self.proxy_id = secrets.token_hex(6)  # one Via mark for the group: a loop through any worker is seen
        self.stopping = False
        self.signals = 0
        self.told: dict[int, int] = {}  # pid -> how many stop signals it was sent

    def spawn(self) -> subprocess.Popen[str]:
        # One sealing key for the whole group unless configured (exchange/app.py carrier_key): an envelope
        # a client got from one worker opens in any other.
        env = {
            **os.environ,
            "RAWPROXY_REUSE_PORT": "1",
            GROUP_KEY_VARIABLE: self.group_key,
            ID_VARIABLE: self.proxy_id,  # exchange/loops.py (NET-03)
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "rawproxy", *_with_port(self.argv, self.port)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the worker's ready line; its logs go to our stderr
        if READY.search(line) is None:
            proc.wait()
            raise RuntimeError(f"a worker did not start (exit {proc.returncode})")
        return proc

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            for proc in self.workers:
                proc.send_signal(signal.SIGHUP)
            return
        self.signals += 1
        self.stopping = True
        self._tell_all()

    def _tell_all(self) -> None:
        """Each running worker gets as many stop signals as we got (a second one stops it at once)."""
        for proc in self.workers:
            while proc.poll() is None and self.told.get(proc.pid, 0) < self.signals:
                self.told[proc.pid] = self.told.get(proc.pid, 0) + 1
                proc.send_signal(signal.SIGKILL if self.told[proc.pid] > 1 else signal.SIGTERM)

    def run(self) -> int:
        if _port_taken(self.host, self.port):  # before any worker joins a reuse-port group that is not ours
            message = (
                f"rawproxy: error: port {self.port} on {self.host} is already in use (another rawproxy, "
                "or another program); stop it or choose another --port"
            )
            print(say(message, self.log_format, logging.ERROR), file=sys.stderr)
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.on_signal)
        try:
            self.workers = [self.spawn() for _ in range(self.count)]
        except RuntimeError as exc:
            print(say(f"rawproxy: error: {exc}", self.log_format, logging.ERROR), file=sys.stderr)
            self.on_signal(signal.SIGTERM, None)
            return 1
        print(banner(self.host, self.port, self.log_format, self.count), flush=True)
        last_restart = 0.0
        while not self.stopping:
            time.sleep(0.2)
            for i, proc in enumerate(self.workers):
                if proc.poll() is not None and not self.stopping:
                    wait = RESTART_DELAY - (time.monotonic() - last_restart)
                    if wait > 0:
                        time.sleep(wait)
                    last_restart = time.monotonic()
                    message = f"rawproxy: worker {proc.pid} exited ({proc.returncode}); starting another"
                    print(say(message, self.log_format, logging.WARNING), file=sys.stderr, flush=True)
                    try:
                        self.workers[i] = self.spawn()
                    except RuntimeError as exc:
                        print(say(f"rawproxy: error: {exc}", self.log_format, logging.ERROR), file=sys.stderr)
        self._tell_all()  # also a worker started while the signal came (it was not in the list yet)
        deadline = time.monotonic() + self.grace + 5
        for proc in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 130 if self.signals > 1 else 0


def run(argv: Sequence[str], count: int, host: str, port: int, grace: float, log_format: str = "text") -> int:
    return _Supervisor(_without(argv, "--workers"), count, host, port, grace, log_format).run()
