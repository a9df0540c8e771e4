"""The endpoints around /v1/messages: count_tokens (A2O-M01), /v1/models (A2O-M02) and the GET / status page."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import socket
import zlib
from typing import Any

import pytest

from rawproxy import __version__
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, Response, T, start

pytestmark = pytest.mark.integration


async def call(
    proxy: Any, method: str, target: str, headers: list[tuple[str, str]], body: Any = None
) -> Response:
    raw = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        return await conn.request(method, target, headers, raw, timeout=T)


async def count(proxy: Any, body: Any, target: str = "/v1/messages/count_tokens") -> int:
    resp = await call(proxy, "POST", target, ANTHROPIC, body)
    assert resp.status == 200, resp.body
    data = resp.json()
    assert set(data) == {"input_tokens"}, data
    assert isinstance(data["input_tokens"], int)
    return int(data["input_tokens"])


def request(text: str = "Hello, how are you today?", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}], **extra}


PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

TOOLS = [
    {
        "name": "Bash",
        "description": "Run a shell command and return its output.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
            "required": ["command"],
        },
    }
]


# ------------------------------------------------------------------------------------ A2O-M01


@pytest.mark.parametrize(
    "target",
    ["/v1/messages/count_tokens", "/v1/messages/count_tokens?beta=true", "/v1/v1/messages/count_tokens"],
)
async def test_a2o_m01_count_tokens_answers_locally(
    proxy_factory: Any, fake: FakeUpstream, target: str
) -> None:
    proxy = await start(proxy_factory)
    assert await count(proxy, request(), target) > 0
    assert fake.requests == []


async def test_a2o_m01_count_tokens_tolerates_every_request_feature(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await start(proxy_factory)
    plain = await count(proxy, request("Look at this."))
    full = {
        "model": "claude-opus-4-1",
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "max_tokens": 4096,
        "metadata": {"user_id": "u"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at this."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls.", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt"}],
            },
        ],
    }
    assert await count(proxy, full) > plain
    assert await count(proxy, {**full, "system": "You are Claude Code."}) > plain
    assert await count(proxy, {**full, "thinking": {"type": "adaptive"}}) > 0
    assert fake.requests == []


async def test_a2o_m01_count_tokens_grows_with_input(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory)
    short = await count(proxy, request("word " * 10))
    long = await count(proxy, request("word " * 1000))
    assert long > short
    assert 500 <= long <= 5000, long  # ~4 characters a token, give or take the framing
    tools = await count(proxy, request("word " * 10, tools=TOOLS))
    assert tools > short


async def test_a2o_m01_count_tokens_cjk_is_about_a_token_a_character(proxy_factory: Any) -> None:
    """Decision 9: CJK characters count about one token each, not one per four characters."""
    proxy = await start(proxy_factory)
    latin = await count(proxy, request("a" * 1000))
    cjk = await count(proxy, request("漢" * 1000))
    assert cjk >= 500, cjk
    assert cjk > latin


async def test_a2o_m01_images_cost_a_fixed_amount_not_their_base64_length(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory)

    def with_image(data: str) -> dict[str, Any]:
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        return request() | {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}]
        }

    small = await count(proxy, with_image(PNG_1PX))
    big = await count(proxy, with_image(base64.b64encode(b"\x00" * 1_500_000).decode()))  # 2 MB of base64
    assert small > await count(proxy, request("hi"))
    assert big < 20_000, f"a 2 MB base64 image counted as {big} tokens: counted by length"


async def test_a2o_m01_count_tokens_bad_json_is_400(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory)
    resp = await call(proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC, b"{not json")
    assert resp.status == 400
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert fake.requests == []


# ------------------------------------------------------------------------------------ A2O-M02


def _assert_anthropic_list(data: dict[str, Any]) -> list[str]:
    assert set(data) >= {"data", "has_more", "first_id", "last_id"}, data
    assert isinstance(data["has_more"], bool)
    ids = []
    for model in data["data"]:
        assert model["type"] == "model"
        assert isinstance(model["id"], str) and model["id"]
        assert isinstance(model["display_name"], str) and model["display_name"]
        assert isinstance(model["created_at"], str) and model["created_at"][:2] == "20"  # RFC 3339
        ids.append(model["id"])
    assert data["first_id"] == ids[0]
    assert data["last_id"] == ids[-1]
    return ids


async def test_a2o_m02_models_anthropic_shape(proxy_factory: Any, fake: FakeUpstream) -> None:
    proxy = await start(proxy_factory, routes=ModelRoutes(big="gpt-big", small="gpt-small"))
    resp = await call(proxy, "GET", "/v1/models", ANTHROPIC)
    assert resp.status == 200
    ids = _assert_anthropic_list(resp.json())
    assert {"gpt-big", "gpt-small", "fake-model"} <= set(ids)
    assert len(ids) == len(set(ids)), "duplicate model ids"
    assert resp.json()["has_more"] is False
    resp = await call(proxy, "GET", "/v1/models?limit=1000", ANTHROPIC)
    assert _assert_anthropic_list(resp.json()) == ids
    assert [r.path for r in fake.requests] == ["/v1/models"]  # cached after the first call


async def test_a2o_m02_models_limit(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, routes=ModelRoutes(big="gpt-big", small="gpt-small"))
    everything = _assert_anthropic_list((await call(proxy, "GET", "/v1/models", ANTHROPIC)).json())
    resp = await call(proxy, "GET", "/v1/models?limit=1", ANTHROPIC)
    assert resp.status == 200
    data = resp.json()
    assert _assert_anthropic_list(data) == everything[:1]
    assert data["has_more"] is True, "limit=1 of several models: has_more must say there are more"


async def test_a2o_m02_models_openai_shape_without_anthropic_version(proxy_factory: Any) -> None:
    proxy = await start(proxy_factory, routes=ModelRoutes(big="gpt-big", small="gpt-small"))
    resp = await call(proxy, "GET", "/v1/models", [])
    assert resp.status == 200
    data = resp.json()
    assert data["object"] == "list"
    assert "has_more" not in data
    ids = [m["id"] for m in data["data"]]
    assert {"gpt-big", "gpt-small", "fake-model"} <= set(ids)
    assert all(m["object"] == "model" for m in data["data"])


async def test_a2o_m02_models_answer_when_upstream_is_down(proxy_factory: Any) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proxy = await start(
        proxy_factory,
        openai_upstream=f"http://127.0.0.1:{port}/v1",
        routes=ModelRoutes(big="gpt-big", small="gpt-small"),
        connect_timeout=1.0,
    )
    resp = await call(proxy, "GET", "/v1/models", ANTHROPIC)
    assert resp.status == 200
    assert {"gpt-big", "gpt-small"} <= set(_assert_anthropic_list(resp.json()))


# --------------------------------------------------------------------------------------- GET /


async def test_status_page_shows_version_and_config_never_keys(proxy_factory: Any) -> None:
    proxy = await start(
        proxy_factory,
        api_keys=("client-key-secret-1", "client-key-secret-2"),
        routes=ModelRoutes(big="gpt-big", small="gpt-small"),
    )
    resp = await call(proxy, "GET", "/", [])
    assert resp.status == 200
    data = resp.json()
    assert data["version"] == __version__
    assert isinstance(data["config"], dict) and data["config"]
    assert "gpt-big" in resp.body.decode()
    for secret in (b"sk-upstream-secret", b"client-key-secret-1", b"client-key-secret-2"):
        assert secret not in resp.body, secret
    for target in ("/v1/models", "/health"):  # no other page leaks them either
        other = await call(proxy, "GET", target, [("x-api-key", "client-key-secret-1"), *ANTHROPIC])
        assert b"sk-upstream-secret" not in other.body


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/messages", "POST"),
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/models", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
    ],
)
async def test_a_405_says_what_is_allowed(proxy_factory: Any, method: str, path: str, allow: str) -> None:
    """RFC 9110 15.5.6: a 405 carries Allow."""
    proxy = await proxy_factory()
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        response = await conn.request(method, path, [("content-type", "application/json")], b"{}", timeout=T)
    assert response.status == 405
    assert response.header("allow") == allow


# ------------------------------------------------------------------ issue 19: what upstreams answer


class CannedUpstream:
    """An upstream that answers every request with the same bytes (head and body), then closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CannedUpstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
            self.requests.append(head.split(b"\r\n", 1)[0])
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()


