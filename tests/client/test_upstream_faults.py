"""Issue 6 item 4, the upstream fault battery: every way an upstream can fail, in every direction.

Directions: an Anthropic client over an OpenAI upstream (``a2o``), an OpenAI client over an Anthropic
upstream (``o2a``), and the two passthroughs (``pass_anthropic``, ``pass_openai``) where the fault means
something there (a passthrough relays stream bytes as they came, so malformed or truncated SSE is not
its to mend); each streamed and not. The rule under test (CONFORMANCE.md decisions 2 and 6): a failure
before the first byte is answered with the real status and the client protocol's JSON error (A2O-S18,
O2A-E02), mapped as decision 6 says (503 -> 529 ``overloaded_error`` for an Anthropic client, 529 -> 503
for an OpenAI one, 500/502 keep their status as ``api_error``, timeouts 504 ``timeout_error``, connect
failures 502 ``api_error``, ``retry-after`` passed on); after it, the client dialect's in-stream error
event (Anthropic: ``event: error`` last, no ``message_delta``/``message_stop``; an open block stays open,
see anthropic_messages.StreamEncoder; OpenAI: ``data: {"error": ...}`` then ``data: [DONE]``, no
finish_reason). Never a success, never a 500, never a logged bug. A few rows are oddities that are *not*
faults (garbage lines inside a whole stream, a JSON answer to a stream request, an event stream labelled
text/plain): the client gets the whole answer.

Every case is a row of ``CASES``: the fault (a ``Script`` for the fake upstream, or ``None`` for an
upstream whose port is closed) and what the client must see. Each row runs as its own test (named with
the CONFORMANCE IDs it checks) in a fresh proxy, and after it the proxy holds no upstream connection
but idle ones. ``test_the_whole_battery_in_one_proxy_leaves_nothing_behind`` then runs every row in one
proxy and checks that asyncio tasks, upstream connections (open, and idle in the pool) and file
descriptors are exactly back where they started. Upstreams have a 0.3 s read timeout and no retries:
what a fault does is what the client gets (but for the transport's one retry of a reused connection
reset before any byte: see ``run_case``). Pre-head errors are read through the official SDKs
(``max_retries=0``); streams are read raw, to see every event.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from rawproxy.client import Client, make_client, open_stream
from rawproxy.client.faults import FAULTS, Silent, fault, map_exception
from rawproxy.client.pool import ConnectionPool
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.config.file import Route, UpstreamSpec
from rawproxy.errors import ClientError
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import HTTPConnection, SSEEvent, anthropic_event, openai_chunk, parse_sse, text_of

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.integration

Protocol = Literal["openai", "anthropic"]

BOUND = 10.0  # seconds: no exchange of the battery may take longer
TIMEOUT = 0.3  # every upstream's read timeout
STALL = 1.5  # a stalled upstream's silence: well past TIMEOUT
SETTLE = 5.0  # the longest wait for tasks, connections and descriptors to come back
CLIENT_KEY = "sk-client"
HI = [{"role": "user", "content": "hi"}]
WORDS = "alpha beta gamma delta"
BEFORE = "alpha beta"  # what reaches the client of a stream that fails after its second text event


# ------------------------------------------------------------------------------------------- ways


@dataclass(frozen=True)
class Way:
    id: str
    client: Protocol
    upstream: Protocol

    @property
    def translated(self) -> bool:
        return self.client != self.upstream

    @property
    def model(self) -> str:
        return "gpt-4o" if self.upstream == "openai" else "claude-sonnet-4-6"

    @property
    def dead_model(self) -> str:
        """Routed to an upstream of the same protocol whose port is closed."""
        return "gpt-dead" if self.upstream == "openai" else "claude-dead"


A2O = Way("a2o", "anthropic", "openai")
O2A = Way("o2a", "openai", "anthropic")
PASS_ANTHROPIC = Way("pass_anthropic", "anthropic", "anthropic")
PASS_OPENAI = Way("pass_openai", "openai", "openai")
TRANSLATED = (A2O, O2A)
ALL_WAYS = (A2O, O2A, PASS_ANTHROPIC, PASS_OPENAI)


# ---------------------------------------------------------------------------------- what to expect


@dataclass(frozen=True)
class Status:
    """Before the first byte: this status, with the client protocol's JSON error of this type."""

    status: int
    type: str
    retry_after: str | None = None
    message: str | None = None  # a part of the error's message


@dataclass(frozen=True)
class InStream:
    """After the 200: the text that came before the failure, then the client dialect's error event."""

    type: str
    text: str


@dataclass(frozen=True)
class Complete:
    """Not a failure at all: the client gets the whole answer."""

    text: str
    content_type: str = "text/event-stream"


Expect = Status | InStream | Complete


