"""Issue 19: every security rule tested at its boundary, on the real proxy over a 127.0.0.1 socket.

The rules, and where rawproxy keeps them:

* the client key (``exchange/endpoints.authenticate``): accepted in ``x-api-key`` or ``Authorization:
  Bearer`` (the scheme in any case); exactly the configured key passes, and nothing near it does: the key
  plus one character, a prefix, another case, the last character changed, empty, another scheme;
* the body limit (``server/loop.py``: ``_refuse_head`` for a Content-Length, ``_read_body`` for a chunked
  body): a body of exactly ``max_body_bytes`` passes whole, one byte more is a 413 before the upstream is
  called, by every framing;
* the upstream's response headers (``client/http._NOT_RELAYED`` and the names its Connection header
  lists): none reaches the client, streamed or whole, success or error, passthrough or translated;
* the client's request headers (``routing/upstreams.Upstream._merge``, an allow-list; ``client/http.py``
  for accept-encoding): its credential, hop-by-hop and framing headers, cookies and Host never go
  upstream, by every route (passthrough of either protocol, count_tokens, translated both ways);
* forwarding the client's key (``forward_client_key``): only when asked for, and never in place of a
  key the upstream has.

Each case's id names the rule and the boundary; a mutation of any of these rules makes at least one fail
(the table in the issue 19 report).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from rawproxy import __version__
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes, UpstreamSpec
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import HTTPConnection, Response, T, build_request, start

pytestmark = pytest.mark.integration

CLIENT_KEY = "sk-Client-Key-7fQ3"  # mixed case, so that a case-folding comparison is seen
OTHER_CLIENT_KEY = "sk-Other-Key-0000"  # configured first: the key under test is not the first compared
UPSTREAM_KEY = "sk-upstream-key-0001"
CLIENT_MARK = "client-mark"  # in every client header value a test sends, to be looked for upstream
UPSTREAM_MARK = "upstream-mark"  # in every upstream header value that can carry it
OWN_SERVER = f"rawproxy/{__version__}"

ANTHROPIC = [("anthropic-version", "2023-06-01"), ("content-type", "application/json")]
OPENAI = [("content-type", "application/json")]


def anthropic_body(*, stream: bool = False, model: str = "claude-sonnet-4-6") -> bytes:
    return json.dumps(
        {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()


def openai_body(*, stream: bool = False, model: str = "gpt-4o", text: str = "hi") -> bytes:
    return json.dumps(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
    ).encode()


def chunked(body: bytes, size: int | None = None) -> bytes:
    """``body`` as a chunked message body, in pieces of ``size`` (one chunk by default)."""
    size = size or len(body)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


async def send(
    proxy: Any, path: str, headers: Sequence[tuple[str, str]], body: bytes, *, framing: str = "content-length"
) -> Response:
    """One request on a connection of its own, its body framed by Content-Length or chunked."""
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        if framing == "chunked":
            await conn.send(build_request("POST", path, [*headers, ("transfer-encoding", "chunked")]))
            await conn.send(chunked(body))
            return await conn.read_response(method="POST", timeout=T)
        return await conn.request("POST", path, headers, body, timeout=T)


# ====================================================================================== client key


KEY_CASES = [
    pytest.param(CLIENT_KEY, 200, id="exact-key"),
    pytest.param(CLIENT_KEY + "x", 401, id="key-plus-one-char"),
    pytest.param(CLIENT_KEY[:-1], 401, id="prefix-last-char-missing"),
    pytest.param(CLIENT_KEY[:8], 401, id="short-prefix"),
    pytest.param(CLIENT_KEY.swapcase(), 401, id="other-case"),
    pytest.param(CLIENT_KEY.upper(), 401, id="upper-case"),
    pytest.param(CLIENT_KEY[:-1] + chr(ord(CLIENT_KEY[-1]) ^ 1), 401, id="last-char-changed"),
    pytest.param("", 401, id="empty"),
]
KEY_FORMS = [
    pytest.param(lambda key: ("x-api-key", key), id="x-api-key"),
    pytest.param(lambda key: ("authorization", f"Bearer {key}"), id="bearer"),
    pytest.param(lambda key: ("authorization", f"bearer {key}"), id="bearer-lower-case-scheme"),
]


async def keyed_proxy(proxy_factory: Any) -> Any:
    return await start(proxy_factory, api_keys=(OTHER_CLIENT_KEY, CLIENT_KEY))


@pytest.mark.parametrize(("presented", "status"), KEY_CASES)
@pytest.mark.parametrize("form", KEY_FORMS)
async def test_client_key_is_compared_whole_and_exactly(
    proxy_factory: Any, fake: FakeUpstream, form: Any, presented: str, status: int
) -> None:
    proxy = await keyed_proxy(proxy_factory)
    resp = await send(proxy, "/v1/chat/completions", [*OPENAI, form(presented)], openai_body())
    assert resp.status == status, resp.body
    if status == 401:
        assert resp.json()["error"]["type"] == "authentication_error"
        assert fake.requests == []
    else:
        assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(("authorization", f"Basic {CLIENT_KEY}"), id="basic-scheme-exact-key"),
        pytest.param(("authorization", CLIENT_KEY), id="authorization-without-scheme"),
        pytest.param(("api-key", CLIENT_KEY), id="api-key-header-not-accepted"),
    ],
)
async def test_client_key_only_in_the_accepted_headers(
    proxy_factory: Any, fake: FakeUpstream, auth: tuple[str, str]
) -> None:
    proxy = await keyed_proxy(proxy_factory)
    resp = await send(proxy, "/v1/chat/completions", [*OPENAI, auth], openai_body())
    assert resp.status == 401, resp.body
    assert fake.requests == []


# ====================================================================================== body limit


LIMIT = 4096


def body_of(size: int) -> bytes:
    """An OpenAI request body of exactly ``size`` bytes."""
    bare = len(openai_body(text=""))
    body = openai_body(text="x" * (size - bare))
    assert len(body) == size
    return body


@pytest.mark.parametrize(
    ("size", "status"),
    [pytest.param(LIMIT, 200, id="exactly-the-limit"), pytest.param(LIMIT + 1, 413, id="one-byte-over")],
)
@pytest.mark.parametrize(
    "framing", ["content-length", "expect-100-continue", "chunked-one-chunk", "chunked-small-chunks"]
)
async def test_body_limit_boundary(
    proxy_factory: Any, fake: FakeUpstream, framing: str, size: int, status: int
) -> None:
    proxy = await start(proxy_factory, max_body_bytes=LIMIT)
    body = body_of(size)
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        if framing == "content-length":
            await conn.send(build_request("POST", "/v1/chat/completions", OPENAI, body))
        elif framing == "expect-100-continue":
            headers = [*OPENAI, ("expect", "100-continue"), ("content-length", str(size))]
            await conn.send(build_request("POST", "/v1/chat/completions", headers))
            if status == 200:  # the body is invited, then sent
                assert (await conn.read_head(timeout=T)).status == 100
                await conn.send(body)
        else:
            await conn.send(
                build_request("POST", "/v1/chat/completions", [*OPENAI, ("transfer-encoding", "chunked")])
            )
            await conn.send(chunked(body, 1000 if framing == "chunked-small-chunks" else None))
        resp = await conn.read_response(method="POST", timeout=T)
    assert resp.status == status, resp.body
    if status == 200:
        (seen,) = fake.requests
        assert seen.raw_body == body  # passed whole (a passthrough: the client's own bytes)
    else:
        assert resp.json()["error"]["type"] == "request_too_large"
        assert fake.requests == []


# ======================================================================== upstream response headers


@dataclass(frozen=True)
class Mode:
    route: str  # "passthrough": an OpenAI client; "translated": an Anthropic client (same OpenAI upstream)
    streamed: bool
    status: int  # the upstream's
    retries: int = 0


MODES = {
    "passthrough-streamed": Mode("passthrough", True, 200),
    "passthrough-whole": Mode("passthrough", False, 200),
    "passthrough-error": Mode("passthrough", False, 400),
    # a 429 whose Retry-After is too long to wait: the held answer is relayed (exchange/retry.py)
    "passthrough-held-error": Mode("passthrough", False, 429, retries=1),
    "translated-streamed": Mode("translated", True, 200),
    "translated-whole": Mode("translated", False, 200),
}

# Each header of the filter, as an upstream sends it (Title-Case names, as real servers write them);
# transfer-encoding and content-length are the upstream's framing, chosen in ``upstream_answer``.
RESPONSE_PROBES: dict[str, list[tuple[str, str]]] = {
    "connection": [("Connection", "keep-alive")],
    "keep-alive": [("Keep-Alive", "timeout=5, max=100")],
    "transfer-encoding": [],
    "content-length": [],
    # an encoded success is a 502 at its head and an encoded error's body is dropped unread:
    # only the held 429 relays the head of an encoded answer, so only that mode sees this header
    "content-encoding": [("Content-Encoding", "gzip")],
    "upgrade": [("Upgrade", f"{UPSTREAM_MARK}/1")],
    "proxy-connection": [("Proxy-Connection", UPSTREAM_MARK)],
    "proxy-authenticate": [("Proxy-Authenticate", f'Basic realm="{UPSTREAM_MARK}"')],
    "proxy-authorization": [("Proxy-Authorization", f"Basic {UPSTREAM_MARK}")],
    "te": [("TE", "trailers")],
    "trailer": [("Trailer", "X-Upstream-Checksum")],
    "date": [("Date", "Tue, 01 Jan 2030 00:00:00 GMT")],
    "server": [("Server", f"{UPSTREAM_MARK}-origin/1.0")],
    "set-cookie": [("Set-Cookie", f"session={UPSTREAM_MARK}; Path=/; HttpOnly")],
    "set-cookie-upper-case-name": [("SET-COOKIE", f"other={UPSTREAM_MARK}; Path=/")],
    "alt-svc": [("Alt-Svc", f'h3=":443"; ma=86400; {UPSTREAM_MARK}=1')],
    "strict-transport-security": [("Strict-Transport-Security", "max-age=31536000; includeSubDomains")],
    "via": [("Via", f"1.1 {UPSTREAM_MARK}")],
    "named-by-connection": [("Connection", "X-Upstream-Hop"), ("X-Upstream-Hop", UPSTREAM_MARK)],
}
FILTERED = sorted(
    {"x-upstream-hop"}
    | {name.lower() for lines in RESPONSE_PROBES.values() for name, _ in lines}
    | {"transfer-encoding", "content-length"}
)

_CHUNK = {"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}
_SSE = (
    b"".join(
        b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for chunk in (
            {
                **_CHUNK,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
                ],
            },
            {**_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        )
    )
    + b"data: [DONE]\n\n"
)
_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-b",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
_ERROR = json.dumps({"error": {"message": "no", "type": "invalid_request_error", "code": None}}).encode()


def upstream_answer(mode: Mode, probe: str) -> bytes:
    """The upstream's whole answer, head and framing too, with the probed header in it."""
    if mode.status >= 400:
        body, kind = _ERROR, "application/json"
    elif mode.streamed:
        body, kind = _SSE, "text/event-stream"
    else:
        body, kind = _COMPLETION, "application/json"
    lines = [("Content-Type", kind), ("X-Kept", "relayed"), *RESPONSE_PROBES[probe]]
    if mode.status == 429:
        lines.append(("Retry-After", "3600"))
    is_chunked = probe == "transfer-encoding" or (mode.streamed and probe != "content-length")
    if is_chunked:
        lines.append(("Transfer-Encoding", "chunked"))
        payload = chunked(body, 64)
    else:
        lines.append(("Content-Length", str(len(body))))
        payload = body
    head = f"HTTP/1.1 {mode.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
    return head.encode("latin-1") + payload