def canned(status: int, body: bytes, *headers: str) -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return b"HTTP/1.1 %d X\r\n%bcontent-length: %d\r\nconnection: close\r\n\r\n%b" % (
        status,
        lines.encode(),
        len(body),
        body,
    )


async def count_through(proxy_factory: Any, answer: bytes) -> Response:
    """One count_tokens request, forwarded to an Anthropic upstream that answers ``answer``."""
    async with CannedUpstream(answer) as upstream:
        proxy = await start(
            proxy_factory,
            openai_upstream=DEFAULT_OPENAI_UPSTREAM,
            openai_key=None,
            anthropic_upstream=upstream.url,
            anthropic_key="sk-ant-upstream",
        )
        resp = await call(proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC, request())
        assert upstream.requests == [b"POST /v1/messages/count_tokens HTTP/1.1"]
        return resp


HTML = b"<html><head><title>Sign in to the Wi-Fi</title></head><body>Welcome</body></html>"
ANTHROPIC_ERROR = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down, count less"}}


@pytest.mark.parametrize(
    "answer",
    [
        canned(200, HTML, "content-type: text/html"),
        canned(200, b'{"input_tokens": "many"}', "content-type: application/json"),
        canned(200, b"[1, 2]", "content-type: application/json"),
    ],
    ids=["html_200", "count_not_an_integer", "json_not_an_object"],
)
async def test_issue19_count_tokens_answer_that_is_not_a_count_is_502_in_the_anthropic_shape(
    proxy_factory: Any, answer: bytes
) -> None:
    # issue 19, defect 6
    resp = await count_through(proxy_factory, answer)
    assert resp.status == 502, resp.body
    assert (resp.header("content-type") or "").startswith("application/json")
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body
    assert "count_tokens" in body["error"]["message"], body


