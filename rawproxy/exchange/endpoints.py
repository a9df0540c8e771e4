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
- An absolute-form target (``POST http://host/v1/messages``, RFC 9112 3.2.2: a server must accept it) is
  served by its path, as if it were the origin form (the server loop takes the path out of it); the
  authority is not checked, and the access log shows the path.
- A body in a content coding (``Content-Encoding: gzip`` or ``deflate``, RFC 9110 8.4) is decoded before
  anyone reads it, and the body limit holds for what it decodes to as well (413, inflating no more than
  the limit and a byte); another coding is a 415 that names it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson

from .. import __version__, ir, tokens
from .. import client as upstream_client
from .._types import JSON_HEADERS, ClientRequest
from ..dialects import (
    ANTHROPIC_COUNT_TOKENS_PATH,
    COUNT_TOKENS_PATH,
    MODELS_PATH,
    REGISTRY,
    VERSION_PREFIX,
    anthropic_messages,
    build_model_list,
    client_spec,
    load_json_object,
    spec_named,
)
from ..dialects.openai_responses.codex_models import codex_catalog
from ..dialects.openai_responses.codex_models import instructions as codex_instructions
from ..dialects.openai_responses.compaction import COMPACT_ENDPOINT_MARK
from ..errors import ClientError, UpstreamProtocolError, UpstreamStatus
from ..http1 import CONTENT_CODINGS, decode_content
from ..models import family_of
from ..observe.metrics import CONTENT_TYPE as METRICS_TYPE
from ..routing import RequestFacts
from .completion import complete
from .context import Exchange, Shared

log = logging.getLogger("rawproxy")

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
    listed, wrong, failed = await shared.catalog.model_names(list(shared.router.upstreams.values()))
    if wrong is not None:  # an upstream answered a list of the wrong shape (issue 19)
        raise UpstreamProtocolError(f"cannot list the models: {wrong}")
    configured = shared.router.configured_models()
    if failed is not None and not configured:  # nothing to list: the upstream's failure, not [] (issue 18)
        raise failed
    names = list(dict.fromkeys(configured + listed))
    query = parse_qs(ex.req.query)
    if "client_version" in query:  # Codex's catalog (CX-03)
        await _ok(ex, _codex_catalog(shared, names))
        return
    try:
        limit = int(query.get("limit", ["1000"])[0])
    except ValueError:
        raise ClientError("limit: expected an integer") from None
    limit = max(1, min(limit, 1000))
    anthropic = ex.req.header(b"anthropic-version") is not None
    await _ok(ex, build_model_list(names[:limit], len(names) > limit, anthropic=anthropic))


CODEX_CATALOG_BYTES = 1_000_000  # Codex reads at most 1 MiB of catalog (codex-rs models_endpoint.rs)


def _codex_catalog(shared: Shared, names: list[str]) -> bytes:
    """Each name with the capabilities of the model it reaches (the router decides, as for a request),
    the configured names first; as many as fit Codex's limit (an entry carries ~17 KB of instructions)."""
    per_entry = len(codex_instructions()) + 2048
    room = max(1, CODEX_CATALOG_BYTES // per_entry)
    if len(names) > room:
        log.info("the Codex catalog lists %d of %d models (Codex reads 1 MiB at most)", room, len(names))
    served = []
    for name in names[:room]:
        decision = shared.router.decide(name)
        served.append((name, family_of(decision.model), f"{decision.upstream.name}: {decision.model}"))
    return codex_catalog(served)


async def _count_tokens(ex: Exchange) -> None:
    """Decision 9: forwarded to an Anthropic upstream, estimated locally for an OpenAI one."""
    req, shared = ex.req, ex.shared
    request = anthropic_messages.parse_request(req.body, count_tokens=True)
    data = orjson.loads(req.body)
    decision = shared.router.decide(request.model, RequestFacts(data, "anthropic", req.headers))
    up, target = decision.upstream, decision.model
    ex.record.client_model, ex.record.upstream_model = request.model, target
    ex.record.upstream = up.name
    if up.protocol != "anthropic":
        await _ok(ex, orjson.dumps({"input_tokens": tokens.estimate_request_tokens(request)}))
        return
    data["model"] = target
    status, headers, body = await upstream_client.request(
        shared.client,
        "POST",
        up.url(ANTHROPIC_COUNT_TOKENS_PATH),
        headers=ex.upstream_headers(
            up.request_headers(req.headers, ex.client_key() if up.forward_client_key else None)
        ),
        body=orjson.dumps(data),
        timeout=up.timeout,
        route=up.route,
    )
    _check_count(status, headers, body)
    ex.record.status = status
    retry = headers.get("retry-after")
    await ex.sink.respond(status, JSON_HEADERS + ([(b"retry-after", retry.encode())] if retry else []), body)


def _check_count(status: int, headers: dict[str, str], body: bytes) -> None:
    """The upstream's count_tokens answer is relayed as it came only when it is JSON: a count (an object
    with an integer ``input_tokens``), or an error body (its status kept). A body that is not JSON (a
    gateway's HTML page) cannot be relayed as ``application/json``: a 200 of that kind, or a 200 that is
    no count, is a 502; an error status keeps its status (and its Retry-After) in Anthropic's shape."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        kind = headers.get("content-type") or "no content-type"
        what = f"a body that is not JSON ({kind})" if body else "no body"
        message = f"upstream answered count_tokens with HTTP {status} and {what}"
        if status < 400:
            raise UpstreamProtocolError(message) from None
        info = anthropic_messages.parse_error(status, b"")  # the status kept, its type by the status
        info.message, info.retry_after = message, headers.get("retry-after")
        raise UpstreamStatus(info) from None
    if status < 400:
        count = answer.get("input_tokens") if isinstance(answer, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise UpstreamProtocolError("upstream answered count_tokens without an integer input_tokens")


async def _compact(ex: Exchange) -> None:
    """``POST /v1/responses/compact`` (CX-02; the OpenAI SDK's ``responses.compact``, newer Codex builds):
    the conversation, compacted by the upstream model as a ``compaction_trigger`` is, answered whole as a
    ``response.compaction`` object with exactly one ``compaction`` item."""
    data = load_json_object(ex.req.body)
    conversation = data.get("input")
    if isinstance(conversation, str):
        conversation = [{"role": "user", "content": conversation}]
    if not isinstance(conversation, list) or not conversation:
        raise ClientError("input: field required (the conversation to compact)")
    data.update(input=[*conversation, {"type": "compaction_trigger"}], stream=False)
    data[COMPACT_ENDPOINT_MARK] = True
    ex.req.body = orjson.dumps(data)
    ex.spec = spec_named("openai_responses")
    await complete(ex)


_READ = ("GET", "HEAD")
ENDPOINTS: dict[str, Endpoint] = {
    "/": Endpoint(_READ, _status),
    "/health": Endpoint(_READ, _health),
    "/v1": Endpoint(("HEAD",), _health, others_not_found=True),
    "/metrics": Endpoint(_READ, _metrics),
    MODELS_PATH: Endpoint(_READ, _models),
    COUNT_TOKENS_PATH: Endpoint(("POST",), _count_tokens),
    **{spec.path: Endpoint(("POST",), complete) for spec in REGISTRY},
    spec_named("openai_responses").path + "/compact": Endpoint(("POST",), _compact),
}
AUTHENTICATED_PREFIX = "/v1/"
# Where Codex opens its Responses WebSocket (a ``GET`` with ``Upgrade: websocket``), under a base URL with
# or without /v1 (CX-01).
_WEBSOCKET_PATHS = frozenset(
    path
    for spec in REGISTRY
    if spec.protocol == "openai_responses"
    for path in (spec.path, spec.path.removeprefix(VERSION_PREFIX))
)


def find(ex: Exchange, keys: list[bytes]) -> Handler:
    """The handler of the exchange's request; raises the client's error (401, 404, 405, and 413, 415 or
    400 for a body in a content coding) otherwise."""
    req = ex.req
    path, method = req.path, req.method  # an absolute-form target is its path already (server/loop.py)
    if path.startswith("/v1/v1/"):  # a base URL that already ended in /v1 (A2O-M03)
        path = path[3:]
    if path.startswith(AUTHENTICATED_PREFIX):
        authenticate(ex, keys)
    if path in _WEBSOCKET_PATHS and method == "GET" and _asks_websocket(req):
        raise _no_websocket()
    endpoint = ENDPOINTS.get(path)
    if endpoint is None or (endpoint.others_not_found and method not in endpoint.methods):
        raise ClientError(f"no such endpoint: {method} {path}", status=404, type=ir.ErrorType.NOT_FOUND)
    if method not in endpoint.methods:
        raise not_allowed(method, path, ", ".join(endpoint.methods))
    ex.spec = client_spec(path)
    if method == "POST":  # what may go upstream: refused here if it has been here before (NET-03)
        ex.via = ex.shared.loops.forward(req.headers)
    _decode_body(req, ex.shared.config.max_body_bytes)
    return endpoint.handler


def _asks_websocket(req: ClientRequest) -> bool:
    upgrade = req.header(b"upgrade")
    return upgrade is not None and "websocket" in upgrade.lower()


def _no_websocket() -> ClientError:
    """CX-01: Codex's built-in ``openai`` provider first opens its Responses WebSocket; only a 426 on that
    handshake makes it fall back to HTTP at once (openai/codex#10824, "Fallback to HTTP on
    UPGRADE_REQUIRED"; its client looks at the status alone, openai/codex#43353). A 405 or 404 costs five
    reconnects, about 6.5 s (qxcnm/Codex-Manager#91). No ``Upgrade`` header is sent: there is no protocol
    to switch to, only plain HTTP; the connection is closed after the answer (app.py)."""
    return ClientError(
        "this proxy does not serve the Responses WebSocket; POST the request over HTTP instead",
        status=426,
        type=ir.ErrorType.INVALID_REQUEST,
    )


def _decode_body(req: ClientRequest, limit: int) -> None:
    """The request's body with its content coding undone (gzip or deflate), held to ``limit`` bytes
    once decoded too: a zip bomb is inflated to ``limit + 1`` bytes at most, then refused (413)."""
    named = [v for k, v in req.headers if k == b"content-encoding"]
    coding = b", ".join(named).decode("latin-1").strip().lower()
    if coding in ("", "identity") or not req.body:
        return
    if coding not in CONTENT_CODINGS:
        raise ClientError(
            f"Content-Encoding {coding!r} is not supported: send the body uncompressed, or gzip or deflate",
            status=415,
        )
    try:
        body = decode_content(coding, req.body, limit)
    except ValueError as exc:
        raise ClientError(f"request body (Content-Encoding: {coding}): {exc}") from None
    if len(body) > limit:
        raise ClientError(
            f"request body exceeds {limit} bytes once decoded (Content-Encoding: {coding})",
            status=413,
            type=ir.ErrorType.REQUEST_TOO_LARGE,
        )
    req.body = body
