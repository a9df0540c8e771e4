"""The upstream client: how the proxy talks to the upstreams it translates for.

Theory of operation, by module:

- ``connection.py``: one upstream connection, an asyncio protocol over a sans-I/O ``http1`` reader; the
  body of an answer is pushed into the consumer from ``data_received`` (no task switch per chunk).
- ``pool.py``: the lean HTTP/1.1 keep-alive pool of the hot path (``ConnectionPool``, ``LeanResponse``):
  idle connections per origin, one retry of a stale reused connection, and the read timeout of every
  exchange in flight kept by one ``timers.Ticker``.
- ``http.py``: the API the proxy calls (``Client``, ``open_stream``, ``request``, ``fetch``): default
  headers, the identity-encoding rule, the header filter of passthrough (``relayable``), and httpx for
  what is off the hot path.
- ``faults.py``: the one table from every exception the client can meet to the typed error
  (``errors.py``) that leaves it, each naming its fault.

Only typed errors leave this package: ``ClientError``, ``UpstreamUnreachable``, ``UpstreamTimeout``,
``UpstreamProtocolError``; an exception raised by a consumer's ``on_head``/``on_body`` is re-raised as is.
"""

from __future__ import annotations

from .faults import fault, map_exception
from .http import (
    USER_AGENT,
    Client,
    UpstreamResponse,
    fetch,
    make_client,
    open_stream,
    relayable,
    request,
)
from .pool import ConnectionPool, LeanResponse, OnBody, OnHead, Origin

__all__ = [
    "USER_AGENT",
    "Client",
    "ConnectionPool",
    "LeanResponse",
    "OnBody",
    "OnHead",
    "Origin",
    "UpstreamResponse",
    "fault",
    "fetch",
    "make_client",
    "map_exception",
    "open_stream",
    "relayable",
    "request",
]
