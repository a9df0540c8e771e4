"""Glue between two dialects for one exchange: request, response, error and stream. Sans-I/O.

``StreamTranslator`` is the zero-copy path's other half: bytes from the upstream go in, bytes for the
client come out, in the same ``feed()`` call. It chains the SSE decoder, the upstream dialect's stream
decoder and the client dialect's stream encoder, and holds nothing but a partial SSE line. ``Passthrough``
has the same interface and returns its input untouched, for when both sides speak the same dialect.

Errors: only ``ProxyError`` subclasses leave this module. A malformed upstream stream is not raised to
the caller: it becomes the client dialect's in-stream error event, and the stream ends (decision 2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import orjson

from . import ir, tokens
from .carrier import Carrier
from .dialects import ClientDialect, Dialect, UpstreamDialect
from .errors import ProxyError
from .models import ModelFamily
from .profiles import Profile
from .sse import SSEDecoder

__all__ = [
    "Passthrough",
    "Prepared",
    "StreamTranslator",
    "estimate_input_tokens",
    "prepare_request",
    "response_as_stream",
]

log = logging.getLogger("rawproxy")


@dataclass(slots=True, kw_only=True)
class Prepared:
    """A parsed client request and the upstream request built from it."""

    request: ir.Request
    ctx: ir.Context
    path: str
    body: bytes


def prepare_request(
    client: ClientDialect,
    upstream: UpstreamDialect,
    req: ir.Request,
    *,
    upstream_model: str,
    profile: Profile,
    max_output_tokens: int | None,
    auto_cache: bool = False,
    family: ModelFamily | None = None,
    carrier: Carrier | None = None,
) -> Prepared:
    """Build the upstream request for an already parsed (and routed) client request; ``family`` is what
    the upstream model was learned to take (exchange/retry.py), when the registry's guess was wrong."""
    ctx = ir.Context(
        client_model=req.model,
        upstream_model=upstream_model,
        thinking=req.thinking_enabled,
        stop=req.stop,
        tool_names=upstream.tool_name_map(req),
        input_tokens=0,  # estimated by estimate_input_tokens(), off the critical path
        max_output_tokens=max_output_tokens,
        profile=profile,
        include_usage=req.include_usage,
        auto_cache=auto_cache,
        echo=req.echo,
        family=family,
        carrier=carrier,
    )
    ctx.json_tool = upstream.json_tool(req, ctx)
    path, body = upstream.build_request(req, ctx)
    return Prepared(request=req, ctx=ctx, path=path, body=body)


def estimate_input_tokens(prepared: Prepared) -> None:
    """Fill in the input-token estimate a stream shows in message_start until the upstream reports the
    real figure (A2O-S02). The proxy calls it while the upstream is working on the request."""
    if prepared.request.stream:
        prepared.ctx.input_tokens = tokens.estimate_request_tokens(prepared.request)


class Translator(Protocol):
    """What the exchange's relay needs of a stream: bytes in, bytes out, and what it learnt on the way."""

    @property
    def usage(self) -> ir.Usage | None: ...
    @property
    def error(self) -> ir.ErrorInfo | None: ...  # the failure the stream itself reported, if any
    @property
    def observes(self) -> bool: ...  # observe() wants each chunk after it went to the client

    def start(self) -> bytes: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def observe(self, chunk: bytes) -> None: ...
    def close(self) -> bytes: ...
    def fail(self, info: ir.ErrorInfo) -> bytes: ...
    def ping(self) -> bytes: ...


