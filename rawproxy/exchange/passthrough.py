"""Same protocol on both sides: the body goes up as sent (re-serialised only when routing changed it), and
the answer is relayed as the upstream sent it: a streamed 200 from the upstream connection's callback on,
anything else whole, with its own status and headers (less what describes the upstream connection).

An answer that is not the client's protocol (a gateway's HTML page, an encoded body) keeps its status in
the client's JSON error; a 200 that is no answer is a 502. An upstream that ignored ``stream: true`` is
answered as the stream the client asked for.
"""

from __future__ import annotations

import orjson

from .. import client as upstream_client
from .. import ir
from .._types import SSE_HEADERS
from ..client import OnBody, relayable
from ..dialects import sealed_state
from ..errors import UpstreamProtocolError
from ..http1 import ResponseHead
from ..routing import Upstream
from ..translate import Passthrough, response_as_stream
from .context import Exchange
from .relay import Relay, streams
from .retry import RETRYABLE, Retry, upstream_status

__all__ = ["relay", "with_query"]


def with_query(url: str, query: str) -> str:
    """The client's query string on a passthrough (Claude Code's ``?beta=true``), without repeats."""
    if not query:
        return url
    base, _, own = url.partition("?")
    params = list(dict.fromkeys([p for p in own.split("&") if p] + [p for p in query.split("&") if p]))
    return f"{base}?{'&'.join(params)}"


async def relay(ex: Exchange, up: Upstream, target: str, final: bool) -> None:
    req, sink, record, shared, data, spec = ex.req, ex.sink, ex.record, ex.shared, ex.data, ex.spec
    assert data is not None and spec is not None and spec.upstream is not None
    dialect = spec.upstream  # the same protocol: a dialect of both roles
    assert spec.passthrough_path is not None
    body = orjson.dumps({**data, "model": target}) if ex.rewritten or target != data["model"] else req.body
    stream = data.get("stream") is True
    url = with_query(up.url(spec.passthrough_path, target), req.query)
    ctx = ir.Context(client_model=data["model"], upstream_model=target)
    headers = ex.upstream_headers(
        up.request_headers(req.headers, ex.client_key() if up.forward_client_key else None)
    )
    pump: Relay | None = None
    again = False

    def on_head(head: ResponseHead) -> OnBody | None:
        """A streamed 200 is relayed from the upstream connection's callback on (see completion)."""
        nonlocal pump
        if not stream or not streams(head):
            return None
        record.status = head.status
        sink.begin(head.status, relayable(head.headers))
        limit = shared.config.max_stream_seconds
        pump = Relay(
            shared.streams,
            Passthrough(dialect, ctx),
            sink,
            record,
            limit=limit,
            keepalive=False,
            may_retry=not final,
        )
        return pump.on_body

    try:
        async with upstream_client.open_stream(
            shared.client,
            "POST",
            url,
            headers=headers,
            body=body,
            accept="text/event-stream" if stream else "application/json",
            on_head=on_head,
            timeout=up.timeout,
            route=up.route,
        ) as resp:
            if pump is not None:
                await pump.run(resp)
                return
            answer = await resp.read(shared.config.max_body_bytes)
            if resp.status == 400 and _unsealed(ex, spec.name):
                raise _Unsealed  # once more without what rawproxy sealed for another upstream (RS-07)
            if not final and resp.status in RETRYABLE:  # the last try relays it untouched
                error = upstream_status(dialect, resp.status, answer, resp.headers)
                raise Retry(error, (resp.status, resp.relayable_headers(), answer))
            record.status = resp.status
            try:
                parsed = orjson.loads(answer)
            except orjson.JSONDecodeError:
                if resp.status < 400:
                    raise UpstreamProtocolError("upstream returned a response that is not JSON") from None
                raise upstream_status(dialect, resp.status, answer, resp.headers) from None
            if stream and resp.status < 400:  # stream:true ignored: the answer as the stream asked for
                ctx.thinking = True  # a passthrough keeps what the upstream said
                response = dialect.parse_response(answer, ctx)
                record.usage = response.usage
                sink.begin(200, SSE_HEADERS)
                await sink.end(response_as_stream(spec.client, response, ctx))
                return
            record.usage = dialect.event_usage(parsed) if resp.status < 400 else None
            await sink.respond(resp.status, resp.relayable_headers(), answer)
    except _Unsealed:
        again = True
    finally:
        if pump is not None:
            pump.release()
    if again:
        await relay(ex, up, target, final)


class _Unsealed(Exception):
    """The body was refused and held state sealed for another upstream, now taken out: try again."""


def _unsealed(ex: Exchange, dialect: str) -> bool:
    """After a 400: whether the body held state rawproxy sealed for another upstream (the client switched
    models: Anthropic refuses envelope-signed thinking, "Invalid `signature` in `thinking` block"), now
    taken out of ``ex.data`` (sealed_state.py). Looked for only here, after a refusal: a passthrough
    never scans the bodies it relays (a 100 KB body costs tens of microseconds to search)."""
    if sealed_state.MARKER not in ex.req.body or ex.data is None:
        return False
    if not sealed_state.without_sealed_state(ex.data, dialect):
        return False
    ex.rewritten = True
    return True
