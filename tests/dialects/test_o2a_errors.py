"""O2A errors: Anthropic (or Anthropic-compatible) upstream errors rendered in OpenAI's error shape
(CONFORMANCE.md O2A-E01..E03, decision 6), as far as they are sans-I/O.

``anthropic_messages.parse_error(status, body)`` reads the upstream's answer and
``openai_chat.build_error(info)`` writes the client's; the official ``openai`` SDK then reads the result
(exception class, status, ``code``, ``type``). The HTTP-level halves (the real status on a stream request
before its first byte, ``retry-after`` passed on as a header, the configurable ``anthropic-version`` and
``anthropic-beta`` headers) live in the proxy and are tested by the integration tests.
"""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.sse import SSEEvent
from tests.support.openai_sse import _sdk_client, prepare, sdk_error


def anthropic_error(etype: str, message: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_011"}
    )


def render(status: int, body: bytes) -> tuple[int, dict[str, Any]]:
    """Upstream (status, body) -> what an OpenAI client receives."""
    out_status, out_body = openai_chat.build_error(anthropic_messages.parse_error(status, body))
    return out_status, orjson.loads(out_body)


# ----------------------------------------------------------------------------- E01

E01_TABLE = [
    # upstream status, Anthropic type, client status, client type, code, SDK exception
    (400, "invalid_request_error", 400, "invalid_request_error", None, openai.BadRequestError),
    (401, "authentication_error", 401, "authentication_error", "invalid_api_key", openai.AuthenticationError),
    (402, "billing_error", 402, "billing_error", None, openai.APIStatusError),
    (403, "permission_error", 403, "permission_error", None, openai.PermissionDeniedError),
    (404, "not_found_error", 404, "not_found_error", "not_found", openai.NotFoundError),
    (413, "request_too_large", 413, "request_too_large", "request_too_large", openai.APIStatusError),
    (429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded", openai.RateLimitError),
    (500, "api_error", 500, "api_error", None, openai.InternalServerError),
    (504, "timeout_error", 504, "timeout_error", None, openai.InternalServerError),
    (529, "overloaded_error", 503, "overloaded_error", None, openai.InternalServerError),
]


@pytest.mark.parametrize(("upstream", "etype", "status", "ctype", "code", "exc"), E01_TABLE)
def test_o2a_e01_anthropic_error_to_openai_error(
    upstream: int, etype: str, status: int, ctype: str, code: str | None, exc: type[Exception]
) -> None:
    message = f"upstream said {upstream}"
    out_status, body = render(upstream, anthropic_error(etype, message))
    assert out_status == status
    assert body == {"error": {"message": message, "type": ctype, "param": None, "code": code}}


@pytest.mark.parametrize(("upstream", "etype", "status", "ctype", "code", "exc"), E01_TABLE)
def test_o2a_e01_official_sdk_reads_the_error(
    upstream: int, etype: str, status: int, ctype: str, code: str | None, exc: type[Exception]
) -> None:
    out_status, out_body = openai_chat.build_error(
        anthropic_messages.parse_error(upstream, anthropic_error(etype, "boom"))
    )
    err = sdk_error(out_status, out_body)
    assert type(err) is exc
    assert err.status_code == status
    assert err.code == code
    assert err.type == ctype
    assert "boom" in err.message


def test_o2a_e01_rate_limit_exact() -> None:
    body = anthropic_error(
        "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
    )
    assert render(429, body) == (
        429,
        {
            "error": {
                "message": "Number of request tokens has exceeded your per-minute rate limit",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )


def test_o2a_e01_overloaded_529_becomes_503() -> None:
    assert render(529, anthropic_error("overloaded_error", "Overloaded")) == (
        503,
        {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}},
    )


NON_JSON = [
    (
        502,
        b"<html><body>502 Bad Gateway</body></html>",
        502,
        "api_error",
        "<html><body>502 Bad Gateway</body></html>",
    ),
    (503, b"", 503, "api_error", "upstream returned HTTP 503"),
    (429, b"Too Many Requests\n", 429, "rate_limit_error", "Too Many Requests"),
    (401, b'{"detail": "bad key"}', 401, "authentication_error", '{"detail": "bad key"}'),
    (529, b"overloaded", 503, "overloaded_error", "overloaded"),
]


@pytest.mark.parametrize(("upstream", "body", "status", "ctype", "message"), NON_JSON)
def test_o2a_e01_non_anthropic_error_bodies_wrapped(
    upstream: int, body: bytes, status: int, ctype: str, message: str
) -> None:
    out_status, out = render(upstream, body)
    assert out_status == status
    assert out["error"]["type"] == ctype
    assert out["error"]["message"] == message
    assert set(out["error"]) == {"message", "type", "param", "code"}


def test_o2a_e01_unknown_error_type_falls_back_to_the_status() -> None:
    assert render(409, anthropic_error("brand_new_error", "conflict")) == (
        409,
        {"error": {"message": "conflict", "type": "invalid_request_error", "param": None, "code": None}},
    )
    assert render(502, anthropic_error("brand_new_error", "bad gateway"))[1]["error"]["type"] == "api_error"


def test_o2a_e01_status_kept_even_when_the_type_disagrees() -> None:
    # the HTTP status is the truth for the client's retry logic; the type is passed on as sent
    assert render(500, anthropic_error("overloaded_error", "x")) == (
        500,
        {"error": {"message": "x", "type": "overloaded_error", "param": None, "code": None}},
    )


def test_o2a_e01_very_long_plain_body_truncated() -> None:
    _, out = render(500, b"x" * 10_000)
    assert out["error"]["message"] == "x" * 2000


@pytest.mark.parametrize(
    ("etype", "status"),
    [
        ("overloaded_error", 529),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("timeout_error", 504),
        ("invalid_request_error", 400),
    ],
)
def test_o2a_e01_in_stream_error_status_comes_from_its_type(etype: str, status: int) -> None:
    decoder = anthropic_messages.StreamDecoder(ir.Context(client_model="gpt-4o", upstream_model="c"))
    events = decoder.feed(SSEEvent("error", anthropic_error(etype, "m")))
    assert events == [ir.StreamError(ir.ErrorInfo(status=status, type=ir.ErrorType(etype), message="m"))]


# ----------------------------------------------------------------------------- E02


@pytest.mark.parametrize(
    ("upstream", "etype", "status", "exc"),
    [
        (429, "rate_limit_error", 429, openai.RateLimitError),
        (529, "overloaded_error", 503, openai.InternalServerError),
        (400, "invalid_request_error", 400, openai.BadRequestError),
    ],
)
def test_o2a_e02_error_before_first_byte_of_a_stream_is_a_json_error(
    upstream: int, etype: str, status: int, exc: type[Exception]
) -> None:
    """Sans-I/O half: for a stream request, the error answer is the same JSON error with the real
    status, never SSE; the SDK, asked for a stream, raises the status error at once. (That the proxy
    uses it when the upstream fails before the first byte is tested at the HTTP level.)"""
    prepared = prepare({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}], "stream": True})
    assert orjson.loads(prepared.body)["stream"] is True
    out_status, out_body = openai_chat.build_error(
        anthropic_messages.parse_error(upstream, anthropic_error(etype, "no"))
    )
    assert out_status == status
    assert not out_body.startswith(b"data:")
    client = _sdk_client(out_status, out_body, "application/json")
    try:
        with pytest.raises(exc) as err:
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "q"}], stream=True
            )
    finally:
        client.close()
    assert isinstance(err.value, openai.APIStatusError)
    assert err.value.status_code == status


# ----------------------------------------------------------------------------- E03

E03_MESSAGES = [
    'anthropic-version: "2024-10-22" is not a valid version',
    "Unexpected value(s) `made-up-2099-01-01` for the `anthropic-beta` header. Please consult our "
    "documentation at docs.anthropic.com or try again without the header.",
]


@pytest.mark.parametrize("message", E03_MESSAGES)
def test_o2a_e03_bad_version_or_beta_surfaced_verbatim(message: str) -> None:
    assert render(400, anthropic_error("invalid_request_error", message)) == (
        400,
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
    )


def test_o2a_e03_version_and_beta_never_in_the_body() -> None:
    """They are headers, set (and made configurable) by the proxy: the body never carries them."""
    body = prepare({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}).body
    assert b"anthropic-version" not in body
    assert b"anthropic-beta" not in body
    assert b"anthropic_version" not in body  # Bedrock/Vertex body field: not for this upstream