@pytest.mark.parametrize("probe", list(RESPONSE_PROBES))
@pytest.mark.parametrize("mode_name", list(MODES))
async def test_upstream_response_header_never_reaches_the_client(
    proxy_factory: Any, fake: FakeUpstream, mode_name: str, probe: str
) -> None:
    mode = MODES[mode_name]
    spec = UpstreamSpec(
        name="up", protocol="openai", base_url=fake.url, api_keys=(UPSTREAM_KEY,), retries=mode.retries
    )
    proxy = await start(
        proxy_factory, openai_upstream=DEFAULT_OPENAI_UPSTREAM, openai_key=None, upstreams=(spec,)
    )
    fake.enqueue(Script(wire=upstream_answer(mode, probe)))
    if mode.route == "passthrough":
        resp = await send(proxy, "/v1/chat/completions", OPENAI, openai_body(stream=mode.streamed))
    else:
        resp = await send(
            proxy, "/v1/messages", ANTHROPIC, anthropic_body(stream=mode.streamed, model="gpt-4o")
        )

    encoded_success = probe == "content-encoding" and mode.status < 400
    status = 502 if encoded_success else mode.status  # an encoded success fails at its head
    assert resp.status == status, resp.body
    streamed = mode.streamed and not encoded_success
    own = {
        "server": [OWN_SERVER],
        "transfer-encoding": ["chunked"] if streamed else [],
        "content-length": [] if streamed else [str(len(resp.body))],
    }
    for name in FILTERED:
        assert resp.head.header_all(name) == own.get(name, []), (name, resp.head.headers)
    assert not any(UPSTREAM_MARK in value for _, value in resp.head.headers), resp.head.headers
    # The filter, not a blanket drop: the upstream's answer is relayed with its other headers (an encoded
    # one only when held for a retry that was not made: its body is dropped unread, see client/http.py).
    if mode.route == "passthrough" and (probe != "content-encoding" or mode.retries):
        assert resp.header("x-kept") == "relayed"


