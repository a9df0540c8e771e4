"""Issue 6, security: what ``--log-bodies`` writes (rawproxy/redact.py)."""

from __future__ import annotations

import orjson
import pytest

from rawproxy.observe.redact import KEEP, redacted_body


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnopqrstuv",
        "AIzaSyA1234567890abcdefghijklmnopqrs",
        "Bearer abcdefghijklmnop",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
    ],
)
def test_issue6_credentials_anywhere_in_a_body_are_redacted(secret: str) -> None:
    body = orjson.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": f"my key is {secret}"}]}],
        }
    )
    shown = redacted_body(body)
    assert secret not in shown and secret[:12] not in shown
    assert "my key is <redacted>" in shown


def test_issue6_base64_payloads_and_long_strings_are_cut() -> None:
    image = "iVBORw0KGgo" + "A" * 5000
    long_text = "word " * 200
    body = orjson.dumps({"messages": [{"content": [{"source": {"data": image}}, {"text": long_text}]}]})
    shown = redacted_body(body)
    assert image[:50] not in shown and "<base64, 5011 chars>" in shown
    assert long_text[:KEEP] + f"... <{1000 - KEEP} more chars>" in shown


def test_issue6_ordinary_values_are_kept_and_non_json_is_only_sized() -> None:
    body = orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True, "t": "hello"})
    assert orjson.loads(redacted_body(body)) == orjson.loads(body)
    assert redacted_body(b"\xff\xfe not json") == "<11 bytes, not JSON>"


def test_issue6_deep_nesting_is_bounded() -> None:
    body = b"[" * 200 + b"]" * 200
    assert "<nested too deep>" in redacted_body(body)
