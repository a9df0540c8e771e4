"""Issue 5, resilience: a route's upstream, its retries and its fallbacks, end to end over loopback.

The rule under test (proxy.py, ``App._with_retries``): an upstream is tried up to 1 + ``retries`` times,
then each fallback in order, but only while nothing of the answer has reached the client: connect
errors, timeouts, the statuses 408/429/500/502/503/504/529, and a stream whose 200 head arrived but
whose body failed before a byte went out. After the first byte, never: the client gets the in-stream
error of its own dialect (decision 2) and no other upstream is asked. Non-retryable statuses are
answered at once. ``Retry-After`` (seconds, HTTP date) and ``retry-after-ms`` set the wait; one longer
than ``retry_backoff_max`` means "move on now". The A2O-R16 / A2O-S23 one-retry-without-the-field
refits happen inside a try and use none of the route's retries.

Clients are the official SDKs (``max_retries=0``: only the proxy retries) where a clean answer is the
point, and raw HTTP where the exact status, headers or events are. Upstreams are separate fakes, so that
``fake.requests`` on each says exactly how many tries it got; where the order of tries matters, several
named upstreams share one fake and the recorded ``model`` says which upstream each request was for.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.config.file import Route, Target, UpstreamSpec
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import (
    HTTPConnection,
    Response,
    SSEEvent,
    anthropic_event,
    openai_chunk,
    parse_sse,
    text_of,
)

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.integration

Protocol = Literal["openai", "anthropic"]

BOUND = 10.0  # seconds: no single exchange of these tests may take longer
PRIMARY_TEXT = "answer from the primary"
BACKUP_TEXT = "answer from the backup"
CLIENT_KEY = "sk-client-own-secret"
HI = [{"role": "user", "content": "hi"}]


# ------------------------------------------------------------------------------------------ set-up


@dataclass(frozen=True)
class Way:
    """Which client talks to which upstreams: the primary's protocol and the fallback's."""

    id: str
    client: Protocol
    primary: Protocol
    fallback: Protocol
    model: str
    fallback_model: str | None = None  # None: the fallback gets the client's model unchanged


A2O = Way("a2o", "anthropic", "openai", "openai", "gpt-4o")
O2A = Way("o2a", "openai", "anthropic", "anthropic", "claude-sonnet-4-6")
PASS_ANTHROPIC = Way("passthrough_anthropic", "anthropic", "anthropic", "anthropic", "claude-sonnet-4-6")
PASS_OPENAI = Way("passthrough_openai", "openai", "openai", "openai", "gpt-4o")
# A fallback of the other protocol: the primary is a passthrough, the fallback a translation.
CROSS_TO_OPENAI = Way(
    "anthropic_client_cross_to_openai", "anthropic", "anthropic", "openai", "claude-sonnet-4-6", "gpt-4o"
)
CROSS_TO_ANTHROPIC = Way(
    "openai_client_cross_to_anthropic", "openai", "openai", "anthropic", "gpt-4o", "claude-sonnet-4-6"
)
SAME_PROTOCOL = [A2O, O2A, PASS_ANTHROPIC, PASS_OPENAI]
ALL_WAYS = [*SAME_PROTOCOL, CROSS_TO_OPENAI, CROSS_TO_ANTHROPIC]
STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])


def way_ids(way: Way) -> str:
    return way.id


@pytest.fixture
async def backup() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(Script(text=BACKUP_TEXT)) as upstream:
        yield upstream


@pytest.fixture
async def primary(fake: FakeUpstream) -> FakeUpstream:
    fake.default = Script(text=PRIMARY_TEXT)
    return fake


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def url_of(fake: FakeUpstream, protocol: Protocol) -> str:
    return fake.url if protocol == "openai" else fake.anthropic_url


def spec(name: str, protocol: Protocol, base_url: str, **fields: Any) -> UpstreamSpec:
    fields.setdefault("api_keys", (f"key-of-{name}",))
    return UpstreamSpec(name=name, protocol=protocol, base_url=base_url, **fields)


async def routed(
    proxy_factory: Any,
    upstreams: list[UpstreamSpec],
    fallbacks: tuple[Target, ...] = (),
    *,
    model: str | None = None,
    **config: Any,
) -> Any:
    """A proxy whose only upstreams are ``upstreams`` (the factory's flag upstream switched off) and
    whose one route sends every model to the first of them, then to ``fallbacks``."""
    settings: dict[str, Any] = {
        "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
        "openai_key": None,
        "grace_seconds": 1.0,
        "retry_backoff": 0.01,
        "retry_backoff_max": 0.2,
    }
    settings.update(config)
    route = Route(match="*", upstream=upstreams[0].name, model=model, fallbacks=fallbacks)
    proxy = await proxy_factory(upstreams=tuple(upstreams), route_table=(route,), **settings)
    assert [s.name for s in proxy.config.upstream_list()] == [s.name for s in upstreams]
    return proxy


# ----------------------------------------------------------------------------------------- clients


async def ask(proxy: Any, client: Protocol, model: str, stream: bool, *, max_tokens: int = 64) -> str:
    """One request through the official SDK of ``client``; the answer's text. Raises the SDK's error
    for anything but a complete, successful answer (an error status, an error event)."""
    if client == "anthropic":
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
        ) as sdk:
            if stream:
                async with sdk.messages.stream(model=model, max_tokens=max_tokens, messages=HI) as s:
                    message = await s.get_final_message()
            else:
                message = await sdk.messages.create(model=model, max_tokens=max_tokens, messages=HI)
        assert message.stop_reason == "end_turn", message
        return "".join(b.text for b in message.content if b.type == "text")
    async with openai.AsyncOpenAI(
        base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
    ) as sdk:
        if not stream:
            completion = await sdk.chat.completions.create(model=model, messages=HI, max_tokens=max_tokens)
            assert completion.choices[0].finish_reason == "stop"
            return completion.choices[0].message.content or ""
        chunks = [
            c
            async for c in await sdk.chat.completions.create(
                model=model, messages=HI, max_tokens=max_tokens, stream=True
            )
        ]
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"], chunks
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


CLIENT_HEADERS: dict[Protocol, list[tuple[str, str]]] = {
    "anthropic": [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
    ],
    "openai": [("authorization", f"Bearer {CLIENT_KEY}"), ("content-type", "application/json")],
}
CLIENT_PATHS: dict[Protocol, str] = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}
UPSTREAM_PATHS: dict[Protocol, str] = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}


def request_body(model: str, stream: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": HI, "stream": stream}
    body.update(extra)
    return body


async def post(
    proxy: Any,
    client: Protocol,
    body: dict[str, Any],
    *,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """One raw request; the whole response (a stream read to its end)."""
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=BOUND) as conn:
        return await conn.request(
            "POST",
            CLIENT_PATHS[client],
            headers if headers is not None else CLIENT_HEADERS[client],
            json.dumps(body).encode(),
            timeout=BOUND,
        )


@dataclass
class Outcome:
    """What a client made of a streamed answer."""

    text: str
    error: dict[str, Any] | None  # the in-stream error's ``error`` object, if one came
    complete: bool  # message_stop, or a finish_reason and [DONE]


def outcome(client: Protocol, resp: Response) -> Outcome:
    assert resp.status == 200, resp.body
    events = parse_sse(resp.body)
    if client == "anthropic":
        names = [e.event for e in events if e.event != "ping"]
        assert names and names[0] == "message_start", names
        error = events[-1].json()["error"] if names[-1] == "error" else None
        assert names.count("error") == (1 if error else 0), names
        return Outcome(text_of(events), error, names[-1] == "message_stop")
    return _openai_outcome(events)


def _openai_outcome(events: list[SSEEvent]) -> Outcome:
    chunks = [json.loads(e.data) for e in events if e.data != "[DONE]"]
    errors = [c["error"] for c in chunks if "error" in c]
    assert len(errors) <= 1, chunks
    done = bool(events) and events[-1].data == "[DONE]"
    finished = any(ch.get("finish_reason") == "stop" for c in chunks for ch in c.get("choices") or ())
    text = "".join(
        (ch.get("delta") or {}).get("content") or "" for c in chunks for ch in c.get("choices") or ()
    )
    return Outcome(text, errors[0] if errors else None, done and finished and not errors)


def error_type(client: Protocol, resp: Response) -> str:
    """The error type of an error response, from the client dialect's own shape."""
    data = resp.json()
    if client == "anthropic":
        assert data["type"] == "error", data
    return str(data["error"]["type"])


# ======================================================================= fallbacks before the first byte

FAILURES: dict[str, Script | None] = {
    "connection_refused": None,  # the primary's URL is a closed port
    "timeout": Script(head_delay=3.0),  # the primary's own timeout is 0.2 s
    "408": Script(status=408),
    "429": Script(status=429),
    "500": Script(status=500),
    "502": Script(status=502),
    "503": Script(status=503),
    "504": Script(status=504),
    "529": Script(status=529),
    "reset_before_head": Script(reset=True),
}


@STREAMS
@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("way", ALL_WAYS, ids=way_ids)
async def test_issue5_primary_failing_before_the_first_byte_falls_back_to_a_clean_200(
    proxy_factory: Any,
    primary: FakeUpstream,
    backup: FakeUpstream,
    closed_port: int,
    way: Way,
    failure: str,
    stream: bool,
) -> None:
    script = FAILURES[failure]
    if script is None:
        primary_url = f"http://127.0.0.1:{closed_port}" + ("/v1" if way.primary == "openai" else "")
    else:
        primary_url = url_of(primary, way.primary)
        primary.enqueue(script)
    timeout = 0.2 if failure == "timeout" else None
    proxy = await routed(
        proxy_factory,
        [
            spec("main", way.primary, primary_url, timeout=timeout),
            spec("spare", way.fallback, url_of(backup, way.fallback)),
        ],
        (Target("spare", way.fallback_model),),
    )
    began = time.monotonic()
    assert await asyncio.wait_for(ask(proxy, way.client, way.model, stream), BOUND) == BACKUP_TEXT
    if failure == "timeout":
        assert time.monotonic() - began < 2.5, "the primary's own 0.2 s timeout was not applied"
    assert len(primary.requests) == (0 if script is None else 1)
    (sent,) = backup.requests
    assert sent.path == UPSTREAM_PATHS[way.fallback]
    assert sent.body["model"] == (way.fallback_model or way.model)
    assert sent.body.get("stream", False) is stream


@STREAMS
async def test_issue5_anthropic_client_falls_back_from_anthropic_to_openai_translated(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, stream: bool
) -> None:
    """The primary is a passthrough (the client's body as sent); the fallback gets the same request
    translated to Chat Completions, and the client an Anthropic answer."""
    primary.enqueue(Script(status=529))
    proxy = await routed(
        proxy_factory,
        [
            spec("ant", "anthropic", primary.anthropic_url),
            spec("oai", "openai", backup.url),
        ],
        (Target("oai", "gpt-4.1"),),
    )
    body = request_body("claude-sonnet-4-6", stream, system="be brief")
    resp = await post(proxy, "anthropic", body)
    if stream:
        got = outcome("anthropic", resp)
        assert got.complete and got.error is None and got.text == BACKUP_TEXT
    else:
        assert resp.status == 200 and resp.json()["type"] == "message"
        assert resp.json()["content"] == [{"type": "text", "text": BACKUP_TEXT}]
    (first,) = primary.requests
    assert first.body == body  # passthrough: untouched
    assert first.headers["x-api-key"] == "key-of-ant"
    (second,) = backup.requests
    assert second.path == "/v1/chat/completions"
    assert second.body["model"] == "gpt-4.1"
    assert second.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert second.headers["authorization"] == "Bearer key-of-oai"
    assert "x-api-key" not in second.headers and "anthropic-version" not in second.headers


# ============================================================================ retries of one upstream


@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_upstream_failing_twice_then_succeeding_is_answered_with_retries_2(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool
) -> None:
    primary.enqueue(Script(status=500), Script(status=503), Script(text="third time lucky"))
    proxy = await routed(proxy_factory, [spec("main", way.primary, url_of(primary, way.primary), retries=2)])
    assert await asyncio.wait_for(ask(proxy, way.client, way.model, stream), BOUND) == "third time lucky"
    assert len(primary.requests) == 3
    assert all(r.path == UPSTREAM_PATHS[way.primary] for r in primary.requests)


# the last try's status, as the client dialect says it (decision 6); a passthrough relays it as it came
EXHAUSTED = {A2O.id: (529, "overloaded_error"), O2A.id: (503, "api_error")}


@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_a2o_s18_issue5_retries_exhausted_answer_the_last_tries_error_with_its_status(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool
) -> None:
    last_error = (
        b'{"error":{"message":"second failure","type":"server_error","code":null}}'
        if way.primary == "openai"
        else b'{"type":"error","error":{"type":"api_error","message":"second failure"},"request_id":"req_last"}'
    )
    primary.enqueue(
        Script(status=500),
        Script(status=503, error_body=last_error, headers=[("x-upstream-marker", "last")]),
    )
    proxy = await routed(proxy_factory, [spec("main", way.primary, url_of(primary, way.primary), retries=1)])
    resp = await post(proxy, way.client, request_body(way.model, stream))
    assert len(primary.requests) == 2
    if way.primary == way.client:  # passthrough: the last upstream error, untouched
        assert resp.status == 503
        assert resp.body == last_error
        assert resp.header("x-upstream-marker") == "last"
    else:
        status, kind = EXHAUSTED[way.id]
        assert resp.status == status
        assert error_type(way.client, resp) == kind
        assert resp.json()["error"]["message"] == "second failure"


async def test_issue5_backoff_waits_the_retry_after_seconds_the_upstream_asked_for(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    primary.enqueue(Script(status=429, headers=[("retry-after", "1")]), Script(text="after the wait"))
    proxy = await routed(
        proxy_factory, [spec("main", "openai", primary.url, retries=1)], retry_backoff_max=5.0
    )
    began = time.monotonic()
    assert await ask(proxy, "anthropic", "gpt-4o", False) == "after the wait"
    elapsed = time.monotonic() - began
    assert len(primary.requests) == 2
    assert 1.0 <= elapsed < 4.0, elapsed  # retry_backoff alone would have waited ~0.01 s


async def test_issue5_backoff_waits_the_retry_after_ms_the_upstream_asked_for(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    primary.enqueue(Script(status=429, headers=[("retry-after-ms", "400")]), Script(text="after the wait"))
    proxy = await routed(
        proxy_factory, [spec("main", "openai", primary.url, retries=1)], retry_backoff_max=5.0
    )
    began = time.monotonic()
    assert await ask(proxy, "openai", "gpt-4o", True) == "after the wait"
    elapsed = time.monotonic() - began
    assert len(primary.requests) == 2
    assert 0.4 <= elapsed < 3.0, elapsed


async def test_issue5_backoff_honours_a_retry_after_http_date(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: a wait of 1 to 2 s
    primary.enqueue(Script(status=503, headers=[("retry-after", when)]), Script(text="after the date"))
    proxy = await routed(
        proxy_factory, [spec("main", "anthropic", primary.anthropic_url, retries=1)], retry_backoff_max=5.0
    )
    began = time.monotonic()
    assert await ask(proxy, "openai", "claude-sonnet-4-6", False) == "after the date"
    elapsed = time.monotonic() - began
    assert len(primary.requests) == 2
    assert 0.9 <= elapsed < 4.0, elapsed


async def test_issue5_backoff_without_retry_after_is_short_and_capped(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    """retry_backoff 0.01 s doubling, capped at retry_backoff_max 0.05 s: ten retries are quick."""
    primary.enqueue(*[Script(status=502) for _ in range(10)], Script(text="eleventh"))
    proxy = await routed(
        proxy_factory,
        [spec("main", "openai", primary.url, retries=10)],
        retry_backoff=0.01,
        retry_backoff_max=0.05,
    )
    began = time.monotonic()
    assert await ask(proxy, "anthropic", "gpt-4o", True) == "eleventh"
    assert len(primary.requests) == 11
    assert time.monotonic() - began < 3.0  # uncapped doubling would wait 0.01 * 1023 s ≈ 10 s


@STREAMS
async def test_issue5_retry_after_longer_than_backoff_max_moves_on_to_the_fallback_at_once(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, stream: bool
) -> None:
    primary.enqueue(Script(status=429, headers=[("retry-after", "30")]))
    proxy = await routed(
        proxy_factory,
        [spec("main", "openai", primary.url, retries=3), spec("spare", "openai", backup.url)],
        (Target("spare", None),),
        retry_backoff_max=0.2,
    )
    began = time.monotonic()
    assert await asyncio.wait_for(ask(proxy, "anthropic", "gpt-4o", stream), BOUND) == BACKUP_TEXT
    assert time.monotonic() - began < 2.0
    assert len(primary.requests) == 1  # none of its 3 retries: the wait asked for is too long
    assert len(backup.requests) == 1


# OpenAI's own 429 body; the Anthropic fake rewrites it into a rate_limit_error envelope
RATE_LIMITED = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'


@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_retry_after_too_long_and_no_fallback_answers_the_status_and_retry_after(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool
) -> None:
    primary.enqueue(Script(status=429, error_body=RATE_LIMITED, headers=[("retry-after", "30")]))
    proxy = await routed(
        proxy_factory,
        [spec("main", way.primary, url_of(primary, way.primary), retries=2)],
        retry_backoff_max=0.2,
    )
    began = time.monotonic()
    resp = await post(proxy, way.client, request_body(way.model, stream))
    assert time.monotonic() - began < 2.0
    assert resp.status == 429
    assert resp.header("retry-after") == "30"
    assert error_type(way.client, resp) == ("requests" if way.id == PASS_OPENAI.id else "rate_limit_error")
    assert len(primary.requests) == 1


@pytest.mark.parametrize("way", [PASS_ANTHROPIC, PASS_OPENAI], ids=way_ids)
async def test_issue5_passthrough_relays_an_error_untouched_when_retry_after_ends_the_tries(
    proxy_factory: Any, primary: FakeUpstream, way: Way
) -> None:
    """No try follows a Retry-After too long to wait: that answer is the last, relayed as it came
    (body, status and headers), as on a last try."""
    error = (
        b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'
        if way.primary == "openai"
        else b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_1"}'
    )
    primary.enqueue(
        Script(status=429, error_body=error, headers=[("retry-after", "30"), ("x-upstream-marker", "kept")])
    )
    proxy = await routed(
        proxy_factory,
        [spec("main", way.primary, url_of(primary, way.primary), retries=2)],
        retry_backoff_max=0.2,
    )
    resp = await post(proxy, way.client, request_body(way.model, False))
    assert (resp.status, resp.body) == (429, error)
    assert resp.header("retry-after") == "30"
    assert resp.header("x-upstream-marker") == "kept"
    assert len(primary.requests) == 1


# ============================================================================= non-retryable statuses


@STREAMS
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_a2o_s18_issue5_non_retryable_status_is_neither_retried_nor_falls_back(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, way: Way, status: int, stream: bool
) -> None:
    primary.enqueue(Script(status=status))  # a retry would get the default script's 200
    proxy = await routed(
        proxy_factory,
        [
            spec("main", way.primary, url_of(primary, way.primary), retries=2),
            spec("spare", way.fallback, url_of(backup, way.fallback)),
        ],
        (Target("spare", None),),
    )
    resp = await post(proxy, way.client, request_body(way.model, stream))
    expected = 400 if way.id == A2O.id and status == 422 else status  # A2O-E01: 422 -> 400
    assert resp.status == expected, resp.body  # the real status, also for a stream (A2O-S18)
    assert "json" in (resp.header("content-type") or "")
    assert error_type(way.client, resp)
    assert len(primary.requests) == 1
    assert backup.requests == []


# ================================================================ THE PROOF: after the first byte, never

WORDS = "alpha beta gamma delta"


# Two text events, then the body ends cleanly: no finish_reason and no [DONE], or no message_stop.
TRUNCATED: dict[Protocol, bytes] = {
    "openai": openai_chunk({"role": "assistant", "content": "alpha"}) + openai_chunk({"content": " beta"}),
    "anthropic": b"".join(
        [
            anthropic_event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_cut",
                        "type": "message",
                        "role": "assistant",
                        "model": "claude-sonnet-4-6",
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 5, "output_tokens": 1},
                    },
                },
            ),
            anthropic_event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            anthropic_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "alpha"}},
            ),
            anthropic_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " beta"}},
            ),
        ]
    ),
}


