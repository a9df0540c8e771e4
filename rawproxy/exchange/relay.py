"""One stream's way from the upstream body to the client, event by event: the push seam.

Built when the upstream's head arrives, inside the upstream connection's callback; from then on
``Relay.on_body`` translates each read and writes it to the client in that same callback, so no task
switch stands between the upstream's first token and ours. The exchange's task only waits in ``run``
(for the end, an error, or the client's ``drain()`` when it falls behind) and ends the response.

Rules:
- What the sink holds (the head, the opening event) goes out with the first bytes translated from a
  read, or when the relay has to wait for the upstream, whichever comes first; while another try may
  follow (``may_retry``), only with the first bytes (or a keep-alive ping), so that an upstream failing
  after its head but before its first event is retried: nothing of its answer reached the client.
- Nothing raised here goes through the upstream connection: a failure found in a callback (a retryable
  first event, a time limit, a translation bug) aborts the upstream response, and ``run`` raises it in
  the exchange's task.
- Until the client has its first bytes, the events of a read are translated one at a time; after the
  first token, the rest of that read waits for the loop's next turn, so other streams' first tokens read
  in the same turn go first (bench/README: about 0.6 ms off the p50 at 32 streams).
- ``context.Streams`` keeps every relay in one ``timers.Ticker``: a ping when a translated stream has
  written nothing for ``ping_interval`` (A2O-S16), and the end, as an upstream timeout (decision 6), of a
  stream past ``max_stream_seconds``.
- A stream still open when the server's shutdown grace period runs out is cancelled with ``SHUTDOWN`` as
  the message: it ends with the client dialect's error event, so the client can tell the cut from an end.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .._types import AccessRecord, ResponseSink
from ..client import UpstreamResponse
from ..errors import ProxyError, UpstreamStatus, UpstreamTimeout
from ..http1 import ResponseHead
from ..ir import ErrorInfo, ErrorType
from ..translate import Translator
from .context import Streams
from .retry import RETRYABLE, Retry

__all__ = ["SHUTDOWN", "Relay", "streams"]

SHUTDOWN = "rawproxy: shutting down"  # the cancellation message of an exchange cut at the end of the grace

log = logging.getLogger("rawproxy")


class Relay:
    __slots__ = (
        "_failure",
        "_feed",
        "_observe",
        "_one_by_one",
        "_queued",
        "_resp",
        "_step",
        "_streams",
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
        streams: Streams,
        translator: Translator,
        sink: ResponseSink,
        record: AccessRecord,
        *,
        limit: float,
        keepalive: bool,
        may_retry: bool = False,
    ) -> None:
        self._streams = streams
        self.may_retry = may_retry  # a failure before any byte went out is another try's to cure
        self.translator = translator
        self.sink = sink
        self.record = record
        self._feed = translator.feed
        self._observe = translator.observe if translator.observes else None
        self._one_by_one = self._observe is None  # passthrough costs nothing per event: nothing to split
        self._resp: UpstreamResponse | None = None
        self._failure: BaseException | None = None  # what ends the stream early (a limit, a bug)
        self._queued: list[tuple[bytes, bool]] | None = None  # reads waiting for the loop's next turn
        self.pings = keepalive  # the ticker writes a ping when the stream is silent
        self.limit = limit
        now = time.monotonic()
        self.deadline = now + limit
        self._step = min(streams.ping_interval, limit) / 4  # either is acted on at most this late
        streams.ticker.watch(self, now + self._step)

    def due(self, now: float) -> float | None:
        """The ticker's look: end a stream past its limit, ping a silent one."""
        if now >= self.deadline:
            self._abort(UpstreamTimeout(f"stream exceeded {self.limit:g} s"))
            return None
        if self.pings and now - self.sink.last_write >= self._streams.ping_interval:
            self.sink.send_nowait(self.translator.ping())
        return min(self.deadline, now + self._step)

    def _abort(self, failure: BaseException) -> None:
        """End the stream with ``failure``, raised in run(): now, or as soon as run() has begun."""
        if self._failure is None:
            self._failure = failure
        if self._resp is not None:
            self._resp.abort(failure)

    def _emit(self, data: bytes, last: bool = False) -> None:
        out = self._feed(data)
        if out:
            record = self.record
            if record.ttft_ms is None:
                retry = self._retry()
                if retry is not None:
                    self._abort(retry)  # raised in run()
                    return
                record.ttft_ms = (time.perf_counter() - record.received) * 1000
                self.sink.send_nowait(out)
            elif last:
                self.sink.hold(out)  # the response is complete: these bytes go out with its end
            else:
                self.sink.send_nowait(out)

    def _retry(self) -> Retry | None:
        """A translated stream whose first output is its failure (an in-band error event, or a body that
        ended before any event): while nothing reached the client, that is another try's to cure."""
        error = self.translator.error
        if error is not None and self.may_retry and error.status in RETRYABLE and self.sink.discard():
            self._queued = None
            return Retry(UpstreamStatus(error))
        return None

    def on_body(self, chunk: bytes, last: bool) -> bool:
        if self._failure is not None:
            return False  # aborted: nothing more is translated
        if self._queued is not None:  # the rest of an earlier read waits its turn: keep the order
            self._queued.append((chunk, last))
            return self.sink.backlogged
        rest = chunk
        if self._one_by_one and self.record.ttft_ms is None:
            # Until the client has its first bytes, the events of a read are translated one at a
            # time: the first token must not wait for the translation of the events behind it.
            start = 0
            while self.record.ttft_ms is None and self._failure is None:
                end = chunk.find(b"\n\n", start) + 2
                if end < 2:
                    break
                self._emit(chunk[start:end])
                start = end
            if self._failure is not None:
                return False
            rest = chunk[start:] if start else chunk
            if rest and self.record.ttft_ms is not None:
                # The first token is out; the rest of this read is translated on the loop's next
                # turn, so that other streams' first tokens, read in this same turn, go first.
                self._queued = [(rest, last)]
                self._streams.loop.call_soon(self._run_queued)
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

    async def run(self, resp: UpstreamResponse) -> None:
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
                retry = self._retry() if self.record.ttft_ms is None else None
                if retry is not None:
                    raise retry
            except Retry:
                raise
            except ProxyError as exc:
                self._flush_queued()  # what arrived before the failure goes first
                if self.may_retry and exc.info.status in RETRYABLE and self.sink.discard():
                    raise Retry(exc) from None
                record = self.record
                log.warning(
                    "%s upstream %s failed mid-stream (%s): %s", record.rid, record.upstream, exc.kind, exc
                )
                tail = self.translator.fail(exc.info)
            except asyncio.CancelledError as exc:
                if exc.args != (SHUTDOWN,):
                    raise  # the client went away: nobody to tell
                self._flush_queued()
                await self._end(self.translator.fail(_shutting_down()))
                raise
        finally:
            self.release()
        await self._end(tail)

    async def _end(self, tail: bytes) -> None:
        await self.sink.end(tail)
        self.record.usage = self.translator.usage

    def release(self) -> None:
        self._streams.ticker.discard(self)
        self._queued = None  # the exchange is over (or its client gone): nothing more is written


def _shutting_down() -> ErrorInfo:
    return ErrorInfo(
        status=503, type=ErrorType.OVERLOADED, message="the proxy is shutting down; retry the request"
    )


def _hold() -> None:
    """The relay's idle callback while another try may follow: what the sink holds stays held."""


def streams(head: ResponseHead) -> bool:
    """Whether an upstream's head starts a stream to relay from the connection's callback: a success that
    is neither JSON (stream:true ignored) nor an HTML page (a gateway's error). Anything else is read by
    the exchange's task. Lenient on purpose: an event stream labelled text/plain still streams."""
    kind = head.get(b"content-type") or b""
    return head.status < 400 and b"json" not in kind and b"html" not in kind
