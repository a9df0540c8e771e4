"""The composition root: builds the upstream client, the app, the server and the reloader, and runs them
until told to stop. The one place that knows how the pieces fit; each piece knows only what it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable

from .client import make_client
from .config import Config
from .config.startup import upstream_lines, url_warnings
from .exchange import App
from .server import Server

__all__ = ["install_signal_handlers", "serve"]

log = logging.getLogger("rawproxy")


async def serve(
    config: Config,
    *,
    ready: Callable[[str, int], None] | None = None,
    stop: asyncio.Event | None = None,
    rebuild: Callable[[], Config] | None = None,
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled); SIGINT/SIGTERM set it when run as main.
    With ``rebuild`` (how the configuration was made: the same flags over the file), the configuration
    is reloaded on SIGHUP and when its ``--config`` file changes (reload.py)."""
    client = make_client(connect_timeout=config.connect_timeout, read_timeout=config.timeout)
    app = App(config, client)
    server = Server(app)
    try:
        host, port = await server.start()
    except OSError as exc:  # the port is taken: say so plainly (__main__ prints it and exits 1)
        if exc.errno != errno.EADDRINUSE:
            raise
        taken = (
            f"port {config.port} on {config.host} is already in use (another rawproxy, or another program)"
        )
        raise OSError(exc.errno, f"{taken}; stop it or choose another --port") from None
    for line in upstream_lines(config):  # which upstreams, at which URL, set where (issue 18)
        log.info("%s", line)
    for warning in url_warnings(config):
        log.warning("%s", warning)
    if not config.api_keys and not _loopback(config.host):
        log.warning(
            "listening on %s without --api-key: anyone who can reach this address can use the upstream keys",
            config.host,
        )
    reloader = None
    if rebuild is not None:
        from .reload import Reloader

        reloader = Reloader(app, rebuild)
        reloader.start()
    if ready is not None:
        ready(host, port)
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        if reloader is not None:
            reloader.stop()
        await server.close(config.grace_seconds)
        app.close()
        await client.aclose()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well be reachable from elsewhere


def install_signal_handlers(stop: asyncio.Event) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: exit at once."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            sys.exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