def breaking(kind: str, protocol: Protocol) -> Script:
    if kind == "reset":
        return Script(text=WORDS, cut_after=2)
    if kind == "error_event":
        return Script(text=WORDS, error_after=2)
    return Script(raw=TRUNCATED[protocol])


@pytest.mark.parametrize("kind", ["reset", "error_event", "truncated"])
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_failure_after_the_first_byte_is_never_retried_nor_falls_back(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, way: Way, kind: str
) -> None:
    primary.enqueue(breaking(kind, way.primary))
    proxy = await routed(
        proxy_factory,
        [
            spec("main", way.primary, url_of(primary, way.primary), retries=2),
            spec("spare", way.fallback, url_of(backup, way.fallback)),
        ],
        (Target("spare", None),),
    )
    resp = await post(proxy, way.client, request_body(way.model, True))
    got = outcome(way.client, resp)
    assert got.text == "alpha beta"  # these bytes reached the client before the failure
    assert not got.complete
    passthrough = way.primary == way.client
    if passthrough and kind == "truncated":
        assert got.error is None  # a passthrough relays the bytes as they came; it adds no ending
    else:
        assert got.error is not None, resp.body  # the client dialect's in-stream error (decision 2)
        if not (passthrough and kind == "error_event"):  # else the upstream's own, relayed
            assert got.error["type"] == (
                "overloaded_error" if way.id == O2A.id and kind == "error_event" else "api_error"
            )
    assert len(primary.requests) == 1
    assert backup.requests == []


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
BEFORE_ANY_EVENT = {
    "closed_after_head": Script(wire=SSE_HEAD),  # the head, then the connection closes: no event
    "silent_after_head": Script(ttft=1.0),  # the head, then nothing until the 0.3 s timeout
}