# ========================================================================== client request headers


@dataclass(frozen=True)
class Route:
    upstream: str  # the upstream's protocol
    path: str
    client: str  # the client's protocol


ROUTES = {
    "passthrough-anthropic": Route("anthropic", "/v1/messages", "anthropic"),
    "passthrough-openai": Route("openai", "/v1/chat/completions", "openai"),
    "passthrough-count-tokens": Route("anthropic", "/v1/messages/count_tokens", "anthropic"),
    "translated-anthropic-to-openai": Route("openai", "/v1/messages", "anthropic"),
    "translated-openai-to-anthropic": Route("anthropic", "/v1/chat/completions", "openai"),
}


RENAMED = "model-renamed-by-the-proxy"  # mapped to the upstream's model: a passthrough body is rewritten


def upstream_model(route: Route) -> str:
    return "gpt-4o" if route.upstream == "openai" else "claude-sonnet-4-6"


def route_body(route: Route, model: str | None = None) -> tuple[list[tuple[str, str]], bytes]:
    model = model or upstream_model(route)
    if route.client == "anthropic":
        return ANTHROPIC, anthropic_body(model=model)
    return OPENAI, openai_body(model=model)


async def route_proxy(
    proxy_factory: Any,
    fake: FakeUpstream,
    route: Route,
    *,
    keys: tuple[str, ...] = (UPSTREAM_KEY,),
    forward: bool = False,
) -> Any:
    base = fake.anthropic_url if route.upstream == "anthropic" else fake.url
    spec = UpstreamSpec(
        name="up",
        protocol=route.upstream,  # type: ignore[arg-type]
        base_url=base,
        api_keys=keys,
        forward_client_key=forward,
    )
    return await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        upstreams=(spec,),
        api_keys=(CLIENT_KEY,),
        routes=ModelRoutes(model_map={RENAMED: upstream_model(route)}),
    )


