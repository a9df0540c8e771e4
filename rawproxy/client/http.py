"""The upstream HTTP client: the only module that imports httpx, and the only user of pool.py.

Rules:
- The hot path (completions, count_tokens) goes through ``pool.ConnectionPool``, a lean keep-alive
  HTTP/1.1 client of our own: a stock ``httpx.AsyncClient`` costs more CPU per request than the proxy's
  whole budget (see pool.py). httpx keeps the calls that are not on the hot path (model lists).
- ``Accept-Encoding: identity``: no decompression and no re-chunking between the upstream's socket and
  the translator (X-02). The client's own ``accept-encoding`` is never forwarded. An answer encoded
  anyway can be neither translated nor relayed (``content-encoding`` is not relayed): a 502 the
  moment its head arrives; an error status keeps its status and headers, and its body is read decoded
  (gzip or deflate, bounded by the read's limit; in another coding it is dropped).
- The only transfer coding taken is ``chunked`` alone (or none): an answer framed ``gzip, chunked`` (or
  any other coding) would reach the translator, or a passthrough's client, as compressed bytes. A 502
  the moment its head arrives (issue 19); an error status keeps its status, its body is dropped.
- Every failure leaves typed by its fault, by the one table of faults.py, with the status of decision 6:
  connect failures are 502 ``api_error`` (``UpstreamUnreachable``), read timeouts 504 ``timeout_error``
  (``UpstreamTimeout``), resets and protocol breaks 502 (``UpstreamProtocolError``). A header that
  HTTP/1.1 cannot carry is the client's: ``ClientError`` (400).
- The read timeout is the longest *silence* between two chunks, not a total: a long stream may
  legitimately run for many minutes (X-06).
- Outbound proxies and TLS settings are an upstream's route (routing/reach.py), resolved once at start
  by the configuration (the only reader of the environment: ``HTTPS_PROXY`` and the rest,
  ``SSL_CERT_FILE``) and handed in with every call (``route=up.route``). httpx never reads the
  environment (``trust_env=False``): a call by a route that is not plain (a proxy, own TLS) goes on the
  lean pool instead. No HTTP/2.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import ClientError, UpstreamProtocolError
from ..http1 import (
    CONTENT_CODINGS,
    HTTPProtocolError,
    ResponseHead,
    connection_tokens,
    decode_content,
    encode_headers,
)
from ..routing.reach import Route, TLSSettings
from .faults import fault, map_exception
from .pool import ConnectionPool, LeanResponse, OnBody, OnHead
from .tls import context

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Client",
    "UpstreamResponse",
    "fetch",
    "make_client",
    "map_exception",
    "open_stream",
    "relayable",
    "request",
]

USER_AGENT = f"rawproxy/{__version__}"

# ConnectionPool.request's arguments: method, url, header lines, body, meanwhile, on_head, read timeout,
# route
_RequestArgs = tuple[
    bytes, str, bytes, bytes | None, Callable[[], object] | None, OnHead | None, float | None, Route | None
]


_NOT_RELAYED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"content-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"date",
        b"server",
        b"set-cookie",
        b"alt-svc",
        b"strict-transport-security",
        b"via",
    }
)


class Client:
    """The process's upstream client: the lean pool for the hot path, httpx for the rest.

    httpx and the certificate bundle are loaded on first use: neither is needed to start serving, and
    importing httpx alone takes longer than the whole cold-start budget (bench: cold start).
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self.pool = ConnectionPool(
            connect_timeout=connect_timeout, read_timeout=read_timeout, ssl_context=_ssl_context
        )
        self._httpx: httpx.AsyncClient | None = None

    @property
    def httpx(self) -> httpx.AsyncClient:
        if self._httpx is None:
            import httpx

            timeout = self._read_timeout
            self._httpx = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=self._connect_timeout, read=timeout, write=timeout, pool=self._connect_timeout
                ),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60),
                trust_env=False,
                follow_redirects=False,
            )
        return self._httpx

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self._httpx is not None:
            await self._httpx.aclose()