@pytest.mark.parametrize("failure", list(BEFORE_ANY_EVENT))
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_stream_failing_after_its_200_head_but_before_any_event_is_retried(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, way: Way, failure: str
) -> None:
    """Nothing reached the client (the head is held while another try may follow): the next try's
    answer is the client's, a clean 200 stream."""
    primary.enqueue(BEFORE_ANY_EVENT[failure])
    proxy = await routed(
        proxy_factory,
        [
            spec("main", way.primary, url_of(primary, way.primary), timeout=0.3),
            spec("spare", way.fallback, url_of(backup, way.fallback)),
        ],
        (Target("spare", None),),
    )
    resp = await post(proxy, way.client, request_body(way.model, True))
    got = outcome(way.client, resp)
    assert (got.text, got.error, got.complete) == (BACKUP_TEXT, None, True), resp.body
    assert len(primary.requests) == 1
    assert len(backup.requests) == 1


async def test_issue5_stream_failing_after_its_head_is_retried_on_the_same_upstream(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    primary.enqueue(Script(wire=SSE_HEAD), Script(text="second try"))
    proxy = await routed(proxy_factory, [spec("main", "openai", primary.url, retries=1)])
    assert await ask(proxy, "anthropic", "gpt-4o", True) == "second try"
    assert len(primary.requests) == 2


async def test_issue5_last_try_failing_after_its_head_is_an_in_stream_error(
    proxy_factory: Any, primary: FakeUpstream
) -> None:
    """With no try left the head goes out at once (message_start before the first token), so the
    failure is the in-stream error of decision 2."""
    primary.enqueue(Script(ttft=1.0))
    proxy = await routed(proxy_factory, [spec("main", "openai", primary.url, timeout=0.3)])
    got = outcome("anthropic", await post(proxy, "anthropic", request_body("gpt-4o", True)))
    assert got.error is not None and got.error["type"] == "timeout_error"
    assert len(primary.requests) == 1


FIRST_OUTPUT_IS_THE_FAILURE = {
    "in_band_error_first": Script(error_after=0),  # an error chunk is the stream's first event
    "ended_without_events": Script(wire=SSE_HEAD + b"0\r\n\r\n"),  # a complete, empty body
}


@pytest.mark.parametrize("failure", list(FIRST_OUTPUT_IS_THE_FAILURE))
async def test_issue5_translated_stream_whose_first_output_is_its_failure_is_retried(
    proxy_factory: Any, primary: FakeUpstream, failure: str
) -> None:
    """A2O: the upstream's 200 stream fails before any event of substance (an in-band error first, or a
    body with no event at all, A2O-S13): nothing reached the client, so the next try answers it."""
    primary.enqueue(FIRST_OUTPUT_IS_THE_FAILURE[failure], Script(text="second try"))
    proxy = await routed(proxy_factory, [spec("main", "openai", primary.url, retries=1)])
    assert await ask(proxy, "anthropic", "gpt-4o", True) == "second try"
    assert len(primary.requests) == 2


@pytest.mark.parametrize("failure", list(FIRST_OUTPUT_IS_THE_FAILURE))
async def test_issue5_last_try_whose_first_output_is_its_failure_is_the_in_stream_error(
    proxy_factory: Any, primary: FakeUpstream, failure: str
) -> None:
    primary.enqueue(FIRST_OUTPUT_IS_THE_FAILURE[failure])
    proxy = await routed(proxy_factory, [spec("main", "openai", primary.url)])
    got = outcome("anthropic", await post(proxy, "anthropic", request_body("gpt-4o", True)))
    assert got.error is not None and not got.complete
    assert len(primary.requests) == 1


# ============================================================================= several fallbacks, order


async def test_issue5_fallbacks_are_tried_in_order_each_with_its_own_retries(
    proxy_factory: Any, primary: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Four upstreams on one fake: a (1 retry) -> b (none) -> c (2 retries) -> d. The recorded model says
    which upstream each request was for, in the order they were made."""
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    primary.enqueue(
        Script(status=500),
        Script(status=500),  # a: both tries
        Script(status=503),  # b: its one try
        Script(status=429),
        Script(status=502),
        Script(status=504),  # c: all three tries
        Script(text="from d"),
    )
    proxy = await routed(
        proxy_factory,
        [
            spec("a", "openai", primary.url, retries=1),
            spec("b", "openai", primary.url),
            spec("c", "openai", primary.url, retries=2),
            spec("d", "openai", primary.url),
        ],
        (Target("b", "model-b"), Target("c", "model-c"), Target("d", "model-d")),
        model="model-a",
    )
    assert await ask(proxy, "anthropic", "claude-sonnet-4-6", True) == "from d"
    assert [r.body["model"] for r in primary.requests] == [
        "model-a",
        "model-a",
        "model-b",
        "model-c",
        "model-c",
        "model-c",
        "model-d",
    ]
    assert [r.headers["authorization"] for r in primary.requests] == [
        "Bearer key-of-a",
        "Bearer key-of-a",
        "Bearer key-of-b",
        *["Bearer key-of-c"] * 3,
        "Bearer key-of-d",
    ]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rawproxy.access"]
    assert re.search(r" model=claude-sonnet-4-6->model-d status=200 ", line), line


async def test_issue5_every_fallback_failing_answers_the_last_ones_error(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, closed_port: int
) -> None:
    primary.enqueue(Script(status=503))
    backup.enqueue(Script(status=502, error_body=b'{"error":{"message":"the very last","type":"x"}}'))
    proxy = await routed(
        proxy_factory,
        [
            spec("refused", "openai", f"http://127.0.0.1:{closed_port}/v1"),
            spec("main", "openai", primary.url),
            spec("spare", "openai", backup.url),
        ],
        (Target("main", None), Target("spare", None)),
    )
    resp = await post(proxy, "anthropic", request_body("gpt-4o", True))
    assert resp.status == 502
    assert resp.json()["error"] == {"type": "api_error", "message": "the very last"}
    assert (len(primary.requests), len(backup.requests)) == (1, 1)


# ====================================================================== A2O-R16 / A2O-S23 refits


def thinking_history_body(stream: bool) -> dict[str, Any]:
    """An Anthropic tool turn whose history holds a signed thinking block (replayed for DeepSeek)."""
    return {
        "model": "deepseek-reasoner",
        "max_tokens": 512,
        "stream": stream,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "list the files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls.", "signature": "sig-1"},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt"}],
            },
        ],
        "tools": [
            {
                "name": "Bash",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            }
        ],
    }


REASONING_REJECTED = Script(
    status=400,
    error_body=b'{"error":{"message":"Unknown field: messages[1].reasoning_content","type":"invalid_request_error"}}',
)
STREAM_OPTIONS_REJECTED = Script(
    status=400,
    error_body=b'{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}',
)


def _assistant(body: dict[str, Any]) -> dict[str, Any]:
    (message,) = [m for m in body["messages"] if m["role"] == "assistant"]
    return message


@STREAMS
async def test_a2o_r16_issue5_reasoning_refit_retries_once_without_using_the_routes_retries(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream, stream: bool
) -> None:
    """retries=0 and a fallback: the refit is not a try of the route (the fallback is never asked)."""
    primary.enqueue(REASONING_REJECTED, Script(text="refitted"))
    proxy = await routed(
        proxy_factory,
        [spec("ds", "openai", primary.url, profile="deepseek"), spec("spare", "openai", backup.url)],
        (Target("spare", None),),
    )
    resp = await post(proxy, "anthropic", thinking_history_body(stream))
    if stream:
        got = outcome("anthropic", resp)
        assert (got.text, got.complete) == ("refitted", True)
    else:
        assert resp.status == 200, resp.body
        assert [b["text"] for b in resp.json()["content"] if b["type"] == "text"] == ["refitted"]
    first, second = primary.requests
    assert _assistant(first.body)["reasoning_content"] == "I should run ls."
    assert "reasoning_content" not in _assistant(second.body)
    assert {k: v for k, v in first.body.items() if k != "messages"} == {
        k: v for k, v in second.body.items() if k != "messages"
    }
    assert backup.requests == []


async def test_a2o_r16_issue5_refit_that_fails_retryably_still_gets_the_routes_retry(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    """400 -> the refit -> 503: the route's one retry is still there (and refits again), the fallback
    is not needed."""
    primary.enqueue(REASONING_REJECTED, Script(status=503), REASONING_REJECTED, Script(text="at last"))
    proxy = await routed(
        proxy_factory,
        [
            spec("ds", "openai", primary.url, profile="deepseek", retries=1),
            spec("spare", "openai", backup.url),
        ],
        (Target("spare", None),),
    )
    resp = await post(proxy, "anthropic", thinking_history_body(False))
    assert resp.status == 200, resp.body
    replayed = ["reasoning_content" in _assistant(r.body) for r in primary.requests]
    assert replayed == [True, False, True, False]
    assert backup.requests == []


async def test_a2o_r16_issue5_refit_rejected_again_is_answered_without_retry_or_fallback(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    """Once only: a second 400 is not refitted again (and a 400 is no reason for a retry), so the
    client gets it; the fallback is not asked for a client error."""
    primary.enqueue(REASONING_REJECTED, Script(status=400))
    proxy = await routed(
        proxy_factory,
        [
            spec("ds", "openai", primary.url, profile="deepseek", retries=2),
            spec("spare", "openai", backup.url),
        ],
        (Target("spare", None),),
    )
    resp = await post(proxy, "anthropic", thinking_history_body(True))
    assert resp.status == 400
    assert len(primary.requests) == 2
    assert backup.requests == []


async def test_a2o_s23_issue5_stream_options_refit_retries_once_without_using_the_routes_retries(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.enqueue(STREAM_OPTIONS_REJECTED, Script(text="no usage asked", usage=False))
    proxy = await routed(
        proxy_factory,
        [spec("main", "openai", primary.url), spec("spare", "openai", backup.url)],
        (Target("spare", None),),
    )
    got = outcome("anthropic", await post(proxy, "anthropic", request_body("gpt-4o", True)))
    assert (got.text, got.complete) == ("no usage asked", True)
    first, second = primary.requests
    assert first.body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in second.body
    assert second.body["stream"] is True
    assert backup.requests == []


async def test_a2o_s23_issue5_refit_that_fails_retryably_falls_back(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    """The refit runs inside the try: its 503 moves on like any other try's would."""
    primary.enqueue(STREAM_OPTIONS_REJECTED, Script(status=503))
    proxy = await routed(
        proxy_factory,
        [spec("main", "openai", primary.url), spec("spare", "openai", backup.url)],
        (Target("spare", None),),
    )
    got = outcome("anthropic", await post(proxy, "anthropic", request_body("gpt-4o", True)))
    assert (got.text, got.complete) == (BACKUP_TEXT, True)
    assert len(primary.requests) == 2
    (spare,) = backup.requests
    assert spare.body["stream_options"] == {"include_usage": True}  # a new upstream, its own profile


# ============================================================================ client keys, key rotation

AUTH_HEADERS = ("authorization", "x-api-key", "api-key")


def auth_of(recorded: Any) -> dict[str, str]:
    return {name: recorded.headers[name] for name in AUTH_HEADERS if name in recorded.headers}


CLIENT_AUTH: dict[str, list[tuple[str, str]]] = {
    "x_api_key": [("x-api-key", CLIENT_KEY)],
    "bearer": [("authorization", f"Bearer {CLIENT_KEY}")],
}


@pytest.mark.parametrize("presented", list(CLIENT_AUTH))
@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_forward_client_key_sends_the_clients_key_in_the_upstreams_scheme(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool, presented: str
) -> None:
    proxy = await routed(
        proxy_factory,
        [spec("fwd", way.primary, url_of(primary, way.primary), api_keys=(), forward_client_key=True)],
    )
    headers = [*CLIENT_AUTH[presented], ("content-type", "application/json")]
    if way.client == "anthropic":
        headers.append(("anthropic-version", "2023-06-01"))
    resp = await post(proxy, way.client, request_body(way.model, stream), headers=headers)
    assert resp.status == 200, resp.body
    (sent,) = primary.requests
    expected = (
        {"authorization": f"Bearer {CLIENT_KEY}"} if way.primary == "openai" else {"x-api-key": CLIENT_KEY}
    )
    assert auth_of(sent) == expected


NOT_FORWARDED = {
    "own_key": {"api_keys": ("key-of-upstream",)},
    "own_key_wins_over_forwarding": {"api_keys": ("key-of-upstream",), "forward_client_key": True},
    "no_key_no_forwarding": {"api_keys": ()},
}


@pytest.mark.parametrize("setting", list(NOT_FORWARDED))
@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_upstream_not_forwarding_never_sees_the_clients_key(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool, setting: str
) -> None:
    proxy = await routed(
        proxy_factory, [spec("up", way.primary, url_of(primary, way.primary), **NOT_FORWARDED[setting])]
    )
    resp = await post(proxy, way.client, request_body(way.model, stream))
    assert resp.status == 200, resp.body
    (sent,) = primary.requests
    assert all(CLIENT_KEY not in value for value in sent.headers.values()), sent.headers
    if setting == "no_key_no_forwarding":
        assert auth_of(sent) == {}
    else:
        scheme = (
            {"authorization": "Bearer key-of-upstream"}
            if way.primary == "openai"
            else {"x-api-key": "key-of-upstream"}
        )
        assert auth_of(sent) == scheme


@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "own_key"])
async def test_issue5_count_tokens_forwarded_to_an_anthropic_upstream_follows_forward_client_key(
    proxy_factory: Any, primary: FakeUpstream, forward: bool
) -> None:
    keys: tuple[str, ...] = () if forward else ("key-of-upstream",)
    proxy = await routed(
        proxy_factory,
        [spec("ant", "anthropic", primary.anthropic_url, api_keys=keys, forward_client_key=forward)],
    )
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=BOUND) as conn:
        body = json.dumps({"model": "claude-sonnet-4-6", "messages": HI}).encode()
        resp = await conn.request("POST", "/v1/messages/count_tokens", CLIENT_HEADERS["anthropic"], body)
    assert resp.status == 200 and resp.json()["input_tokens"] > 0
    (sent,) = primary.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert auth_of(sent) == {"x-api-key": CLIENT_KEY if forward else "key-of-upstream"}


