"""The embedding API: ``async with Proxy(config) as proxy:`` runs rawproxy inside the caller's event loop.

For programs that carry the proxy with them (a test harness, a one-file tool, a notebook): the proxy
starts on a free port of 127.0.0.1 unless the configuration names one, ``proxy.url`` is its base URL
(what an Anthropic SDK takes as ``base_url``; add ``/v1`` for an OpenAI SDK), and leaving the block stops
it gracefully: responses in flight get the configured grace period.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import TracebackType

from .config import Config

__all__ = ["Proxy"]


class Proxy:
    def __init__(self, config: Config | None = None, *, free_port: bool = True) -> None:
        """``free_port``: listen on a port the system picks (the default), not ``config.port``."""
        config = config or Config()
        self.config = dataclasses.replace(config, port=0) if free_port else config
        self.host = ""
        self.port = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> Proxy:
        from .service import serve

        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

        def on_ready(host: str, port: int) -> None:
            if not ready.done():
                ready.set_result((host, port))

        self._task = asyncio.create_task(serve(self.config, ready=on_ready, stop=self._stop))
        task = self._task
        task.add_done_callback(lambda _: ready.done() or ready.cancel())
        try:
            self.host, self.port = await ready
        except asyncio.CancelledError:
            if not task.done():
                raise  # the caller was cancelled
            await task  # serve() ended before listening: its error (a taken port) is the caller's
            raise RuntimeError("rawproxy stopped before it listened") from None
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> Proxy:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
