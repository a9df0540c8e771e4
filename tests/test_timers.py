"""timers.Ticker: one call_later handle for everything a concern watches, looked at when the earliest asks."""

from __future__ import annotations

import asyncio
import time

from rawproxy.timers import Ticker


class Deadline:
    """A watched thing that acts once at ``at`` (like a client read that expires)."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired_at: float | None = None
        self.looks = 0

    def due(self, now: float) -> float | None:
        self.looks += 1
        if now < self.at:
            return self.at
        self.fired_at = now
        return None


async def test_each_thing_is_acted_on_at_its_time_not_before() -> None:
    ticker = Ticker()
    now = time.monotonic()
    late, soon = Deadline(now + 0.15), Deadline(now + 0.05)
    ticker.watch(late, late.at)
    ticker.watch(soon, soon.at)  # earlier than the look already set: the look moves earlier
    await asyncio.sleep(0.1)
    assert soon.fired_at is not None and soon.fired_at >= soon.at
    assert late.fired_at is None
    await asyncio.sleep(0.1)
    assert late.fired_at is not None and late.fired_at >= late.at
    assert len(ticker) == 0  # due() said None: no longer watched


async def test_a_discarded_thing_is_never_looked_at_again() -> None:
    ticker = Ticker()
    thing = Deadline(time.monotonic() + 0.03)
    ticker.watch(thing, thing.at)
    ticker.discard(thing)
    await asyncio.sleep(0.06)
    assert thing.looks == 0 and thing.fired_at is None


async def test_close_stops_every_look() -> None:
    ticker = Ticker()
    things = [Deadline(time.monotonic() + 0.02) for _ in range(3)]
    for thing in things:
        ticker.watch(thing, thing.at)
    ticker.close()
    await asyncio.sleep(0.05)
    assert all(t.looks == 0 for t in things) and len(ticker) == 0


async def test_a_thing_watched_from_inside_a_look_keeps_its_earlier_time() -> None:
    """A due() that watches something sooner than the rest (a relay expiring may start another)."""
    ticker = Ticker()
    now = time.monotonic()
    follower = Deadline(now + 0.06)
    far = Deadline(now + 10)

    class Starter(Deadline):
        def due(self, now: float) -> float | None:
            ticker.watch(follower, follower.at)
            return super().due(now)

    starter = Starter(now + 0.02)
    ticker.watch(far, far.at)
    ticker.watch(starter, starter.at)
    await asyncio.sleep(0.12)
    assert follower.fired_at is not None  # not left until the far deadline
    ticker.close()
