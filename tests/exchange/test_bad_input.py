"""Issue 6 item 2, the bad-input battery: every malformed request is answered with its right status and
the error body of the client's own protocol, never a 500 or a traceback, bad input never reaches the
upstream, and the server keeps serving afterwards (the next request on a new connection, and on the same
one where it stays open, gets a 200).

Two halves:

* JSON-level cases (``BAD_BODIES``): a well-framed request whose body is wrong (syntax, encoding, nesting,
  numbers, the type of every main field, missing fields, roles, blocks, empty lists). Each runs in both
  client dialects, translated (an Anthropic client to the OpenAI upstream, an OpenAI client to the
  Anthropic one: the translated path is where the proxy itself validates every field), and those that no
  upstream could take (not one JSON object, no model or messages) also as passthroughs, which forward
  the fields they do not read. Count_tokens has its own short table. Then what looks odd but is served
  by design (blank turns dropped, odd metadata ignored, unknown Anthropic blocks skipped, megabytes).
* HTTP-level cases: garbage on the socket, framing (Content-Length, chunked, both), limits (413, 431),
  ``Expect``, pipelined garbage, HTTP/1.0 without Host, methods and paths.

The fake upstream records every request that reaches it; ``caplog`` holds every log record of the proxy.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rawproxy.routing import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, Response, T, build_request, start

pytestmark = pytest.mark.integration

# Both upstreams configured: claude* models go to the Anthropic one, others to the OpenAI one.
A_MODEL = "gpt-4o-mini"  # an Anthropic client's model: translated to the OpenAI upstream
O_MODEL = "claude-sonnet-4-6"  # an OpenAI client's model: translated to the Anthropic upstream
A_PASS_MODEL = "claude-sonnet-4-6"  # Anthropic client, Anthropic upstream: passthrough
O_PASS_MODEL = "gpt-4o-mini"  # OpenAI client, OpenAI upstream: passthrough
OPENAI_HEADERS = [("content-type", "application/json"), ("authorization", "Bearer sk-client")]
MAX_ERROR_BODY = 2048  # an error answer never echoes a huge client value back


@dataclass(frozen=True)
class Side:
    """One client dialect: where it posts, what it sends, and how its answers look."""

    name: str
    path: str
    headers: list[tuple[str, str]]
    model: str
    base: dict[str, Any]

    def body(self, **fields: Any) -> bytes:
        return json.dumps({**self.base, "model": self.model, **fields}).encode()

    def assert_error(self, resp: Response, status: int, error_type: str) -> None:
        assert resp.status == status, (resp.status, resp.body[:300])
        assert (resp.header("content-type") or "").startswith("application/json"), resp.head
        assert_error_shape(self.name, resp.json(), error_type)

    def assert_ok(self, resp: Response) -> None:
        assert resp.status == 200, (resp.status, resp.body[:300])
        body = resp.json()
        if self.name == "anthropic":
            assert body["type"] == "message" and body["content"][0]["text"], body
        else:
            assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"], body


ANTHROPIC_SIDE = Side(
    "anthropic",
    "/v1/messages",
    ANTHROPIC,
    A_MODEL,
    {"max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]},
)
OPENAI_SIDE = Side(
    "openai",
    "/v1/chat/completions",
    OPENAI_HEADERS,
    O_MODEL,
    {"messages": [{"role": "user", "content": "hello"}]},
)
SIDES = {"anthropic": ANTHROPIC_SIDE, "openai": OPENAI_SIDE}


def assert_error_shape(dialect: str, body: Any, error_type: str) -> None:
    """Anthropic's ``{"type":"error","error":{"type","message"}}`` or OpenAI's
    ``{"error":{"message","type","param","code"}}``, exactly."""
    assert isinstance(body, dict), body
    if dialect == "anthropic":
        assert body.get("type") == "error", body
        assert set(body) == {"type", "error"}, body
        assert set(body["error"]) == {"type", "message"}, body
    else:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == error_type, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip(), body


async def connect(proxy: Any) -> HTTPConnection:
    return await HTTPConnection.open(proxy.host, proxy.port, timeout=T)


async def battery_proxy(proxy_factory: Any, fake: FakeUpstream, **config: Any) -> Any:
    return await start(
        proxy_factory, anthropic_upstream=fake.anthropic_url, anthropic_key="sk-ant-upstream", **config
    )


def good_request(side: Side, **headers: str) -> bytes:
    return build_request("POST", side.path, [*side.headers, *headers.items()], side.body())


async def assert_serves(proxy: Any, conn: HTTPConnection | None = None) -> None:
    """A valid request of each dialect is answered 200: on ``conn`` when given, else on new connections
    (each sends one request upstream)."""
    for side in SIDES.values():
        if conn is None:
            async with await connect(proxy) as fresh:
                side.assert_ok(await fresh.request("POST", side.path, side.headers, side.body(), timeout=T))
        else:
            side.assert_ok(await conn.request("POST", side.path, side.headers, side.body(), timeout=T))


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """No error logged with a traceback: by the proxy (a bug answered 500), or by asyncio (a connection
    task of the server that died of an exception nobody caught)."""
    bad = [
        r
        for r in caplog.records
        if r.name.split(".")[0] in ("rawproxy", "asyncio")
        and r.levelno >= logging.ERROR
        and (r.exc_info is not None or "exception" in r.getMessage())
    ]
    assert not bad, [f"{r.name}: {r.getMessage()}: {r.exc_info}" for r in bad]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    caplog.set_level(logging.ERROR, logger="asyncio")


# ===================================================================================== JSON level

DROP = object()  # a field taken out of the valid body


@dataclass(frozen=True)
class Raw:
    """Bytes spliced verbatim where a JSON value goes (what ``json.dumps`` cannot write)."""

    data: bytes


def deep(levels: int, kind: str = "[") -> Raw:
    if kind == "[":
        return Raw(b"[" * levels + b"]" * levels)
    return Raw(b'{"a":' * levels + b"1" + b"}" * levels)


Spoil = dict[str, Any] | bytes | Callable[[bytes], bytes]


def spoil(side: Side, how: Spoil, model: str | None = None) -> bytes:
    """The side's valid body, spoiled: whole bytes, a function of the valid bytes, or dotted paths set
    (``DROP`` removes; a ``Raw`` anywhere in a value is spliced verbatim)."""
    data: dict[str, Any] = copy.deepcopy({**side.base, "model": model or side.model})
    if isinstance(how, bytes):
        return how
    if callable(how):
        return how(json.dumps(data).encode())
    for path, value in how.items():
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            if value is DROP:
                del node[int(last)]
            else:
                node[int(last)] = copy.deepcopy(value)
        elif value is DROP:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    raws: list[bytes] = []

    def mark(value: Any) -> str:
        assert isinstance(value, Raw), value
        raws.append(value.data)
        return f"@@raw{len(raws) - 1}@@"

    out = json.dumps(data, default=mark).encode()  # ensure_ascii: a lone surrogate stays a \u escape
    for i, raw in enumerate(raws):
        out = out.replace(b'"@@raw%d@@"' % i, raw)
    return out


@dataclass(frozen=True)
class Bad:
    """A body answered 400 invalid_request_error."""

    id: str
    anthropic: Spoil | None  # how the Anthropic client's body is spoiled; None: not this dialect's case
    openai: Spoil | None
    passthrough: bool = False  # refused on a passthrough too (which forwards what it does not read)


def both(how: Spoil, **kw: Any) -> dict[str, Any]:
    return {"anthropic": how, "openai": how, **kw}


TEXT = "messages.0.content"
TOOL_TURN_A = [
    {"role": "user", "content": "run it"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "run", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
]
TOOL_TURN_O: list[dict[str, Any]] = [
    {"role": "user", "content": "run it"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "run", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "done"},
]


def a_tool(schema: Any = None, **extra: Any) -> list[dict[str, Any]]:
    tool = {"name": "run", "input_schema": {"type": "object"} if schema is None else schema}
    return [{**tool, **extra}]


def o_tool(parameters: Any = None, **function: Any) -> list[dict[str, Any]]:
    spec = {"name": "run", "parameters": {"type": "object"} if parameters is None else parameters}
    return [{"type": "function", "function": {**spec, **function}}]


BAD_BODIES: list[Bad] = [
    # ---------------------------------------------------------------- syntax: not one JSON object
    Bad("truncated-json", **both(lambda raw: raw[: len(raw) // 2], passthrough=True)),
    Bad("truncated-by-one-byte", **both(lambda raw: raw[:-1], passthrough=True)),
    Bad("unterminated-string", **both(b'{"model": "gpt', passthrough=True)),
    Bad("trailing-garbage", **both(lambda raw: raw + b"}", passthrough=True)),
    Bad("two-documents", **both(lambda raw: raw + raw, passthrough=True)),
    Bad("trailing-comma", **both(lambda raw: raw[:-1] + b",}", passthrough=True)),
    Bad("single-quoted", **both(lambda raw: raw.replace(b'"', b"'"), passthrough=True)),
    Bad("empty-body", **both(b"", passthrough=True)),
    Bad("whitespace-only", **both(b" \r\n\t ", passthrough=True)),
    Bad("form-encoded", **both(b"model=gpt-4o-mini&messages=hi", passthrough=True)),
    Bad("nan-literal", **both({"temperature": Raw(b"NaN")}, passthrough=True)),
    Bad("top-level-array", **both(lambda raw: b"[" + raw + b"]", passthrough=True)),
    Bad("top-level-string", **both(b'"hello"', passthrough=True)),
    Bad("top-level-number", **both(b"42", passthrough=True)),
    Bad("top-level-null", **both(b"null", passthrough=True)),
    Bad("top-level-true", **both(b"true", passthrough=True)),
    # ---------------------------------------------------------------------------------- encoding
    Bad("invalid-utf8-ff", **both({TEXT: Raw(b'"hi \xff\xfe"')}, passthrough=True)),
    Bad("overlong-utf8", **both({TEXT: Raw(b'"\xc0\xaf"')}, passthrough=True)),
    Bad("truncated-utf8-sequence", **both({TEXT: Raw(b'"\xe2\x82"')}, passthrough=True)),
    Bad("utf8-encoded-surrogate", **both({TEXT: Raw(b'"\xed\xa0\x80"')}, passthrough=True)),
    Bad("latin1-body", **both({TEXT: Raw('"café"'.encode("latin-1"))}, passthrough=True)),
    Bad("utf16-body", **both(lambda raw: raw.decode().encode("utf-16"), passthrough=True)),
    Bad("utf8-bom", **both(lambda raw: b"\xef\xbb\xbf" + raw, passthrough=True)),
    Bad("lone-high-surrogate-escape", **both({TEXT: "x\ud800y"}, passthrough=True)),
    Bad("lone-low-surrogate-escape", **both({TEXT: "\udc00"}, passthrough=True)),
    Bad("reversed-surrogate-pair", **both({TEXT: "\udc00\ud800"}, passthrough=True)),
    Bad("lone-surrogate-in-key", **both(lambda raw: raw[:-1] + b', "\\ud800": 1}', passthrough=True)),
    Bad("control-char-in-string", **both({TEXT: Raw(b'"a\x01b"')}, passthrough=True)),
    # ----------------------------------------------------------------------------------- nesting
    Bad("nested-10000-arrays", **both({TEXT: deep(10_000)}, passthrough=True)),
    Bad("nested-10000-objects-unknown-field", **both({"x_extra": deep(10_000, "{")}, passthrough=True)),
    Bad(
        "nested-1000-in-tool-input",
        anthropic={"messages": TOOL_TURN_A, "messages.1.content.0.input": {"x": deep(1000)}},
        openai={
            "messages": TOOL_TURN_O,
            "messages.1.tool_calls.0.function.arguments": "[" * 1000 + "]" * 1000,
        },
    ),
    Bad(
        "nested-300-in-tool-input",
        anthropic={"messages": TOOL_TURN_A, "messages.1.content.0.input": {"x": deep(300, "{")}},
        openai={
            "messages": TOOL_TURN_O,
            "messages.1.tool_calls.0.function.arguments": '{"a":' * 300 + "1" + "}" * 300,
        },
    ),
    Bad(
        "nested-300-in-tool-schema",
        anthropic={"tools": a_tool({"type": "object", "properties": {"x": deep(300, "{")}})},
        openai={"tools": o_tool({"type": "object", "properties": {"x": deep(300, "{")}})},
    ),
    Bad(
        "nested-1000-in-tool-schema",
        anthropic={"tools": a_tool({"type": "object", "properties": {"x": deep(1000)}})},
        openai={"tools": o_tool({"type": "object", "properties": {"x": deep(1000)}})},
    ),
    Bad(
        "nested-300-in-response-format-schema",
        anthropic=None,
        openai={
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object", "x": deep(300)}},
            }
        },
    ),
    # ----------------------------------------------------------------------------------- numbers
    Bad("max-tokens-1e400", **both({"max_tokens": Raw(b"1e400")}, passthrough=True)),
    Bad("temperature-minus-1e400", **both({"temperature": Raw(b"-1e400")}, passthrough=True)),
    Bad("max-tokens-2-pow-70", **both({"max_tokens": 2**70})),
    Bad("max-tokens-negative", **both({"max_tokens": -5})),
    Bad("max-tokens-zero", **both({"max_tokens": 0})),
    Bad("max-completion-tokens-zero", anthropic=None, openai={"max_completion_tokens": 0}),
    Bad("max-tokens-fraction", **both({"max_tokens": 10.5})),
    Bad("max-tokens-string", **both({"max_tokens": "100"})),
    Bad("max-tokens-bool", **both({"max_tokens": True})),
    Bad("max-tokens-false", **both({"max_tokens": False})),
    Bad("max-tokens-list", **both({"max_tokens": [100]})),
    Bad("top-k-huge-float", anthropic={"top_k": 2**70}, openai=None),
    # ------------------------------------------------------------------------------------- model
    Bad("model-number", **both({"model": 42}, passthrough=True)),
    Bad("model-list", **both({"model": ["gpt-4o-mini"]}, passthrough=True)),
    Bad("model-object", **both({"model": {"name": "x"}}, passthrough=True)),
    Bad("model-false", **both({"model": False}, passthrough=True)),
    Bad("model-missing", **both({"model": DROP})),
    Bad("model-empty", **both({"model": ""})),
    Bad("model-null", **both({"model": None})),
    # ---------------------------------------------------------------------------------- messages
    Bad("messages-missing", **both({"messages": DROP}, passthrough=True)),
    Bad("messages-null", **both({"messages": None}, passthrough=True)),
    Bad("messages-string", **both({"messages": "hello"}, passthrough=True)),
    Bad("messages-object", **both({"messages": {"role": "user", "content": "hello"}}, passthrough=True)),
    Bad("messages-empty", **both({"messages": []}, passthrough=True)),
    Bad("message-not-object", **both({"messages.0": "hello"})),
    Bad("message-null", **both({"messages.0": None})),
    Bad("role-unknown", **both({"messages.0.role": "robot"})),
    Bad("role-missing", **both({"messages.0.role": DROP})),
    Bad("role-number", **both({"messages.0.role": 1})),
    Bad("role-list", **both({"messages.0.role": ["user"]})),  # unhashable: no dict lookup may take it
    Bad("role-object", **both({"messages.0.role": {"name": "user"}})),
    Bad("role-huge-string", **both({"messages.0.role": "r" * 3_000_000})),
    Bad("content-missing", **both({"messages.0.content": DROP})),
    Bad("content-number", **both({TEXT: 5})),
    Bad("content-object", **both({TEXT: {"type": "text", "text": "hi"}})),
    # Blank turns are dropped on the way (A2O-R03, R34, O2A-R06): a conversation of nothing but blank
    # turns would reach the upstream as no message at all.
    Bad("content-empty-string", **both({TEXT: ""})),
    Bad("content-empty-list", **both({TEXT: []})),
    Bad("content-whitespace", **both({TEXT: " \n\t "})),
    Bad(
        "content-blank-text-blocks",
        **both({TEXT: [{"type": "text", "text": ""}, {"type": "text", "text": " "}]}),
    ),
    Bad("content-null-user", **both({TEXT: None})),
    Bad(
        "every-turn-blank",
        **both({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": " "}]}),
    ),
    # ------------------------------------------------------------------------------------ blocks
    Bad("block-not-object", **both({TEXT: ["hello"]})),
    Bad("block-type-missing", **both({TEXT: [{"text": "hello"}]})),
    Bad("block-type-number", **both({TEXT: [{"type": 7, "text": "hello"}]})),
    Bad("block-type-unknown-openai", anthropic=None, openai={TEXT: [{"type": "hologram", "data": "x"}]}),
    Bad("text-block-text-number", **both({TEXT: [{"type": "text", "text": 5}]})),
    Bad("text-block-text-missing", **both({TEXT: [{"type": "text"}]})),
    Bad(
        "image-block-bad-source",
        anthropic={TEXT: [{"type": "image", "source": "http://x/y.png"}]},
        openai={TEXT: [{"type": "image_url", "image_url": {"url": 5}}]},
    ),
    Bad(
        "image-unknown-source-type",
        anthropic={TEXT: [{"type": "image", "source": {"type": "file", "file_id": "f"}}]},
        openai={TEXT: [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]},
    ),
    Bad(
        "tool-use-without-id",
        anthropic={"messages": TOOL_TURN_A, "messages.1.content.0.id": DROP},
        openai={"messages": TOOL_TURN_O, "messages.1.tool_calls.0.function.name": DROP},
    ),
    Bad(
        "tool-result-without-id",
        anthropic={"messages": TOOL_TURN_A, "messages.2.content.0.tool_use_id": DROP},
        openai={"messages": TOOL_TURN_O, "messages.2.tool_call_id": DROP},
    ),
    Bad(
        "tool-result-content-number",
        anthropic={"messages": TOOL_TURN_A, "messages.2.content.0.content": 5},
        openai={"messages": TOOL_TURN_O, "messages.2.content": 5},
    ),
    Bad(
        "tool-calls-not-list",
        anthropic=None,
        openai={"messages": TOOL_TURN_O, "messages.1.tool_calls": "run"},
    ),
    # ------------------------------------------------------------------- other top-level fields
    Bad("stream-string", **both({"stream": "yes"})),
    Bad("stream-number", **both({"stream": 1})),
    Bad("stream-object", **both({"stream": {"on": True}})),
    Bad(
        "system-number",
        anthropic={"system": 5},
        openai={"messages": [{"role": "system", "content": 5}, {"role": "user", "content": "hello"}]},
    ),
    Bad(
        "system-list-of-strings",
        anthropic={"system": ["be brief"]},
        openai={"messages": [{"role": "system", "content": ["be brief"]}, {"role": "user", "content": "hi"}]},
    ),
    Bad("tools-string", **both({"tools": "run"})),
    Bad("tools-object", **both({"tools": {"name": "run"}})),
    Bad("tool-not-object", **both({"tools": [5]})),
    Bad(
        "tool-without-name",
        anthropic={"tools": [{"input_schema": {}}]},
        openai={"tools": [{"type": "function"}]},
    ),
    Bad("tool-name-number", anthropic={"tools": a_tool(name=5)}, openai={"tools": o_tool(name=5)}),
    Bad("tool-schema-string", anthropic={"tools": a_tool("object")}, openai={"tools": o_tool("object")}),
    Bad("tool-type-unknown-openai", anthropic=None, openai={"tools": [{"type": "hologram"}]}),
    Bad("tool-choice-number", **both({"tool_choice": 5})),
    Bad("tool-choice-list", **both({"tool_choice": ["auto"]})),
    Bad(
        "tool-choice-type-list",
        anthropic={"tool_choice": {"type": ["auto"]}},
        openai={"tool_choice": {"type": ["function"], "function": {"name": ["run"]}}},
    ),
    Bad(
        "tool-choice-unknown",
        anthropic={"tool_choice": {"type": "sometimes"}},
        openai={"tool_choice": "sometimes"},
    ),
    Bad(
        "tool-choice-tool-without-name",
        anthropic={"tool_choice": {"type": "tool"}, "tools": a_tool()},
        openai={"tool_choice": {"type": "function"}, "tools": o_tool()},
    ),
    Bad("temperature-string", **both({"temperature": "hot"})),
    Bad("temperature-bool", **both({"temperature": True})),
    Bad("temperature-list", **both({"temperature": [1]})),
    Bad("top-p-string", **both({"top_p": "high"})),
    Bad("top-k-string", anthropic={"top_k": "5"}, openai=None),
    Bad("stop-number", anthropic={"stop_sequences": 5}, openai={"stop": 5}),
    Bad("stop-string-not-list", anthropic={"stop_sequences": "END"}, openai=None),
    Bad("stop-list-of-numbers", anthropic={"stop_sequences": [1, 2]}, openai={"stop": [1, 2]}),
    Bad("stop-object", anthropic={"stop_sequences": {"a": "END"}}, openai={"stop": {"a": "END"}}),
    Bad("thinking-string", anthropic={"thinking": "on"}, openai={"reasoning_effort": "extreme"}),
    Bad(
        "thinking-type-list",
        anthropic={"thinking": {"type": ["enabled"]}},
        openai={"reasoning_effort": ["low"]},
    ),
    Bad("response-format-string", anthropic=None, openai={"response_format": "json"}),
    Bad("response-format-unknown-type", anthropic=None, openai={"response_format": {"type": "yaml"}}),
    Bad(
        "thinking-unknown-type", anthropic={"thinking": {"type": "sometimes"}}, openai={"reasoning_effort": 5}
    ),
]

JSON_CASES = [
    pytest.param(case, dialect, id=f"{dialect}-{case.id}")
    for case in BAD_BODIES
    for dialect in ("anthropic", "openai")
    if getattr(case, dialect) is not None
]
PASSTHROUGH_CASES = [
    pytest.param(case, dialect, id=f"{dialect}-passthrough-{case.id}")
    for case in BAD_BODIES
    if case.passthrough
    for dialect in ("anthropic", "openai")
]


async def _refused_then_served(proxy: Any, fake: FakeUpstream, side: Side, target: str, body: bytes) -> None:
    """A 400 in the side's shape, nothing upstream, and both the connection and the server go on."""
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", target, side.headers, body, timeout=T)
        side.assert_error(resp, 400, "invalid_request_error")
        assert len(resp.body) <= MAX_ERROR_BODY, f"a {len(resp.body)}-byte error answer"
        assert (resp.header("connection") or "").lower() != "close"
        assert fake.requests == [], "bad input reached the upstream"
        await assert_serves(proxy, conn)  # the same connection goes on
    await assert_serves(proxy)  # and so does a new one
    assert len(fake.requests) == 2 * len(SIDES)


