"""The local input-token estimate (decision 9, A2O-M01): rawproxy/tokens.py. Pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rawproxy import ir, tokens
from rawproxy.dialects import anthropic_messages
from tests.support import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "claude_code"


def request(messages: list[dict[str, Any]], **extra: Any) -> ir.Request:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": messages, **extra}
    return anthropic_messages.parse_request(json.dumps(body).encode())


def count(messages: list[dict[str, Any]], **extra: Any) -> int:
    return tokens.estimate_request_tokens(request(messages, **extra))


def image(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


# ------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("x" * 400, 100),
        ("hello world, " * 100, 325),  # 1300 ASCII characters
    ],
)
def test_ascii_is_about_four_characters_a_token(text: str, expected: int) -> None:
    assert tokens.estimate_text_tokens(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "中" * 100,  # Han
        "日本語のテキスト" * 12 + "です" * 2,  # Han + Kana
        "한국어" * 33 + "글",  # Hangul
        "カタカナ" * 25,
    ],
)
def test_cjk_is_about_one_token_per_character(text: str) -> None:
    assert len(text) == 100
    assert tokens.estimate_text_tokens(text) == 100


def test_mixed_script_adds_up() -> None:
    text = "中文" * 10 + "a" * 40  # 20 CJK characters + 40 ASCII characters
    assert tokens.estimate_text_tokens(text) == 20 + 10


def test_cjk_costs_more_than_ascii_of_the_same_length() -> None:
    assert tokens.estimate_text_tokens("字" * 1000) > 3 * tokens.estimate_text_tokens("a" * 1000)


def test_non_cjk_unicode_counts_like_text() -> None:
    # accents and emoji are neither free nor one token per character
    assert 0 < tokens.estimate_text_tokens("é" * 400) <= 150
    assert tokens.estimate_text_tokens("🤖 hi") >= 1


# ------------------------------------------------------------------------------------------ images


def test_image_cost_is_fixed_whatever_the_base64_length() -> None:
    small = count([{"role": "user", "content": [image("AAAA")]}])
    one_mb = count([{"role": "user", "content": [image("A" * 1_000_000)]}])
    assert small == one_mb
    assert one_mb < 5000  # not 250k tokens for 1 MB of base64


def test_image_cost_is_the_documented_constant() -> None:
    text_only = count([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    with_image = count([{"role": "user", "content": [{"type": "text", "text": "hi"}, image("A" * 4000)]}])
    assert with_image - text_only == tokens.IMAGE_TOKENS
    assert 500 <= tokens.IMAGE_TOKENS <= 5000


def test_url_image_costs_the_same_as_inline() -> None:
    url_image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert count([{"role": "user", "content": [url_image]}]) == count(
        [{"role": "user", "content": [image("A" * 100_000)]}]
    )


def test_image_inside_tool_result_is_a_fixed_cost_too() -> None:
    def with_screenshot(data: str) -> int:
        return count(
            [
                {"role": "user", "content": "shot"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "Shot", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "ok"}, image(data)],
                        }
                    ],
                },
            ]
        )

    assert with_screenshot("AAAA") == with_screenshot("B" * 2_000_000)
    assert with_screenshot("AAAA") >= tokens.IMAGE_TOKENS


def test_pdf_is_charged_by_pages_not_base64_length() -> None:
    def pdf(size: int) -> int:
        doc = {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "A" * size},
        }
        return count([{"role": "user", "content": [doc]}])

    assert pdf(1000) == tokens.PDF_PAGE_TOKENS + tokens.MESSAGE_OVERHEAD
    assert pdf(4_000_000) < 4_000_000 // 4  # far below one token per 4 base64 characters
    assert pdf(4_000_000) > pdf(1000)


# ------------------------------------------------------------------------------------------ tools


def test_tools_are_counted() -> None:
    messages = [{"role": "user", "content": "hi"}]
    bare = count(messages)
    tool = {
        "name": "Bash",
        "description": "Run a shell command. " * 20,
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
    one = count(messages, tools=[tool])
    two = count(messages, tools=[tool, {**tool, "name": "Bash2"}])
    assert one > bare + 100  # the description alone is 420 characters
    assert two > one


def test_server_tools_are_counted() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert count(
        messages, tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    ) > count(messages)


def test_tool_use_and_results_are_counted() -> None:
    base = [{"role": "user", "content": "go"}]
    call = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls -la " * 50}}],
    }
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "file " * 200}],
    }
    assert count(base) < count([*base, call]) < count([*base, call, result])


def test_system_and_thinking_are_counted() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert count(messages, system="You are helpful. " * 50) > count(messages) + 100
    thought = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "let me think " * 50, "signature": "s"}],
        },
    ]
    assert (
        count(thought) > count([{"role": "user", "content": "q"}, {"role": "assistant", "content": []}]) + 100
    )


# ---------------------------------------------------------------------------------------- monotonic


@pytest.mark.parametrize("n", [0, 1, 3, 10, 100])
def test_monotonic_in_text(n: int) -> None:
    shorter = count([{"role": "user", "content": "word " * n}])
    longer = count([{"role": "user", "content": "word " * (n + 1)}])
    assert longer >= shorter
    if n >= 3:
        assert count([{"role": "user", "content": "word " * (n * 2)}]) > shorter


def test_monotonic_in_messages() -> None:
    messages: list[dict[str, Any]] = []
    previous = count(messages)
    for i in range(10):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i}"})
        current = count(messages)
        assert current > previous
        previous = current


def test_monotonic_in_blocks() -> None:
    blocks: list[dict[str, Any]] = []
    previous = count([{"role": "user", "content": blocks}])
    for block in (
        {"type": "text", "text": "hello"},
        image("AAAA"),
        {"type": "text", "text": "中文"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}},
    ):
        blocks.append(block)
        current = count([{"role": "user", "content": blocks}])
        assert current > previous
        previous = current


def test_claude_code_request_estimate_is_plausible() -> None:
    raw = (FIXTURES / "tool_bash.json").read_bytes()
    estimate = tokens.estimate_request_tokens(anthropic_messages.parse_request(raw))
    size = len(json.dumps(json.loads(raw)))  # compact JSON size, ~50 KB
    assert size / 8 < estimate < size / 2