def _ssl_context() -> ssl.SSLContext:
    """The same certificate authorities httpx uses (certifi's bundle, an httpx dependency); built once,
    when the first HTTPS upstream connection needs it (tls.py)."""
    return context(TLSSettings())


def make_client(*, connect_timeout: float, read_timeout: float) -> Client:
    return Client(connect_timeout=connect_timeout, read_timeout=read_timeout)


def relayable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers a client may see in passthrough: none that describe the
    upstream connection or body encoding (we re-frame the body), and no cookies."""
    named = connection_tokens(headers)  # hop-by-hop headers the upstream listed in its Connection header
    return [(k, v) for k, v in headers if k not in _NOT_RELAYED and k not in named]


class UpstreamResponse:
    """An upstream response whose head has arrived: status, headers, and its body by ``relay`` or
    ``read``."""

    __slots__ = ("_response",)

    def __init__(self, response: LeanResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.head.status

    def header(self, name: str) -> str | None:
        value = self._response.head.get(name.lower().encode())
        return None if value is None else value.decode("latin-1")

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self._response.head.headers}

    def relayable_headers(self) -> list[tuple[bytes, bytes]]:
        return relayable(self._response.head.headers)

    async def relay(
        self, on_body: OnBody, drain: Callable[[], Awaitable[None]], idle: Callable[[], None]
    ) -> None:
        """Push the body into ``on_body`` as it arrives (see ``LeanResponse.relay``)."""
        await self._response.relay(on_body, drain, idle)

    def abort(self, error: BaseException) -> None:
        """Fail the exchange now: ``relay`` or ``read`` raises ``error``, the connection is closed."""
        self._response.abort(error)

    async def read(self, limit: int = 4 * 1024 * 1024) -> bytes:
        """The whole body (an error body or a non-streamed answer), at most about ``limit`` bytes. An
        error body encoded although we asked for identity comes decoded (gzip or deflate, to ``limit + 1``
        bytes at most), or empty in another coding or another transfer coding than chunked (a successful
        answer of either kind fails at its head)."""
        head = self._response.head
        body = await self._response.read(limit)
        if _transfer_coding(head) is not None:
            return b""
        coding = _coding(head)
        if coding is None:
            return body
        if coding not in CONTENT_CODINGS:
            return b""
        try:
            return decode_content(coding, body, limit)
        except ValueError:
            return b""


def _coding(head: ResponseHead) -> str | None:
    """The content coding of a response, None for none (or ``identity``)."""
    value = b", ".join(v for k, v in head.headers if k == b"content-encoding")
    coding = value.decode("latin-1").strip().lower()
    return None if coding in ("", "identity") else coding


def _transfer_coding(head: ResponseHead) -> str | None:
    """The transfer coding of a response if it is not ``chunked`` alone (the only one we take), else None
    (``chunked``, or no ``Transfer-Encoding``)."""
    values = [v for k, v in head.headers if k == b"transfer-encoding"]
    if not values:
        return None
    tokens = [t.strip().lower() for v in values for t in v.split(b",")]
    return None if tokens == [b"chunked"] else b", ".join(values).decode("latin-1")


def _identity_only(on_head: OnHead | None) -> OnHead:
    """``on_head``, after a check that a successful answer is neither encoded (X-02) nor framed by a
    transfer coding other than chunked: raised from the connection's callback, the error fails the
    exchange before anything of it reaches the client."""

    def checked(head: ResponseHead) -> OnBody | None:
        if head.status < 400:
            framing = _transfer_coding(head)
            if framing is not None:
                raise UpstreamProtocolError(
                    f"upstream framed its answer with Transfer-Encoding: {framing}; only chunked is accepted"
                )
            coding = _coding(head)
            if coding is not None:
                raise UpstreamProtocolError(
                    f"upstream sent a {coding}-encoded body although we asked for identity (Accept-Encoding)"
                )
        return on_head(head) if on_head is not None else None

    return checked


def _with_defaults(headers: list[tuple[str, str]], accept: str) -> list[tuple[str, str]]:
    """The caller's headers, plus what every upstream call carries unless the caller set it."""
    names = {name.lower() for name, _ in headers}
    out = [("accept-encoding", "identity")]  # never compressed: no decoder between socket and translator
    if "accept" not in names:
        out.append(("accept", accept))
    if "user-agent" not in names:
        out.append(("user-agent", USER_AGENT))
    if "content-type" not in names:
        out.append(("content-type", "application/json"))
    return out + [(n, v) for n, v in headers if n.lower() != "accept-encoding"]


