"""The proxy's request handler: one per process, stateless between requests but for caches.

Theory of operation: ``App.handle`` gets a complete client request and a ``ResponseSink``; it never sees a
socket. It makes the request's ``Exchange`` (the per-request object), finds its handler in the endpoint
table, and turns whatever the handler raises into the client's answer: a typed ``ProxyError`` into its
status and the client dialect's JSON error (or, once the stream has begun, nothing more: the relay wrote
the in-stream error), a client that went away into a 499 in the log, anything else into a 500 and a
traceback in the log (a bug). Every exchange ends in one access-log line and one metrics observation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys

import orjson

from .. import ir
from .._types import JSON_HEADERS, AccessRecord, ClientRequest, Headers, ResponseSink
from ..carrier import GROUP_KEY_VARIABLE
from ..client import Client
from ..config import Config
from ..dialects import error_dialect
from ..errors import ProxyError
from ..observe.access import log_exchange
from ..observe.metrics import Metrics
from .catalog import Catalog
from .context import Exchange, Shared, Streams
from .endpoints import find
from .lessons import Lessons
from .loops import LoopGuard
from .state import ResponseStore

__all__ = ["App", "error_response"]

log = logging.getLogger("rawproxy")

# The key that seals reasoning state when none is configured: the process group's (workers.py passes one
# to every worker it starts), else this process's own.
_PROCESS_KEY = secrets.token_bytes(32)
# The faults that make the proxy answer 502/504 itself (no answer, no answer in time, a broken one).
_OWN_FAULTS = frozenset({"upstream_unreachable", "upstream_timeout", "upstream_protocol"})


def carrier_key(config: Config) -> bytes:
    """``--carrier-key`` when set; else the key every worker of this process group shares; else one made
    for this process (envelopes then open only here: set the key for several machines)."""
    if config.carrier_key:
        return config.carrier_key.encode()
    group = os.environ.get(GROUP_KEY_VARIABLE)
    return group.encode() if group else _PROCESS_KEY


# The proxy's own answers that another try cannot change (NET-04). The Anthropic and OpenAI SDKs obey
# ``x-should-retry`` before their status rules (anthropic-sdk-python _base_client.py ``_should_retry``),
# so a 508 (>= 500, retried by default) or a wrong key is final at once. Never on an upstream's answer.
_FINAL = frozenset({400, 401, 403, 404, 405, 413, 415, 426, 431, 505, 508})
_NO_RETRY = (b"x-should-retry", b"false")
# 426 on a WebSocket upgrade: the connection the client asked to switch is closed after the answer.
_CLOSE = (b"connection", b"close")


def error_response(req: ClientRequest, info: ir.ErrorInfo, *, own: bool = True) -> tuple[int, Headers, bytes]:
    """An error in the shape the client understands (its path and headers say which), with its own
    headers: Retry-After, a 405's Allow, and, when it is the proxy's own (``own``) and final,
    ``x-should-retry: false``."""
    status, body = error_dialect(req.path, req.header).build_error(info)
    headers = JSON_HEADERS + ([(b"retry-after", info.retry_after.encode())] if info.retry_after else [])
    if info.allow:
        headers = [*headers, (b"allow", info.allow.encode())]
    if status in _FINAL and (own or status == 508):  # a loop seen upstream runs through here too
        headers = [*headers, _NO_RETRY, *((_CLOSE,) if status == 426 else ())]
    return status, headers, body


class App:
    def __init__(self, config: Config, client: Client) -> None:
        self.upstream_client = client
        self._counter = 0
        self.metrics = Metrics()
        self.streams = Streams(config.ping_interval)
        self.catalog = Catalog(client)
        self.responses = ResponseStore(config.responses_store)
        self.lessons = Lessons()
        self.loops = LoopGuard()  # one mark for the life of the process, whatever reloads (NET-03)
        self.use(config)

    def use(self, config: Config) -> None:
        """Serve new requests with ``config`` (at start, and on a reload). Requests in flight keep the
        configuration and upstreams they began with. Raises ValueError when it cannot route."""
        router = config.router()
        self.config = config
        self.upstreams = router.upstreams
        self.streams.ping_interval = config.ping_interval  # for the streams that begin from now
        self._keys = [k.encode() for k in config.api_keys]
        self.catalog.reset(config.models_cache_seconds)
        self.responses.resize(config.responses_store)
        self._shared = Shared(
            client=self.upstream_client,
            streams=self.streams,
            catalog=self.catalog,
            responses=self.responses,
            metrics=self.metrics,
            lessons=self.lessons,
            config=config,
            router=router,
            carrier_key=carrier_key(config),
            loops=self.loops,
        )

    async def handle(self, req: ClientRequest, sink: ResponseSink) -> None:
        self._counter += 1
        shared = self._shared
        config = shared.config
        record = AccessRecord(
            rid=f"{self._counter:06d}", method=req.method, path=req.path, received=req.received
        )
        if config.log_bodies and req.body:
            from ..observe.redact import redacted_body

            logging.getLogger("rawproxy.access").info("%s body %s", record.rid, redacted_body(req.body))
        self.metrics.in_flight += 1
        recording = None
        if config.inspect:
            from ..observe.panels import RecordingSink

            sink = recording = RecordingSink(sink, config.inspect_limit)
        ex = Exchange(req=req, sink=sink, record=record, shared=shared)
        try:
            await find(ex, self._keys)(ex)
        except ProxyError as exc:
            if exc.kind != "client":
                record.error_kind = exc.kind
                if exc.kind in _OWN_FAULTS:  # a 502/504 of ours: say which upstream (NET-05), and why
                    up = f" {record.upstream}" if record.upstream != "-" else ""  # "-": a model list's
                    log.warning("%s upstream%s failed (%s): %s", record.rid, up, exc.kind, exc)
            await self._error(ex, exc.info, own=exc.kind == "client")
        except asyncio.CancelledError:
            record.status = 499  # the client went away (nginx's code), even in the middle of a 200
            raise
        except ConnectionError:
            record.status = 499  # the client went away while we were writing to it
        except Exception as exc:
            info = _bug_or_too_deep(req, exc)
            if info.status == 500:
                record.error_kind = "internal"
                log.exception("bug while handling %s %s", req.method, req.path)
            await self._error(ex, info)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe(record, log_exchange(record))
            if recording is not None:
                from ..observe.panels import render

                colour = config.colour and sys.stderr.isatty()
                panel = render(record, req.body, recording, colour=colour, limit=config.inspect_limit)
                logging.getLogger("rawproxy.inspect").info(panel)

    async def _error(self, ex: Exchange, info: ir.ErrorInfo, *, own: bool = True) -> None:
        sink = ex.sink
        if sink.started and not sink.discard():
            return  # mid-stream errors are written by the relay; nothing more can be said here
        status, headers, body = error_response(ex.req, info, own=own)
        ex.record.status = status
        await sink.respond(status, headers, body)

    def close(self) -> None:
        self.streams.close()


def _bug_or_too_deep(req: ClientRequest, exc: Exception) -> ir.ErrorInfo:
    """A 500 for a bug; a 400 for a body that nests too deep to re-serialise.

    A body may nest up to orjson's parsing limit (1024 levels), but orjson serialises at most 254 and
    Python recurses about 1000 frames deep: such a body fails where it is re-serialised or walked. Told
    apart from a bug here, on the failure path only."""
    if isinstance(exc, RecursionError | orjson.JSONEncodeError):
        try:
            orjson.dumps(orjson.loads(req.body))
        except orjson.JSONEncodeError:
            message = "request body nests deeper than 254 levels"
            return ir.ErrorInfo(status=400, type=ir.ErrorType.INVALID_REQUEST, message=message)
        except orjson.JSONDecodeError:
            pass
    return ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="internal proxy error")
