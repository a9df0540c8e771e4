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
import email.utils
import functools
import hmac
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from . import __version__, compact, ir, tokens, upstream
from .config import Config
from .dialects import (
    DIALECTS,
    PROTOCOLS,
    ClientDialect,
    Dialect,
    anthropic_messages,
    openai_chat,
    openai_responses,
)
from .errors import ClientError, ProxyError
from .http1 import ResponseHead
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics
from .profiles import (
    Profile,
    output_cap,
)
from .response_store import ResponseStore
from .routing import Decision, RequestFacts, Router, Upstream
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


class StreamWatch:
    """One ticker for every stream in flight, rather than timers per stream touched on every chunk:
    an ``event: ping`` (or the client dialect's equivalent) when a translated stream has written
    nothing for ``interval`` seconds (A2O-S16), and the end, as an upstream timeout (decision 6), of
    any stream that has run longer than its ``max_stream_seconds``. A quarter of the shorter of the
    two is the ticker's step, so either is acted on at most that late."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._relays: set[_Relay] = set()
        self._step = interval / 4
        self._task: asyncio.Task[None] | None = None

    def add(self, relay: _Relay) -> None:
        self._relays.add(relay)
        step = min(self.interval, relay.limit) / 4
        if step < self._step:
            self._step = step
            if self._task is not None:  # from now, not after the coarser sleep already begun
                self._task.cancel()
                self._task = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tick())

    def remove(self, relay: _Relay) -> None:
        self._relays.discard(relay)

    async def _tick(self) -> None:
        task = asyncio.current_task()
        try:
            while self._relays:
                await asyncio.sleep(self._step)
                now = time.monotonic()
                for relay in list(self._relays):
                    if now >= relay.deadline:
                        self._relays.discard(relay)
                        relay.expire()
                    elif relay.pings and now - relay.sink.last_write >= self.interval:
                        relay.sink.send_nowait(relay.translator.ping())
        finally:
            if self._task is task:
                self._task = None

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
    upstream: str = "-"  # the configured upstream's name
    upstream_model: str = "-"
    status: int = 0
    ttft_ms: float | None = None
    usage: ir.Usage | None = None


def _client_shape(req: ClientRequest) -> Any:
    """The error shape a client understands: Anthropic's for its paths and headers, else OpenAI's."""
    if req.path.startswith("/v1/messages") or req.header(b"anthropic-version") or req.header(b"x-api-key"):
        return anthropic_messages
    return openai_chat


def _retry_after_header(info: ir.ErrorInfo) -> Headers:
    """The error response's own headers: Retry-After, and a 405's Allow."""
    out = [(b"retry-after", info.retry_after.encode())] if info.retry_after else []
    return [*out, (b"allow", info.allow.encode())] if info.allow else out


def _not_allowed(method: str, path: str, allowed: str) -> ClientError:
    error = ClientError(f"{method} is not allowed on {path}; use {allowed}", status=405)
    error.info.allow = allowed
    return error


# Failures before the first byte that another try may cure: timeouts, rate limits, server errors
# (the official SDKs' set, without 409). The translated statuses (503 -> 529, 408 -> 504) are in it too.
SAFE_MAX_TOKENS = 8192  # a max_tokens every model in use accepts: no cap needs looking up
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})


class _Retry(Exception):
    """A try failed before anything reached the client, in a way another try may cure. ``answer`` is a
    passthrough's error response (status, headers, body), relayed as it came if no other try follows."""

    def __init__(self, info: ir.ErrorInfo, answer: tuple[int, Headers, bytes] | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.answer = answer


def _retry_after(headers: dict[str, str]) -> str | None:
    """The upstream's wait, in seconds as text: ``retry-after-ms`` (OpenAI's) or ``retry-after``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return f"{float(ms) / 1000:g}"
        except ValueError:
            pass
    return headers.get("retry-after")


def _parse_retry_after(value: str) -> float | None:
    """Seconds from ``Retry-After``: a number, or an HTTP date (RFC 9110 10.2.3); None if neither."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _client_key(req: ClientRequest) -> str | None:
    """The key the client presented (``x-api-key`` or ``Authorization: Bearer``), for an upstream
    that forwards it."""
    key = req.header(b"x-api-key")
    if key:
        return key
    scheme, _, token = (req.header(b"authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _override(data: dict[str, Any], client: ClientDialect, overrides: tuple[tuple[str, float], ...]) -> None:
    """A route's parameter overrides, written into the client's request in its own dialect."""
    for name, value in overrides:
        if name == "max_tokens" and client is openai_chat:
            data.pop("max_completion_tokens", None)
        if name == "max_tokens" and client is openai_responses:
            name = "max_output_tokens"
        data[name] = value


def _reported_caps(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Output caps a ``/models`` list reports: ``max_completion_tokens`` (Groq, and OpenRouter's
    ``top_provider``), ``max_output_tokens`` (LiteLLM's ``model_info``), ``max_tokens`` (Anthropic's).
    Context windows (vLLM's ``max_model_len``, ``context_length``) are not output caps."""
    caps: dict[str, int] = {}
    for entry in entries:
        for holder in (entry, entry.get("top_provider"), entry.get("model_info")):
            if not isinstance(holder, dict):
                continue
            value = next(
                (
                    holder[k]
                    for k in ("max_completion_tokens", "max_output_tokens", "max_tokens")
                    if k in holder
                ),
                None,
            )
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                caps[entry["id"]] = value
                break
    return caps


_CLIENT_DIALECTS: dict[str, ClientDialect] = {
    "/v1/messages": anthropic_messages,
    "/v1/chat/completions": openai_chat,
    "/v1/responses": openai_responses,
}


class App:
    """The proxy's request handler. One per process; stateless between requests but for caches."""

    def __init__(self, config: Config, client: upstream.Client) -> None:
        self.client = client
        self._counter = 0
        self.streams = StreamWatch(config.ping_interval)
        self._caps: dict[str, tuple[float, dict[str, int]]] = {}  # upstream name -> reported output caps
        self._caps_pending: dict[str, asyncio.Task[dict[str, int]]] = {}
        self.metrics = Metrics()
        self.responses = ResponseStore(config.responses_store)
        self.use(config)

    @functools.cached_property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop this App serves on (first asked for from inside it), kept: in Python 3.11 every
        ``get_running_loop()`` is a ``getpid()`` system call."""
        return asyncio.get_running_loop()

    def use(self, config: Config) -> None:
        """Serve new requests with ``config`` (at start, and on a reload). Requests in flight keep the
        upstreams they were routed to. Raises ValueError when the configuration cannot route."""
        router = Router(config)
        self.config, self.router = config, router
        self.upstreams = router.upstreams
        self._keys = [k.encode() for k in config.api_keys]
        self._models_cache: tuple[float, list[str]] | None = None
        self._caps.clear()
        self.responses.resize(config.responses_store)

    # ------------------------------------------------------------------------------ entry point

    async def handle(self, req: ClientRequest, sink: ResponseSink) -> None:
        self._counter += 1
        record = AccessRecord(
            rid=f"{self._counter:06d}", method=req.method, path=req.path, received=req.received
        )
        if self.config.log_bodies and req.body:
            from .redact import redacted_body

            access_log.info("%s body %s", record.rid, redacted_body(req.body))
        self.metrics.in_flight += 1
        recording = None
        if self.config.inspect:
            from .panels import RecordingSink

            sink = recording = RecordingSink(sink, self.config.inspect_limit)
        try:
            await self._route(req, sink, record)
        except ProxyError as exc:
            await self._error(req, sink, exc.info, record)
        except asyncio.CancelledError:
            record.status = 499  # the client went away (nginx's code), even in the middle of a 200
            raise
        except ConnectionError:
            record.status = 499  # the client went away while we were writing to it
        except Exception as exc:
            info = ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="internal proxy error")
            if isinstance(exc, RecursionError | orjson.JSONEncodeError):
                # A body may nest up to orjson's parsing limit (1024 levels), but orjson serialises at
                # most 254 and Python recurses about 1000 frames deep: such a body fails where it is
                # re-serialised or walked. Told apart from a bug here, on the failure path only.
                try:
                    orjson.dumps(orjson.loads(req.body))
                except orjson.JSONEncodeError:
                    message = "request body nests deeper than 254 levels"
                    info = ir.ErrorInfo(status=400, type=ir.ErrorType.INVALID_REQUEST, message=message)
                except orjson.JSONDecodeError:
                    pass
            if info.status == 500:
                log.exception("bug while handling %s %s", req.method, req.path)
            await self._error(req, sink, info, record)
        finally:
            self.metrics.in_flight -= 1
            self._log(record)
            if recording is not None:
                self._panel(record, req, recording)

    def _panel(self, record: AccessRecord, req: ClientRequest, recording: Any) -> None:
        """--inspect: the exchange as a panel on stderr (panels.py)."""
        from .panels import render

        colour = self.config.colour and sys.stderr.isatty()
        panel = render(record, req.body, recording, colour=colour, limit=self.config.inspect_limit)
        logging.getLogger("rawproxy.inspect").info(panel)

    async def _error(
        self, req: ClientRequest, sink: ResponseSink, info: ir.ErrorInfo, record: AccessRecord
    ) -> None:
        if sink.started and not sink.discard():
            return  # mid-stream errors are written by the relay; nothing more can be said here
        status, body = _client_shape(req).build_error(info)
        record.status = status
        await sink.respond(status, JSON_HEADERS + _retry_after_header(info), body)

    def _log(self, record: AccessRecord) -> None:
        duration_ms = (time.perf_counter() - record.received) * 1000
        self.metrics.observe(record, duration_ms)
        if not access_log.isEnabledFor(logging.INFO):
            return
        usage = record.usage
        fields = {
            "rid": record.rid,
            "method": record.method,
            "path": record.path,
            "client_model": record.client_model,
            "upstream": record.upstream,
            "upstream_model": record.upstream_model,
            "status": record.status,
            "ttft_ms": round(record.ttft_ms, 2) if record.ttft_ms is not None else None,
            "duration_ms": round(duration_ms, 2),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "cached_tokens": usage.cache_read_input_tokens if usage else None,
        }
        access_log.info(
            "%s %s %s model=%s->%s status=%d ttft=%s dur=%.1fms in=%s out=%s cached=%s",
            record.rid,
            record.method,
            record.path,
            record.client_model,
            record.upstream_model,
            record.status,
            f"{record.ttft_ms:.1f}ms" if record.ttft_ms is not None else "-",
            duration_ms,
            usage.input_tokens if usage else "-",
            usage.output_tokens if usage else "-",
            usage.cache_read_input_tokens if usage else "-",
            extra={"access": fields},  # --log-format json writes these fields instead of the text
        )

    # ---------------------------------------------------------------------------------- routing

    async def _route(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        path = req.path
        if path.startswith("/v1/v1/"):  # a base URL that already ended in /v1 (A2O-M03)
            path = path[3:]
        method = req.method
        if path in ("/", "/health") or (path == "/v1" and method == "HEAD"):
            if method not in ("GET", "HEAD"):
                raise _not_allowed(method, path, "GET, HEAD")
            body = self._status_body() if path == "/" else b'{"status":"ok"}'
            record.status = 200
            await sink.respond(200, JSON_HEADERS, body)
            return
        if path == "/metrics":
            if method not in ("GET", "HEAD"):
                raise _not_allowed(method, path, "GET, HEAD")
            record.status = 200
            await sink.respond(200, [(b"content-type", METRICS_TYPE)], self.metrics.render())
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
                raise _not_allowed(method, path, "GET, HEAD")
            await self._models(req, sink, record)
        else:
            raise ClientError(f"no such endpoint: {method} {path}", status=404, type=ir.ErrorType.NOT_FOUND)

    @staticmethod
    def _require(method: str, expected: str, path: str) -> None:
        if method != expected:
            raise _not_allowed(method, path, expected)

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

    # ------------------------------------------------------------------- completions: both paths

    async def _completion(
        self, req: ClientRequest, client: ClientDialect, sink: ResponseSink, record: AccessRecord
    ) -> None:
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError as exc:
            raise ClientError(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ClientError("request body must be a JSON object")
        sent_model = data.get("model")
        if sent_model is not None and not isinstance(sent_model, str):  # not the default for a false 0
            raise ClientError(f"model: expected a string, got {type(sent_model).__name__}")
        model = sent_model or self.config.routes.default  # O2A-R27: the default when none
        if not isinstance(model, str) or not model:
            raise ClientError("model: field required (a string)")
        data["model"] = model
        messages = data.get("messages")
        if client is openai_responses:  # an input string or items; checked by its parser
            self._previous_response(data)
            messages = []
        elif not isinstance(messages, list) or not messages:  # both APIs' rule, a passthrough's too
            raise ClientError("messages: field required (a non-empty list of messages)")
        router = self.router
        protocol = PROTOCOLS[client.NAME]
        facts = RequestFacts(data, "anthropic" if protocol == "anthropic" else "openai")
        decision = router.decide(model, facts)

        def blank(message: Any) -> bool:
            """A turn translation drops whole (A2O-R03, O2A-R06): no tool call, no text but spaces."""
            if not isinstance(message, dict) or message.get("role") in ("system", "developer"):
                return isinstance(message, dict)  # what is not an object is the parser's to name
            if message.get("role") not in ("user", "assistant") or message.get("tool_calls"):
                return False
            if "content" not in message and protocol == "anthropic":
                return False  # required: the parser says so
            content = message.get("content")
            if content is None or isinstance(content, str):
                return not (content or "").strip()
            return isinstance(content, list) and all(
                isinstance(p, dict)
                and p.get("type") in ("text", "input_text")
                and not str(p.get("text")).strip()
                for p in content
            )

        if messages and decision.upstream.protocol != protocol and all(map(blank, messages)):
            # Nothing left once translated: the upstream would get no message, which it refuses.
            raise ClientError("messages: every message is empty; there is nothing to answer")
        rewritten = model != sent_model
        if decision.overrides:
            _override(data, client, decision.overrides)
            rewritten = True
        if decision.compact and (
            compact.compact_anthropic_body(data)
            if protocol == "anthropic"
            else compact.compact_openai_body(data)
        ):
            rewritten = True
        record.client_model, record.upstream_model = model, decision.model
        await self._with_retries(req, client, data, rewritten, decision, sink, record)

    async def _with_retries(
        self,
        req: ClientRequest,
        client: ClientDialect,
        data: dict[str, Any],
        rewritten: bool,
        decision: Decision,
        sink: ResponseSink,
        record: AccessRecord,
    ) -> None:
        """The route's upstream, then its fallbacks; each upstream tried again up to its ``retries``
        with capped exponential backoff and jitter, honouring ``Retry-After``. Only a failure before the
        first byte reached the client moves on (connect error, timeout, 429, 5xx); after it, never."""
        tries = [(decision.upstream, decision.model), *decision.fallbacks]
        request: ir.Request | None = None  # parsed once, when a translated try first needs it
        failure: _Retry | None = None
        for number, (up, target) in enumerate(tries):
            for attempt in range(up.retries + 1):
                final = number == len(tries) - 1 and attempt == up.retries
                record.upstream, record.upstream_model = up.name, target
                try:
                    if PROTOCOLS[client.NAME] == up.protocol:
                        body = (
                            orjson.dumps({**data, "model": target})
                            if rewritten or target != data["model"]
                            else req.body
                        )
                        same = DIALECTS[client.NAME]  # the same protocol: a dialect of both roles
                        await self._passthrough(req, body, data, target, up, same, sink, record, final)
                    else:
                        if request is None:
                            request = client.parse_request_data(data)
                            request.model = data["model"]
                            self._apply_defaults(request)
                        prepared = self._prepare(
                            client,
                            request,
                            target,
                            up,
                            cap=await self._output_cap(up, target, request.max_tokens),
                        )
                        key = _client_key(req) if up.forward_client_key else None
                        if request.stream:
                            await self._stream(req, client, up, prepared, sink, record, key, final)
                        else:
                            await self._unary(req, client, up, prepared, sink, record, key, final)
                        if request.echo:
                            self._remember(data, request.echo)
                    return
                except _Retry as exc:
                    failure = exc
                    self.metrics.upstream_error(up.name, exc.info)
                except ProxyError as exc:
                    if not isinstance(exc, ClientError):
                        self.metrics.upstream_error(up.name, exc.info)
                    if final or exc.info.status not in RETRYABLE or (sink.started and not sink.discard()):
                        raise
                    failure = _Retry(exc.info)
                if attempt == up.retries:
                    break
                delay = self._backoff(attempt, failure.info.retry_after)
                if delay is None:
                    log.warning(
                        "upstream %s: %s; Retry-After is too long to wait", up.name, failure.info.message
                    )
                    break
                log.warning("upstream %s: %s; retrying in %.2fs", up.name, failure.info.message, delay)
                await asyncio.sleep(delay)
            if number + 1 < len(tries):
                assert failure is not None
                log.warning(
                    "upstream %s: %s; falling back to %s",
                    up.name,
                    failure.info.message,
                    tries[number + 1][0].name,
                )
        assert failure is not None
        if failure.answer is not None:  # a passthrough whose tries ended early (a Retry-After too long)
            status, headers, body = failure.answer
            record.status = status
            await sink.respond(status, headers, body)  # the last upstream error, untouched
            return
        raise ProxyError(failure.info)

    def _previous_response(self, data: dict[str, Any]) -> None:
        """A Responses request's ``input`` as a list of items, after the conversation its
        ``previous_response_id`` names (the store's: 400 when it is off or does not know the id)."""
        given = data.get("input")
        items = [{"type": "message", "role": "user", "content": given}] if isinstance(given, str) else given
        previous = data.get("previous_response_id")
        if previous is not None:
            if not isinstance(previous, str) or not previous:
                raise ClientError("previous_response_id: expected a response id")
            if self.responses.size <= 0:
                raise ClientError(
                    "previous_response_id: this proxy keeps no responses (start it with --responses-store N, "
                    "or send the whole conversation as input)"
                )
            earlier = self.responses.get(previous)
            if earlier is None:
                raise ClientError(f"previous_response_id: no response {previous!r} is known to this proxy")
            items = earlier + (items if isinstance(items, list) else [])
        if items is not None:
            data["input"] = items

    def _remember(self, data: dict[str, Any], echo: dict[str, Any]) -> None:
        """A finished Responses answer, kept for a later ``previous_response_id`` (unless ``store:
        false``, or the store is off)."""
        output = echo.get("output")
        if output is None or not echo.get("store") or self.responses.size <= 0:
            return
        given = data.get("input")
        self.responses.put(str(echo["id"]), [*(given if isinstance(given, list) else []), *output])

    def _backoff(self, attempt: int, retry_after: str | None) -> float | None:
        """The official SDKs' schedule: min(base * 2^n, max) less up to 25 % jitter. A Retry-After the
        upstream sent wins when it is within the cap; a longer one means: do not wait, move on."""
        cap = self.config.retry_backoff_max
        if retry_after:
            wait = _parse_retry_after(retry_after)
            if wait is not None:
                return wait if wait <= cap else None
        return min(self.config.retry_backoff * (1 << min(attempt, 30)), cap) * (1 - 0.25 * random.random())

    def _apply_defaults(self, request: ir.Request) -> None:
        """Settings that fill what an OpenAI client's request left out (O2A-R02, O2A-R19)."""
        if request.max_tokens is None:
            request.max_tokens = self.config.default_max_tokens
        has_system = request.system or any(m.role == "system" for m in request.messages)
        if self.config.system_prompt and not has_system:
            request.system = [ir.TextBlock(text=self.config.system_prompt)]

    def _prepare(
        self,
        client: ClientDialect,
        request: ir.Request,
        target: str,
        up: Upstream,
        profile: Profile | None = None,
        *,
        cap: int | None,
    ) -> Prepared:
        return prepare_request(
            client,
            up.dialect,
            request,
            upstream_model=target,
            profile=profile or up.profile,
            max_output_tokens=cap,
            auto_cache=self.config.auto_cache and up.protocol == "anthropic",
        )

    def _reprepare(
        self, client: ClientDialect, prepared: Prepared, up: Upstream, profile: Profile
    ) -> Prepared:
        """The same request again with another profile (A2O-R16, A2O-S23), under the same cap."""
        ctx = prepared.ctx
        return self._prepare(
            client, prepared.request, ctx.upstream_model, up, profile, cap=ctx.max_output_tokens
        )

    def _upstream_error(self, up: Upstream, status: int, body: bytes, retry_after: str | None) -> ProxyError:
        info = up.dialect.parse_error(status, body)
        info.retry_after = retry_after
        return ProxyError(info)

    async def _unary(
        self,
        req: ClientRequest,
        client: ClientDialect,
        up: Upstream,
        prepared: Prepared,
        sink: ResponseSink,
        record: AccessRecord,
        key: str | None,
        final: bool,
        retried: bool = False,
    ) -> None:
        status, headers, body = await upstream.request(
            self.client,
            "POST",
            up.url(prepared.path, prepared.ctx.upstream_model),
            headers=up.call_headers(key),
            body=prepared.body,
            timeout=up.timeout,
        )
        if status >= 400:
            fallback = None if retried else fallback_profile(prepared, body)
            if fallback is not None and status == 400:  # A2O-R16 / A2O-S23: once, at once, on this upstream
                log.warning("upstream rejected a field; retrying once without it")
                prepared = self._reprepare(client, prepared, up, fallback)
                await self._unary(req, client, up, prepared, sink, record, key, final, retried=True)
                return
            raise self._upstream_error(up, status, body, _retry_after(headers))
        response = up.dialect.parse_response(body, prepared.ctx)
        record.usage = response.usage
        record.status = 200
        await sink.respond(200, JSON_HEADERS, client.build_response(response, prepared.ctx))

    async def _stream(
        self,
        req: ClientRequest,
        client: ClientDialect,
        up: Upstream,
        prepared: Prepared,
        sink: ResponseSink,
        record: AccessRecord,
        key: str | None,
        final: bool,
        retried: bool = False,
    ) -> None:
        url = up.url(prepared.path, prepared.ctx.upstream_model)
        relay: _Relay | None = None

        def on_head(head: ResponseHead) -> OnBody | None:
            """The common case, taken in the upstream connection's callback the moment the head
            arrives: a 200 event stream. Anything else is left to this task, below."""
            nonlocal relay
            if not _streams(head):
                return None
            translator = StreamTranslator(client, up.dialect, prepared.ctx)
            record.status = 200
            sink.begin(200, SSE_HEADERS)
            sink.hold(translator.start())  # written with the first token if it came with the head
            relay = _Relay(self, translator, sink, record, keepalive=True, may_retry=not final)
            return relay.on_body

        try:
            async with upstream.open_stream(
                self.client,
                "POST",
                url,
                headers=up.call_headers(key),
                body=prepared.body,
                meanwhile=lambda: estimate_input_tokens(prepared),
                on_head=on_head,
                timeout=up.timeout,
            ) as resp:
                if relay is not None:
                    await relay.run(resp)
                    return
                if resp.status >= 400:  # before the first byte: the real status (A2O-S18, O2A-E02)
                    body = await resp.read()
                    fallback = None if retried else fallback_profile(prepared, body)
                    if fallback is not None and resp.status == 400:
                        log.warning("upstream rejected a field; retrying once without it")
                        prepared = self._reprepare(client, prepared, up, fallback)
                        await self._stream(req, client, up, prepared, sink, record, key, final, retried=True)
                        return
                    raise self._upstream_error(up, resp.status, body, _retry_after(resp.headers))
                # the upstream ignored stream:true and answered with JSON
                response = up.dialect.parse_response(await resp.read(), prepared.ctx)
                record.usage = response.usage
                record.status = 200
                sink.begin(200, SSE_HEADERS)
                await sink.end(_response_as_stream(client, response, prepared.ctx))
        finally:
            if relay is not None:
                relay.release()

    # ----------------------------------------------------------------------------- passthrough

    async def _passthrough(
        self,
        req: ClientRequest,
        body: bytes,
        data: dict[str, Any],
        target: str,
        up: Upstream,
        client: Dialect,
        sink: ResponseSink,
        record: AccessRecord,
        final: bool,
    ) -> None:
        """Same protocol on both sides: the body goes up as sent (re-serialised only when routing changed
        it), and the answer is relayed as the upstream sent it."""
        stream = data.get("stream") is True
        path = anthropic_messages.UPSTREAM_PATH if up.protocol == "anthropic" else openai_chat.UPSTREAM_PATH
        url = _with_query(up.url(path, target), req.query)
        ctx = ir.Context(client_model=data["model"], upstream_model=target)
        headers = up.request_headers(req.headers, _client_key(req) if up.forward_client_key else None)
        relay: _Relay | None = None

        def on_head(head: ResponseHead) -> OnBody | None:
            """A streamed 200 is relayed from the upstream connection's callback on (see _stream)."""
            nonlocal relay
            if not stream or not _streams(head):
                return None
            record.status = head.status
            sink.begin(head.status, upstream.relayable(head.headers))
            relay = _Relay(self, Passthrough(client, ctx), sink, record, keepalive=False, may_retry=not final)
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
                timeout=up.timeout,
            ) as resp:
                if relay is not None:
                    await relay.run(resp)
                    return
                answer = await resp.read(self.config.max_body_bytes)
                if not final and resp.status in RETRYABLE:  # the last try relays it untouched
                    info = up.dialect.parse_error(resp.status, answer)
                    info.retry_after = _retry_after(resp.headers)
                    raise _Retry(info, (resp.status, resp.relayable_headers(), answer))
                record.status = resp.status
                try:
                    parsed = orjson.loads(answer)
                except orjson.JSONDecodeError:
                    # Not the client's protocol (a gateway's HTML page, an encoded body): an error keeps
                    # its status, in the client's JSON error; a 200 that is no answer is a 502.
                    if resp.status < 400:
                        raise ProxyError(
                            ir.ErrorInfo(
                                status=502,
                                type=ir.ErrorType.API,
                                message="upstream returned a response that is not JSON",
                            )
                        ) from None
                    raise self._upstream_error(up, resp.status, answer, _retry_after(resp.headers)) from None
                if stream and resp.status < 400:  # stream:true ignored: the answer as the stream asked for
                    ctx.thinking = True  # a passthrough keeps what the upstream said
                    response = up.dialect.parse_response(answer, ctx)
                    record.usage = response.usage
                    sink.begin(200, SSE_HEADERS)
                    await sink.end(_response_as_stream(client, response, ctx))
                    return
                record.usage = up.dialect.event_usage(parsed) if resp.status < 400 else None
                await sink.respond(resp.status, resp.relayable_headers(), answer)
        finally:
            if relay is not None:
                relay.release()

    # -------------------------------------------------------------------------- count_tokens, models

    async def _count_tokens(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        request = anthropic_messages.parse_request(req.body, count_tokens=True)
        data = orjson.loads(req.body)
        decision = self.router.decide(request.model, RequestFacts(data, "anthropic"))
        up, target = decision.upstream, decision.model
        record.client_model, record.upstream_model = request.model, target
        if up.protocol == "anthropic":  # decision 9: forwarded to an Anthropic upstream
            data["model"] = target
            status, headers, body = await upstream.request(
                self.client,
                "POST",
                up.url("/v1/messages/count_tokens"),
                headers=up.request_headers(req.headers, _client_key(req) if up.forward_client_key else None),
                body=orjson.dumps(data),
                timeout=up.timeout,
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

    # ------------------------------------------------------------------------ model lists, caps

    async def _openai_models(self, up: Upstream) -> list[dict[str, Any]]:
        """The upstream's ``/models`` entries, on the lean client (no httpx import on a first request)."""
        status, _, body = await upstream.request(
            self.client, "GET", up.url("/models"), headers=up.request_headers(), timeout=up.timeout
        )
        data = orjson.loads(body) if status == 200 else {}
        entries = data.get("data") if isinstance(data, dict) else None
        return [m for m in entries or () if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def _anthropic_models(self, up: Upstream) -> list[dict[str, Any]]:
        """Anthropic's paginated list (has_more, last_id -> after_id), at most ten pages (O2A-M01)."""
        entries: list[dict[str, Any]] = []
        after = ""
        for _ in range(10):
            url = up.base + "/v1/models?limit=1000" + (f"&after_id={after}" if after else "")
            status, body = await upstream.fetch(self.client, url, headers=up.request_headers())
            data = orjson.loads(body) if status == 200 else {}
            entries += [
                m for m in data.get("data", []) if isinstance(m, dict) and isinstance(m.get("id"), str)
            ]
            if not data.get("has_more") or not data.get("last_id"):
                break
            after = str(data["last_id"])
        return entries

    async def _list(self, up: Upstream) -> list[dict[str, Any]]:
        async with asyncio.timeout(3):  # Claude Code's picker must answer fast (A2O-M02)
            return await (
                self._anthropic_models(up) if up.protocol == "anthropic" else self._openai_models(up)
            )

    async def _upstream_models(self) -> list[str]:
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < self.config.models_cache_seconds:
            return self._models_cache[1]
        names: list[str] = []
        for up in self.upstreams.values():
            try:
                entries = await self._list(up)
            except (ProxyError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
                log.warning("could not list the models of upstream %s: %s", up.name, exc)
                continue
            names += [m["id"] for m in entries]
            if up.protocol == "openai":
                self._caps[up.name] = (now, _reported_caps(entries))
        self._models_cache = (now, names)
        return names

    async def _output_cap(self, up: Upstream, model: str, asked: int | None) -> int | None:
        """The cap on the upstream's output tokens the client's max_tokens is clamped to (decision 5):
        the upstream's setting, the global one, the known table, or what the upstream's ``/models``
        reports. That list is fetched once per upstream, and only for a request that asks for more
        than any current model can give (Claude Code's 32000 to 128000): a small ask needs no cap."""
        explicit = up.max_output_tokens or self.config.max_output_tokens
        if explicit or up.protocol != "openai":
            return explicit
        known = output_cap(model)
        if known is not None or (asked or 0) <= SAFE_MAX_TOKENS:
            return known
        cached = self._caps.get(up.name)
        if cached is not None and time.monotonic() - cached[0] < self.config.models_cache_seconds:
            return cached[1].get(model)
        task = self._caps_pending.get(up.name)
        if task is None:
            task = self._caps_pending[up.name] = asyncio.create_task(self._fetch_caps(up))
        if cached is not None:  # stale: refreshed in the background, the old figures meanwhile
            return cached[1].get(model)
        return (await asyncio.shield(task)).get(model)

    async def _fetch_caps(self, up: Upstream) -> dict[str, int]:
        caps: dict[str, int] = {}
        try:
            caps = _reported_caps(await self._list(up))
        except (ProxyError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.info("upstream %s reports no output caps: %s", up.name, exc)
        finally:
            self._caps_pending.pop(up.name, None)
        self._caps[up.name] = (time.monotonic(), caps)
        return caps

    async def _models(self, req: ClientRequest, sink: ResponseSink, record: AccessRecord) -> None:
        names = list(dict.fromkeys(self.router.configured_models() + await self._upstream_models()))
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
    translated from a read, or when the relay has to wait for the upstream, whichever comes first;
    while another try may follow (``may_retry``), only with the first bytes (or a keep-alive ping), so
    that an upstream failing after its head but before its first event is retried: nothing of its
    answer reached the client.
    """

    __slots__ = (
        "_app",
        "_failure",
        "_feed",
        "_observe",
        "_one_by_one",
        "_queued",
        "_resp",
        "deadline",
        "limit",
        "may_retry",
        "pings",
        "record",
        "sink",
        "translator",
    )

    def __init__(
        self,
        app: App,
        translator: StreamTranslator | Passthrough,
        sink: ResponseSink,
        record: AccessRecord,
        *,
        keepalive: bool,
        may_retry: bool = False,
    ) -> None:
        self._app = app
        self.may_retry = may_retry  # a failure before any byte went out is another try's to cure
        self.translator = translator
        self.sink = sink
        self.record = record
        self._feed = translator.feed
        self._observe = translator.observe if isinstance(translator, Passthrough) else None
        self._one_by_one = self._observe is None  # passthrough costs nothing per event: nothing to split
        self._resp: upstream.UpstreamResponse | None = None
        self._failure: BaseException | None = None  # what ends the stream early (a limit, a bug)
        self._queued: list[tuple[bytes, bool]] | None = None  # reads waiting for the loop's next turn
        self.pings = keepalive  # StreamWatch writes a ping when the stream is silent
        self.limit = app.config.max_stream_seconds
        self.deadline = time.monotonic() + self.limit
        app.streams.add(self)

    def expire(self) -> None:
        """Called by StreamWatch past ``max_stream_seconds``: a runaway stream ends as an upstream
        timeout would (decision 6)."""
        message = f"stream exceeded {self.limit:g} s"
        self._abort(ProxyError(ir.ErrorInfo(status=504, type=ir.ErrorType.TIMEOUT, message=message)))

    def _abort(self, failure: BaseException) -> None:
        """End the stream with ``failure``, raised in run(): now, or as soon as run() has begun."""
        self._failure = failure
        if self._resp is not None:
            self._resp.abort(failure)

    def _emit(self, data: bytes, last: bool = False) -> None:
        out = self._feed(data)
        if out:
            record = self.record
            if record.ttft_ms is None:
                self._retry_if_failed()
                record.ttft_ms = (time.perf_counter() - record.received) * 1000
                self.sink.send_nowait(out)
            elif last:
                self.sink.hold(out)  # the response is complete: these bytes go out with its end
            else:
                self.sink.send_nowait(out)

    def _retry_if_failed(self) -> None:
        """A translated stream whose first output is its failure (an in-band error event, or a body that
        ended before any event): while nothing reached the client, that is another try's to cure."""
        error = getattr(self.translator, "error", None)
        if error is not None and self.may_retry and error.status in RETRYABLE and self.sink.discard():
            raise _Retry(error)

    def on_body(self, chunk: bytes, last: bool) -> bool:
        if self._queued is not None:  # the rest of an earlier read waits its turn: keep the order
            self._queued.append((chunk, last))
            return self.sink.backlogged
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
            if rest and self.record.ttft_ms is not None:
                # The first token is out; the rest of this read is translated on the loop's next
                # turn, so that other streams' first tokens, read in this same turn, go first.
                self._queued = [(rest, last)]
                self._app.loop.call_soon(self._run_queued)
                return self.sink.backlogged
        if rest:
            self._emit(rest, last)
        if self._observe is not None:
            self._observe(chunk)
        return self.sink.backlogged

    def _run_queued(self) -> None:
        """Translate and write what on_body queued (a callback of its own: a failure goes to run())."""
        try:
            self._flush_queued()
        except Exception as exc:  # a bug in translation: raised in the exchange's task, not lost
            self._abort(exc)

    def _flush_queued(self) -> None:
        queued, self._queued = self._queued, None
        for chunk, last in queued or ():
            self._emit(chunk, last)

    async def run(self, resp: upstream.UpstreamResponse) -> None:
        """Until the upstream body has ended; then the client's response ends, completely or, when the
        upstream failed mid-stream, with the client dialect's error event (decision 2)."""
        try:
            try:
                self._resp = resp
                if self._failure is not None:
                    resp.abort(self._failure)
                await resp.relay(self.on_body, self.sink.drain, _hold if self.may_retry else self.sink.flush)
                self._flush_queued()  # the body ended before the loop's next turn
                tail = self.translator.close()
                if self.record.ttft_ms is None:
                    self._retry_if_failed()
            except ProxyError as exc:
                self._flush_queued()  # what arrived before the failure goes first
                if self.may_retry and exc.info.status in RETRYABLE and self.sink.discard():
                    raise _Retry(exc.info) from None
                log.warning("upstream failed mid-stream: %s", exc.info.message)
                tail = self.translator.fail(exc.info)
        finally:
            self.release()
        await self.sink.end(tail)
        self.record.usage = self.translator.usage

    def release(self) -> None:
        self._app.streams.remove(self)
        self._queued = None  # the exchange is over (or its client gone): nothing more is written


def _hold() -> None:
    """The relay's idle callback while another try may follow: what the sink holds stays held."""


def _streams(head: ResponseHead) -> bool:
    """Whether an upstream's head starts a stream to relay from the connection's callback: a success that
    is neither JSON (stream:true ignored) nor an HTML page (a gateway's error). Anything else is read by
    the exchange's task. Lenient on purpose: an event stream labelled text/plain still streams."""
    kind = head.get(b"content-type") or b""
    return head.status < 400 and b"json" not in kind and b"html" not in kind


def _with_query(url: str, query: str) -> str:
    """The client's query string on a passthrough (Claude Code's ``?beta=true``), without repeats."""
    if not query:
        return url
    base, _, own = url.partition("?")
    params = list(dict.fromkeys([p for p in own.split("&") if p] + [p for p in query.split("&") if p]))
    return f"{base}?{'&'.join(params)}"


def _response_as_stream(client: ClientDialect, response: ir.Response, ctx: ir.Context) -> bytes:
    """A whole response rendered as the events of a stream (for upstreams that ignore stream:true)."""
    encoder = client.StreamEncoder(ctx)
    opening = encoder.start()
    out: list[ir.StreamEvent] = [ir.MessageStart(response.id, response.model, response.usage)]
    for index, block in enumerate(response.content):
        if isinstance(block, ir.TextBlock):
            out += [ir.BlockStart(index, ir.TextBlock(text="")), ir.TextDelta(index, block.text)]
        elif isinstance(block, ir.ThinkingBlock):
            out += [
                ir.BlockStart(index, ir.ThinkingBlock(thinking="")),
                ir.ThinkingDelta(index, block.thinking),
            ]
            if block.signature:  # kept: a client replays the block with it (decision 1)
                out.append(ir.SignatureDelta(index, block.signature))
        elif isinstance(block, ir.RedactedThinkingBlock):
            out.append(ir.BlockStart(index, block))
        elif isinstance(block, ir.ToolUseBlock):
            start = ir.ToolUseBlock(id=block.id, name=block.name, input={})
            out += [ir.BlockStart(index, start), ir.InputJsonDelta(index, orjson.dumps(block.input).decode())]
        else:
            continue
        out.append(ir.BlockStop(index))
    out += [ir.MessageDelta(response.stop_reason, response.stop_sequence, response.usage), ir.MessageStop()]
    return opening + b"".join(encoder.encode(ev) for ev in out)