@dataclass(frozen=True)
class Case:
    group: str
    variant: str
    way: Way
    stream: bool
    script: Callable[[], Script | None]  # None: the upstream's port is closed
    expect: Expect

    @property
    def id(self) -> str:
        mode = "stream" if self.stream else "unary"
        return "-".join(p for p in (self.variant, self.way.id, mode) if p)


# ------------------------------------------------------------------------------ upstream byte forms


def _text_delta(text: str) -> bytes:
    return anthropic_event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


# Two text events ("alpha", " beta"): a stream's beginning, without its end.
PREFIX: dict[Protocol, bytes] = {
    "openai": openai_chunk({"role": "assistant", "content": "alpha"}) + openai_chunk({"content": " beta"}),
    "anthropic": anthropic_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_fault",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
    )
    + anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    + _text_delta("alpha")
    + _text_delta(" beta"),
}
# The rest of a complete stream after PREFIX.
END: dict[Protocol, bytes] = {
    "openai": openai_chunk({}, "stop") + b"data: [DONE]\n\n",
    "anthropic": anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    + anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 2},
        },
    )
    + anthropic_event("message_stop", {"type": "message_stop"}),
}
NOT_JSON: dict[Protocol, bytes] = {
    "openai": b"data: {this is not json\n\n",
    "anthropic": b"event: content_block_delta\ndata: {this is not json\n\n",
}
# Lines that are no SSE field the dialects know (an HTML fragment, binary junk, a bare word).
GARBAGE = b"<html><body>upstream hiccup</body></html>\n\x00\xfe\xff junk\nnot-a-field\n\n"

COMPLETE_BODY: dict[Protocol, bytes] = {
    "openai": json.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": WORDS}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
        }
    ).encode(),
    "anthropic": json.dumps(
        {
            "id": "msg_fault",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": WORDS}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 4},
        }
    ).encode(),
}
# A 200 whose JSON body is an error, not an answer.
ERROR_200: dict[Protocol, bytes] = {
    "openai": b'{"error":{"message":"model is overloaded","type":"server_error","code":null}}',
    "anthropic": b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
}
HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
OPENAI_429 = (
    b'{"error":{"message":"Rate limit reached for requests","type":"requests",'
    b'"param":null,"code":"rate_limit_exceeded"}}'
)
OPENAI_503 = b'{"error":{"message":"The server is overloaded","type":"server_error","code":null}}'
JSON = "application/json"
SSE = "text/event-stream"


