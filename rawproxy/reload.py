"""Hot reload of the ``--config`` file: on SIGHUP, and when the file changes.

The new configuration is built the way the first one was (the same flags and environment over the new
file) and checked whole before anything changes: an invalid file, or one that cannot route, is logged
with what is wrong and the old configuration goes on serving. A good one serves every request that
arrives from then on; requests in flight keep the upstreams they were routed to, so a stream that
started on the old configuration finishes on it.

The file is polled (its size, mtime and inode, every ``reload_interval`` seconds) rather than watched
with inotify: one ``stat`` a second costs nothing and needs no dependency.

Which settings a reload applies is the SETTINGS table's to say (config/settings.py, ``live``): the rest
(the listening address, the upstream client's timeouts, the worker count ...) are read once at start, and
a change to any of them is logged by name as needing a restart. A changed ``log_level`` or
``log_format`` is applied to the logging ``python -m rawproxy`` set up (config/logs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Protocol

from .config import Config
from .config.logs import apply_logging
from .config.settings import restart_only
from .errors import ConfigError
from .routing import Upstream

__all__ = ["RESTART_ONLY", "Reloadable", "Reloader"]

log = logging.getLogger("rawproxy")

# Read once, when the server starts: a change needs a restart (the table's rows with live=False).
RESTART_ONLY = restart_only()


class Reloadable(Protocol):
    """What the reloader drives (the exchange's ``App``): typed here, so reload needs no import of it."""

    @property
    def config(self) -> Config: ...

    @property
    def upstreams(self) -> Mapping[str, Upstream]: ...

    def use(self, config: Config) -> None:
        """Serve new requests with ``config``; raises ValueError when it cannot route."""


class Reloader:
    """Keeps ``app`` on the newest valid configuration that ``build`` returns."""

    def __init__(self, app: Reloadable, build: Callable[[], Config]) -> None:
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
        if (config.log_level, config.log_format) != (old.log_level, old.log_format):
            apply_logging(config.log_level, config.log_format)
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
