"""One connection's HTTP/1.1 writing, shared by both dialects: whole answers, raw bodies, pacing, faults.

A :class:`Wire` pairs the connection's ``h11.Connection`` with its stream reader and writer. The dialect
renderers build bytes and hand them here; everything about timing and broken servers lives in this one
place so that both dialects behave alike: ``wait`` (a delay that ends early, with ConnectionResetError,
when the client goes away, so nothing outlives the test that scripted it), ``pace`` (the stall after
the first content event, then the token interval), ``before_head`` (``head_delay``, then a TCP reset or
hand-written ``wire`` bytes) and ``raw`` (a recorded body written as given, in paced pieces).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import h11
import orjson

from .script import Script

__all__ = ["Wire"]


@dataclass(slots=True)
class Wire:
    conn: h11.Connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def write(self, event: h11.Event) -> None:
        self.writer.write(self.conn.send(event) or b"")

    def abort(self) -> None:
        """Drop the connection mid-answer: no terminating event, a dead upstream."""
        self.writer.transport.abort()

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
        headers = [*headers, ("content-length", str(len(body)))]
        self.write(h11.Response(status_code=status, headers=headers))
        self.write(h11.Data(data=body))
        self.write(h11.EndOfMessage())
        await self.writer.drain()
        return True

    async def json(self, status: int, data: Any) -> bool:
        return await self.send(status, [("content-type", "application/json")], orjson.dumps(data))

    async def wait(self, seconds: float) -> None:
        """Sleep, but raise ConnectionResetError as soon as the client closes the connection (one that
        timed out): nothing lingers after the test that scripted the delay."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.reader.at_eof():
                raise ConnectionResetError("the client closed the connection")
            await asyncio.sleep(min(left, 0.01))

    async def pace(self, script: Script, n: int) -> None:
        """The pause after content event ``n`` (or piece ``n`` of a ``raw`` body): the stall after the
        first, which ends early when the client goes away (one that timed out), else the token
        interval (a plain sleep: short, and paid per token, so not polled)."""
        if n == 0 and script.stall:
            await self.wait(script.stall)
        elif script.token_interval:
            await asyncio.sleep(script.token_interval)

    async def before_head(self, script: Script) -> bool:
        """``head_delay``, then ``reset`` or ``wire``; False when the connection is done with."""
        if script.head_delay:
            await self.wait(script.head_delay)
        if script.reset:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends a RST, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.abort()
            return False
        if script.wire is not None:
            self.writer.write(script.wire)
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
            self.writer.close()
            return False
        return True

    async def raw(self, script: Script) -> bool:
        """``script.raw`` as the body, as given (either dialect: recorded transcripts), in paced pieces."""
        assert script.raw is not None
        content_type = script.content_type or "text/event-stream"
        self.write(
            h11.Response(status_code=script.status, headers=[("content-type", content_type), *script.headers])
        )
        if script.ttft:
            await self.wait(script.ttft)
        size = script.chunk_size or len(script.raw) or 1
        for n, i in enumerate(range(0, len(script.raw), size)):
            if n:
                await self.pace(script, n - 1)
            self.write(h11.Data(data=script.raw[i : i + size]))
            await self.writer.drain()
        self.write(h11.EndOfMessage())
        await self.writer.drain()
        return True