def _head(content_type: str, length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n\r\n".encode()


# -------------------------------------------------------------------------------------- the cases

CASES: list[Case] = []


def add(
    group: str,
    ways: tuple[Way, ...],
    streams: tuple[bool, ...],
    script: Callable[[Way, bool], Script | None],
    expect: Callable[[Way, bool], Expect] | Expect,
    variant: str = "",
) -> None:
    for way in ways:
        for stream in streams:
            CASES.append(
                Case(
                    group,
                    variant,
                    way,
                    stream,
                    lambda way=way, stream=stream: script(way, stream),  # type: ignore[misc]
                    expect(way, stream) if callable(expect) else expect,
                )
            )


BOTH = (False, True)
STREAM_ONLY = (True,)
UNARY_ONLY = (False,)

# connection refused: the upstream's port is closed (A2O-E03; O2A-E02 for a stream)
add("refused", ALL_WAYS, BOTH, lambda w, s: None, Status(502, "api_error", message="could not connect"))

# a TCP reset instead of any answer
add("reset_head", ALL_WAYS, BOTH, lambda w, s: Script(reset=True), Status(502, "api_error"))

# the connection dies mid-answer: a stream after two text events, a body half-way through
add(
    "reset_mid",
    ALL_WAYS,
    STREAM_ONLY,
    lambda w, s: Script(text=WORDS, cut_after=2),
    InStream("api_error", BEFORE),
)
add(
    "reset_mid",
    ALL_WAYS,
    UNARY_ONLY,
    lambda w, s: Script(wire=_head(JSON, len(COMPLETE_BODY[w.upstream])) + COMPLETE_BODY[w.upstream][:40]),
    Status(502, "api_error"),
    "body_cut",
)

# silence past the read timeout: before the head, and after the first text event (or body piece)
add("stall_head", ALL_WAYS, BOTH, lambda w, s: Script(head_delay=STALL), Status(504, "timeout_error"))
add(
    "stall_mid",
    ALL_WAYS,
    STREAM_ONLY,
    lambda w, s: Script(text=WORDS, stall=STALL),
    InStream("timeout_error", "alpha"),
)
add(
    "stall_mid",
    ALL_WAYS,
    UNARY_ONLY,
    lambda w, s: Script(raw=COMPLETE_BODY[w.upstream], content_type=JSON, chunk_size=40, stall=STALL),
    Status(504, "timeout_error"),
    "body",
)

# malformed SSE (a passthrough relays the bytes as they came: nothing to map there)
add(
    "malformed",
    TRANSLATED,
    STREAM_ONLY,
    lambda w, s: Script(raw=PREFIX[w.upstream] + NOT_JSON[w.upstream] + END[w.upstream]),
    InStream("api_error", BEFORE),
    "data_not_json",
)
add(
    "malformed",
    TRANSLATED,
    STREAM_ONLY,
    lambda w, s: Script(raw=PREFIX[w.upstream] + GARBAGE),
    InStream("api_error", BEFORE),
    "garbage_then_eof",
)
add(
    "garbage_ignored",
    TRANSLATED,
    STREAM_ONLY,
    lambda w, s: Script(raw=PREFIX[w.upstream] + GARBAGE + END[w.upstream]),
    Complete(BEFORE),
)

# an HTML error page from a load balancer (A2O-E02: wrapped in the client's JSON error)
add(
    "html_error",
    ALL_WAYS,
    BOTH,
    lambda w, s: Script(status=502, raw=HTML_PAGE, content_type="text/html"),
    Status(502, "api_error", message="502 Bad Gateway"),
)

# a 200 of the wrong kind: an HTML page; a JSON error body for a stream; a JSON answer for a stream
add(
    "wrong_type",
    ALL_WAYS,
    BOTH,
    lambda w, s: Script(raw=HTML_PAGE, content_type="text/html; charset=utf-8"),
    Status(502, "api_error"),
    "html_200",
)
add(
    "wrong_type",
    ALL_WAYS,
    STREAM_ONLY,
    lambda w, s: Script(raw=ERROR_200[w.upstream], content_type=JSON),
    Status(502, "api_error"),
    "json_error_200",
)
add(
    "json_for_stream",
    ALL_WAYS,
    STREAM_ONLY,
    lambda w, s: Script(raw=COMPLETE_BODY[w.upstream], content_type=JSON),
    Complete(WORDS),
)
# ...but an event stream labelled otherwise (text/plain) is still an event stream, not a fault (a
# passthrough relays the upstream's headers as they came, its content-type too)
add(
    "sse_mislabelled",
    ALL_WAYS,
    STREAM_ONLY,
    lambda w, s: Script(raw=PREFIX[w.upstream] + END[w.upstream], content_type="text/plain"),
    lambda w, s: Complete(BEFORE, "text/event-stream" if w.translated else "text/plain"),
)


# a compressed body although we sent Accept-Encoding: identity
def _gzipped(way: Way, stream: bool) -> Script:
    body = PREFIX[way.upstream] + END[way.upstream] if stream else COMPLETE_BODY[way.upstream]
    return Script(
        raw=gzip.compress(body), content_type=SSE if stream else JSON, headers=[("content-encoding", "gzip")]
    )


ANTHROPIC_429 = (
    b'{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for requests"}}'
)
add("compressed", ALL_WAYS, BOTH, _gzipped, Status(502, "api_error", message="gzip"))
# ...but an error keeps its status and Retry-After, and its body is read decoded (issue 19, defect 6):
# its message reaches the client, and a passthrough relays the body itself (without content-encoding)
add(
    "compressed",
    ALL_WAYS,
    BOTH,
    lambda w, s: Script(
        status=429,
        raw=gzip.compress(OPENAI_429 if w.upstream == "openai" else ANTHROPIC_429),
        content_type=JSON,
        headers=[("content-encoding", "gzip"), ("retry-after", "5")],
    ),
    lambda w, s: Status(
        429,
        "requests" if w == PASS_OPENAI else "rate_limit_error",
        retry_after="5",
        message="Rate limit reached for requests",
    ),
    "error_429",
)


# issue 19, defect 3: a transfer coding other than chunked alone (here gzip under the chunks) would reach
# the translator, or a passthrough's client, as compressed bytes: 502 before the first byte
def _transfer_coded(coding: str, status: int = 200) -> Callable[[Way, bool], Script]:
    def script(way: Way, stream: bool) -> Script:
        if status != 200:
            body, content_type = OPENAI_429, JSON
        elif stream:
            body, content_type = PREFIX[way.upstream] + END[way.upstream], SSE
        else:
            body, content_type = COMPLETE_BODY[way.upstream], JSON
        data = gzip.compress(body)
        framed = b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data) if coding.endswith("chunked") else data
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ntransfer-encoding: {coding}\r\nconnection: close\r\n"
        extra = "retry-after: 4\r\n" if status != 200 else ""
        return Script(wire=(head + extra + "\r\n").encode() + framed)

    return script


add(
    "transfer_coding",
    ALL_WAYS,
    BOTH,
    _transfer_coded("gzip, chunked"),
    Status(502, "api_error", message="Transfer-Encoding: gzip, chunked"),
    "gzip_chunked",
)
add(
    "transfer_coding",
    ALL_WAYS,
    BOTH,
    _transfer_coded("chunked, gzip"),  # the final coding is not chunked: the body would run to the close
    Status(502, "api_error", message="Transfer-Encoding: chunked, gzip"),
    "chunked_gzip",
)
add(
    "transfer_coding",
    ALL_WAYS,
    UNARY_ONLY,
    _transfer_coded("gzip, chunked", status=429),  # an error keeps its status; its unreadable body goes
    Status(429, "rate_limit_error", retry_after="4"),
    "error_429",
)


