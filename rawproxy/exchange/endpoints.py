"""The one table of endpoints: which path is served, by which handler, with which methods and whether a
client key is needed. The completions paths come from the dialect registry; this is the only module
outside ``dialects/`` that names a client-facing path.

Rules:
- Every path under ``/v1/`` needs a client key when keys are configured (``--api-key``), an unknown one
  included: a probe without a key learns nothing (401 before 404). Keys are compared in constant time,
  every key every time.
- A method the endpoint does not take is a 405 with ``Allow`` (RFC 9110 15.5.6); ``HEAD /v1`` (a client's
  reachability probe) is the one path that answers a single method and is not found for the others.
- ``/v1/v1/...``: a base URL that already ended in ``/v1`` (A2O-M03), served as ``/v1/...``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson

from .. import __version__, ir, tokens
from .. import client as upstream_client
from .._types import JSON_HEADERS
from ..dialects import (
    ANTHROPIC_COUNT_TOKENS_PATH,
    COUNT_TOKENS_PATH,
    MODELS_PATH,
    REGISTRY,
    anthropic_messages,
    build_model_list,
    client_spec,
)
from ..errors import ClientError
from ..observe.metrics import CONTENT_TYPE as METRICS_TYPE
from ..routing import RequestFacts
from .completion import complete
from .context import Exchange

__all__ = ["ENDPOINTS", "Endpoint", "authenticate", "find", "not_allowed"]

Handler = Callable[[Exchange], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    methods: tuple[str, ...]
    handler: Handler
    others_not_found: bool = False  # a method not listed is a 404, not a 405


def not_allowed(method: str, path: str, allowed: str) -> ClientError:
    error = ClientError(f"{method} is not allowed on {path}; use {allowed}", status=405)
    error.info.allow = allowed
    return error


def authenticate(ex: Exchange, keys: list[bytes]) -> None:
    if not keys:
        return
    req = ex.req
    presented = req.header(b"x-api-key")
    if presented is None:
        scheme, _, token = (req.header(b"authorization") or "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else None
    if presented is None:
        raise ClientError(
            "missing API key: send x-api-key or Authorization: Bearer",
            status=401,
            type=ir.ErrorType.AUTHENTICATION,
        )
    candidate = presented.encode()
    ok = False
    for key in keys:  # every key is compared, in constant time: no early exit to time
        ok |= hmac.compare_digest(candidate, key)
    if not ok:
        raise ClientError("invalid API key", status=401, type=ir.ErrorType.AUTHENTICATION)


async def _ok(ex: Exchange, body: bytes, headers: list[tuple[bytes, bytes]] = JSON_HEADERS) -> None:
    ex.record.status = 200
    await ex.sink.respond(200, headers, body)


async def _status(ex: Exchange) -> None:
    summary = ex.shared.config.summary()
    await _ok(ex, orjson.dumps({"name": "rawproxy", "version": __version__, "config": summary}))


async def _health(ex: Exchange) -> None:
    await _ok(ex, b'{"status":"ok"}')


async def _metrics(ex: Exchange) -> None:
    await _ok(ex, ex.shared.metrics.render(), [(b"content-type", METRICS_TYPE)])


async def _models(ex: Exchange) -> None:
    shared = ex.shared
    listed = await shared.catalog.model_names(list(shared.router.upstreams.values()))
    names = list(dict.fromkeys(shared.router.configured_models() + listed))
    try:
        limit = int(parse_qs(ex.req.query).get("limit", ["1000"])[0])
    except ValueError:
        raise ClientError("limit: expected an integer") from None
    limit = max(1, min(limit, 1000))
    anthropic = ex.req.header(b"anthropic-version") is not None
    await _ok(ex, build_model_list(names[:limit], len(names) > limit, anthropic=anthropic))


async def _count_tokens(ex: Exchange) -> None:
    """Decision 9: forwarded to an Anthropic upstream, estimated locally for an OpenAI one."""
    req, shared = ex.req, ex.shared
    request = anthropic_messages.parse_request(req.body, count_tokens=True)
    data = orjson.loads(req.body)
    decision = shared.router.decide(request.model, RequestFacts(data, "anthropic", req.headers))
    up, target = decision.upstream, decision.model
    ex.record.client_model, ex.record.upstream_model = request.model, target
    if up.protocol != "anthropic":
        await _ok(ex, orjson.dumps({"input_tokens": tokens.estimate_request_tokens(request)}))
        return
    data["model"] = target
    status, headers, body = await upstream_client.request(
        shared.client,
        "POST",
        up.url(ANTHROPIC_COUNT_TOKENS_PATH),
        headers=up.request_headers(req.headers, ex.client_key() if up.forward_client_key else None),
        body=orjson.dumps(data),
        timeout=up.timeout,
    )
    ex.record.status = status
    retry = headers.get("retry-after")
    await ex.sink.respond(status, JSON_HEADERS + ([(b"retry-after", retry.encode())] if retry else []), body)


_READ = ("GET", "HEAD")
ENDPOINTS: dict[str, Endpoint] = {
    "/": Endpoint(_READ, _status),
    "/health": Endpoint(_READ, _health),
    "/v1": Endpoint(("HEAD",), _health, others_not_found=True),
    "/metrics": Endpoint(_READ, _metrics),
    MODELS_PATH: Endpoint(_READ, _models),
    COUNT_TOKENS_PATH: Endpoint(("POST",), _count_tokens),
    **{spec.path: Endpoint(("POST",), complete) for spec in REGISTRY},
}
AUTHENTICATED_PREFIX = "/v1/"


def find(ex: Exchange, keys: list[bytes]) -> Handler:
    """The handler of the exchange's request; raises the client's error (401, 404, 405) otherwise."""
    path, method = ex.req.path, ex.req.method
    if path.startswith("/v1/v1/"):  # a base URL that already ended in /v1 (A2O-M03)
        path = path[3:]
    if path.startswith(AUTHENTICATED_PREFIX):
        authenticate(ex, keys)
    endpoint = ENDPOINTS.get(path)
    if endpoint is None or (endpoint.others_not_found and method not in endpoint.methods):
        raise ClientError(f"no such endpoint: {method} {path}", status=404, type=ir.ErrorType.NOT_FOUND)
    if method not in endpoint.methods:
        raise not_allowed(method, path, ", ".join(endpoint.methods))
    ex.spec = client_spec(path)
    return endpoint.handler
