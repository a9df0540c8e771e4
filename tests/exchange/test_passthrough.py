"""Passthrough: the client speaks the upstream's protocol, so its body goes up unchanged (but for a
mapped model) and the upstream's bytes come back unchanged, with auth, headers and the access log applied.

Every recorded real transcript (tests/fixtures/transcripts) is replayed by the fake upstream byte for
byte, in 97-byte pieces, and the client must receive exactly those bytes with the same status and content-type.
The fake is subclassed here to keep each request's raw body and raw header lines, so that "the same
bytes went up" and "no header was doubled" can be checked, not only the parsed JSON.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from rawproxy import __version__
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream, Script
from tests.support.rawhttp import HTTPConnection, Response, T, parse_sse, start
from tests.support.transcripts import Transcript, load

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-ant-upstream-secret"
OPENAI_KEY = "sk-oai-upstream-secret"
CLIENT_KEY = "sk-client-must-not-leak"
CLIENT_VERSION = "2023-01-01"  # not the preset's 2023-06-01, so forwarding is visible
CLIENT_BETA = "client-beta-2025-01-01,other-beta-2025-02-02"

ANTHROPIC_CLIENT = [
    ("x-api-key", CLIENT_KEY),
    ("anthropic-version", CLIENT_VERSION),
    ("anthropic-beta", CLIENT_BETA),
    ("content-type", "application/json"),
    ("user-agent", "Anthropic/Python 0.99.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-retry-count", "0"),
    ("x-app", "cli"),
]
OPENAI_CLIENT = [
    ("authorization", f"Bearer {CLIENT_KEY}"),
    ("content-type", "application/json"),
    ("user-agent", "OpenAI/Python 1.99.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-arch", "x64"),
    ("x-app", "cli"),
]

ANTHROPIC_TRANSCRIPTS = load("anthropic_messages")
OPENAI_TRANSCRIPTS = load("openai_chat")

LINE = re.compile(
    r"^(?P<rid>\d{6}) POST (?P<path>\S+) model=(?P<client>\S+)->(?P<upstream>\S+) status=(?P<status>\d+) "
    r"ttft=(?P<ttft>[\d.]+ms|-) dur=(?P<dur>[\d.]+)ms in=(?P<inp>\S+) out=(?P<out>\S+) cached=(?P<cached>\S+)"
    r" upstream=\S+$"
)


# ----------------------------------------------------------------------------------------- helpers


async def anthropic_only(proxy_factory: Any, fake: FakeUpstream, **config: Any) -> Any:
    proxy = await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=fake.anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
        **config,
    )
    assert not proxy.config.openai_enabled and proxy.config.anthropic_enabled
    return proxy


async def openai_only(proxy_factory: Any, fake: FakeUpstream, **config: Any) -> Any:
    proxy = await start(proxy_factory, openai_upstream=fake.url, openai_key=OPENAI_KEY, **config)
    assert proxy.config.openai_enabled and not proxy.config.anthropic_enabled
    return proxy


def client_body(data: dict[str, Any]) -> bytes:
    """Deliberately not orjson's compact form: a re-serialising proxy would change these bytes."""
    return json.dumps(data, indent=1, ensure_ascii=False).encode()


def replay(t: Transcript) -> Script:
    return Script(raw=t.body, status=t.status, content_type=t.content_type, chunk_size=97)


async def post(proxy: Any, path: str, headers: list[tuple[str, str]], body: bytes) -> Response:
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        return await conn.request("POST", path, headers, body, timeout=T)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "rawproxy.access"]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m is not None]