# 429 with Retry-After (A2O-E01, O2A-E01); a passthrough relays the upstream's own error type
def _rate_limit_type(way: Way, stream: bool) -> Status:
    return Status(429, "requests" if way == PASS_OPENAI else "rate_limit_error", retry_after="7")


add(
    "rate_limit",
    ALL_WAYS,
    BOTH,
    lambda w, s: Script(status=429, error_body=OPENAI_429, headers=[("retry-after", "7")]),
    _rate_limit_type,
)

# decision 6: overloaded and server errors
OVERLOAD = [("retry-after", "3")]
add(
    "overload",
    (A2O,),
    BOTH,
    lambda w, s: Script(status=503, error_body=OPENAI_503, headers=OVERLOAD),
    Status(529, "overloaded_error", retry_after="3"),
    "503_to_529",
)
add(
    "overload",
    (O2A,),
    BOTH,
    lambda w, s: Script(status=529, headers=OVERLOAD),
    Status(503, "overloaded_error", retry_after="3"),
    "529_to_503",
)
add(
    "overload",
    (PASS_ANTHROPIC,),
    BOTH,
    lambda w, s: Script(status=529, headers=OVERLOAD),
    Status(529, "overloaded_error", retry_after="3"),
    "529",
)
add(
    "overload",
    (PASS_OPENAI,),
    BOTH,
    lambda w, s: Script(status=503, error_body=OPENAI_503, headers=OVERLOAD),
    Status(503, "server_error", retry_after="3"),
    "503",
)
for _status in (500, 502):
    add(
        "overload",
        TRANSLATED,
        BOTH,
        lambda w, s, status=_status: Script(status=status),  # type: ignore[misc]
        Status(_status, "api_error"),
        f"{_status}_kept",
    )

# a stream that ends without its final event (no finish_reason nor [DONE]; no message_stop), and a
# whole body that is cut-off JSON although its framing is complete
add(
    "no_final_event",
    TRANSLATED,
    STREAM_ONLY,
    lambda w, s: Script(raw=PREFIX[w.upstream]),
    InStream("api_error", BEFORE),
)
add(
    "no_final_event",
    ALL_WAYS,
    UNARY_ONLY,
    lambda w, s: Script(raw=COMPLETE_BODY[w.upstream][:-20], content_type=JSON),
    Status(502, "api_error"),
    "truncated_json",
)

# issue 19, defect 5: a whole answer whose fields have the wrong types (was a 500 and a logged bug)
MALFORMED_ANSWER: dict[Protocol, bytes] = {
    "openai": b'{"id":"x","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":"many","completion_tokens":1}}',
    "anthropic": b'{"id":"m","type":"message","content":[{"type":"text","text":"hi"}],'
    b'"usage":{"input_tokens":"many","output_tokens":1}}',
}
add(
    "malformed_answer",
    TRANSLATED,
    BOTH,  # a stream request answered with JSON is read as a whole answer too
    lambda w, s: Script(raw=MALFORMED_ANSWER[w.upstream], content_type=JSON),
    lambda w, s: Status(502, "api_error", message="_tokens: expected a token count"),
)

# an in-band error mid-stream (A2O-S14: code 502 -> api_error; O2A-S07: overloaded_error)
add(
    "in_band",
    TRANSLATED,
    STREAM_ONLY,
    lambda w, s: Script(text=WORDS, error_after=2),
    lambda w, s: InStream("overloaded_error" if w == O2A else "api_error", BEFORE),
)


def cases(group: str) -> pytest.MarkDecorator:
    chosen = [c for c in CASES if c.group == group]
    assert chosen, group
    return pytest.mark.parametrize("case", chosen, ids=[c.id for c in chosen])


# ------------------------------------------------------------------------------------------ set-up


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _upstream(name: str, protocol: Protocol, base_url: str) -> UpstreamSpec:
    return UpstreamSpec(
        name=name, protocol=protocol, base_url=base_url, api_keys=(f"key-of-{name}",), timeout=TIMEOUT
    )


@dataclass
class Battery:
    proxy: Any
    fake: FakeUpstream
    pool: ConnectionPool
    caplog: pytest.LogCaptureFixture


