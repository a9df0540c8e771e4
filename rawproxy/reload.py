"""Hot reload of the ``--config`` file: on SIGHUP, and when the file changes.

The new configuration is built the way the first one was (the same flags and environment over the new
file) and checked whole before anything changes: an invalid file, or one that cannot route, is logged
with what is wrong and the old configuration goes on serving. A good one serves every request that
arrives from then on; requests in flight keep the upstreams they were routed to, so a stream that
started on the old configuration finishes on it.

The file is polled (its size, mtime and inode, every ``reload_interval`` seconds) rather than watched
with inotify: one ``stat`` a second costs nothing and needs no dependency. Settings the running server
cannot change (the listening address, size limits, the upstream client's timeouts) are logged as
needing a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable

from .config import Config
from .errors import ConfigError
from .proxy import App

__all__ = ["Reloader"]

log = logging.getLogger("rawproxy")

# Read once, when the server starts: a change needs a restart.
RESTART_ONLY = (
    "host",
    "port",
    "max_head_bytes",
    "max_body_bytes",
    "idle_timeout",
    "timeout",
    "connect_timeout",
    "ping_interval",
    "grace_seconds",
    "log_level",
)


class Reloader:
    """Keeps ``app`` on the newest valid configuration that ``build`` returns."""

    def __init__(self, app: App, build: Callable[[], Config]) -> None:
        self.app = app
        self.build = build
        self.reloads = 0  # configurations taken, after the first
        self.rejected = 0  # new files refused
        self._seen = self._stamp()
        self._task: asyncio.Task[None] | None = None
        self._signal = False

    @property
    def path(self) -> str | None:
        return self.app.config.config_file

    def reload(self, why: str) -> bool:
        """Build, check and take a new configuration; False (and a log line) when it is refused."""
        old = self.app.config
        try:
            config = self.build()
            self.app.use(config)
        except (ConfigError, ValueError) as exc:
            self.rejected += 1
            log.error("configuration not reloaded (%s), the old one goes on serving: %s", why, exc)
            return False
        self.reloads += 1
        changed = [name for name in RESTART_ONLY if getattr(config, name) != getattr(old, name)]
        if changed:
            log.warning("changed settings that take effect on restart only: %s", ", ".join(changed))
        log.info(
            "configuration reloaded (%s): %d upstreams, %d routes",
            why,
            len(self.app.upstreams),
            len(config.route_table),
        )
        return True

    def start(self) -> None:
        """Reload on SIGHUP, and poll the file when there is one."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
            self._signal = True
        if self.path is not None:
            self._task = loop.create_task(self._watch())

    def stop(self) -> None:
        if self._signal:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _stamp(self) -> tuple[int, int, int] | None:
        path = self.path
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.app.config.reload_interval)
            stamp = self._stamp()
            if stamp is not None and stamp != self._seen:  # a deleted file is not a new configuration
                self._seen = stamp
                self.reload(f"{self.path} changed")
