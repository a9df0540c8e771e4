"""A completions request (any client dialect): route it, then try each upstream the route names, each try
translated through the IR or, with the same protocol on both sides, passed through (passthrough.py).

Before the response head, a failure becomes a real status with the client dialect's JSON error (A2O-S18,
O2A-E02); after it, the client dialect's in-stream error event (decision 2, relay.py). The body is parsed
into the IR once, when a translated try first needs it, whatever the number of tries.
"""

from __future__ import annotations

import logging

from .. import client as upstream_client
from .. import ir
from .._types import JSON_HEADERS, SSE_HEADERS
from ..carrier import Carrier
from ..client import OnBody
from ..config import Config
from ..dialects import all_blank, apply_overrides, load_json_object, request_model
from ..errors import ClientError
from ..http1 import ResponseHead
from ..models import ModelFamily
from ..profiles import Profile
from ..routing import RequestFacts, Upstream
from ..translate import (
    Prepared,
    StreamTranslator,
    estimate_input_tokens,
    prepare_request,
    response_as_stream,
)
from . import passthrough, state
from .context import Exchange
from .relay import Relay, streams
from .retry import rewrite_for, upstream_status, with_retries

__all__ = ["apply_defaults", "complete", "prepare"]

log = logging.getLogger("rawproxy")


async def complete(ex: Exchange) -> None:
    spec, shared = ex.spec, ex.shared
    assert spec is not None
    config = shared.config
    data = ex.data = load_json_object(ex.req.body)
    model, sent_model = request_model(data, config.routes.default)
    data["model"] = model
    if spec.chains_responses:
        state.continue_conversation(shared.responses, data)
    messages = data.get(spec.messages_field) if spec.messages_field else None
    if spec.messages_field and (not isinstance(messages, list) or not messages):
        # both APIs' rule, a passthrough's too
        raise ClientError(f"{spec.messages_field}: field required (a non-empty list of messages)")
    anthropic = spec.protocol == "anthropic"
    facts = RequestFacts(data, "anthropic" if anthropic else "openai", ex.req.headers)
    decision = shared.router.decide(model, facts)
    if (
        isinstance(messages, list)
        and decision.upstream.protocol != spec.protocol
        and all_blank(messages, anthropic=anthropic)
    ):
        raise ClientError("messages: every message is empty; there is nothing to answer")
    ex.rewritten = model != sent_model
    if decision.overrides:
        apply_overrides(
            data, decision.overrides, max_tokens_field=spec.max_tokens_field, replaces=spec.replaces
        )
        ex.rewritten = True
    if decision.compact and spec.compact(data):
        ex.rewritten = True
    ex.record.client_model, ex.record.upstream_model = model, decision.model

    answer = await with_retries(ex, [(decision.upstream, decision.model), *decision.fallbacks], _attempt)
    if answer is not None:  # a passthrough's last error, untouched
        status, headers, body = answer
        ex.record.status = status
        await ex.sink.respond(status, headers, body)


async def _attempt(ex: Exchange, up: Upstream, target: str, final: bool) -> None:
    """One try on one upstream: passed through when it speaks the client's protocol, else translated."""
    assert ex.spec is not None
    ex.record.upstream, ex.record.upstream_model = up.name, target
    if ex.spec.protocol == up.protocol:
        await passthrough.relay(ex, up, target, final)
    else:
        await _translated(ex, up, target, final)


async def _translated(ex: Exchange, up: Upstream, target: str, final: bool) -> None:
    spec, data, config = ex.spec, ex.data, ex.shared.config
    assert spec is not None and data is not None
    request = ex.request
    if request is None:
        request = ex.request = spec.client.parse_request_data(data)
        request.model = data["model"]
        apply_defaults(request, config)
    cap = await ex.shared.catalog.output_cap(up, target, request.max_tokens, config.max_output_tokens)
    prepared = prepare(ex, request, target, up, cap=cap)
    key = ex.client_key() if up.forward_client_key else None
    if request.stream:
        await _stream(ex, up, prepared, key, final)
    else:
        await _unary(ex, up, prepared, key)
    if request.echo:
        state.remember(ex.shared.responses, data, request.echo)


def apply_defaults(request: ir.Request, config: Config) -> None:
    """Settings that fill what an OpenAI client's request left out (O2A-R02, O2A-R19)."""
    if request.max_tokens is None:
        request.max_tokens = config.default_max_tokens
    has_system = request.system or any(m.role == "system" for m in request.messages)
    if config.system_prompt and not has_system:
        request.system = [ir.TextBlock(text=config.system_prompt)]


