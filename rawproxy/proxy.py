"""One exchange: route -> choose the upstream -> translate (or pass through) -> pump -> finish.

Theory of operation: ``App.handle`` gets a complete client request and a ``ResponseSink``; it never sees a
socket. The path names the client's dialect (``/v1/messages`` Anthropic, ``/v1/chat/completions``
OpenAI). The target model (after the model map) names the upstream: with both upstreams configured,
``claude*`` models go to the Anthropic one and all others to the OpenAI one. Same protocol on both sides
is a passthrough: the body goes up with only its model rewritten, and the upstream's bytes come back
untouched. Otherwise the request is translated through the IR.

Errors before the response head become a real HTTP status with the client dialect's JSON error
(A2O-S18, O2A-E02); after it, the client dialect's in-stream error event (decision 2). The stream pump
reads one upstream chunk, translates it, and awaits the sink's ``send`` (which drains) before reading
the next: that is the whole of backpressure (X-05). A client that goes away cancels this task;
unwinding ``open_stream`` closes the upstream connection (A2O-S17).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from . import __version__, ir, tokens, upstream
from .config import Config
from .dialects import PROTOCOLS, Dialect, anthropic_messages, openai_chat
from .errors import ClientError, ProxyError
from .http1 import ResponseHead
from .profiles import (
    Profile,
    output_cap,
)
from .routing import Upstream, build_upstreams, resolve_model, upstream_for
from .translate import (
    Passthrough,
    Prepared,
    StreamTranslator,
    estimate_input_tokens,
    fallback_profile,
    prepare_request,
)
from .transport import OnBody

__all__ = ["App", "ClientRequest", "ResponseSink"]

log = logging.getLogger("rawproxy")
access_log = logging.getLogger("rawproxy.access")

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ResponseSink(Protocol):
    """How the proxy talks to its client; implemented by server.py over h11."""

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


class Keepalive:
    """One ticker for every stream in flight: an ``event: ping`` (or the client dialect's equivalent)
    when a stream has written nothing for ``interval`` seconds (A2O-S16). One task for the process,
    rather than a timer per stream touched on every chunk."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._streams: dict[int, tuple[ResponseSink, StreamTranslator | Passthrough]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, sink: ResponseSink, translator: StreamTranslator | Passthrough) -> int:
        key = id(sink)
        self._streams[key] = (sink, translator)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tick())
        return key

    def remove(self, key: int) -> None:
        self._streams.pop(key, None)

    async def _tick(self) -> None:
        step = self.interval / 4
        while self._streams:
            await asyncio.sleep(step)
            now = time.monotonic()
            for sink, translator in list(self._streams.values()):
                if now - sink.last_write >= self.interval:
                    sink.send_nowait(translator.ping())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


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
    upstream_model: str = "-"
    status: int = 0
    ttft_ms: float | None = None
    usage: ir.Usage | None = None


def _client_shape(req: ClientRequest) -> Any:
    """The error shape a client understands: Anthropic's for its paths and headers, else OpenAI's."""
    if req.path.startswith("/v1/messages") or req.header(b"anthropic-version") or req.header(b"x-api-key"):
        return anthropic_messages
    return openai_chat


def _retry_after(info: ir.ErrorInfo) -> Headers:
    return [(b"retry-after", info.retry_after.encode())] if info.retry_after else []


_CLIENT_DIALECTS: dict[str, Dialect] = {
    "/v1/messages": anthropic_messages,
    "/v1/chat/completions": openai_chat,
}


