"""One exchange: route -> translate the request -> upstream -> head -> pump -> finish, and its errors.

Theory of operation: ``App.handle`` gets a complete client request and a ``ResponseSink``; it never sees a
socket. Errors before the response head become a real HTTP status with the client dialect's JSON error
(A2O-S18); errors after it become the client dialect's in-stream error event, then the end of the
message (decision 2). The stream pump reads one upstream chunk, translates it, and awaits the sink's
``send`` (which drains) before reading the next: that is the whole of backpressure (X-05). A client
that goes away cancels this task; unwinding ``open_stream`` closes the upstream connection (A2O-S17).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from . import __version__, ir, tokens, upstream
from .config import Config
from .dialects import anthropic_messages, openai_chat
from .errors import ClientError, ProxyError
from .profiles import Profile, guess_profile, output_cap
from .routing import resolve_model
from .translate import Prepared, StreamTranslator, prepare_request

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
    async def start(self, status: int, headers: Headers) -> None: ...
    async def send(self, data: bytes) -> None: ...
    async def end(self) -> None: ...
    async def respond(self, status: int, headers: Headers, body: bytes) -> None: ...


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
    """The error shape the client understands: Anthropic's for its paths and headers, else OpenAI's."""
    if req.path.startswith("/v1/messages") or req.header(b"anthropic-version") or req.header(b"x-api-key"):
        return anthropic_messages
    return openai_chat


def _retry_after(info: ir.ErrorInfo) -> Headers:
    return [(b"retry-after", info.retry_after.encode())] if info.retry_after else []


class App:
    """The proxy's request handler. One per process; stateless between requests but for caches."""

    def __init__(self, config: Config, client: upstream.Client) -> None:
        self.config = config
        self.client = client
        self.profile: Profile = guess_profile(config.openai_base, config.upstream_profile)
        self._keys = [k.encode() for k in config.api_keys]
        self._models_cache: tuple[float, list[str]] | None = None
        self._counter = 0

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
            self._log(req, record)

    async def _error(
        self, req: ClientRequest, sink: ResponseSink, info: ir.ErrorInfo, record: AccessRecord
    ) -> None:
        if sink.started:
            return  # mid-stream errors are written by the pump; nothing more can be said here
        status, body = _client_shape(req).build_error(info)
        record.status = status
        await sink.respond(status, JSON_HEADERS + _retry_after(info), body)

    def _log(self, req: ClientRequest, record: AccessRecord) -> None:
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
        if path == "/v1/messages":
            self._require(method, "POST", path)
            await self._messages(req, sink, record)
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

    # ------------------------------------------------------------------------------- /v1/messages

    def _prepare(self, request: ir.Request, record: AccessRecord, profile: Profile | None = None) -> Prepared:
        upstream_model = resolve_model(request.model, self.config.routes)
        record.client_model, record.upstream_model = request.model, upstream_model
        cap = self.config.max_output_tokens or output_cap(upstream_model)
        return prepare_request(
            anthropic_messages,
            openai_chat,
            request,
            upstream_model=upstream_model,
            profile=profile or self.profile,
            max_output_tokens=cap,
        )

    def _fallback_profile(self, prepared: Prepared, error_body: bytes) -> Profile | None:
        """A2O-R16 / A2O-S23: one retry without a field the upstream rejected, when we sent it."""
        profile = prepared.ctx.profile
        if (
            profile.replay_reasoning
            and b"reasoning_content" in error_body
            and b'"reasoning_content"' in prepared.body
        ):
            return replace(profile, replay_reasoning=False)
        if profile.stream_usage and b"stream_options" in error_body and b'"stream_options"' in prepared.body:
            return replace(profile, stream_usage=False)
        return None

    def _url(self, path: str) -> str:
        return self.config.openai_base + path

    def _upstream_error(self, status: int, body: bytes, retry_after: str | None) -> ProxyError:
        info = openai_chat.parse_error(status, body)
        info.retry_after = retry_after
        return ProxyError(info)

    async def _messages(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        request = anthropic_messages.parse_request(req.body)
        prepared = self._prepare(request, record)
        if request.stream:
            await self._stream(prepared, sink, record)
        else:
            await self._unary(prepared, sink, record)

    async def _unary(
        self, prepared: Prepared, sink: ResponseSink, record: AccessRecord, retried: bool = False
    ) -> None:
        status, headers, body = await upstream.request(
            self.client, "POST", self._url(prepared.path), api_key=self.config.openai_key, body=prepared.body
        )
        if status >= 400:
            fallback = None if retried else self._fallback_profile(prepared, body)
            if fallback is not None and status == 400:
                log.warning("upstream rejected a field; retrying once without it")
                await self._unary(
                    self._prepare(prepared.request, record, fallback), sink, record, retried=True
                )
                return
            raise self._upstream_error(status, body, headers.get("retry-after"))
        response = openai_chat.parse_response(body, prepared.ctx)
        record.usage = response.usage
        record.status = 200
        await sink.respond(200, JSON_HEADERS, anthropic_messages.build_response(response, prepared.ctx))

    async def _stream(
        self, prepared: Prepared, sink: ResponseSink, record: AccessRecord, retried: bool = False
    ) -> None:
        url = self._url(prepared.path)
        async with upstream.open_stream(
            self.client, "POST", url, api_key=self.config.openai_key, body=prepared.body
        ) as resp:
            if resp.status >= 400:  # before the first byte: the real status (A2O-S18)
                body = await resp.read()
                fallback = None if retried else self._fallback_profile(prepared, body)
                if fallback is not None and resp.status == 400:
                    log.warning("upstream rejected a field; retrying once without it")
                    await self._stream(
                        self._prepare(prepared.request, record, fallback), sink, record, retried=True
                    )
                    return
                raise self._upstream_error(resp.status, body, resp.header("retry-after"))
            translator = StreamTranslator(anthropic_messages, openai_chat, prepared.ctx)
            content_type = resp.header("content-type") or ""
            if "json" in content_type:  # the upstream ignored stream:true; stream its answer anyway
                body = await resp.read()
                response = openai_chat.parse_response(body, prepared.ctx)
                record.usage = response.usage
                record.status = 200
                await sink.start(200, SSE_HEADERS)
                await sink.send(translator.start() + _response_as_stream(response, prepared.ctx))
                await sink.end()
                return
            record.status = 200
            await sink.start(200, SSE_HEADERS)
            await sink.send(translator.start())
            await self._pump(resp, translator, sink, record)
        record.usage = translator.usage

    async def _pump(
        self,
        resp: upstream.UpstreamResponse,
        translator: StreamTranslator,
        sink: ResponseSink,
        record: AccessRecord,
    ) -> None:
        last_send = time.monotonic()
        ping_task = asyncio.create_task(self._keepalive(translator, sink, lambda: last_send))
        try:
            try:
                async for chunk in resp.chunks():
                    out = translator.feed(chunk)
                    if out:
                        if record.ttft_ms is None:
                            record.ttft_ms = (time.perf_counter() - record.received) * 1000
                        await sink.send(out)
                        last_send = time.monotonic()
                tail = translator.close()
            except ProxyError as exc:  # the upstream died mid-stream (decision 2)
                log.warning("upstream failed mid-stream: %s", exc.info.message)
                tail = translator.fail(exc.info)
        finally:
            ping_task.cancel()
        await sink.send(tail)
        await sink.end()

    async def _keepalive(self, translator: StreamTranslator, sink: ResponseSink, last_send: Any) -> None:
        """``event: ping`` while the upstream is silent (reasoning models): A2O-S16."""
        interval = self.config.ping_interval
        while True:
            await asyncio.sleep(max(interval - (time.monotonic() - last_send()), 0.01))
            if time.monotonic() - last_send() >= interval:
                await sink.send(translator.ping())

    # -------------------------------------------------------------------------- count_tokens, models

    async def _count_tokens(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        request = anthropic_messages.parse_request(req.body, count_tokens=True)
        record.client_model = request.model
        record.upstream_model = resolve_model(request.model, self.config.routes)
        count = tokens.estimate_request_tokens(request)  # decision 9: local for OpenAI upstreams
        record.status = 200
        await sink.respond(200, JSON_HEADERS, orjson.dumps({"input_tokens": count}))

    async def _upstream_models(self) -> list[str]:
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < self.config.models_cache_seconds:
            return self._models_cache[1]
        names: list[str] = []
        try:
            async with asyncio.timeout(3):  # Claude Code's picker must answer fast (A2O-M02)
                status, _, body = await upstream.request(
                    self.client, "GET", self._url("/models"), api_key=self.config.openai_key
                )
            data = orjson.loads(body) if status == 200 else {}
            names = [
                m["id"] for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)
            ]
        except (ProxyError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
            log.warning("could not list the upstream's models: %s", exc)
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


def _response_as_stream(response: ir.Response, ctx: ir.Context) -> bytes:
    """A whole response rendered as the events of a stream (for upstreams that ignore stream:true)."""
    encoder = anthropic_messages.StreamEncoder(ctx)
    encoder.start()
    out: list[ir.StreamEvent] = []
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