@pytest.fixture
async def battery(
    proxy_factory: Any, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Battery:
    """A proxy with four upstreams (OpenAI and Anthropic on the fake, and one of each on a closed
    port), its upstream connection pool, and the log."""
    clients: list[Client] = []
    init = Client.__init__

    def spy(self: Client, **settings: Any) -> None:  # on the class: whichever module the server makes it by
        init(self, **settings)
        clients.append(self)

    monkeypatch.setattr(Client, "__init__", spy)
    dead = f"http://127.0.0.1:{_closed_port()}"
    upstreams = (
        _upstream("openai", "openai", fake.url),
        _upstream("anthropic", "anthropic", fake.anthropic_url),
        _upstream("dead_openai", "openai", dead + "/v1"),
        _upstream("dead_anthropic", "anthropic", dead),
    )
    routes = (
        Route(match="gpt-4o", upstream="openai"),
        Route(match="claude-sonnet-4-6", upstream="anthropic"),
        Route(match="gpt-dead", upstream="dead_openai"),
        Route(match="claude-dead", upstream="dead_anthropic"),
    )
    caplog.set_level(logging.WARNING)
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        upstreams=upstreams,
        route_table=routes,
        grace_seconds=1.0,
        ping_interval=1.0,  # the keep-alive ticker ends within a quarter of it once no stream runs
    )
    assert len(clients) == 1
    return Battery(proxy, fake, clients[0].pool, caplog)


# ----------------------------------------------------------------------------------------- clients

CLIENT_HEADERS: dict[Protocol, list[tuple[str, str]]] = {
    "anthropic": [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
    ],
    "openai": [("authorization", f"Bearer {CLIENT_KEY}"), ("content-type", "application/json")],
}
CLIENT_PATHS: dict[Protocol, str] = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}


async def sdk_error(proxy: Any, way: Way, model: str, stream: bool) -> tuple[int, dict[str, Any], Any]:
    """One request through the client's official SDK, which must raise its status error: (status, the
    error object of the client protocol's body, the response headers)."""
    if way.client == "anthropic":
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
        ) as sdk:
            with pytest.raises(anthropic.APIStatusError) as caught:
                if stream:
                    async for _ in await sdk.messages.create(
                        model=model, max_tokens=64, messages=HI, stream=True
                    ):
                        pass
                else:
                    await sdk.messages.create(model=model, max_tokens=64, messages=HI)
        body = caught.value.body
        assert isinstance(body, dict) and body.get("type") == "error", body  # Anthropic's error envelope
        error = body["error"]
    else:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
        ) as osdk:
            with pytest.raises(openai.APIStatusError) as caught:
                if stream:
                    async for _ in await osdk.chat.completions.create(
                        model=model, max_tokens=64, messages=HI, stream=True
                    ):
                        pass
                else:
                    await osdk.chat.completions.create(model=model, max_tokens=64, messages=HI)
        error = caught.value.body  # the SDK hands on the ``error`` object of {"error": {...}}
    assert isinstance(error, dict), error
    return caught.value.status_code, error, caught.value.response.headers


async def raw_stream(
    proxy: Any, way: Way, model: str, content_type: str = "text/event-stream"
) -> list[SSEEvent]:
    """One streamed request over raw HTTP: its events, read to the end of the 200 response."""
    body = {"model": model, "max_tokens": 64, "messages": HI, "stream": True}
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=BOUND) as conn:
        resp = await conn.request(
            "POST",
            CLIENT_PATHS[way.client],
            CLIENT_HEADERS[way.client],
            json.dumps(body).encode(),
            timeout=BOUND,
        )
    assert resp.status == 200, resp.body
    assert content_type in (resp.header("content-type") or ""), resp.head.headers
    return parse_sse(resp.body)


# ------------------------------------------------------------------------------------------ checks


def check_status(expect: Status, status: int, error: dict[str, Any], headers: Any) -> None:
    assert (status, error.get("type")) == (expect.status, expect.type), error
    message = error.get("message")
    assert isinstance(message, str) and message, error
    assert "Traceback" not in message
    if expect.message is not None:
        assert expect.message in message, message
    assert "json" in headers.get("content-type", ""), headers
    assert headers.get("retry-after") == expect.retry_after, headers


def _anthropic_events(events: list[SSEEvent]) -> tuple[list[str | None], str]:
    names = [e.event for e in events if e.event != "ping"]
    assert names and names[0] == "message_start", names
    return names, text_of(events)


def _openai_chunks(events: list[SSEEvent]) -> tuple[list[dict[str, Any]], str]:
    assert events and events[-1].data == "[DONE]", events[-3:]
    assert [e.data for e in events].count("[DONE]") == 1, events
    chunks = [json.loads(e.data) for e in events[:-1]]
    text = "".join(
        (ch.get("delta") or {}).get("content") or "" for c in chunks for ch in c.get("choices") or ()
    )
    return chunks, text


