"""The types every layer shares: the client's request, the sink a response is written to, the access record.

A leaf: it imports nothing of rawproxy's at run time (``ir`` only for a type), so the server, the exchange,
the observers and the tests can all name these without importing each other (the cycle proxy -> metrics ->
proxy came from these types living in the top module).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .ir import Usage

__all__ = ["JSON_HEADERS", "SSE_HEADERS", "AccessRecord", "ClientRequest", "Headers", "ResponseSink"]

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True, kw_only=True)
class ClientRequest:
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    received: float = field(default_factory=time.perf_counter)

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


@dataclass(slots=True)
class AccessRecord:
    """What one access-log line says. Never a key."""

    rid: str
    method: str
    path: str
    received: float
    client_model: str = "-"
    upstream: str = "-"  # the configured upstream's name
    upstream_model: str = "-"
    status: int = 0
    ttft_ms: float | None = None
    usage: Usage | None = None
    error_kind: str | None = None  # the fault of a failed exchange (errors.Fault), for logs and metrics


class ResponseSink(Protocol):
    """How the exchange talks to its client; implemented by the server's ``ResponseWriter``."""

    @property
    def started(self) -> bool: ...
    @property
    def last_write(self) -> float: ...  # time.monotonic() of the last bytes written
    def begin(self, status: int, headers: Headers) -> None: ...  # the head, held for the first bytes
    def send_nowait(self, data: bytes) -> None: ...
    def hold(self, data: bytes) -> None: ...  # goes out with the next write or flush()
    def flush(self) -> None: ...
    def discard(self) -> bool: ...  # take back a started response while nothing of it was written
    @property
    def backlogged(self) -> bool: ...  # the client is not reading fast enough: wait for drain()
    async def drain(self) -> None: ...
    async def end(self, tail: bytes = b"") -> None: ...
    async def respond(self, status: int, headers: Headers, body: bytes) -> None: ...
