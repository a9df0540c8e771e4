"""Upstream error text relayed whole (issue 16, CONFORMANCE.md RS-03/RS-04): OpenRouter's real reason in
``error.metadata.raw``, Gemini's error wrapped in a list. Shapes from the research
(tests/fixtures/research/reasoning_state_2026.md: OpenRouter's Gemini and Moonshot answers, Gemini's
OpenAI-compatible 400)."""

from __future__ import annotations

import orjson

from rawproxy.dialects import openai_chat
from rawproxy.dialects.openai_chat.upstream_response import stream_error

RAW = (
    "Gemini models require OpenRouter reasoning details to be preserved in each request. Please refer to "
    "our docs: https://openrouter.ai/docs/guides/best-practices/reasoning-tokens#preserving-reasoning-blocks."
)
OPENROUTER = {
    "error": {
        "message": "Provider returned error",
        "code": 400,
        "metadata": {"raw": RAW, "provider_name": "Google AI Studio"},
    },
    "user_id": "user_1",
}
GEMINI = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:shell` , position 2. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def test_rs_04_openrouters_real_reason_reaches_the_client_whole() -> None:
    info = openai_chat.parse_error(400, orjson.dumps(OPENROUTER))
    assert info.status == 400
    assert info.message == f"Provider returned error (Google AI Studio): {RAW}"


def test_rs_04_the_same_in_a_stream() -> None:
    assert stream_error(OPENROUTER).message == f"Provider returned error (Google AI Studio): {RAW}"


def test_rs_04_without_metadata_the_message_is_as_it_came() -> None:
    bare = {"error": {"message": "Provider returned error", "code": 400}}
    assert openai_chat.parse_error(400, orjson.dumps(bare)).message == "Provider returned error"
    nameless = {"error": {"message": "Provider returned error", "metadata": {"raw": "why"}}}
    assert openai_chat.parse_error(400, orjson.dumps(nameless)).message == "Provider returned error: why"


def test_rs_03_geminis_list_wrapped_error_is_its_message() -> None:
    body = [{"error": {"code": 400, "message": GEMINI, "status": "INVALID_ARGUMENT"}}]
    assert openai_chat.parse_error(400, orjson.dumps(body)).message == GEMINI