@functools.lru_cache(maxsize=256)
def _header_lines(headers: tuple[tuple[str, str], ...], accept: str) -> bytes:
    """The encoded, checked header lines of an upstream call. A proxy sends the same few header sets
    again and again (one per upstream, a few per passthrough client), so they are built once each."""
    return encode_headers(
        (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in _with_defaults(list(headers), accept)
    )


def open_stream(
    client: Client,
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes | None = None,
    accept: str = "text/event-stream",
    meanwhile: Callable[[], object] | None = None,
    on_head: OnHead | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> _OpenStream:
    """Send a request on the hot path and yield the response before its body is read; ``meanwhile``
    runs between sending and the answer, ``on_head`` the moment the head arrives (see
    ``ConnectionPool.request``).

    Leaving the context (normally, by an exception, or by cancellation when the client went away)
    returns the connection when the answer was read to its end and closes it otherwise, so that an
    abandoned upstream stops generating. ``route`` is how the upstream is reached (its proxy and TLS,
    routing/reach.py: ``Upstream.route``); None: directly, with the default TLS.
    """
    try:
        key = tuple(headers)
        # Cached only while small: in passthrough a client's anthropic-beta reaches these headers.
        small = sum(len(n) + len(v) for n, v in key) <= 4096
        lines = _header_lines(key, accept) if small else _header_lines.__wrapped__(key, accept)
    except HTTPProtocolError as exc:  # a header the client sent that HTTP/1.1 cannot carry
        raise ClientError(str(exc)) from None
    return _OpenStream(
        client.pool, (method.encode(), url, lines, body, meanwhile, _identity_only(on_head), timeout, route)
    )


class _OpenStream:
    """``open_stream``'s context: a class, not ``@asynccontextmanager``, whose generator costs a few
    microseconds a request on the hot path."""

    __slots__ = ("_args", "_pool", "_response")

    def __init__(self, pool: ConnectionPool, args: _RequestArgs) -> None:
        self._pool = pool
        self._args = args
        self._response: LeanResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        self._response = await self._pool.request(*self._args)
        return UpstreamResponse(self._response)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


async def request(
    client: Client,
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A whole exchange on the hot path: (status, headers, body)."""
    async with open_stream(
        client,
        method,
        url,
        headers=headers,
        body=body,
        accept="application/json",
        timeout=timeout,
        route=route,
    ) as resp:
        data = await resp.read()
        return resp.status, resp.headers, data


async def fetch(
    client: Client, url: str, *, headers: list[tuple[str, str]], route: Route | None = None
) -> tuple[int, bytes]:
    """A GET off the hot path (model lists), through httpx; by the lean pool when the upstream is
    reached through a proxy or with TLS settings of its own (httpx knows nothing of them)."""
    if route is not None and route.special:
        status, _, body = await request(client, "GET", url, headers=headers, route=route)
        return status, body
    import httpx

    try:
        response = await client.httpx.get(url, headers=_with_defaults(headers, "application/json"))
    except httpx.HTTPError as exc:
        raise fault(exc) from None
    return response.status_code, response.content