def check_in_stream(way: Way, expect: InStream, events: list[SSEEvent]) -> None:
    if way.client == "anthropic":
        names, text = _anthropic_events(events)
        assert names[-1] == "error" and names.count("error") == 1, names
        # No success ending. (An open block is left open, as Anthropic itself does: see
        # anthropic_messages.StreamEncoder on why closing it made Claude Code keep a broken turn.)
        assert "message_stop" not in names and "message_delta" not in names, names
        error = events[-1].json()
        assert error["type"] == "error", error
    else:
        chunks, text = _openai_chunks(events)
        assert "error" in chunks[-1] and sum("error" in c for c in chunks) == 1, chunks  # then [DONE]
        finishes = [ch.get("finish_reason") for c in chunks for ch in c.get("choices") or ()]
        assert not any(finishes), chunks  # no finish_reason: never a success
        error = chunks[-1]
    assert error["error"]["type"] == expect.type, error
    assert isinstance(error["error"]["message"], str) and error["error"]["message"], error
    assert text == expect.text


def check_complete(way: Way, expect: Complete, events: list[SSEEvent]) -> None:
    if way.client == "anthropic":
        names, text = _anthropic_events(events)
        assert names[-1] == "message_stop" and "error" not in names, names
    else:
        chunks, text = _openai_chunks(events)
        assert not any("error" in c for c in chunks), chunks
        finishes = [ch.get("finish_reason") for c in chunks for ch in c.get("choices") or ()]
        assert [f for f in finishes if f] == ["stop"], chunks
    assert text == expect.text


async def eventually(predicate: Callable[[], bool], seconds: float = SETTLE) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run_case(battery: Battery, case: Case) -> None:
    """One fault, one request, and what the client saw; then no upstream connection but idle ones."""
    fake, way = battery.fake, case.way
    script = case.script()
    asked = len(fake.requests)
    tries = 0 if script is None else 1
    if script is not None and script.reset and battery.pool.idle_connections:
        # A reused connection closed before any byte of the answer looks like one the upstream had
        # closed while idle: the pool tries once more on a new connection (client/pool.py).
        tries = 2
    for _ in range(tries):
        fake.enqueue(script)  # type: ignore[arg-type]
    model = way.model if script is not None else way.dead_model
    expect = case.expect
    began = time.monotonic()
    if isinstance(expect, Status):
        check_status(expect, *await sdk_error(battery.proxy, way, model, case.stream))
    else:
        sse = expect.content_type if isinstance(expect, Complete) else "text/event-stream"
        events = await raw_stream(battery.proxy, way, model, sse)
        if isinstance(expect, InStream):
            check_in_stream(way, expect, events)
        else:
            check_complete(way, expect, events)
    if getattr(expect, "type", None) == "timeout_error":
        assert time.monotonic() - began < STALL, "the read timeout did not end the exchange"
    # one try (no retry: the upstreams have none), and nothing left queued for the next case
    assert len(fake.requests) == asked + tries, fake.requests[asked:]
    pool = battery.pool
    assert await eventually(lambda: pool.open_connections == pool.idle_connections), (
        f"{pool.open_connections} upstream connections open, {pool.idle_connections} of them idle"
    )
    bugs = [
        r.getMessage()
        for r in battery.caplog.records
        if r.getMessage().startswith("bug while") or (r.name == "asyncio" and r.levelno >= logging.ERROR)
    ]
    assert not bugs, bugs


# ------------------------------------------------------------------------- the battery, case by case


@cases("refused")
async def test_a2o_e03_o2a_e02_connection_refused_is_502_api_error(battery: Battery, case: Case) -> None:
    await run_case(battery, case)


@cases("reset_head")
async def test_a2o_e03_o2a_e02_reset_before_the_head_is_502_api_error(battery: Battery, case: Case) -> None:
    await run_case(battery, case)


