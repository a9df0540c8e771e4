"""Every failure the upstream client can meet, mapped to the fault it is: one table, ``FAULTS``.

Theory of operation: the client meets three families of exceptions. The lean pool (pool.py) meets
``OSError`` (``TimeoutError`` among them) while it connects, and raises :class:`Silent` into an exchange
whose upstream stayed quiet past the read timeout; httpx (used off the hot path, http.py) raises its
own ``httpx.HTTPError`` tree. Whoever catches one calls :func:`fault` and raises what it returns, so
that only the typed errors of ``errors.py`` leave the client, each naming its fault:

- cannot connect: ``UpstreamUnreachable`` (502 ``api_error``); no connection free: ``UpstreamUnreachable``
  (529 ``overloaded_error``);
- silent past the read timeout: ``UpstreamTimeout`` (504 ``timeout_error``);
- reset, protocol broken, anything else on the wire: ``UpstreamProtocolError`` (502 ``api_error``).

Rows are tried in order and the first whose class matches wins, so a subclass comes before its base.
httpx's rows name their class rather than hold it: importing httpx costs more than the whole cold-start
budget, and an httpx exception can only exist once httpx is imported, so its rows are resolved then.
Failures the pool detects itself (a malformed head, a connection closed mid-answer) are raised as
``UpstreamProtocolError`` where they happen and need no row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ProxyError, UpstreamProtocolError, UpstreamTimeout, UpstreamUnreachable
from ..ir import ErrorType

if TYPE_CHECKING:
    import httpx

__all__ = ["FAULTS", "Silent", "fault", "map_exception"]


class Silent(Exception):
    """The pool's signal into an exchange whose upstream said nothing for its read timeout."""


Make = Callable[[BaseException], ProxyError]


def _unreachable(exc: BaseException) -> ProxyError:
    return UpstreamUnreachable(f"could not connect to the upstream: {exc}")


def _connect_timed_out(exc: BaseException) -> ProxyError:
    return UpstreamUnreachable("could not connect to the upstream: timed out")


def _overloaded(exc: BaseException) -> ProxyError:
    return UpstreamUnreachable("too many upstream requests in flight", status=529, type=ErrorType.OVERLOADED)


def _timed_out(exc: BaseException) -> ProxyError:
    return UpstreamTimeout("upstream timed out")


def _broken(exc: BaseException) -> ProxyError:
    return UpstreamProtocolError(f"upstream connection failed: {str(exc) or type(exc).__name__}")


def _failed(exc: BaseException) -> ProxyError:
    return UpstreamProtocolError(f"upstream request failed: {type(exc).__name__}: {exc}")


# (the exception class, or the name of httpx's, -> its fault), first match wins
FAULTS: tuple[tuple[type[BaseException] | str, Make], ...] = (
    # the lean pool's
    (Silent, _timed_out),
    (TimeoutError, _connect_timed_out),  # asyncio.timeout at connect; an OSError, so before it
    (OSError, _unreachable),  # at connect: refused, unresolvable, TLS handshake failed
    # httpx's (model lists): its timeouts' subclasses before TimeoutException
    ("ConnectTimeout", _unreachable),
    ("PoolTimeout", _overloaded),
    ("TimeoutException", _timed_out),  # read, write
    ("ConnectError", _unreachable),
    ("RemoteProtocolError", _broken),
    ("ReadError", _broken),
    ("WriteError", _broken),
    ("HTTPError", _failed),
)

_resolved: list[tuple[type[BaseException], Make]] | None = None  # FAULTS with httpx's classes, once known


def _rules() -> list[tuple[type[BaseException], Make]]:
    global _resolved
    if _resolved is not None:
        return _resolved
    httpx_module = sys.modules.get("httpx")
    rules = [
        (getattr(httpx_module, match) if isinstance(match, str) else match, make)
        for match, make in FAULTS
        if not isinstance(match, str) or httpx_module is not None
    ]
    if httpx_module is not None:
        _resolved = rules
    return rules


def fault(exc: BaseException) -> ProxyError:
    """The typed error for an exception of ``FAULTS``; raise it ``from None`` in its place."""
    for cls, make in _rules():
        if isinstance(exc, cls):
            return make(exc)
    raise TypeError(f"no upstream fault for {type(exc).__name__}") from exc


def map_exception(exc: httpx.HTTPError) -> ProxyError:
    """The typed error for one of httpx's (the name kept from before the table)."""
    return fault(exc)
