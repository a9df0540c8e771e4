"""One timer mechanism for every deadline the proxy keeps: client reads, stream limits, upstream silence.

A timer per read (``asyncio.timeout``, ``call_later``) costs more than the rest of a read, and a stream
of a thousand chunks would arm and cancel a thousand of them. Instead each concern keeps its watched
things in one :class:`Ticker`: a set, and a single ``call_later`` handle set for the earliest moment any
of them asked to be looked at again. Touching a watched thing on the hot path (a chunk arrived, bytes
were written) is a plain attribute store; the ticker reads it when it looks.

Rules:
- A watched thing implements :class:`Watched`: ``due(now)`` acts on whatever is due (expire a read,
  fail a silent upstream, write a ping) and returns when it wants to be looked at next, or ``None``
  to stop being watched. It must not raise: it runs in a loop callback.
- Times are ``time.monotonic()``, never ``loop.time()``: uvloop's loop clock has another origin.
- ``watch(thing, first)`` with a ``first`` earlier than the ticker's next look moves that look earlier,
  so nothing is looked at later than it asked (give or take the loop's own latency).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

__all__ = ["Ticker", "Watched"]


class Watched(Protocol):
    def due(self, now: float) -> float | None: ...


class Ticker:
    __slots__ = ("_handle", "_loop", "_watched", "_when")

    def __init__(self) -> None:
        self._watched: set[Watched] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf  # the next look (time.monotonic()), inf when none is set
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, thing: Watched, first: float) -> None:
        """Watch ``thing``; its first look at ``first`` (a ``time.monotonic()``) at the latest."""
        self._watched.add(thing)
        if first < self._when:
            self._schedule(first, time.monotonic())

    def discard(self, thing: Watched) -> None:
        self._watched.discard(thing)  # the handle stays: it finds nothing of this one to look at

    def close(self) -> None:
        self._watched.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = math.inf

    def _schedule(self, when: float, now: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()  # kept: in 3.11 each lookup costs a getpid() syscall
        self._when = when
        self._handle = self._loop.call_later(max(0.0, when - now), self._look)

    def _look(self) -> None:
        self._handle = None
        self._when = math.inf
        now = time.monotonic()
        earliest = math.inf
        for thing in list(self._watched):
            when = thing.due(now)
            if when is None:
                self._watched.discard(thing)
            elif when < earliest:
                earliest = when
        if self._watched and earliest < self._when:  # (a due() may have watched something sooner)
            self._schedule(earliest, now)