def recorded_output_tokens(t: Transcript, dialect: str) -> int | None:
    """The output tokens the recorded body reports last (the final, cumulative figure), or None."""
    if t.status >= 400:
        return None

    def usage_of(data: Any) -> Any:
        if not isinstance(data, dict):
            return None
        if dialect == "anthropic":
            if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
                usage = data["message"].get("usage")
            else:
                usage = data.get("usage")
            return usage.get("output_tokens") if isinstance(usage, dict) else None
        usage = data.get("usage")
        if usage is None and isinstance(data.get("x_groq"), dict):
            usage = data["x_groq"].get("usage")
        return usage.get("completion_tokens") if isinstance(usage, dict) else None

    if t.is_sse:
        payloads = [p for p in t.data_payloads() if p != "[DONE]"]
    else:
        payloads = [t.json()]
    reports = [n for n in (usage_of(p) for p in payloads) if isinstance(n, int)]
    nonzero = [n for n in reports if n]
    return (nonzero or reports or [None])[-1]


def assert_relayed(resp: Response, t: Transcript) -> None:
    """Status, content-type and body exactly as the upstream sent them."""
    assert resp.status == t.status
    assert resp.header("content-type") == t.content_type
    assert len(resp.head.header_all("content-type")) == 1
    if resp.body != t.body:  # a readable diff: the first differing byte
        at = next((i for i, (a, b) in enumerate(zip(resp.body, t.body, strict=False)) if a != b), None)
        at = at if at is not None else min(len(resp.body), len(t.body))
        pytest.fail(
            f"body differs at byte {at} (got {len(resp.body)} bytes, recorded {len(t.body)}): "
            f"got {resp.body[max(0, at - 40) : at + 40]!r}, recorded {t.body[max(0, at - 40) : at + 40]!r}"
        )


def assert_no_duplicate_headers(raw: list[tuple[str, str]]) -> None:
    names = [name for name, _ in raw]
    doubled = {n for n in names if names.count(n) > 1}
    assert not doubled, raw


def assert_anthropic_upstream_headers(headers: dict[str, str], raw: list[tuple[str, str]]) -> None:
    assert headers["x-api-key"] == ANTHROPIC_KEY  # the configured key, never the client's
    assert "authorization" not in headers
    assert not any(CLIENT_KEY in v for v in headers.values()), headers
    # Claude Code's gateway contract: the client's version and betas reach an Anthropic upstream.
    assert headers["anthropic-version"] == CLIENT_VERSION
    assert headers["anthropic-beta"].split(",") == CLIENT_BETA.split(",")
    # ... but not its SDK's identity.
    assert not any(k.startswith("x-stainless") for k in headers), headers
    assert "x-app" not in headers
    assert headers["user-agent"] == f"rawproxy/{__version__}"
    assert headers["accept-encoding"] == "identity"
    assert_no_duplicate_headers(raw)


def assert_openai_upstream_headers(headers: dict[str, str], raw: list[tuple[str, str]]) -> None:
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "x-api-key" not in headers
    assert not any(CLIENT_KEY in v for v in headers.values()), headers
    assert not any(k.startswith(("x-stainless", "anthropic-")) for k in headers), headers
    assert "x-app" not in headers
    assert headers["user-agent"] == f"rawproxy/{__version__}"
    assert_no_duplicate_headers(raw)


def assert_access_line(
    caplog: pytest.LogCaptureFixture, t: Transcript, path: str, dialect: str, upstream_model: str
) -> None:
    (line,) = access_lines(caplog)
    assert line["path"] == path
    assert line["status"] == str(t.status)
    assert (line["client"], line["upstream"]) == (t.model, upstream_model)
    expected = recorded_output_tokens(t, dialect)
    if expected is not None:
        assert line["out"] == str(expected), (line.string, expected)
        assert line["inp"] != "-", line.string
    else:
        assert line["out"] == "-", line.string  # nothing reported, nothing invented


# ------------------------------------------------------------------------- every recorded transcript


def test_the_corpus_covers_streams_and_errors() -> None:
    """A guard: the parametrised tests below must keep meeting SSE bodies and 4xx answers."""
    for transcripts in (ANTHROPIC_TRANSCRIPTS, OPENAI_TRANSCRIPTS):
        assert sum(t.is_sse for t in transcripts) >= 20
        assert sum(t.status >= 400 for t in transcripts) >= 4
        assert sum(t.stream and not t.is_sse for t in transcripts) >= 2  # a stream request answered 4xx