class StreamTranslator:
    """Upstream SSE bytes -> client SSE bytes, event by event."""

    __slots__ = ("_decoder", "_encoder", "_failed", "_sse", "error")

    observes = False  # what it learns, it learns while translating

    def __init__(self, client: ClientDialect, upstream: UpstreamDialect, ctx: ir.Context) -> None:
        self._sse = SSEDecoder()
        self._decoder = upstream.StreamDecoder(ctx)
        self._encoder = client.StreamEncoder(ctx)
        self._failed = False
        self.error: ir.ErrorInfo | None = None  # the failure the stream reported, if it did

    @property
    def usage(self) -> ir.Usage | None:
        return self._decoder.usage

    def start(self) -> bytes:
        return self._encoder.start()

    def feed(self, chunk: bytes) -> bytes:
        if self._failed:
            return b""
        out = []
        encode = self._encoder.encode
        try:
            for event in self._sse.feed(chunk):
                for ev in self._decoder.feed(event):
                    if type(ev) is ir.StreamError:
                        self.error = ev.info  # an in-band error event of the upstream
                    out.append(encode(ev))
        except ProxyError as exc:
            out.append(self.fail(exc.info))
        except Exception:  # a bug: what this read translated still goes out, then a well-formed end
            out.append(self._bug())
        return b"".join(out)

    def close(self) -> bytes:
        """The upstream body ended (EOF)."""
        if self._failed:
            return b""
        out = []
        try:
            for event in self._sse.close():  # a last event without its blank line
                for ev in self._decoder.feed(event):
                    if type(ev) is ir.StreamError:
                        self.error = ev.info  # as in feed(): the framing must not decide a retry
                    out.append(self._encoder.encode(ev))
            for ev in self._decoder.eof():
                if type(ev) is ir.StreamError:
                    self.error = ev.info  # the body ended before the message did (A2O-S13)
                out.append(self._encoder.encode(ev))
        except ProxyError as exc:
            out.append(self.fail(exc.info))
        except Exception:
            out.append(self._bug())
        out.append(self._encoder.close())
        return b"".join(out)

    def fail(self, info: ir.ErrorInfo) -> bytes:
        """The upstream failed mid-stream (reset, timeout): the client dialect's in-stream error."""
        if self._failed:
            return b""
        self._failed = True
        out = self._encoder.encode(ir.StreamError(info))
        if out:  # else the client's stream had already ended (message_stop): nothing failed for it
            self.error = info
        return out

    def _bug(self) -> bytes:
        """An unexpected exception while translating (call it in the ``except``): logged with its traceback,
        and the stream ends in the client's error event rather than mid-body."""
        log.error("bug while translating a stream", exc_info=True)
        out = self.fail(
            ir.ErrorInfo(
                status=500, type=ir.ErrorType.API, message="internal error while translating the stream"
            )
        )
        self.error = None  # ours, not the upstream's: no other try would cure it
        return out

    def ping(self) -> bytes:
        return self._encoder.ping()

    def observe(self, chunk: bytes) -> None:
        """Nothing to learn after the fact: feed() read every event."""


class Passthrough:
    """Same dialect on both sides: the upstream's bytes, untouched.

    ``feed`` returns its input as is when it ends on an event's blank line (nearly every read); else only
    up to the last one, holding the unfinished event back for the next read, so that a stream cut
    mid-event ends in an error event of its own rather than one that completes a broken event (issue
    19). The proxy calls ``observe`` with each chunk *after* it went to the client, so the access log's
    usage costs the first byte nothing: only events that mention ``"usage"`` are parsed. A failure
    mid-stream is still reported in the client's own dialect.
    """

    __slots__ = ("_dialect", "_encoder", "_held", "_sse", "usage")

    observes = True  # usage is read after the bytes went out, so the first byte waits for nothing
    error: ir.ErrorInfo | None = None  # the upstream's own error events are relayed, not retried

    def __init__(self, dialect: Dialect, ctx: ir.Context) -> None:
        self._dialect = dialect
        self._encoder = dialect.StreamEncoder(ctx)
        self._sse = SSEDecoder()
        self._held = bytearray()  # the start of an event whose blank line has not arrived yet
        self.usage: ir.Usage | None = None

    def start(self) -> bytes:
        return b""

    def feed(self, chunk: bytes) -> bytes:
        if not self._held and chunk.endswith(_EVENT_ENDS):
            return chunk  # the common case: whole events, passed on as they came
        held = self._held
        scan = max(len(held) - 2, 0)  # only the new bytes (and a blank line straddling the two reads)
        if held:
            held += chunk
            end = _events_end(held, scan)
            out = bytes(held[:end])
            del held[:end]
            return out
        end = _events_end(chunk, 0)
        held += chunk[end:]
        return chunk[:end]

    def observe(self, chunk: bytes) -> None:
        for event in self._sse.feed(chunk):
            if b'"usage"' not in event.data:
                continue
            try:
                update = self._dialect.event_usage(orjson.loads(event.data))
            except Exception:  # usage is for the log: a figure it cannot read must not end the stream
                continue
            if update is not None:
                if self.usage is None:
                    self.usage = update
                else:
                    self.usage.merge(update)

    def close(self) -> bytes:
        """EOF: a last event without its blank line still goes out (``data: [DONE]\\n``)."""
        rest = bytes(self._held)
        self._held.clear()
        return rest

    def fail(self, info: ir.ErrorInfo) -> bytes:
        # What went out ended on a blank line: the unfinished event is dropped, the error stands alone.
        self._held.clear()
        return self._encoder.encode(ir.StreamError(info))

    def ping(self) -> bytes:
        return b""


_EVENT_ENDS = (b"\n\n", b"\r\r", b"\n\r\n")  # a blank line after LF, CR and CRLF lines


def _events_end(data: bytes | bytearray, start: int) -> int:
    """Where the last event ending in ``data[start:]`` ends (past its blank line); 0 if none does."""
    end = 0
    for blank in _EVENT_ENDS:
        at = data.rfind(blank, start)
        if at >= 0:
            end = max(end, at + len(blank))
    return end


def response_as_stream(client: ClientDialect, response: ir.Response, ctx: ir.Context) -> bytes:
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
