"""Loop detection across proxies (NET-03): a request that comes back to the proxy that sent it is refused.

Every request the proxy sends upstream carries ``Via: 1.1 rawproxy-<id>`` appended to the Via the client
sent (RFC 9110 7.6.3: each intermediary appends itself, and "Via is used for detecting forwarding
loops"), and ``x-rawproxy-hops: N``, one more than the client's. A request whose Via already names this
proxy, or that has come through ``MAX_HOPS`` rawproxies, is answered 508 Loop Detected (RFC 5842 7.2) at
once: a loop A -> B -> A ends in one refusal instead of requests multiplying until something times out.

The id is one per proxy: every ``--workers`` child of one supervisor is handed the same one
(``ID_VARIABLE``, as it is handed the carrier key), so a loop through any of them is caught; an embedded
``Proxy`` without it gets its own.
"""

from __future__ import annotations

import os
import secrets
from typing import Final

from .. import ir
from .._types import Headers
from ..errors import ClientError

__all__ = ["HOPS_HEADER", "ID_VARIABLE", "MAX_HOPS", "LoopGuard", "Marks"]

ID_VARIABLE: Final = "RAWPROXY_GROUP_PROXY_ID"  # the id workers.py hands its workers
HOPS_HEADER: Final = "x-rawproxy-hops"
MAX_HOPS: Final = 8  # rawproxies one request may pass through; a chain that long is a loop


class LoopGuard:
    """This proxy's mark: checks the marks a request arrived with, and makes the ones it goes on with."""

    __slots__ = ("_first", "token")

    def __init__(self, proxy_id: str | None = None) -> None:
        self.token = f"rawproxy-{proxy_id or os.environ.get(ID_VARIABLE) or secrets.token_hex(6)}"
        # the marks of nearly every request (it came through no proxy): made once
        self._first = Marks([("via", f"1.1 {self.token}"), (HOPS_HEADER, "1")], False)

    def forward(self, headers: Headers) -> Marks:
        """The Via and hop count a request with ``headers`` goes upstream with; a ``ClientError`` 508
        when it has been here before or has come through too many rawproxies."""
        for name, _ in headers:  # hot: one pass, no allocation, for a request with no marks
            if name == b"via" or name == b"x-rawproxy-hops":
                break
        else:
            return self._first
        via: list[str] = []
        hops = 0
        for name, value in headers:
            if name == b"via":
                via.append(value.decode("latin-1").strip())
            elif name == b"x-rawproxy-hops":
                hops = _count(value)
        for entry in via:
            for hop in entry.split(","):
                # "1.1 rawproxy-<id>" or "1.1 rawproxy-<id> (comment)": received-by is the second word
                words = hop.split()
                if len(words) > 1 and words[1] == self.token:
                    raise _loop(f"the request came back to this proxy ({self.token}): its upstreams loop")
        if hops >= MAX_HOPS:
            raise _loop(f"the request has passed through {hops} rawproxies; the limit is {MAX_HOPS}")
        own = f"1.1 {self.token}"
        return Marks(
            [("via", ", ".join([*(v for v in via if v), own])), (HOPS_HEADER, str(hops + 1))], hops > 0
        )


class Marks:
    """The Via and hop count one exchange's upstream requests carry.

    Not on a request that presents a client identity of its own (a ``client_profile`` preset such as
    ``claude-cli``, or a configured ``User-Agent``: CONFORMANCE.md "Claude Code masquerade header set",
    exact) unless the request came through a rawproxy already: a loop through such an upstream is then
    still caught, from its second round."""

    __slots__ = ("chained", "headers")

    def __init__(self, headers: list[tuple[str, str]], chained: bool) -> None:
        self.headers = headers
        self.chained = chained  # the client's request carried a rawproxy's hop count

    def add(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.chained or _own_identity(headers):
            return [*headers, *self.headers]
        return headers


def _own_identity(headers: list[tuple[str, str]]) -> bool:
    """The request goes as rawproxy's (its User-Agent, or none), not as another client's."""
    for name, value in headers:
        if name.lower() == "user-agent":
            return value.startswith("rawproxy/")
    return True


def _count(value: bytes) -> int:
    """A hop count as sent; one that is not a number counts as none (only rawproxies write it)."""
    return min(int(value), MAX_HOPS) if value.isdigit() and len(value) < 20 else 0


def _loop(message: str) -> ClientError:
    return ClientError(f"loop detected: {message}", status=508, type=ir.ErrorType.INVALID_REQUEST)
