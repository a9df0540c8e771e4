"""The floor: a bare asyncio socket relay that parses nothing.

Each accepted connection gets its own connection to the upstream, and bytes are copied both ways as they
arrive (``asyncio.Protocol`` on both sides, uvloop when installed, as the proxy uses it). No HTTP parsing,
no pooling, no translation: what it adds to the time to first token is the least any Python proxy on
asyncio can add on this machine.

    python bench/relay_floor.py --port 18091 --upstream-port 18090 [--max-seconds 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import cast


class _Half(asyncio.Protocol):
    """One side of a relayed pair: whatever it receives is written to its peer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.pending: list[bytes] = []  # received before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool | None:
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    # flow control: a slow reader pauses its peer's reading
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Downstream(_Half):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.upstream_addr = (host, port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            _, up = await loop.create_connection(_Half, *self.upstream_addr)
        except OSError:
            self.transport.close()
            return
        up.peer, self.peer = self, up
        assert up.transport is not None
        for data in self.pending:
            up.transport.write(data)
        self.pending.clear()
        if self.transport.is_closing():
            up.transport.close()


async def serve(host: str, port: int, upstream_host: str, upstream_port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Downstream(upstream_host, upstream_port), host, port, backlog=2048
    )
    print(f"relay-floor listening on http://{host}:{port} -> {upstream_host}:{upstream_port}", flush=True)
    try:
        await asyncio.sleep(max_seconds)  # stops by itself
    finally:
        server.close()


def loop_factory(enabled: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not enabled:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bare asyncio socket relay (the bench's floor)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18091)
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=loop_factory(not args.no_uvloop)) as runner:
            runner.run(serve(args.host, args.port, args.upstream_host, args.upstream_port, args.max_seconds))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