async def test_issue5_fallback_that_forwards_gets_the_clients_key_and_the_primary_never_does(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    primary.enqueue(Script(status=500))
    proxy = await routed(
        proxy_factory,
        [
            spec("main", "anthropic", primary.anthropic_url),
            spec("spare", "openai", backup.url, api_keys=(), forward_client_key=True),
        ],
        (Target("spare", "gpt-4o"),),
    )
    assert await ask(proxy, "anthropic", "claude-sonnet-4-6", True) == BACKUP_TEXT
    (first,) = primary.requests
    assert auth_of(first) == {"x-api-key": "key-of-main"}
    (second,) = backup.requests
    assert auth_of(second) == {"authorization": f"Bearer {CLIENT_KEY}"}


@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_several_api_keys_are_used_in_turn_across_requests(
    proxy_factory: Any, primary: FakeUpstream, way: Way
) -> None:
    keys = ("key-1", "key-2", "key-3")
    proxy = await routed(
        proxy_factory, [spec("up", way.primary, url_of(primary, way.primary), api_keys=keys)]
    )
    for i in range(4):
        assert await ask(proxy, way.client, way.model, i % 2 == 1) == PRIMARY_TEXT
    header = "authorization" if way.primary == "openai" else "x-api-key"
    prefix = "Bearer " if way.primary == "openai" else ""
    assert [r.headers[header] for r in primary.requests] == [prefix + k for k in (*keys, keys[0])]


async def test_issue5_a_retry_uses_the_next_api_key(proxy_factory: Any, primary: FakeUpstream) -> None:
    primary.enqueue(Script(status=429))
    proxy = await routed(
        proxy_factory, [spec("up", "openai", primary.url, api_keys=("key-1", "key-2"), retries=1)]
    )
    assert await ask(proxy, "anthropic", "gpt-4o", False) == PRIMARY_TEXT
    assert [r.headers["authorization"] for r in primary.requests] == ["Bearer key-1", "Bearer key-2"]


# ================================================================================ per-upstream timeout


@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_upstream_timeout_overrides_a_shorter_global_timeout(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool
) -> None:
    primary.enqueue(Script(text="slow but allowed", head_delay=0.6))
    proxy = await routed(
        proxy_factory, [spec("slow", way.primary, url_of(primary, way.primary), timeout=5.0)], timeout=0.2
    )
    assert await ask(proxy, way.client, way.model, stream) == "slow but allowed"
    assert len(primary.requests) == 1


@STREAMS
@pytest.mark.parametrize("way", SAME_PROTOCOL, ids=way_ids)
async def test_issue5_upstream_timeout_overrides_a_longer_global_timeout(
    proxy_factory: Any, primary: FakeUpstream, way: Way, stream: bool
) -> None:
    primary.enqueue(Script(head_delay=3.0))
    proxy = await routed(
        proxy_factory, [spec("quick", way.primary, url_of(primary, way.primary), timeout=0.2)], timeout=60.0
    )
    began = time.monotonic()
    resp = await post(proxy, way.client, request_body(way.model, stream))
    assert time.monotonic() - began < 2.0
    assert resp.status == 504
    assert error_type(way.client, resp) == "timeout_error"
    assert len(primary.requests) == 1


async def test_issue5_a_short_upstream_timeout_applies_at_once_while_a_long_one_is_watched(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    """One ticker keeps every read timeout, at a quarter of the shortest (at most 1 s). A request to
    a 0.1 s upstream made while the ticker sleeps its 1 s for a 60 s one times out in about 0.1 s, not
    at the end of that sleep."""
    backup.enqueue(Script(text="patient answer", head_delay=1.5))
    primary.enqueue(Script(head_delay=3.0))
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        grace_seconds=1.0,
        timeout=60.0,
        upstreams=(spec("patient", "openai", backup.url), spec("quick", "openai", primary.url, timeout=0.1)),
        route_table=(Route(match="slow-*", upstream="patient"), Route(match="*", upstream="quick")),
    )
    patient = asyncio.create_task(ask(proxy, "anthropic", "slow-model", False))
    for _ in range(200):  # until the patient request is in flight (its ticker started)
        if backup.requests:
            break
        await asyncio.sleep(0.005)
    assert backup.requests
    began = time.monotonic()
    resp = await post(proxy, "anthropic", request_body("gpt-4o", False))
    elapsed = time.monotonic() - began
    assert resp.status == 504
    assert elapsed < 0.6, elapsed  # the old ticker's sleep would have ended ~1 s after it began
    assert await asyncio.wait_for(patient, BOUND) == "patient answer"


async def test_issue5_each_upstream_keeps_its_own_timeout_across_a_fallback(
    proxy_factory: Any, primary: FakeUpstream, backup: FakeUpstream
) -> None:
    """The primary times out at its 0.2 s; the fallback, as slow, is allowed its 5 s."""
    primary.enqueue(Script(head_delay=0.6))
    backup.enqueue(Script(text="slow fallback", head_delay=0.6))
    proxy = await routed(
        proxy_factory,
        [
            spec("quick", "openai", primary.url, timeout=0.2),
            spec("patient", "openai", backup.url, timeout=5.0),
        ],
        (Target("patient", None),),
        timeout=1.0,
    )
    assert await ask(proxy, "anthropic", "gpt-4o", True) == "slow fallback"
    assert (len(primary.requests), len(backup.requests)) == (1, 1)
