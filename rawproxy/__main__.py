"""``python -m rawproxy``: argv/env -> Config -> serve until SIGINT/SIGTERM; SIGHUP reloads the configuration.

Also ``python -m rawproxy fake-upstream`` (a scripted fake LLM server) and ``python -m rawproxy demo``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from .config import Config, ConfigError
from .config.logs import setup_logging


def _raise_file_limit() -> None:
    """Each client connection and each upstream connection is a file descriptor; the usual soft limit of
    1024 would cap a busy proxy near 500 streams. Raise it to the hard limit (at most 65536)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
        if soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: keep the limit
        pass


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the ``fast`` extra is installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    logging.getLogger("rawproxy").debug("using uvloop")
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _run(config: Config, argv: Sequence[str]) -> None:
    from .service import install_signal_handlers, serve
    from .workers import banner

    stop = asyncio.Event()
    install_signal_handlers(stop)

    def ready(host: str, port: int) -> None:
        print(banner(host, port, config.log_format), flush=True)  # JSON too with --log-format json

    await serve(config, ready=ready, stop=stop, rebuild=lambda: Config.from_env(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "fake-upstream":
        from .testing.fake_upstream import main as fake_main

        return int(fake_main(args[1:]))
    if args and args[0] == "doctor":
        from .doctor import main as doctor_main

        return int(doctor_main(args[1:]))
    if args and args[0] == "demo":
        from .demo import main as demo_main

        return int(demo_main(args[1:]))
    try:
        config = Config.from_env(args)
    except ConfigError as exc:
        print(f"rawproxy: error: {exc}", file=sys.stderr)
        return 2
    if config.workers > 1 and not config.reuse_port:
        from .workers import run as run_workers

        return run_workers(
            args, config.workers, config.host, config.port, config.grace_seconds, config.log_format
        )
    setup_logging(config.log_level, config.log_format)
    if config.inspect:  # panels as they are, on stderr, whatever the log level and format
        panels = logging.getLogger("rawproxy.inspect")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        panels.addHandler(handler)
        panels.setLevel(logging.INFO)
        panels.propagate = False
    _raise_file_limit()
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_run(config, args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # e.g. the port is taken
        from .workers import say

        print(say(f"rawproxy: error: {exc}", config.log_format, logging.ERROR), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