async def test_issue19_count_tokens_html_error_page_keeps_its_status_in_the_anthropic_shape(
    proxy_factory: Any,
) -> None:
    # issue 19, defect 6: a gateway's page is no JSON to relay; its status (and Retry-After) stay
    resp = await count_through(proxy_factory, canned(503, HTML, "content-type: text/html", "retry-after: 9"))
    assert resp.status == 503, resp.body
    assert (resp.header("content-type") or "").startswith("application/json")
    assert resp.header("retry-after") == "9"
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body
    assert "not JSON" in body["error"]["message"] and "text/html" in body["error"]["message"], body


@pytest.mark.parametrize("coding", ["gzip", "deflate", None])
async def test_issue19_count_tokens_error_body_is_relayed_decoded_as_json(
    proxy_factory: Any, coding: str | None
) -> None:
    # issue 19, defect 6
    raw = json.dumps(ANTHROPIC_ERROR).encode()
    encoded = {"gzip": gzip.compress, "deflate": zlib.compress, None: lambda b: b}[coding](raw)
    headers = ["content-type: application/json", "retry-after: 3"]
    if coding:
        headers.append(f"content-encoding: {coding}")
    resp = await count_through(proxy_factory, canned(429, encoded, *headers))
    assert resp.status == 429
    assert resp.body == raw  # unmodified, decoded
    assert (resp.header("content-type") or "").startswith("application/json")
    assert resp.header("content-encoding") is None
    assert resp.header("retry-after") == "3"


async def test_issue19_count_tokens_answer_is_relayed(proxy_factory: Any) -> None:
    # issue 19, defect 6: a good answer still goes through as it came
    resp = await count_through(
        proxy_factory, canned(200, b'{"input_tokens":42}', "content-type: application/json")
    )
    assert (resp.status, resp.json()) == (200, {"input_tokens": 42})


WRONG_LISTS = {
    "data_a_number": 5,
    "data_an_object": {"id": "fake-model"},
    "data_null": None,
}


@pytest.mark.parametrize("shape", list(WRONG_LISTS))
async def test_issue19_a_model_list_of_the_wrong_shape_is_no_list_for_requests_and_502_for_get_models(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    # issue 19, defect 8
    fake.openai_models = WRONG_LISTS[shape]  # type: ignore[assignment]  (served as {"data": <it>})
    proxy = await start(proxy_factory, routes=ModelRoutes(big="gpt-big", small="gpt-small"))
    big = request(max_tokens=100_000)
    big["model"] = "acme-large"  # no known output cap: the upstream's list is asked for one
    for _ in range(2):
        resp = await call(proxy, "POST", "/v1/messages", ANTHROPIC, big)
        assert resp.status == 200, resp.body
    lists = [r for r in fake.requests if r.path.endswith("/models")]
    assert len(lists) == 1, "a list of the wrong shape is cached as no list"
    assert [r.body["max_tokens"] for r in fake.requests if r.path.endswith("/completions")] == [100_000] * 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "model list" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    for headers, anthropic in ((ANTHROPIC, True), ([], False), (ANTHROPIC, True)):
        resp = await call(proxy, "GET", "/v1/models", headers)
        assert resp.status == 502, resp.body
        assert (resp.header("content-type") or "").startswith("application/json")
        body = resp.json()
        error = body["error"]
        if anthropic:
            assert body["type"] == "error" and error["type"] == "api_error", body
        else:
            assert set(body) == {"error"} and error["type"] == "api_error", body
        assert "model list" in error["message"] and "wrong shape" in error["message"], error
    assert len([r for r in fake.requests if r.path.endswith("/models")]) == 2  # GET's list: cached too
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "model list" in r.getMessage()]
    fetches = [r for r in warnings if r.module == "catalog"]  # each 502 has its own line too (NET-05)
    assert len(fetches) == 2, [r.getMessage() for r in warnings]  # once a fetch