@pytest.mark.parametrize("t", ANTHROPIC_TRANSCRIPTS, ids=lambda t: t.name)
async def test_anthropic_transcript_passes_through_byte_identical(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, t: Transcript
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    proxy = await anthropic_only(proxy_factory, fake)
    fake.strict = False  # a recorded exchange: the real API's answer, a refusal included, is the script
    fake.enqueue(replay(t))
    body = client_body(t.request_body)

    resp = await post(proxy, "/v1/messages", ANTHROPIC_CLIENT, body)

    assert_relayed(resp, t)
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/messages", "")
    assert seen.body == t.request_body
    assert fake.raw_bodies == [body]  # not re-serialised: the client's own bytes
    assert_anthropic_upstream_headers(seen.headers, fake.raw_headers[0])
    assert_access_line(caplog, t, "/v1/messages", "anthropic", t.model)


@pytest.mark.parametrize("t", OPENAI_TRANSCRIPTS, ids=lambda t: t.name)
async def test_openai_transcript_passes_through_byte_identical(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, t: Transcript
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    proxy = await openai_only(proxy_factory, fake)
    fake.enqueue(replay(t))
    body = client_body(t.request_body)

    resp = await post(proxy, "/v1/chat/completions", OPENAI_CLIENT, body)

    assert_relayed(resp, t)
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", "")
    assert seen.body == t.request_body
    assert fake.raw_bodies == [body]
    assert_openai_upstream_headers(seen.headers, fake.raw_headers[0])
    assert_access_line(caplog, t, "/v1/chat/completions", "openai", t.model)


# ------------------------------------------------------------------------------------ model mapping


def _sample(transcripts: list[Transcript]) -> list[Transcript]:
    """One streamed, one whole and one error transcript."""
    picks = [
        next(t for t in transcripts if t.is_sse),
        next(t for t in transcripts if t.status == 200 and not t.is_sse),
        next(t for t in transcripts if t.status >= 400),
    ]
    return picks


@pytest.mark.parametrize("t", _sample(ANTHROPIC_TRANSCRIPTS), ids=lambda t: t.name)
async def test_anthropic_mapped_model_is_the_only_change(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, t: Transcript
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    proxy = await anthropic_only(proxy_factory, fake, routes=ModelRoutes(model_map={t.model: "mapped-model"}))
    fake.enqueue(replay(t))

    resp = await post(proxy, "/v1/messages", ANTHROPIC_CLIENT, client_body(t.request_body))

    assert_relayed(resp, t)  # the answer is still the upstream's bytes
    (seen,) = fake.requests
    assert seen.body == {**t.request_body, "model": "mapped-model"}
    assert list(seen.body) == list(t.request_body)  # same fields, same order
    assert_anthropic_upstream_headers(seen.headers, fake.raw_headers[0])
    assert_access_line(caplog, t, "/v1/messages", "anthropic", "mapped-model")


@pytest.mark.parametrize("t", _sample(OPENAI_TRANSCRIPTS), ids=lambda t: t.name)
async def test_openai_mapped_model_is_the_only_change(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, t: Transcript
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy.access")
    proxy = await openai_only(proxy_factory, fake, routes=ModelRoutes(model_map={t.model: "mapped-model"}))
    fake.enqueue(replay(t))

    resp = await post(proxy, "/v1/chat/completions", OPENAI_CLIENT, client_body(t.request_body))

    assert_relayed(resp, t)
    (seen,) = fake.requests
    assert seen.body == {**t.request_body, "model": "mapped-model"}
    assert list(seen.body) == list(t.request_body)
    assert_openai_upstream_headers(seen.headers, fake.raw_headers[0])
    assert_access_line(caplog, t, "/v1/chat/completions", "openai", "mapped-model")


async def test_tier_mapping_applies_in_passthrough_too(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await anthropic_only(proxy_factory, fake, routes=ModelRoutes(middle="claude-sonnet-upstream"))
    body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    resp = await post(proxy, "/v1/messages", ANTHROPIC_CLIENT, client_body(body))
    assert resp.status == 200
    assert fake.requests[0].body == {**body, "model": "claude-sonnet-upstream"}


# ------------------------------------------------------------------------------ mid-stream failure


def _stream_request(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }


async def test_anthropic_passthrough_midstream_failure_ends_with_error_event(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await anthropic_only(proxy_factory, fake)
    fake.enqueue(Script(text="one two three four five", cut_after=1))

    resp = await post(proxy, "/v1/messages", ANTHROPIC_CLIENT, client_body(_stream_request("claude-x")))

    assert resp.status == 200
    assert (resp.header("content-type") or "").startswith("text/event-stream")
    events = parse_sse(resp.body)
    names = [e.event for e in events]
    assert names[0] == "message_start"
    assert "content_block_delta" in names  # what came before the failure was relayed
    assert "message_stop" not in names
    assert names[-1] == "error", names
    error = events[-1].json()
    assert error["type"] == "error"
    assert isinstance(error["error"]["type"], str) and error["error"]["message"]
    assert resp.body.endswith(b"\n\n")


async def test_openai_passthrough_midstream_failure_ends_with_error_chunk_and_done(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await openai_only(proxy_factory, fake)
    fake.enqueue(Script(text="one two three four five", cut_after=1))

    resp = await post(proxy, "/v1/chat/completions", OPENAI_CLIENT, client_body(_stream_request("gpt-4o")))

    assert resp.status == 200
    events = parse_sse(resp.body)
    assert all(e.event is None for e in events), events
    data = [e.data for e in events]
    assert data[-1] == "[DONE]", data
    assert data.count("[DONE]") == 1
    error = json.loads(data[-2])
    assert isinstance(error["error"], dict) and error["error"]["message"], error
    first = json.loads(data[0])
    assert first["choices"][0]["delta"].get("content") == "one"  # the relayed chunk before the cut
    assert resp.body.endswith(b"\n\n")


# ------------------------------------------------------------------ issue 19, defect 4: a cut mid-event

_SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _cut_mid_event(whole: bytes, partial: bytes) -> Script:
    """An upstream that sends ``whole`` events and the first part of another, in separate chunks of its
    body, then drops the connection."""
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in (whole, partial))
    return Script(wire=_SSE_HEAD + chunks)


def _anthropic(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def test_issue19_d4_anthropic_passthrough_cut_mid_event_gives_the_sdk_the_api_error(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    # issue 19, defect 4
    anthropic = pytest.importorskip("anthropic")
    proxy = await anthropic_only(proxy_factory, fake)
    start = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    whole = _anthropic("message_start", {"type": "message_start", "message": start}) + _anthropic(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    delta = _anthropic(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    )
    fake.enqueue(_cut_mid_event(whole, delta[: len(delta) // 2]))  # cut inside the data line

    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=T)
    async with client:
        stream = await client.messages.create(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        seen = []
        with pytest.raises(anthropic.APIStatusError) as raised:  # the API error, not a JSON error
            async for event in stream:
                seen.append(event.type)
    assert seen == ["message_start", "content_block_start"]
    assert raised.value.body["error"]["type"] == "api_error", raised.value.body


async def test_issue19_d4_openai_passthrough_cut_mid_event_gives_the_sdk_the_api_error(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    # issue 19, defect 4
    openai = pytest.importorskip("openai")
    proxy = await openai_only(proxy_factory, fake)
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}],
    }
    event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    fake.enqueue(_cut_mid_event(event, event[: len(event) // 2]))

    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-client", max_retries=0, timeout=T)
    async with client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = []
        with pytest.raises(openai.APIError) as raised:
            async for piece in stream:
                text.append(piece.choices[0].delta.content)
    assert text == ["Hello"]
    assert not isinstance(raised.value, openai.APIResponseValidationError)
    assert raised.value.body is not None and raised.value.body.get("message"), raised.value.body
