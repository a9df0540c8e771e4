"""The per-request object: everything one exchange needs, in one place instead of nine parameters.

``Shared`` is what every exchange of a configuration shares (the upstream client, the relays' ticker, the
model catalog, the Responses store, the metrics, the configuration and its router); an ``Exchange``
takes the ``Shared`` of the moment it began, so a reload never changes a request in flight.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._types import AccessRecord, ClientRequest, ResponseSink
from ..timers import Ticker

if TYPE_CHECKING:
    from .. import ir
    from ..client import Client
    from ..config import Config
    from ..dialects import DialectSpec
    from ..observe.metrics import Metrics
    from ..routing import Router
    from .catalog import Catalog
    from .lessons import Lessons
    from .loops import LoopGuard, Marks
    from .state import ResponseStore

__all__ = ["Exchange", "Shared", "Streams"]


@dataclass(slots=True, kw_only=True)
class Shared:
    client: Client  # the upstream HTTP client
    streams: Streams
    catalog: Catalog
    responses: ResponseStore
    metrics: Metrics
    lessons: Lessons  # what upstream models were found to take (M26-08)
    config: Config
    carrier_key: bytes  # seals upstream state handed to clients (carrier.py)
    router: Router
    loops: LoopGuard  # this proxy's Via mark (NET-03)


@dataclass(slots=True, kw_only=True)
class Exchange:
    req: ClientRequest
    sink: ResponseSink
    record: AccessRecord
    shared: Shared
    spec: DialectSpec | None = None  # the client's dialect, on a completions path
    data: dict[str, Any] | None = None  # the client's body, parsed as JSON (and routed)
    rewritten: bool = False  # the body differs from what the client sent (a passthrough re-serialises)
    request: ir.Request | None = None  # the body parsed into the IR, once a translated try needs it
    via: Marks | None = None  # the Via and hop count its upstream requests carry (loops.py)

    def upstream_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """An upstream request's headers with this proxy's mark added (loops.py says when)."""
        return self.via.add(headers) if self.via is not None else headers

    def client_key(self) -> str | None:
        """The key the client presented (``x-api-key`` or ``Authorization: Bearer``), for an upstream
        that forwards it."""
        key = self.req.header(b"x-api-key")
        if key:
            return key
        scheme, _, token = (self.req.header(b"authorization") or "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


class Streams:
    """The relays in flight, and the one ticker that keeps their pings and time limits."""

    def __init__(self, ping_interval: float) -> None:
        self.ping_interval = ping_interval
        self.ticker = Ticker()

    @functools.cached_property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the relays run on (first asked for from inside it), kept: in Python 3.11 every
        ``get_running_loop()`` is a ``getpid()`` system call."""
        return asyncio.get_running_loop()

    def close(self) -> None:
        self.ticker.close()