def prepare(
    ex: Exchange,
    request: ir.Request,
    target: str,
    up: Upstream,
    profile: Profile | None = None,
    *,
    cap: int | None,
    family: ModelFamily | None = None,
) -> Prepared:
    assert ex.spec is not None
    return prepare_request(
        ex.spec.client,
        up.dialect,
        request,
        upstream_model=target,
        profile=profile or up.profile,
        max_output_tokens=cap,
        auto_cache=ex.shared.config.auto_cache and up.protocol == "anthropic",
        family=family or ex.shared.lessons.get(up.name, target),
        carrier=Carrier(ex.shared.carrier_key, up.name, target),
    )


def _again(ex: Exchange, prepared: Prepared, up: Upstream, status: int, body: bytes) -> Prepared | None:
    """The same request once more, rewritten as the refusal says (retry.rewrite_for), under the same
    cap; None when that would not help. What the model was found to take is remembered (M26-08)."""
    rewrite = rewrite_for(prepared, status, body)
    if rewrite is None:
        return None
    ctx = prepared.ctx
    if rewrite.family is not None:
        ex.shared.lessons.learn(up.name, ctx.upstream_model, rewrite.family, rewrite.lesson)
    return prepare(
        ex,
        prepared.request,
        ctx.upstream_model,
        up,
        rewrite.profile or ctx.profile,
        cap=ctx.max_output_tokens,
        family=rewrite.family or ctx.family,
    )


async def _unary(
    ex: Exchange, up: Upstream, prepared: Prepared, key: str | None, retried: bool = False
) -> None:
    status, headers, body = await upstream_client.request(
        ex.shared.client,
        "POST",
        up.url(prepared.path, prepared.ctx.upstream_model),
        headers=ex.upstream_headers(up.call_headers(key)),
        body=prepared.body,
        timeout=up.timeout,
        route=up.route,
    )
    if status >= 400:
        again = None if retried else _again(ex, prepared, up, status, body)
        if again is not None:
            await _unary(ex, up, again, key, retried=True)
            return
        raise upstream_status(up.dialect, status, body, headers)
    assert ex.spec is not None
    response = up.dialect.parse_response(body, prepared.ctx)
    ex.record.usage = response.usage
    ex.record.status = 200
    await ex.sink.respond(200, JSON_HEADERS, ex.spec.client.build_response(response, prepared.ctx))


async def _stream(
    ex: Exchange, up: Upstream, prepared: Prepared, key: str | None, final: bool, retried: bool = False
) -> None:
    spec, sink, record, shared = ex.spec, ex.sink, ex.record, ex.shared
    assert spec is not None
    relay: Relay | None = None

    def on_head(head: ResponseHead) -> OnBody | None:
        """The common case, taken in the upstream connection's callback the moment the head
        arrives: a 200 event stream. Anything else is left to this task, below."""
        nonlocal relay
        if not streams(head):
            return None
        translator = StreamTranslator(spec.client, up.dialect, prepared.ctx)
        record.status = 200
        sink.begin(200, SSE_HEADERS)
        sink.hold(translator.start())  # written with the first token if it came with the head
        limit = shared.config.max_stream_seconds
        relay = Relay(
            shared.streams, translator, sink, record, limit=limit, keepalive=True, may_retry=not final
        )
        return relay.on_body

    try:
        async with upstream_client.open_stream(
            shared.client,
            "POST",
            up.url(prepared.path, prepared.ctx.upstream_model),
            headers=ex.upstream_headers(up.call_headers(key)),
            body=prepared.body,
            meanwhile=lambda: estimate_input_tokens(prepared),
            on_head=on_head,
            timeout=up.timeout,
            route=up.route,
        ) as resp:
            if relay is not None:
                await relay.run(resp)
                return
            if resp.status >= 400:  # before the first byte: the real status (A2O-S18, O2A-E02)
                body = await resp.read()
                again = None if retried else _again(ex, prepared, up, resp.status, body)
                if again is not None:
                    await _stream(ex, up, again, key, final, retried=True)
                    return
                raise upstream_status(up.dialect, resp.status, body, resp.headers)
            # the upstream ignored stream:true and answered with JSON
            response = up.dialect.parse_response(await resp.read(), prepared.ctx)
            record.usage = response.usage
            record.status = 200
            sink.begin(200, SSE_HEADERS)
            await sink.end(response_as_stream(spec.client, response, prepared.ctx))
    finally:
        if relay is not None:
            relay.release()
