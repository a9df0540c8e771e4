"""``ClientConnection``: one client connection as an asyncio protocol: a bounded buffer between the socket
and h11, write flow control, the read deadline, and the task that serves its requests.

No task watches for a disconnect: while an exchange runs, EOF or a reset arriving here cancels the
serving task at once (A2O-S17), and unwinding it closes the upstream request. Bytes that arrive
meanwhile (a pipelined request) wait in the buffer for the next cycle; past ``BUFFER_LIMIT`` the
socket stops being read until the buffer is taken. A read that waits is watched by the server's
``timers.Ticker`` (``due``): no timer per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from ..timers import Ticker

__all__ = ["ClientConnection"]


class ClientConnection(asyncio.Protocol):
    """One client connection (see the module's docstring)."""

    BUFFER_LIMIT = 256 * 1024

    def __init__(self, serve: Callable[[ClientConnection], Coroutine[Any, Any, None]], reads: Ticker) -> None:
        self._serve = serve  # the server's loop for this connection, run as its task
        self._reads = reads
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.exchanging = False  # a request is being answered: a disconnect cancels the task
        self.left = False  # the client went away during an exchange
        self.lost = False
        self._buffer: list[bytes] = []
        self._size = 0
        self._eof = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()  # kept: in 3.11 each lookup costs a getpid() syscall
        self.deadline = 0.0  # of the read that waits (time.monotonic()), looked at by the reads ticker
        self.expired = False  # that read's time ran out

    # ------------------------------------------------------------------------- protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.task = self._loop.create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        if self._size > self.BUFFER_LIMIT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        if self.exchanging:
            self._leave()
        # Keep our side open: a client that half-closes mid-request (or before its answer) can still
        # read why it is refused; ``Server._serve`` closes the connection when it is done with it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self._eof = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client went away"))
        if self.exchanging:
            self._leave()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---------------------------------------------------------------------------- for the server

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def due(self, now: float) -> float | None:
        """The reads ticker's look: the waiting read's time is up, or when to look again."""
        if now < self.deadline:
            return self.deadline
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.expired = True
            waiter.set_result(None)
        return None

    def _leave(self) -> None:
        if not self.left and self.task is not None:
            self.left = True
            self.task.cancel()

    async def read(self, timeout: float) -> bytes | None:
        """What has arrived (waiting up to ``timeout`` for something); b"" at EOF, None on timeout."""
        if not self._buffer and not self._eof:
            waiter = self._waiter = self._loop.create_future()
            self.deadline = deadline = time.monotonic() + timeout
            self._reads.watch(self, deadline)
            try:
                await waiter
            finally:
                self._waiter = None
                self._reads.discard(self)
            if self.expired:
                self.expired = False
                return None
        if not self._buffer:
            return b""
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer = []
        self._size = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    # ----------------------------------------------------------- the writer side (ResponseWriter)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.lost:
            raise ConnectionResetError("the client went away")
        if self.write_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drain_waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def linger(self, seconds: float) -> None:
        """After an answer that leaves client bytes unread (a body refused before it was read, a head
        that could not be parsed): end our side, then drop what the client still sends until it
        closes, for at most ``seconds``. Closing a socket with unread input resets the connection, and
        the reset can destroy the answer before the client has read it (RFC 9112 9.6)."""
        transport = self.transport
        if transport is None or self.lost or transport.is_closing():
            return
        with contextlib.suppress(OSError):
            transport.write_eof()  # after what is still buffered
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not await self.read(left):
                return  # EOF, or the time is up
