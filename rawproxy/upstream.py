"""The upstream HTTP client: the only module that imports httpx.

Rules:
- One pooled ``httpx.AsyncClient`` for the process: connection setup is the largest avoidable cost on
  the path to the first token.
- ``Accept-Encoding: identity`` and ``aiter_raw()``: no decompression and no re-chunking between the
  upstream's socket and the translator (X-02). The client's own ``accept-encoding`` is never forwarded.
- Every httpx exception becomes a ``ProxyError`` here, with the status of decision 6: connect failures
  are 502 ``api_error``, read timeouts 504 ``timeout_error``, resets and protocol breaks 502.
- The read timeout is the longest *silence* between two chunks, not a total: a long stream may
  legitimately run for many minutes (X-06).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from . import __version__
from .errors import ProxyError, UpstreamProtocolError
from .ir import ErrorInfo, ErrorType

__all__ = ["Client", "UpstreamResponse", "make_client", "map_exception", "open_stream", "request"]

USER_AGENT = f"rawproxy/{__version__}"

Client = httpx.AsyncClient

_NOT_RELAYED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"content-encoding",
        b"upgrade",
        b"proxy-connection",
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


def make_client(*, connect_timeout: float, read_timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60),
        trust_env=False,
        follow_redirects=False,
    )


def map_exception(exc: httpx.HTTPError) -> ProxyError:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(
        exc, httpx.ConnectTimeout | httpx.PoolTimeout
    ):
        return ProxyError(ErrorInfo(status=504, type=ErrorType.TIMEOUT, message="upstream timed out"))
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ProxyError(
            ErrorInfo(status=502, type=ErrorType.API, message=f"could not connect to the upstream: {exc}")
        )
    if isinstance(exc, httpx.PoolTimeout):
        return ProxyError(
            ErrorInfo(status=529, type=ErrorType.OVERLOADED, message="too many upstream requests in flight")
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return UpstreamProtocolError(f"upstream connection failed: {exc or type(exc).__name__}")
    return UpstreamProtocolError(f"upstream request failed: {type(exc).__name__}: {exc}")


class UpstreamResponse:
    """A streamed upstream response: status, headers, and raw body chunks with mapped errors."""

    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    @property
    def headers(self) -> dict[str, str]:
        return dict(self._response.headers)

    def relayable_headers(self) -> list[tuple[bytes, bytes]]:
        """The upstream's response headers a client may see in passthrough: none that describe the
        upstream connection or body encoding (we re-frame the body), and no cookies."""
        return [(k, v) for k, v in self._response.headers.raw if k.lower() not in _NOT_RELAYED]

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise map_exception(exc) from None

    async def read(self, limit: int = 4 * 1024 * 1024) -> bytes:
        """The whole body (an error body or a non-streamed answer), at most ``limit`` bytes."""
        parts = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(parts)


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


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes | None = None,
    accept: str = "text/event-stream",
) -> AsyncIterator[UpstreamResponse]:
    """Send a request and yield the response before its body is read.

    Leaving the context (normally, by an exception, or by cancellation when the client went away)
    closes the response; a half-read response closes its connection, so the upstream stops generating.
    """
    request = client.build_request(method, url, content=body, headers=_with_defaults(headers, accept))
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise map_exception(exc) from None
    try:
        yield UpstreamResponse(response)
    finally:
        await response.aclose()


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A whole non-streamed exchange: (status, headers, body)."""
    async with open_stream(
        client, method, url, headers=headers, body=body, accept="application/json"
    ) as resp:
        data = await resp.read()
        return resp.status, resp.headers, data