AUTH = ("x-api-key", CLIENT_KEY)  # how the client authenticates, unless the probe says otherwise

# What the client sends beyond its dialect's headers; None: the body goes chunked (no Content-Length).
REQUEST_PROBES: dict[str, list[tuple[str, str]] | None] = {
    "x-api-key": [("x-api-key", CLIENT_KEY)],
    "authorization-bearer": [("authorization", f"Bearer {CLIENT_KEY}")],
    "proxy-authorization": [AUTH, ("proxy-authorization", f"Basic {CLIENT_MARK}")],
    "cookie": [AUTH, ("cookie", f"session={CLIENT_MARK}")],
    "host": [AUTH, ("host", f"{CLIENT_MARK}.invalid")],
    "connection": [AUTH, ("connection", "keep-alive")],
    "keep-alive": [AUTH, ("keep-alive", "timeout=5")],
    "te": [AUTH, ("te", "trailers")],
    "upgrade": [AUTH, ("upgrade", "h2c")],
    "proxy-connection": [AUTH, ("proxy-connection", "keep-alive")],
    "expect": [AUTH, ("expect", "100-continue")],
    "content-length-of-a-rewritten-body": [AUTH],  # sent with the RENAMED model (see the test)
    "transfer-encoding": None,
    "named-by-connection": [AUTH, ("connection", "x-client-hop"), ("x-client-hop", CLIENT_MARK)],
    "accept-encoding": [AUTH, ("accept-encoding", "gzip, br")],
}
# Client request headers no upstream request may carry (the proxy sets none of them itself).
NEVER_UPSTREAM = (
    "proxy-authorization",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-connection",
    "expect",
    "transfer-encoding",
    "x-client-hop",
)