@pytest.mark.parametrize(("case", "dialect"), JSON_CASES)
async def test_bad_body_is_a_400_in_the_clients_shape(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, case: Bad, dialect: str
) -> None:
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    how = getattr(case, dialect)
    await _refused_then_served(proxy, fake, side, side.path, spoil(side, how))
    assert_no_traceback(caplog)


@pytest.mark.parametrize(("case", "dialect"), PASSTHROUGH_CASES)
async def test_bad_body_is_a_400_on_a_passthrough_too(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, case: Bad, dialect: str
) -> None:
    """Same protocol on both sides forwards the body as sent, unread but for model and messages: a body
    that is not one JSON object (in UTF-8, within orjson's depth), or names no model or no messages,
    is refused there too."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    model = A_PASS_MODEL if dialect == "anthropic" else O_PASS_MODEL
    body = spoil(side, getattr(case, dialect), model=model)
    await _refused_then_served(proxy, fake, side, side.path, body)
    assert_no_traceback(caplog)


COUNT_TOKENS_CASES = [
    pytest.param(how, id=case_id)
    for case_id, how in [
        ("truncated-json", lambda raw: raw[:-3]),
        ("top-level-array", b"[]"),
        ("lone-surrogate", {TEXT: "\ud800"}),
        ("invalid-utf8", {TEXT: Raw(b'"\xff"')}),
        ("nested-10000", {TEXT: deep(10_000)}),
        ("nested-300-in-tool-schema", {"tools": a_tool({"type": "object", "x": deep(300, "{")})}),
        ("model-missing", {"model": DROP}),
        ("model-number", {"model": 1}),
        ("messages-missing", {"messages": DROP}),
        ("role-unknown", {"messages.0.role": "robot"}),
        ("content-number", {TEXT: 5}),
        ("tools-string", {"tools": "run"}),
        ("system-number", {"system": 5}),
    ]
]


@pytest.mark.parametrize("how", COUNT_TOKENS_CASES)
@pytest.mark.parametrize("model", [A_MODEL, A_PASS_MODEL], ids=["estimated", "forwarded"])
async def test_bad_count_tokens_body_is_a_400(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, how: Spoil, model: str
) -> None:
    """Counted locally for an OpenAI upstream, forwarded to an Anthropic one (decision 9): refused
    before either."""
    proxy = await battery_proxy(proxy_factory, fake)
    body = spoil(ANTHROPIC_SIDE, how, model=model)
    await _refused_then_served(proxy, fake, ANTHROPIC_SIDE, "/v1/messages/count_tokens", body)
    assert_no_traceback(caplog)


# ---------------------------------------------------------------- what looks odd but is served


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("model", "served"),
    [(DROP, True), (None, True), ("", True), (False, False), (0, False), ([], False), ({}, False)],
    ids=["missing", "null", "empty", "false", "zero", "empty-list", "empty-object"],
)
async def test_a_model_that_is_no_string_is_refused_not_defaulted(
    proxy_factory: Any,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    dialect: str,
    model: Any,
    served: bool,
) -> None:
    """With --default-model, a request naming no model gets it (O2A-R27); a false value of another
    type (0, false, [], {}) is a wrong type, not "no model"."""
    proxy = await battery_proxy(proxy_factory, fake, routes=ModelRoutes(default=O_MODEL))
    side = SIDES[dialect]
    body = spoil(side, {"model": model})
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", side.path, side.headers, body, timeout=T)
    if served:
        side.assert_ok(resp)
        assert len(fake.requests) == 1 and fake.requests[0].body["model"] == O_MODEL
    else:
        side.assert_error(resp, 400, "invalid_request_error")
        assert "model" in resp.json()["error"]["message"]
        assert fake.requests == []
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_huge_strings_under_the_limit_are_served_whole(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    """Megabytes of text and of a tool description, under max_body_bytes: a 200, and the upstream gets
    every character."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    text = "é ünïcödé 😀 " * 200_000  # about 3 MB of UTF-8
    description = "d" * 1_000_000
    tools = a_tool(description=description) if dialect == "anthropic" else o_tool(description=description)
    body = spoil(side, {TEXT: text, "tools": tools})
    assert 4_000_000 < len(body) < proxy.config.max_body_bytes
    async with await connect(proxy) as conn:
        side.assert_ok(await conn.request("POST", side.path, side.headers, body, timeout=T))
        await assert_serves(proxy, conn)
    sent = json.dumps(fake.requests[0].body, ensure_ascii=False)
    assert text in sent and description in sent
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "metadata",
    [{"metadata": "user-1"}, {"metadata": ["user-1"]}, {"metadata": {"user_id": 5}}, {"user": 5}],
    ids=["string", "list", "user-id-number", "user-number"],
)
async def test_odd_metadata_is_ignored_not_forwarded(
    proxy_factory: Any,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    dialect: str,
    metadata: dict[str, Any],
) -> None:
    """A2O-R31's rule (tests/dialects/test_a2o_request.py): a metadata or user id that is not what it
    should be sends nothing of it upstream, and the request is served."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    async with await connect(proxy) as conn:
        side.assert_ok(await conn.request("POST", side.path, side.headers, spoil(side, metadata), timeout=T))
    (sent,) = fake.requests
    assert not {"metadata", "user"} & set(sent.body), sent.body
    assert_no_traceback(caplog)


@pytest.mark.parametrize(
    ("dialect", "blank"),
    [
        pytest.param(dialect, blank, id=f"{dialect}-{name}")
        for name, blank in [
            ("empty-string", ""),
            ("whitespace", " \n "),
            ("empty-list", []),
            ("empty-text-block", [{"type": "text", "text": ""}]),
            ("null", None),  # an Anthropic content of null is a type error: content-null-user above
        ]
        for dialect in ("anthropic", "openai")
        if not (dialect == "anthropic" and blank is None)
    ],
)
async def test_a_blank_turn_among_others_is_dropped_not_forwarded(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str, blank: Any
) -> None:
    """A2O-R03/R34 and O2A-R06: a blank turn is left out (never an empty text block upstream, which
    strict backends refuse); the rest is served."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": blank},
        {"role": "user", "content": "second"},
    ]
    async with await connect(proxy) as conn:
        side.assert_ok(await conn.request("POST", side.path, side.headers, side.body(messages=messages)))
    (sent,) = fake.requests
    for message in sent.body["messages"]:
        content = message["content"]
        assert content and (not isinstance(content, str) or content.strip()), sent.body["messages"]
        for part in content if isinstance(content, list) else ():
            assert part.get("type") != "text" or part["text"].strip(), sent.body["messages"]
    assert "first" in json.dumps(sent.body) and "second" in json.dumps(sent.body)
    assert_no_traceback(caplog)