class App:
    """The proxy's request handler. One per process; stateless between requests but for caches."""

    def __init__(self, config: Config, client: upstream.Client) -> None:
        self.config = config
        self.client = client
        self.upstreams = build_upstreams(config)
        # The headers of a translated call depend on the upstream alone: built once each.
        self._headers = {up.protocol: up.request_headers() for up in self.upstreams.values()}
        self._keys = [k.encode() for k in config.api_keys]
        self._models_cache: tuple[float, list[str]] | None = None
        self._counter = 0
        self.keepalive = Keepalive(config.ping_interval)

    # ------------------------------------------------------------------------------ entry point

    async def handle(self, req: ClientRequest, sink: ResponseSink) -> None:
        self._counter += 1
        record = AccessRecord(
            rid=f"{self._counter:06d}", method=req.method, path=req.path, received=req.received
        )
        try:
            await self._route(req, sink, record)
        except ProxyError as exc:
            await self._error(req, sink, exc.info, record)
        except asyncio.CancelledError:
            record.status = 499  # the client went away (nginx's code), even in the middle of a 200
            raise
        except ConnectionError:
            record.status = 499  # the client went away while we were writing to it
        except Exception:
            log.exception("bug while handling %s %s", req.method, req.path)
            info = ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="internal proxy error")
            await self._error(req, sink, info, record)
        finally:
            self._log(record)

    async def _error(
        self, req: ClientRequest, sink: ResponseSink, info: ir.ErrorInfo, record: AccessRecord
    ) -> None:
        if sink.started and not sink.discard():
            return  # mid-stream errors are written by the relay; nothing more can be said here
        status, body = _client_shape(req).build_error(info)
        record.status = status
        await sink.respond(status, JSON_HEADERS + _retry_after(info), body)

    def _log(self, record: AccessRecord) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        usage = record.usage
        access_log.info(
            "%s %s %s model=%s->%s status=%d ttft=%s dur=%.1fms in=%s out=%s cached=%s",
            record.rid,
            record.method,
            record.path,
            record.client_model,
            record.upstream_model,
            record.status,
            f"{record.ttft_ms:.1f}ms" if record.ttft_ms is not None else "-",
            (time.perf_counter() - record.received) * 1000,
            usage.input_tokens if usage else "-",
            usage.output_tokens if usage else "-",
            usage.cache_read_input_tokens if usage else "-",
        )

    # ---------------------------------------------------------------------------------- routing

    async def _route(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        path = req.path
        if path.startswith("/v1/v1/"):  # a base URL that already ended in /v1 (A2O-M03)
            path = path[3:]
        method = req.method
        if path in ("/", "/health") or (path == "/v1" and method == "HEAD"):
            if method not in ("GET", "HEAD"):
                raise ClientError(f"{method} is not allowed on {path}", status=405)
            body = self._status_body() if path == "/" else b'{"status":"ok"}'
            record.status = 200
            await sink.respond(200, JSON_HEADERS, body)
            return
        if path.startswith("/v1/"):
            self._authenticate(req)
        if path in _CLIENT_DIALECTS:
            self._require(method, "POST", path)
            await self._completion(req, _CLIENT_DIALECTS[path], sink, record)
        elif path == "/v1/messages/count_tokens":
            self._require(method, "POST", path)
            await self._count_tokens(req, sink, record)
        elif path == "/v1/models":
            if method not in ("GET", "HEAD"):
                raise ClientError(f"{method} is not allowed on {path}", status=405)
            await self._models(req, sink, record)
        else:
            raise ClientError(f"no such endpoint: {method} {path}", status=404, type=ir.ErrorType.NOT_FOUND)

    @staticmethod
    def _require(method: str, expected: str, path: str) -> None:
        if method != expected:
            raise ClientError(f"{method} is not allowed on {path}; use {expected}", status=405)

    def _authenticate(self, req: ClientRequest) -> None:
        if not self._keys:
            return
        presented = req.header(b"x-api-key")
        if presented is None:
            auth = req.header(b"authorization") or ""
            scheme, _, token = auth.partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" else None
        if presented is None:
            raise ClientError(
                "missing API key: send x-api-key or Authorization: Bearer",
                status=401,
                type=ir.ErrorType.AUTHENTICATION,
            )
        candidate = presented.encode()
        ok = False
        for key in self._keys:  # every key is compared, in constant time: no early exit to time
            ok |= hmac.compare_digest(candidate, key)
        if not ok:
            raise ClientError("invalid API key", status=401, type=ir.ErrorType.AUTHENTICATION)

    def _status_body(self) -> bytes:
        return orjson.dumps({"name": "rawproxy", "version": __version__, "config": self.config.summary()})

    def _upstream_for(self, model: str) -> Upstream:
        return upstream_for(model, self.upstreams)

    # ------------------------------------------------------------------- completions: both paths

    async def _completion(
        self, req: ClientRequest, client: Dialect, sink: ResponseSink, record: AccessRecord
    ) -> None:
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError as exc:
            raise ClientError(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ClientError("request body must be a JSON object")
        sent_model = data.get("model")
        model = sent_model or self.config.routes.default  # O2A-R27: the default when none
        if not isinstance(model, str) or not model:
            raise ClientError("model: field required (a string)")
        data["model"] = model
        target = resolve_model(model, self.config.routes)
        up = self._upstream_for(target)
        record.client_model, record.upstream_model = model or "-", target or "-"
        if PROTOCOLS[client.NAME] == up.protocol:
            body = req.body if target == sent_model else orjson.dumps({**data, "model": target})
            await self._passthrough(
                req, body, data.get("stream") is True, model, target, up, client, sink, record
            )
            return
        request = client.parse_request_data(data)
        request.model = model
        self._apply_defaults(request)
        prepared = self._prepare(client, request, target, up)
        if request.stream:
            await self._stream(req, client, up, prepared, sink, record)
        else:
            await self._unary(req, client, up, prepared, sink, record)

    def _apply_defaults(self, request: ir.Request) -> None:
        """Settings that fill what an OpenAI client's request left out (O2A-R02, O2A-R19)."""
        if request.max_tokens is None:
            request.max_tokens = self.config.default_max_tokens
        has_system = request.system or any(m.role == "system" for m in request.messages)
        if self.config.system_prompt and not has_system:
            request.system = [ir.TextBlock(text=self.config.system_prompt)]

    def _prepare(
        self, client: Dialect, request: ir.Request, target: str, up: Upstream, profile: Profile | None = None
    ) -> Prepared:
        cap = self.config.max_output_tokens or (output_cap(target) if up.protocol == "openai" else None)
        return prepare_request(
            client,
            up.dialect,
            request,
            upstream_model=target,
            profile=profile or up.profile,
            max_output_tokens=cap,
            auto_cache=self.config.auto_cache and up.protocol == "anthropic",
        )

    def _upstream_error(self, up: Upstream, status: int, body: bytes, retry_after: str | None) -> ProxyError:
        info = up.dialect.parse_error(status, body)
        info.retry_after = retry_after
        return ProxyError(info)

    async def _unary(
        self,
        req: ClientRequest,
        client: Dialect,
        up: Upstream,
        prepared: Prepared,
        sink: ResponseSink,
        record: AccessRecord,
        retried: bool = False,
    ) -> None:
        status, headers, body = await upstream.request(
            self.client, "POST", up.url(prepared.path), headers=self._headers[up.protocol], body=prepared.body
        )
        if status >= 400:
            fallback = None if retried else fallback_profile(prepared, body)
            if fallback is not None and status == 400:
                log.warning("upstream rejected a field; retrying once without it")
                prepared = self._prepare(client, prepared.request, prepared.ctx.upstream_model, up, fallback)
                await self._unary(req, client, up, prepared, sink, record, retried=True)
                return
            raise self._upstream_error(up, status, body, headers.get("retry-after"))
        response = up.dialect.parse_response(body, prepared.ctx)
        record.usage = response.usage
        record.status = 200
        await sink.respond(200, JSON_HEADERS, client.build_response(response, prepared.ctx))

    async def _stream(
        self,
        req: ClientRequest,
        client: Dialect,
        up: Upstream,
        prepared: Prepared,
        sink: ResponseSink,
        record: AccessRecord,
        retried: bool = False,
    ) -> None:
        url = up.url(prepared.path)
        relay: _Relay | None = None

        def on_head(head: ResponseHead) -> OnBody | None:
            """The common case, taken in the upstream connection's callback the moment the head
            arrives: a 200 event stream. Anything else is left to this task, below."""
            nonlocal relay
            if head.status >= 400 or b"json" in (head.get(b"content-type") or b""):
                return None
            translator = StreamTranslator(client, up.dialect, prepared.ctx)
            record.status = 200
            sink.begin(200, SSE_HEADERS)
            sink.hold(translator.start())  # written with the first token if it came with the head
            relay = _Relay(self, translator, sink, record, keepalive=True)
            return relay.on_body

        try:
            async with upstream.open_stream(
                self.client,
                "POST",
                url,
                headers=self._headers[up.protocol],
                body=prepared.body,
                meanwhile=lambda: estimate_input_tokens(prepared),
                on_head=on_head,
            ) as resp:
                if relay is not None:
                    await relay.run(resp)
                    return
                if resp.status >= 400:  # before the first byte: the real status (A2O-S18, O2A-E02)
                    body = await resp.read()
                    fallback = None if retried else fallback_profile(prepared, body)
                    if fallback is not None and resp.status == 400:
                        log.warning("upstream rejected a field; retrying once without it")
                        prepared = self._prepare(
                            client, prepared.request, prepared.ctx.upstream_model, up, fallback
                        )
                        await self._stream(req, client, up, prepared, sink, record, retried=True)
                        return
                    raise self._upstream_error(up, resp.status, body, resp.header("retry-after"))
                # the upstream ignored stream:true and answered with JSON
                translator = StreamTranslator(client, up.dialect, prepared.ctx)
                response = up.dialect.parse_response(await resp.read(), prepared.ctx)
                record.usage = response.usage
                record.status = 200
                sink.begin(200, SSE_HEADERS)
                await sink.end(translator.start() + _response_as_stream(client, response, prepared.ctx))
        finally:
            if relay is not None:
                relay.release()

    # ----------------------------------------------------------------------------- passthrough

    async def _passthrough(
        self,
        req: ClientRequest,
        body: bytes,
        stream: bool,
        model: str,
        target: str,
        up: Upstream,
        client: Dialect,
        sink: ResponseSink,
        record: AccessRecord,
    ) -> None:
        """Same protocol on both sides: the body goes up as sent (its model rewritten only when the map
        changed it), and the answer is relayed as the upstream sent it."""
        path = anthropic_messages.UPSTREAM_PATH if up.protocol == "anthropic" else openai_chat.UPSTREAM_PATH
        url = _with_query(up.url(path), req.query)
        ctx = ir.Context(client_model=model, upstream_model=target)
        headers = up.request_headers(req.headers)
        relay: _Relay | None = None

        def on_head(head: ResponseHead) -> OnBody | None:
            """A streamed 200 is relayed from the upstream connection's callback on (see _stream)."""
            nonlocal relay
            if not stream or head.status >= 400 or b"event-stream" not in (head.get(b"content-type") or b""):
                return None
            record.status = head.status
            sink.begin(head.status, upstream.relayable(head.headers))
            relay = _Relay(self, Passthrough(client, ctx), sink, record, keepalive=False)
            return relay.on_body

        try:
            async with upstream.open_stream(
                self.client,
                "POST",
                url,
                headers=headers,
                body=body,
                accept="text/event-stream" if stream else "application/json",
                on_head=on_head,
            ) as resp:
                if relay is not None:
                    await relay.run(resp)
                    return
                answer = await resp.read(self.config.max_body_bytes)
                record.status = resp.status
                try:
                    record.usage = up.dialect.event_usage(orjson.loads(answer)) if resp.status < 400 else None
                except orjson.JSONDecodeError:
                    pass
                await sink.respond(resp.status, resp.relayable_headers(), answer)
        finally:
            if relay is not None:
                relay.release()

    # -------------------------------------------------------------------------- count_tokens, models

    async def _count_tokens(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        request = anthropic_messages.parse_request(req.body, count_tokens=True)
        target = resolve_model(request.model, self.config.routes)
        record.client_model, record.upstream_model = request.model, target
        up = self._upstream_for(target)
        if up.protocol == "anthropic":  # decision 9: forwarded to an Anthropic upstream
            data = orjson.loads(req.body)
            data["model"] = target
            status, headers, body = await upstream.request(
                self.client,
                "POST",
                up.url("/v1/messages/count_tokens"),
                headers=up.request_headers(req.headers),
                body=orjson.dumps(data),
            )
            record.status = status
            retry = headers.get("retry-after")
            await sink.respond(
                status, JSON_HEADERS + ([(b"retry-after", retry.encode())] if retry else []), body
            )
            return
        count = tokens.estimate_request_tokens(request)  # decision 9: local for OpenAI upstreams
        record.status = 200
        await sink.respond(200, JSON_HEADERS, orjson.dumps({"input_tokens": count}))

    async def _openai_models(self, up: Upstream) -> list[str]:
        status, body = await upstream.fetch(self.client, up.url("/models"), headers=up.request_headers())
        data = orjson.loads(body) if status == 200 else {}
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def _anthropic_models(self, up: Upstream) -> list[str]:
        """Anthropic's paginated list (has_more, last_id -> after_id), at most ten pages (O2A-M01)."""
        names: list[str] = []
        after = ""
        for _ in range(10):
            url = up.base + "/v1/models?limit=1000" + (f"&after_id={after}" if after else "")
            status, body = await upstream.fetch(self.client, url, headers=up.request_headers())
            data = orjson.loads(body) if status == 200 else {}
            names += [
                m["id"] for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)
            ]
            if not data.get("has_more") or not data.get("last_id"):
                break
            after = str(data["last_id"])
        return names

    async def _upstream_models(self) -> list[str]:
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < self.config.models_cache_seconds:
            return self._models_cache[1]
        names: list[str] = []
        for up in self.upstreams.values():
            try:
                async with asyncio.timeout(3):  # Claude Code's picker must answer fast (A2O-M02)
                    names += await (
                        self._anthropic_models(up) if up.protocol == "anthropic" else self._openai_models(up)
                    )
            except (ProxyError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
                log.warning("could not list the %s upstream's models: %s", up.protocol, exc)
        self._models_cache = (now, names)
        return names

    async def _models(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        routes = self.config.routes
        configured = [m for m in (routes.big, routes.middle, routes.small, routes.default) if m]
        configured += list(routes.model_map) + list(routes.model_map.values())
        names = list(dict.fromkeys(configured + await self._upstream_models()))
        query = parse_qs(req.query)
        try:
            limit = int(query.get("limit", ["1000"])[0])
        except ValueError:
            raise ClientError("limit: expected an integer") from None
        limit = max(1, min(limit, 1000))
        has_more = len(names) > limit
        names = names[:limit]
        if req.header(b"anthropic-version"):
            created = "2025-01-01T00:00:00Z"
            data: dict[str, Any] = {
                "data": [{"type": "model", "id": n, "display_name": n, "created_at": created} for n in names],
                "has_more": has_more,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        else:
            data = {
                "object": "list",
                "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rawproxy"} for n in names],
            }
        record.status = 200
        await sink.respond(200, JSON_HEADERS, orjson.dumps(data))


class _Relay:
    """One stream's way from the upstream body to the client, event by event.

    Built when the upstream's head arrives, inside the upstream connection's callback; from then on
    ``on_body`` translates each read and writes it to the client in that same callback, so no task
    switch stands between the upstream's first token and ours. The exchange's task only waits in
    ``run`` (for the end, an error, or the client's ``drain()`` when it falls behind) and ends the
    response. What the sink holds (the head, the opening event) goes out with the first bytes
    translated from a read, or when the relay has to wait for the upstream, whichever comes first.
    """

    __slots__ = ("_app", "_feed", "_key", "_observe", "_one_by_one", "record", "sink", "translator")

    def __init__(
        self,
        app: App,
        translator: StreamTranslator | Passthrough,
        sink: ResponseSink,
        record: AccessRecord,
        *,
        keepalive: bool,
    ) -> None:
        self._app = app
        self.translator = translator
        self.sink = sink
        self.record = record
        self._feed = translator.feed
        self._observe = translator.observe if isinstance(translator, Passthrough) else None
        self._one_by_one = self._observe is None  # passthrough costs nothing per event: nothing to split
        self._key = app.keepalive.add(sink, translator) if keepalive else None

    def _emit(self, data: bytes, last: bool = False) -> None:
        out = self._feed(data)
        if out:
            record = self.record
            if record.ttft_ms is None:
                record.ttft_ms = (time.perf_counter() - record.received) * 1000
                self.sink.send_nowait(out)
            elif last:
                self.sink.hold(out)  # the response is complete: these bytes go out with its end
            else:
                self.sink.send_nowait(out)

    def on_body(self, chunk: bytes, last: bool) -> bool:
        rest = chunk
        if self._one_by_one and self.record.ttft_ms is None:
            # Until the client has its first bytes, the events of a read are translated one at a
            # time: the first token must not wait for the translation of the events behind it.
            start = 0
            while self.record.ttft_ms is None:
                end = chunk.find(b"\n\n", start) + 2
                if end < 2:
                    break
                self._emit(chunk[start:end])
                start = end
            rest = chunk[start:] if start else chunk
        if rest:
            self._emit(rest, last)
        if self._observe is not None:
            self._observe(chunk)
        return self.sink.backlogged

    async def run(self, resp: upstream.UpstreamResponse) -> None:
        """Until the upstream body has ended; then the client's response ends, completely or, when the
        upstream failed mid-stream, with the client dialect's error event (decision 2)."""
        try:
            try:
                await resp.relay(self.on_body, self.sink.drain, self.sink.flush)
                tail = self.translator.close()
            except ProxyError as exc:
                log.warning("upstream failed mid-stream: %s", exc.info.message)
                tail = self.translator.fail(exc.info)
        finally:
            self.release()
        await self.sink.end(tail)
        self.record.usage = self.translator.usage

    def release(self) -> None:
        if self._key is not None:
            self._app.keepalive.remove(self._key)
            self._key = None


def _with_query(url: str, query: str) -> str:
    """The client's query string on a passthrough (Claude Code's ``?beta=true``), without repeats."""
    if not query:
        return url
    base, _, own = url.partition("?")
    params = list(dict.fromkeys([p for p in own.split("&") if p] + [p for p in query.split("&") if p]))
    return f"{base}?{'&'.join(params)}"


def _response_as_stream(client: Dialect, response: ir.Response, ctx: ir.Context) -> bytes:
    """A whole response rendered as the events of a stream (for upstreams that ignore stream:true)."""
    encoder = client.StreamEncoder(ctx)
    encoder.start()
    out: list[ir.StreamEvent] = [ir.MessageStart(response.id, response.model, response.usage)]
    for index, block in enumerate(response.content):
        if isinstance(block, ir.TextBlock):
            out += [ir.BlockStart(index, ir.TextBlock(text="")), ir.TextDelta(index, block.text)]
        elif isinstance(block, ir.ThinkingBlock):
            out += [
                ir.BlockStart(index, ir.ThinkingBlock(thinking="")),
                ir.ThinkingDelta(index, block.thinking),
            ]
        elif isinstance(block, ir.ToolUseBlock):
            start = ir.ToolUseBlock(id=block.id, name=block.name, input={})
            out += [ir.BlockStart(index, start), ir.InputJsonDelta(index, orjson.dumps(block.input).decode())]
        else:
            continue
        out.append(ir.BlockStop(index))
    out += [ir.MessageDelta(response.stop_reason, response.stop_sequence, response.usage), ir.MessageStop()]
    return b"".join(encoder.encode(ev) for ev in out)