@cases("reset_mid")
async def test_a2o_s13_o2a_s10_reset_mid_answer_is_the_clients_error_after_the_200_or_502(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("stall_head")
async def test_a2o_e03_x06_stall_before_the_head_is_504_timeout_error(battery: Battery, case: Case) -> None:
    await run_case(battery, case)


@cases("stall_mid")
async def test_a2o_e03_x06_stall_mid_answer_is_a_timeout_error_event_or_504(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("malformed")
async def test_a2o_s13_a2o_s14_o2a_s10_malformed_sse_is_the_clients_error_event(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("garbage_ignored")
async def test_o2a_s11_garbage_lines_in_a_complete_stream_are_ignored_as_sse_says(
    battery: Battery, case: Case
) -> None:
    """Lines that are no field we know are skipped (WHATWG event-stream rules): a stream that is
    otherwise whole is a whole answer, with nothing of the garbage in it."""
    await run_case(battery, case)


@cases("html_error")
async def test_a2o_e02_o2a_e01_html_error_page_is_its_status_with_the_clients_json_error(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("wrong_type")
async def test_a2o_s18_o2a_e02_a_200_that_is_no_answer_is_502_api_error_never_a_success(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("json_for_stream")
async def test_a2o_s18_o2a_e02_a_json_answer_to_a_stream_request_is_rendered_as_a_whole_stream(
    battery: Battery, case: Case
) -> None:
    """An upstream that ignored ``stream: true``: its answer reaches the client as the stream it asked
    for, complete, in every direction (a passthrough too: a JSON body is no stream its SDK can read)."""
    await run_case(battery, case)


@cases("sse_mislabelled")
async def test_an_event_stream_labelled_text_plain_is_still_a_whole_stream(
    battery: Battery, case: Case
) -> None:
    """Only JSON and HTML bodies are taken for something other than the stream asked for."""
    await run_case(battery, case)


@cases("compressed")
async def test_x02_compressed_body_is_502_and_a_compressed_error_keeps_its_status(
    battery: Battery, case: Case
) -> None:
    """We send ``Accept-Encoding: identity``; a gzip body anyway can be neither translated nor relayed
    (``content-encoding`` is not relayed): 502, never garbled bytes as a 200. A compressed error
    keeps its status and Retry-After, and its body is read decoded (issue 19, defect 6)."""
    await run_case(battery, case)


@cases("transfer_coding")
async def test_issue19_a_transfer_coding_other_than_chunked_is_502_before_the_first_byte(
    battery: Battery, case: Case
) -> None:
    # issue 19, defect 3
    await run_case(battery, case)


@cases("malformed_answer")
async def test_issue19_a_malformed_whole_answer_is_502_naming_the_field_never_a_500(
    battery: Battery, case: Case
) -> None:
    # issue 19, defect 5
    await run_case(battery, case)


@cases("rate_limit")
async def test_a2o_e01_o2a_e01_429_keeps_its_status_and_retry_after(battery: Battery, case: Case) -> None:
    await run_case(battery, case)


@cases("overload")
async def test_a2o_e01_o2a_e01_decision_6_overloaded_and_server_errors(battery: Battery, case: Case) -> None:
    await run_case(battery, case)


@cases("no_final_event")
async def test_a2o_s13_o2a_s10_answer_without_its_end_is_never_a_success(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


@cases("in_band")
async def test_a2o_s14_o2a_s07_in_band_error_mid_stream_is_the_clients_error_event(
    battery: Battery, case: Case
) -> None:
    await run_case(battery, case)


def test_the_battery_covers_every_fault_in_every_direction() -> None:
    groups = {c.group for c in CASES}
    assert groups == {
        "refused",
        "reset_head",
        "reset_mid",
        "stall_head",
        "stall_mid",
        "malformed",
        "garbage_ignored",
        "html_error",
        "wrong_type",
        "json_for_stream",
        "sse_mislabelled",
        "compressed",
        "transfer_coding",
        "rate_limit",
        "overload",
        "no_final_event",
        "in_band",
        "malformed_answer",
    }
    for group in groups:
        chosen = [c for c in CASES if c.group == group]
        assert {c.way for c in chosen} >= set(TRANSLATED), group
    assert len({(c.group, c.id) for c in CASES}) == len(CASES)


# ------------------------------------------------------------- the fault table (client/faults.py)

_REQ = httpx.Request("POST", "http://upstream.test/v1/chat/completions")
REFUSED = "could not connect to the upstream: [Errno 111] Connection refused"

# (exception, fault kind, status, canonical type, message): each row of FAULTS met at least once
FAULT_TABLE: list[tuple[BaseException, str, int, str, str]] = [
    (Silent(), "upstream_timeout", 504, "timeout_error", "upstream timed out"),
    (
        TimeoutError(),
        "upstream_unreachable",
        502,
        "api_error",
        "could not connect to the upstream: timed out",
    ),
    (ConnectionRefusedError(111, "Connection refused"), "upstream_unreachable", 502, "api_error", REFUSED),
    (
        socket.gaierror(-2, "Name or service not known"),
        "upstream_unreachable",
        502,
        "api_error",
        "could not connect to the upstream: [Errno -2] Name or service not known",
    ),
    (
        httpx.ConnectTimeout("timed out", request=_REQ),
        "upstream_unreachable",
        502,
        "api_error",
        "could not connect to the upstream: timed out",
    ),
    (
        httpx.PoolTimeout("no connection free", request=_REQ),
        "upstream_unreachable",
        529,
        "overloaded_error",
        "too many upstream requests in flight",
    ),
    (
        httpx.ReadTimeout("timed out", request=_REQ),
        "upstream_timeout",
        504,
        "timeout_error",
        "upstream timed out",
    ),
    (
        httpx.WriteTimeout("timed out", request=_REQ),
        "upstream_timeout",
        504,
        "timeout_error",
        "upstream timed out",
    ),
    (
        httpx.ConnectError("[Errno 111] Connection refused", request=_REQ),
        "upstream_unreachable",
        502,
        "api_error",
        REFUSED,
    ),
    (
        httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body", request=_REQ
        ),
        "upstream_protocol",
        502,
        "api_error",
        "upstream connection failed: peer closed connection without sending complete message body",
    ),
    (
        httpx.ReadError("Connection reset by peer", request=_REQ),
        "upstream_protocol",
        502,
        "api_error",
        "upstream connection failed: Connection reset by peer",
    ),
    (
        httpx.ReadError("", request=_REQ),  # no message: the class names what happened
        "upstream_protocol",
        502,
        "api_error",
        "upstream connection failed: ReadError",
    ),
    (
        httpx.WriteError("Broken pipe", request=_REQ),
        "upstream_protocol",
        502,
        "api_error",
        "upstream connection failed: Broken pipe",
    ),
    (
        httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.", request=_REQ),
        "upstream_protocol",
        502,
        "api_error",
        "upstream request failed: UnsupportedProtocol: Request URL has an unsupported protocol 'ftp://'.",
    ),
]


@pytest.mark.parametrize(
    ("exc", "kind", "status", "etype", "message"),
    FAULT_TABLE,
    ids=[f"{type(row[0]).__name__}-{i}" for i, row in enumerate(FAULT_TABLE)],
)
def test_the_fault_table_types_every_exception_the_client_meets(
    exc: BaseException, kind: str, status: int, etype: str, message: str
) -> None:
    err = fault(exc)
    assert (err.kind, err.info.status, err.info.type, err.info.message) == (kind, status, etype, message)
    assert type(err).kind == kind  # a class per fault, never the abstract ProxyError
    if isinstance(exc, httpx.HTTPError):
        assert map_exception(exc).info == err.info


def test_the_fault_table_cases_meet_every_row_and_nothing_else_is_typed() -> None:
    rows = [getattr(httpx, m) if isinstance(m, str) else m for m, _ in FAULTS]
    first = {next(i for i, cls in enumerate(rows) if isinstance(exc, cls)) for exc, *_ in FAULT_TABLE}
    assert first == set(range(len(rows)))
    with pytest.raises(TypeError):
        fault(ValueError("a bug, not an upstream fault"))


def test_a_header_http11_cannot_carry_is_the_clients_error() -> None:
    client = make_client(connect_timeout=1, read_timeout=1)
    with pytest.raises(ClientError) as info:
        open_stream(client, "POST", "http://127.0.0.1:9/v1/x", headers=[("x-note", "a\r\nhost: evil")])
    assert (info.value.kind, info.value.info.status) == ("client", 400)
    assert info.value.info.message == "illegal header for the upstream: b'x-note'"


# ----------------------------------------------------------------------- the whole battery, one proxy


@dataclass(frozen=True)
class Snapshot:
    tasks: int
    connections: int
    idle: int
    watched: int  # exchanges whose read timeout the pool's ticker still keeps
    fds: int


def snapshot(pool: ConnectionPool) -> Snapshot:
    return Snapshot(
        len(asyncio.all_tasks()),
        pool.open_connections,
        pool.idle_connections,
        len(pool.watch),
        len(os.listdir("/proc/self/fd")),
    )


async def steady(pool: ConnectionPool) -> Snapshot:
    """The state once nothing changes for half a second (tickers ended, connections closed), or after
    SETTLE seconds."""
    last, same = snapshot(pool), 0
    deadline = time.monotonic() + SETTLE
    while same < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = snapshot(pool)
        same = same + 1 if now == last else 0
        last = now
    return last


async def warm(battery: Battery) -> None:
    """A clean answer in every way, streamed and not: every lazy first use happens, and the pool ends
    with its one idle connection (the exchanges run one after another, each reusing it)."""
    for way in ALL_WAYS:
        for stream in BOTH:
            if stream:
                battery.fake.enqueue(Script(text=WORDS))
                check_complete(way, Complete(WORDS), await raw_stream(battery.proxy, way, way.model))
            elif way.client == "anthropic":
                async with anthropic.AsyncAnthropic(
                    base_url=battery.proxy.url, api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
                ) as sdk:
                    message = await sdk.messages.create(model=way.model, max_tokens=64, messages=HI)
                assert message.stop_reason == "end_turn"
            else:
                async with openai.AsyncOpenAI(
                    base_url=battery.proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=BOUND
                ) as osdk:
                    completion = await osdk.chat.completions.create(
                        model=way.model, max_tokens=64, messages=HI
                    )
                assert completion.choices[0].finish_reason == "stop"


async def test_the_whole_battery_in_one_proxy_leaves_nothing_behind(battery: Battery) -> None:
    """Every case above, one after another in one proxy: afterwards the asyncio tasks, the upstream
    connections (open, and idle in the pool) and the file descriptors are exactly what they were."""
    await warm(battery)
    before = await steady(battery.pool)
    assert before.connections == before.idle == 1, before
    assert before.watched == 0, before
    for case in CASES:
        try:
            await run_case(battery, case)
        except (AssertionError, pytest.fail.Exception) as exc:
            pytest.fail(f"case {case.group}/{case.id}: {exc}")
    await warm(battery)
    await eventually(lambda: snapshot(battery.pool) == before)  # a bounded wait for the last closes
    after = await steady(battery.pool)
    if after != before:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        pytest.fail(f"before {before}, after {after}; tasks now: {others}")