def names(raw: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in raw if k == name]


@pytest.mark.parametrize("probe", list(REQUEST_PROBES))
@pytest.mark.parametrize("route_name", list(ROUTES))
async def test_client_request_header_never_goes_upstream(
    proxy_factory: Any, fake: FakeUpstream, route_name: str, probe: str
) -> None:
    route = ROUTES[route_name]
    proxy = await route_proxy(proxy_factory, fake, route)
    # A body the proxy rewrites: the client's Content-Length is then wrong for what goes upstream (one
    # equal to the upstream's would be merged by any HTTP parser, the fake's included).
    rewritten = probe == "content-length-of-a-rewritten-body"
    headers, body = route_body(route, RENAMED if rewritten else None)
    extra = REQUEST_PROBES[probe]
    framing = "chunked" if extra is None else "content-length"
    resp = await send(proxy, route.path, [*headers, *(extra or [AUTH])], body, framing=framing)
    assert resp.status == 200, resp.body

    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 1, fake.requests
    for seen in fake.requests:  # the model list a translation may read too
        raw = seen.raw_headers
        assert not any(CLIENT_KEY in v or CLIENT_MARK in v for _, v in raw), raw
        for name in NEVER_UPSTREAM:
            assert names(raw, name) == [], (name, raw)
        assert len(names(raw, "host")) == 1, raw
        assert names(raw, "accept-encoding") == ["identity"], raw
        if route.upstream == "anthropic":
            assert (names(raw, "x-api-key"), names(raw, "authorization")) == ([UPSTREAM_KEY], []), raw
        else:
            assert (names(raw, "authorization"), names(raw, "x-api-key")) == (
                [f"Bearer {UPSTREAM_KEY}"],
                [],
            ), raw
        if seen.method == "POST":
            assert names(raw, "content-length") == [str(len(seen.raw_body))], raw
            assert not rewritten or len(seen.raw_body) != len(body), "the probe's body was not rewritten"


# ========================================================================= forwarding the client key


@pytest.mark.parametrize(
    ("keys", "forward", "expected"),
    [
        pytest.param((UPSTREAM_KEY,), True, UPSTREAM_KEY, id="upstream-key-wins-over-forwarding"),
        pytest.param((), False, None, id="not-forwarded-unless-configured"),
        pytest.param((), True, CLIENT_KEY, id="forwarded-when-configured-and-no-upstream-key"),
    ],
)
@pytest.mark.parametrize("route_name", list(ROUTES))
async def test_client_key_forwarded_only_when_configured_and_never_over_the_upstreams(
    proxy_factory: Any,
    fake: FakeUpstream,
    route_name: str,
    keys: tuple[str, ...],
    forward: bool,
    expected: str | None,
) -> None:
    route = ROUTES[route_name]
    proxy = await route_proxy(proxy_factory, fake, route, keys=keys, forward=forward)
    headers, body = route_body(route)
    resp = await send(proxy, route.path, [*headers, AUTH], body)
    assert resp.status == 200, resp.body
    (seen,) = [r for r in fake.requests if r.method == "POST"]
    raw = seen.raw_headers
    if route.upstream == "anthropic":
        auth, other = names(raw, "x-api-key"), names(raw, "authorization")
        wanted = [expected] if expected else []
    else:
        auth, other = names(raw, "authorization"), names(raw, "x-api-key")
        wanted = [f"Bearer {expected}"] if expected else []
    assert (auth, other) == (wanted, []), raw
    if expected != CLIENT_KEY:
        assert not any(CLIENT_KEY in v for _, v in raw), raw
