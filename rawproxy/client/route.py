"""Connecting by an upstream's route (routing/reach.py's ``Route``: its name, proxy and TLS settings).

Theory of operation: the exchange hands the upstream client each call's route with its URL
(``open_stream(..., route=up.route)``: explicit, so two upstreams on one base URL, or two proxies in
one process, never borrow each other's way out); None is a direct connection. The pool keys its idle connections
by an ``Origin`` that includes the route: connections of a proxied and of a direct upstream never mix,
even to one host. :func:`target_of` keeps, per URL, the request target and host lines sent there
(absolute form and ``Proxy-Authorization`` through a proxy, for http upstreams); :func:`connect` opens a
connection directly, to the proxy, or through its tunnel.

Every failure to connect leaves as ``UpstreamUnreachable`` (502, the client's own error shape) naming
the upstream, and, for a proxy or TLS, what went wrong and a one-line hint; never the credentials.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TypeVar

from ..errors import UpstreamUnreachable
from ..http1 import encode_headers
from ..routing.reach import Route, authority
from .connection import Origin
from .faults import fault
from .proxy import ProxyRefused, open_tunnel
from .tls import context, tls_failure

__all__ = ["connect", "target_of"]

P = TypeVar("P", bound=asyncio.Protocol)
_PREFIX = "could not connect to the upstream: "  # faults.py's, replaced by the upstream's name


def target_of(route: Route, url: str) -> tuple[Origin, bytes, bytes]:
    """(origin, request target, host line and proxy lines) of ``url`` by ``route``; the few URLs an
    upstream is called at are worked out once each."""
    known = route.targets.get(url)
    if known is None:
        plain, target = Origin.of(url)
        # No proxy, and no TLS of its own to use (default settings, or plain http): a direct connection,
        # shared with every other upstream on that origin (SSL_CERT_FILE set makes every route's TLS
        # its own, which an http upstream never uses).
        direct = route.proxy is None and (route.tls.default or plain.scheme == "http")
        origin = plain if direct else Origin(plain.scheme, plain.host, plain.port, route)
        lines = [(b"host", origin.host_header)]
        if route.proxy is not None and origin.scheme == "http":
            target = f"http://{authority(origin.host, origin.port)}{target}"  # absolute form
            if route.proxy.authorization is not None:
                lines.append((b"proxy-authorization", route.proxy.authorization))
        known = (origin, target.encode(), encode_headers(lines))
        if len(route.targets) < 256 and len(url) <= 1024:  # the configured URLs, not clients' queries
            route.targets[url] = known
    return known


async def connect(route: Route, origin: Origin, factory: Callable[[], P], timeout: float) -> P:
    """A new connection to ``origin`` by ``route``; raises ``UpstreamUnreachable``."""
    loop = asyncio.get_running_loop()
    tls = context(route.tls) if origin.scheme == "https" else None
    proxy = route.proxy
    try:
        async with asyncio.timeout(timeout):
            if proxy is None:
                _, conn = await loop.create_connection(
                    factory,
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
                return conn
            if tls is None:  # an http upstream: requests in absolute form, to the proxy itself
                _, conn = await loop.create_connection(factory, proxy.host, proxy.port)
                return conn
            raw = await open_tunnel(proxy, origin.host, origin.port)
            conn = factory()
            try:
                transport = await loop.start_tls(raw, conn, tls, server_hostname=origin.host)
            except BaseException:
                raw.close()
                raise
            assert transport is not None
            conn.connection_made(transport)  # start_tls does not call it
            return conn
    except ProxyRefused as exc:
        raise route.refused(exc.status, exc.reason) from None
    except OSError as exc:  # TimeoutError (the connect timeout), ssl.SSLError among them
        raise named_failure(route, exc, origin.host) from None


def named_failure(route: Route, exc: OSError, host: str) -> UpstreamUnreachable:
    """A failure to connect, naming the upstream, with a hint for a TLS one."""
    if isinstance(exc, ssl.SSLError):
        return route.failed(tls_failure(exc, host))
    return route.unreachable(fault(exc).info.message.removeprefix(_PREFIX))
