"""A2O errors: upstream OpenAI-compatible errors, transport failures and our own validation errors, all
rendered in Anthropic's error shape (CONFORMANCE.md A2O-E01..E04, decision 6)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from rawproxy import ir
from rawproxy.client import map_exception
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import ClientError, ProxyError, UpstreamProtocolError


def render(status: int, body: bytes) -> tuple[int, dict[str, Any]]:
    """Upstream (status, body) -> what an Anthropic client receives."""
    out_status, out_body = anthropic_messages.build_error(openai_chat.parse_error(status, body))
    return out_status, orjson.loads(out_body)


def openai_error(message: str, type: str = "invalid_request_error", code: Any = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": None, "code": code}})


# --------------------------------------------------------------------------- E01 status / type map

E01_TABLE = [
    (400, 400, "invalid_request_error"),
    (401, 401, "authentication_error"),
    (402, 402, "billing_error"),
    (403, 403, "permission_error"),
    (404, 404, "not_found_error"),
    (408, 504, "timeout_error"),
    (409, 409, "invalid_request_error"),
    (413, 413, "request_too_large"),
    (422, 400, "invalid_request_error"),
    (429, 429, "rate_limit_error"),
    (500, 500, "api_error"),
    (502, 502, "api_error"),
    (503, 529, "overloaded_error"),
    (504, 504, "timeout_error"),
    (529, 529, "overloaded_error"),
]


@pytest.mark.parametrize(("upstream", "client", "etype"), E01_TABLE)
def test_a2o_e01_status_type_map(upstream: int, client: int, etype: str) -> None:
    status, body = render(upstream, openai_error(f"upstream said {upstream}"))
    assert status == client
    assert body == {"type": "error", "error": {"type": etype, "message": f"upstream said {upstream}"}}


@pytest.mark.parametrize(("upstream", "client", "etype"), E01_TABLE)
def test_a2o_e01_map_status_table(upstream: int, client: int, etype: str) -> None:
    assert openai_chat.map_status(upstream) == (client, ir.ErrorType(etype))


@pytest.mark.parametrize(
    ("upstream", "client", "etype"),
    [
        (405, 405, "invalid_request_error"),
        (418, 418, "invalid_request_error"),
        (501, 501, "api_error"),
        (505, 505, "api_error"),
        (520, 520, "api_error"),
    ],
)
def test_a2o_e01_unlisted_statuses(upstream: int, client: int, etype: str) -> None:
    status, body = render(upstream, b"")
    assert status == client
    assert body["error"]["type"] == etype


def test_a2o_e01_error_body_has_anthropic_shape_only() -> None:
    _, body = render(429, openai_error("Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"))
    assert set(body) <= {"type", "error", "request_id"}
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == "rate_limit_error"  # never the upstream's own type ("requests")


# --------------------------------------------------------------------------- E02 body extraction

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)
HTML_NO_TITLE = b"<html><body><h1>Service   Unavailable</h1>\n<p>The server is <b>down</b>.</p></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (  # OpenAI / DeepSeek error object: verbatim
            400,
            openai_error(
                "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
                code="invalid_request_error",
            ),
            "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
        ),
        (  # OpenRouter
            402,
            orjson.dumps({"error": {"message": "Insufficient credits", "code": 402, "metadata": {"x": 1}}}),
            "Insufficient credits",
        ),
        (404, orjson.dumps({"detail": "Not Found"}), "Not Found"),
        (400, orjson.dumps({"message": "model is required"}), "model is required"),
        (500, orjson.dumps({"error": "something broke"}), "something broke"),
        (400, orjson.dumps({"error": {"message": "unicode ✓ 日本語"}}), "unicode ✓ 日本語"),
        (
            502,
            b"upstream connect error or disconnect/reset before headers",
            "upstream connect error or disconnect/reset before headers",
        ),
        (500, b"  Internal Server Error\n", "Internal Server Error"),
        (502, HTML_502, "502 Bad Gateway"),
        (503, HTML_NO_TITLE, "Service Unavailable The server is down ."),
        (502, b"", "upstream returned HTTP 502"),
        (500, b"   \n", "upstream returned HTTP 500"),
    ],
    ids=[
        "openai_object",
        "openrouter_object",
        "detail",
        "message",
        "error_string",
        "unicode",
        "plain_text",
        "plain_text_whitespace",
        "html_title",
        "html_no_title",
        "empty",
        "blank",
    ],
)
def test_a2o_e02_error_body_extraction(status: int, body: bytes, message: str) -> None:
    out_status, out = render(status, body)
    assert out["type"] == "error"
    assert out["error"]["message"] == message
    assert out_status == openai_chat.map_status(status)[0]


def test_a2o_e02_fastapi_detail_list_is_readable() -> None:
    detail = [{"loc": ["body", "model"], "msg": "field required", "type": "value_error.missing"}]
    _, out = render(422, orjson.dumps({"detail": detail}))
    assert "field required" in out["error"]["message"]
    assert "model" in out["error"]["message"]


def test_a2o_e02_nested_error_without_message_is_kept() -> None:
    _, out = render(400, orjson.dumps({"error": {"code": "context_length_exceeded", "param": "messages"}}))
    assert "context_length_exceeded" in out["error"]["message"]


def test_a2o_e02_invalid_utf8_and_huge_bodies() -> None:
    _, out = render(500, b"bad \xff\xfe bytes")
    assert out["error"]["message"].startswith("bad ")
    _, out = render(500, b"x" * 100_000)
    assert 0 < len(out["error"]["message"]) <= 2000
    _, out = render(500, orjson.dumps({"error": {"message": "m" * 10_000}}))
    assert out["error"]["message"].startswith("mmm")


def test_a2o_e02_html_page_is_never_passed_raw() -> None:
    for page in (HTML_502, HTML_NO_TITLE):
        _, out = render(502, page)
        assert "<" not in out["error"]["message"]


# ---------------------------------------------------------------- E03 connect failure, read timeout

_REQ = httpx.Request("POST", "http://upstream.test/v1/chat/completions")


@pytest.mark.parametrize(
    ("exc", "status", "etype"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused", request=_REQ), 502, "api_error"),
        (httpx.ConnectError("[Errno -2] Name or service not known", request=_REQ), 502, "api_error"),
        (httpx.ConnectTimeout("timed out", request=_REQ), 502, "api_error"),
        (httpx.ReadTimeout("timed out", request=_REQ), 504, "timeout_error"),
        (httpx.WriteTimeout("timed out", request=_REQ), 504, "timeout_error"),
        (
            httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=_REQ
            ),
            502,
            "api_error",
        ),
        (httpx.ReadError("Connection reset by peer", request=_REQ), 502, "api_error"),
    ],
    ids=[
        "connect_refused",
        "dns",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "remote_protocol",
        "read_error",
    ],
)
def test_a2o_e03_transport_failures(exc: httpx.HTTPError, status: int, etype: str) -> None:
    err = map_exception(exc)
    assert isinstance(err, ProxyError)
    assert err.status_hint == status
    out_status, out_body = anthropic_messages.build_error(err.info)
    body = orjson.loads(out_body)
    assert out_status == status
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert body["error"]["message"]


def test_a2o_e03_connect_failure_message_names_the_cause() -> None:
    err = map_exception(httpx.ConnectError("[Errno 111] Connection refused", request=_REQ))
    assert "connect" in err.info.message
    assert "Connection refused" in err.info.message


def test_a2o_e03_mid_stream_reset_is_a_protocol_error() -> None:
    err = map_exception(httpx.RemoteProtocolError("peer closed connection", request=_REQ))
    assert isinstance(err, UpstreamProtocolError)


# ----------------------------------------------------------------------- E04 own validation errors

VALID: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "hi"}],
}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != key}


def _with(**kw: Any) -> dict[str, Any]:
    return {**VALID, **kw}


E04_CASES: list[tuple[str, bytes, str]] = [
    ("missing_model", orjson.dumps(_without("model")), "model"),
    ("empty_model", orjson.dumps(_with(model="")), "model"),
    ("model_not_string", orjson.dumps(_with(model=42)), "model"),
    ("missing_messages", orjson.dumps(_without("messages")), "messages"),
    ("messages_not_list", orjson.dumps(_with(messages="hi")), "messages"),
    ("message_not_object", orjson.dumps(_with(messages=["hi"])), "messages[0]"),
    ("bad_role", orjson.dumps(_with(messages=[{"role": "bot", "content": "x"}])), "role"),
    ("missing_content", orjson.dumps(_with(messages=[{"role": "user"}])), "content"),
    ("content_not_list", orjson.dumps(_with(messages=[{"role": "user", "content": 5}])), "content"),
    (
        "block_without_type",
        orjson.dumps(_with(messages=[{"role": "user", "content": [{"text": "x"}]}])),
        "type",
    ),
    (
        "text_not_string",
        orjson.dumps(_with(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}])),
        "text",
    ),
    ("missing_max_tokens", orjson.dumps(_without("max_tokens")), "max_tokens"),
    ("max_tokens_string", orjson.dumps(_with(max_tokens="1024")), "max_tokens"),
    ("max_tokens_bool", orjson.dumps(_with(max_tokens=True)), "max_tokens"),
    ("max_tokens_zero", orjson.dumps(_with(max_tokens=0)), "max_tokens"),
    ("max_tokens_float", orjson.dumps(_with(max_tokens=10.5)), "max_tokens"),
    ("temperature_string", orjson.dumps(_with(temperature="hot")), "temperature"),
    ("stream_string", orjson.dumps(_with(stream="yes")), "stream"),
    ("stop_sequences_string", orjson.dumps(_with(stop_sequences="END")), "stop_sequences"),
    ("system_number", orjson.dumps(_with(system=3)), "system"),
    ("tools_object", orjson.dumps(_with(tools={"name": "x"})), "tools"),
    ("tool_without_name", orjson.dumps(_with(tools=[{"input_schema": {"type": "object"}}])), "name"),
    ("tool_choice_bad", orjson.dumps(_with(tool_choice={"type": "sometimes"})), "tool_choice"),
    ("thinking_bad", orjson.dumps(_with(thinking={"type": "maybe"})), "thinking"),
    (
        "image_without_source",
        orjson.dumps(_with(messages=[{"role": "user", "content": [{"type": "image"}]}])),
        "source",
    ),
    ("malformed_json", b'{"model": "claude-sonnet-4-6", "max_tokens": ', "JSON"),
    ("not_an_object", b"[1, 2, 3]", "object"),
    ("empty_body", b"", "JSON"),
    ("invalid_utf8", b'{"model": "\xff\xfe", "max_tokens": 1, "messages": []}', "JSON"),
    (
        "lone_surrogate",
        b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "\\ud83d"}]}',
        "JSON",
    ),
]


@pytest.mark.parametrize(("body", "mentions"), [c[1:] for c in E04_CASES], ids=[c[0] for c in E04_CASES])
def test_a2o_e04_own_validation_errors(body: bytes, mentions: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        anthropic_messages.parse_request(body)
    err = excinfo.value
    assert err.status_hint == 400
    status, out = anthropic_messages.build_error(err.info)
    assert status == 400
    data = orjson.loads(out)
    assert set(data) <= {"type", "error", "request_id"}
    assert data["type"] == "error"
    assert set(data["error"]) == {"type", "message"}
    assert data["error"]["type"] == "invalid_request_error"
    assert mentions in data["error"]["message"], data["error"]["message"]
    assert not isinstance(data.get("detail"), list)  # never FastAPI's 422 array


def test_a2o_e04_count_tokens_needs_no_max_tokens() -> None:
    req = anthropic_messages.parse_request(orjson.dumps(_without("max_tokens")), count_tokens=True)
    assert req.max_tokens is None


def test_a2o_e04_valid_request_with_unknown_fields_parses() -> None:
    body = _with(
        context_management={"edits": []},
        diagnostics={"x": 1},
        output_config={"effort": "medium"},
        mcp_servers=[],
        service_tier="auto",
        metadata={"user_id": "u"},
    )
    req = anthropic_messages.parse_request(orjson.dumps(body))
    assert req.model == "claude-sonnet-4-6"
    assert req.max_tokens == 1024