async def test_unknown_anthropic_block_type_is_skipped_not_refused(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Claude Code adds block types every month: an unknown one is dropped on the way to an OpenAI
    upstream (client.py's rule), and the rest of the message is served."""
    proxy = await battery_proxy(proxy_factory, fake)
    content = [{"type": "hologram", "data": "x" * 100}, {"type": "text", "text": "the real question"}]
    body = spoil(ANTHROPIC_SIDE, {TEXT: content})
    async with await connect(proxy) as conn:
        ANTHROPIC_SIDE.assert_ok(await conn.request("POST", "/v1/messages", ANTHROPIC, body, timeout=T))
    assert len(fake.requests) == 1
    forwarded = json.dumps(fake.requests[0].body["messages"])
    assert "the real question" in forwarded and "hologram" not in forwarded
    assert_no_traceback(caplog)


# ===================================================================================== HTTP level


@dataclass(frozen=True)
class Wire:
    id: str
    data: bytes  # what the client writes, all at once
    status: int
    dialect: str = "openai"  # whose error shape the answer has
    half_close: bool = False  # the client then ends its side (it still reads the answer)


def _head(method: str, target: str, *lines: str, version: str = "1.1") -> bytes:
    return (f"{method} {target} HTTP/{version}\r\n" + "".join(f"{x}\r\n" for x in lines) + "\r\n").encode()


SMALL = json.dumps({**ANTHROPIC_SIDE.base, "model": A_MODEL}).encode()
CHUNKED_A = ("Host: x", "anthropic-version: 2023-06-01", "Transfer-Encoding: chunked")
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n"

MALFORMED: list[Wire] = [
    Wire("plain-text", b"THIS IS NOT HTTP AT ALL\r\n\r\n", 400),
    Wire("tls-client-hello", TLS_HELLO, 400),
    Wire("nul-bytes", b"\x00" * 64 + b"\r\n\r\n", 400),
    Wire("binary-noise", bytes(range(256)) * 4, 400),
    Wire("blank-lines-only", b"\r\n" * 8, 400),
    Wire("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    Wire("http-version-3", _head("GET", "/health", "Host: x", version="3.0"), 505),
    Wire("no-http-version", b"GET /health\r\nHost: x\r\n\r\n", 400),
    Wire("nul-in-target", b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    Wire("space-in-header-name", _head("GET", "/health", "Host: x", "Bad Name: y"), 400),
    Wire("header-without-colon", _head("GET", "/health", "Host: x", "bad header line"), 400),
    Wire("missing-host-http11", _head("POST", "/v1/messages", "Content-Length: 2") + b"{}", 400),
    Wire("duplicate-host", _head("GET", "/health", "Host: x", "Host: y"), 400),
    Wire(
        "content-length-not-a-number", _head("POST", "/v1/messages", "Host: x", "Content-Length: nope"), 400
    ),
    Wire("content-length-negative", _head("POST", "/v1/messages", "Host: x", "Content-Length: -1"), 400),
    Wire(
        "content-length-duplicates-disagree",
        _head("POST", "/v1/messages", "Host: x", "Content-Length: 5", "Content-Length: 6") + b"{}   ",
        400,
    ),
    Wire(
        "content-length-list-disagrees", _head("POST", "/v1/messages", "Host: x", "Content-Length: 2, 3"), 400
    ),
    Wire(
        "content-length-and-chunked",
        _head("POST", "/v1/messages", *CHUNKED_A, f"Content-Length: {len(SMALL)}")
        + b"%x\r\n%b\r\n0\r\n\r\n" % (len(SMALL), SMALL),
        400,
        dialect="anthropic",
    ),
    Wire(
        "transfer-encoding-gzip",
        _head("POST", "/v1/messages", "Host: x", "Transfer-Encoding: gzip") + b"\x1f\x8b",
        501,
    ),
    Wire(
        "bad-chunk-size",
        _head("POST", "/v1/messages", *CHUNKED_A) + b"zz\r\n{}\r\n0\r\n\r\n",
        400,
        "anthropic",
    ),
    Wire(
        "chunk-without-crlf",
        _head("POST", "/v1/messages", *CHUNKED_A) + b"2\r\n{}XX0\r\n\r\n",
        400,
        dialect="anthropic",
    ),
    Wire(  # an error message quoting the client's bytes is still a 400, not a 431
        "chunk-header-reading-too-long",
        _head("POST", "/v1/messages", *CHUNKED_A) + b"too long\r\n{}\r\n",
        400,
        dialect="anthropic",
    ),
    Wire(
        "chunk-size-overflow",
        _head("POST", "/v1/messages", *CHUNKED_A) + b"f" * 40 + b"\r\n{}\r\n",
        400,
        dialect="anthropic",
    ),
    Wire(
        "chunk-body-then-eof",
        _head("POST", "/v1/chat/completions", "Host: x", "Transfer-Encoding: chunked") + b"40\r\n{}",
        400,
        dialect="openai",
        half_close=True,
    ),
    Wire(
        "content-length-body-then-eof",
        _head("POST", "/v1/messages", "Host: x", "anthropic-version: 2023-06-01", "Content-Length: 100")
        + b"{}",
        400,
        dialect="anthropic",
        half_close=True,
    ),
]


async def _read_all_responses(conn: HTTPConnection) -> list[Response]:
    """Responses until the connection closes (or a read times out)."""
    out = []
    while True:
        try:
            out.append(await conn.read_response(timeout=T))
        except (asyncio.IncompleteReadError, ConnectionError):
            return out


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in MALFORMED])
async def test_malformed_http_is_refused_then_closed(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, case: Wire
) -> None:
    proxy = await battery_proxy(proxy_factory, fake)
    async with await connect(proxy) as conn:
        await conn.send(case.data)
        if case.half_close:
            conn.writer.write_eof()  # the client has nothing more to say, but still reads
        responses = await _read_all_responses(conn)
        assert [r.status for r in responses] == [case.status], [r.body[:200] for r in responses]
        SIDES[case.dialect].assert_error(responses[0], case.status, "invalid_request_error")
        assert (responses[0].header("connection") or "").lower() == "close"
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await assert_serves(proxy)
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "garbage",
    [b"GARBAGE\r\n\r\n", TLS_HELLO, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n"],
    ids=["text", "tls", "bad-length"],
)
async def test_pipelined_garbage_after_a_good_request(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str, garbage: bytes
) -> None:
    """The good request is answered in full first; the garbage behind it is a 400, then the close."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    async with await connect(proxy) as conn:
        await conn.send(good_request(side) + garbage)
        side.assert_ok(await conn.read_response(timeout=T))
        rejected = await conn.read_response(timeout=T)
        assert rejected.status == 400
        assert_error_shape("openai", rejected.json(), "invalid_request_error")
        assert await conn.at_eof(timeout=T)
    assert len(fake.requests) == 1
    await assert_serves(proxy)
    assert_no_traceback(caplog)


@pytest.mark.parametrize(
    ("header", "model", "status"),
    [
        ("x-trace", A_PASS_MODEL, 200),
        ("anthropic-beta", A_MODEL, 200),
        ("anthropic-beta", A_PASS_MODEL, 400),
        ("anthropic-version", A_PASS_MODEL, 400),
    ],
    ids=["not-forwarded", "not-forwarded-when-translated", "forwarded-beta", "forwarded-version"],
)
async def test_control_character_in_a_header_value(
    proxy_factory: Any,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    header: str,
    model: str,
    status: int,
) -> None:
    """h11 takes any byte but NUL, CR and LF in a header value (RFC 9110 5.5 lets a recipient keep it).
    A header that goes nowhere is harmless; one a passthrough would forward is refused before the
    upstream sees it, and the connection goes on."""
    proxy = await battery_proxy(proxy_factory, fake)
    body = spoil(ANTHROPIC_SIDE, {}, model=model)
    headers = [(k, v) for k, v in ANTHROPIC if k != header] + [(header, "a\x01b")]
    wire = build_request("POST", "/v1/messages", headers, body)
    async with await connect(proxy) as conn:
        await conn.send(wire)
        resp = await conn.read_response(timeout=T)
        if status == 200:
            ANTHROPIC_SIDE.assert_ok(resp)
            assert len(fake.requests) == 1 and "\x01" not in json.dumps(fake.requests[0].headers)
        else:
            ANTHROPIC_SIDE.assert_error(resp, status, "invalid_request_error")
            assert fake.requests == []
        await assert_serves(proxy, conn)
    await assert_serves(proxy)
    assert_no_traceback(caplog)


# -------------------------------------------------------------------------------------- limits


LIMIT = 2000  # max_body_bytes and max_head_bytes of these cases


def _over_limit_body(side: Side) -> bytes:
    return side.body(messages=[{"role": "user", "content": "x" * (LIMIT * 3)}])


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "how",
    ["content-length", "content-length-megabytes", "chunked", "chunked-in-small-chunks", "expect-100"],
)
async def test_oversized_body_is_a_413(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str, how: str
) -> None:
    proxy = await battery_proxy(proxy_factory, fake, max_body_bytes=LIMIT)
    side = SIDES[dialect]
    body = _over_limit_body(side)
    if how == "content-length-megabytes":
        body = side.body(messages=[{"role": "user", "content": "x" * 4_000_000}])
    async with await connect(proxy) as conn:
        if how.startswith("chunked"):
            size = 100 if how == "chunked-in-small-chunks" else len(body)
            wire = b"".join(
                b"%x\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size])
                for i in range(0, len(body), size)
            )
            await conn.send(
                build_request("POST", side.path, [*side.headers, ("transfer-encoding", "chunked")])
            )
            await conn.send(wire + b"0\r\n\r\n")
        elif how == "expect-100":
            headers = [*side.headers, ("expect", "100-continue"), ("content-length", str(len(body)))]
            await conn.send(build_request("POST", side.path, headers))
        else:
            sender = asyncio.create_task(conn.send(build_request("POST", side.path, side.headers, body)))
        resp = await conn.read_response(timeout=T)
        assert resp.informational == [], "100 Continue invited a body that is refused"
        side.assert_error(resp, 413, "request_too_large")
        assert (resp.header("connection") or "").lower() == "close"
        assert await conn.at_eof(timeout=T)
        if how.startswith("content-length"):
            await asyncio.wait([sender], timeout=T)
            if not sender.done():
                sender.cancel()
            elif not sender.cancelled():
                sender.exception()  # the proxy may close before the whole body is sent: not our concern
    assert fake.requests == []
    await assert_serves(proxy)
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
@pytest.mark.parametrize("how", ["one-write", "trickled", "many-headers", "long-target"])
async def test_oversized_head_is_a_431(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str, how: str
) -> None:
    proxy = await battery_proxy(proxy_factory, fake, max_head_bytes=LIMIT)
    side = SIDES[dialect]
    headers = list(side.headers)
    target = side.path
    if how == "many-headers":
        headers += [(f"x-h{i}", "v") for i in range(LIMIT // 4)]
    elif how == "long-target":
        target += "?q=" + "a" * (LIMIT * 2)
    else:
        headers.append(("x-big", "a" * (LIMIT * 2)))
    wire = build_request("POST", target, headers, side.body())
    async with await connect(proxy) as conn:
        if how == "trickled":
            for i in range(0, LIMIT + 1000, 500):  # past the limit, then stop
                await conn.send(wire[i : i + 500])
                await asyncio.sleep(0.01)
        else:
            await conn.send(wire)
        resp = await conn.read_response(timeout=T)
        assert resp.status == 431, (resp.status, resp.body[:200])
        # A head that arrives whole is measured once parsed: its path gives the shape. One that trickles
        # in is refused by h11 before it is complete: its request line, already there, gives it (issue 19).
        assert_error_shape(dialect, resp.json(), "invalid_request_error")
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await assert_serves(proxy)
    assert_no_traceback(caplog)


# -------------------------------------------------------------------------------------- Expect


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_unknown_expectation_is_ignored_and_served(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    """RFC 9110 10.1.1: a server MAY answer 417 to an expectation it does not know; rawproxy ignores it
    (as nginx does) and serves the request, with no interim response."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    async with await connect(proxy) as conn:
        resp = await conn.request("POST", side.path, [*side.headers, ("expect", "202-accepted")], side.body())
        side.assert_ok(resp)
        assert resp.informational == []
        await assert_serves(proxy, conn)
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_100_continue_then_no_body_is_a_408(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    proxy = await battery_proxy(proxy_factory, fake, idle_timeout=0.4)
    side = SIDES[dialect]
    headers = [*side.headers, ("expect", "100-continue"), ("content-length", "100")]
    async with await connect(proxy) as conn:
        await conn.send(build_request("POST", side.path, headers) + b'{"model":')  # then silence
        resp = await conn.read_response(timeout=T)
        assert [h.status for h in resp.informational] == [100]
        side.assert_error(resp, 408, "timeout_error")
        assert await conn.at_eof(timeout=T)
    assert fake.requests == []
    await assert_serves(proxy)
    assert_no_traceback(caplog)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_100_continue_on_http10_gets_no_interim_response(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    """An HTTP/1.0 client cannot read a 1xx (RFC 9110 15.2): its Expect is ignored; the body follows."""
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    body = side.body()
    wire = build_request("POST", side.path, [*side.headers, ("expect", "100-continue")], body)
    wire = wire.replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
    async with await connect(proxy) as conn:
        await conn.send(wire)
        resp = await conn.read_response(timeout=T)
        side.assert_ok(resp)
        assert resp.informational == []
        assert await conn.at_eof(timeout=T)
    await assert_serves(proxy)
    assert_no_traceback(caplog)


# ------------------------------------------------------------------------------------ HTTP/1.0


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_http10_without_host_is_served_then_closed(
    proxy_factory: Any, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    proxy = await battery_proxy(proxy_factory, fake)
    side = SIDES[dialect]
    body = side.body()
    head = [
        f"POST {side.path} HTTP/1.0",
        *(f"{k}: {v}" for k, v in side.headers),
        f"Content-Length: {len(body)}",
    ]
    async with await connect(proxy) as conn:
        await conn.send(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        side.assert_ok(await conn.read_response(timeout=T))
        assert await conn.at_eof(timeout=T)
    await assert_serves(proxy)
    assert_no_traceback(caplog)


# ------------------------------------------------------------------------------ methods, paths

METHODS = [
    ("GET", "/v1/messages", "anthropic", 405, "invalid_request_error"),
    ("PUT", "/v1/messages", "anthropic", 405, "invalid_request_error"),
    ("DELETE", "/v1/messages/count_tokens", "anthropic", 405, "invalid_request_error"),
    ("OPTIONS", "/v1/messages", "anthropic", 405, "invalid_request_error"),
    ("BREW", "/v1/messages", "anthropic", 405, "invalid_request_error"),
    ("GET", "/v1/chat/completions", "openai", 405, "invalid_request_error"),
    ("PATCH", "/v1/chat/completions", "openai", 405, "invalid_request_error"),
    ("POST", "/v1/models", "openai", 405, "invalid_request_error"),
    ("DELETE", "/health", "openai", 405, "invalid_request_error"),
    ("TRACE", "/", "openai", 405, "invalid_request_error"),
    ("POST", "/v1/completions", "openai", 404, "not_found_error"),
    ("POST", "/v1/embeddings", "openai", 404, "not_found_error"),
    ("GET", "/admin", "openai", 404, "not_found_error"),
    ("POST", "/v1/messages/batches", "anthropic", 404, "not_found_error"),
    ("GET", "/v1/files", "anthropic", 404, "not_found_error"),
    ("CONNECT", "example.com:443", "openai", 404, "not_found_error"),
]


@pytest.mark.parametrize(
    ("method", "target", "dialect", "status", "error"),
    [pytest.param(*m, id=f"{m[0]}-{m[1]}-{m[3]}") for m in METHODS],
)
async def test_unsupported_method_or_path(
    proxy_factory: Any,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    method: str,
    target: str,
    dialect: str,
    status: int,
    error: str,
) -> None:
    proxy = await battery_proxy(proxy_factory, fake)
    headers = ANTHROPIC if dialect == "anthropic" and not target.startswith("/v1/messages") else []
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    async with await connect(proxy) as conn:
        resp = await conn.request(method, target, headers, body, timeout=T)
        SIDES[dialect].assert_error(resp, status, error)
        assert fake.requests == []
        head = await conn.request("HEAD", target, headers, timeout=T) if method != "CONNECT" else None
        if head is not None:  # a HEAD's answer has no body: a leaked one would break the next request
            assert head.status < 500 and head.body == b""
        await assert_serves(proxy, conn)
    await assert_serves(proxy)
    assert_no_traceback(caplog)
