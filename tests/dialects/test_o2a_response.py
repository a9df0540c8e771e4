"""O2A non-stream responses: an Anthropic message in, an OpenAI ``chat.completion`` out (CONFORMANCE.md
O2A-N01..N08, and the non-stream half of O2A-R23).

Each case runs ``anthropic_messages.parse_response`` then ``openai_chat.build_response``, compares the
whole body (``created`` apart, which is the clock), and validates it with the official ``openai`` SDK
(``ChatCompletion.model_validate``, and for the main cases a real ``chat.completions.create`` call over
a mock transport).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import UpstreamProtocolError
from tests.support.openai_sse import ctx, sdk_completion

USAGE = {"input_tokens": 12, "output_tokens": 7}
OPENAI_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 7,
    "total_tokens": 19,
    "prompt_tokens_details": {"cached_tokens": 0},
}


def message(
    content: list[dict[str, Any]],
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    id: str = "msg_01XyZ",
) -> bytes:
    return orjson.dumps(
        {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage if usage is not None else USAGE,
        }
    )


def convert(body: bytes, context: ir.Context | None = None) -> dict[str, Any]:
    """Anthropic body -> OpenAI body (parsed, validated by the SDK's model, ``created`` checked)."""
    context = context or ctx()
    out = openai_chat.build_response(anthropic_messages.parse_response(body, context), context)
    data: dict[str, Any] = orjson.loads(out)
    ChatCompletion.model_validate(data)
    assert isinstance(data.pop("created"), int)
    return data


def completion(
    msg: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-01XyZ",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": usage or OPENAI_USAGE,
    }


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def tool_use(id: str, name: str, input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


# ----------------------------------------------------------------------------- N01 text


def test_o2a_n01_text_blocks_concatenated() -> None:
    body = message([text("Hello"), text(", "), text("world.")])
    assert convert(body) == completion({"role": "assistant", "content": "Hello, world."})


def test_o2a_n01_model_is_the_client_model_and_id_from_the_message() -> None:
    data = convert(message([text("x")], id="msg_abc"), ctx(client_model="my-alias"))
    assert data["model"] == "my-alias"
    assert data["id"] == "chatcmpl-abc"


def test_o2a_n01_official_sdk_reads_the_response() -> None:
    context = ctx()
    out = openai_chat.build_response(
        anthropic_messages.parse_response(message([text("Hi there")]), context), context
    )
    result = sdk_completion(out)
    assert result.choices[0].message.content == "Hi there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens == 19


# ----------------------------------------------------------------------------- N02 tool_use


def test_o2a_n02_tool_use_only_content_null() -> None:
    body = message(
        [tool_use("toolu_01", "weather", {"city": "Zürich"}), tool_use("toolu_02", "time", {})],
        "tool_use",
    )
    assert convert(body) == completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Zürich"}'},
                },
                {"id": "toolu_02", "type": "function", "function": {"name": "time", "arguments": "{}"}},
            ],
        },
        "tool_calls",
    )


def test_o2a_n02_text_then_tool_use() -> None:
    body = message([text("Let me check."), tool_use("toolu_01", "weather", {"q": [1, None]})], "tool_use")
    assert convert(body) == completion(
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"q":[1,null]}'},
                }
            ],
        },
        "tool_calls",
    )


def test_o2a_n02_arguments_keep_unicode_unescaped() -> None:
    out = openai_chat.build_response(
        anthropic_messages.parse_response(message([tool_use("t", "f", {"s": "日本🎉"})], "tool_use"), ctx()),
        ctx(),
    )
    assert '"arguments":"{\\"s\\":\\"日本🎉\\"}"'.encode() in out


def test_o2a_n02_official_sdk_reads_tool_calls() -> None:
    context = ctx()
    out = openai_chat.build_response(
        anthropic_messages.parse_response(
            message([tool_use("toolu_01", "f", {"a": 1})], "tool_use"), context
        ),
        context,
    )
    result = sdk_completion(out)
    msg = result.choices[0].message
    assert msg.content is None
    assert msg.tool_calls is not None
    call = msg.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name, orjson.loads(call.function.arguments)) == ("toolu_01", "f", {"a": 1})
    assert result.choices[0].finish_reason == "tool_calls"


# ----------------------------------------------------------------------------- N03 thinking


def test_o2a_n03_thinking_becomes_reasoning_content() -> None:
    body = message(
        [
            {"type": "thinking", "thinking": "Let me think. ", "signature": "EqQBCkYIARgCKkC"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
            {"type": "thinking", "thinking": "Done.", "signature": "sig2"},
            text("42"),
        ]
    )
    assert convert(body) == completion(
        {"role": "assistant", "content": "42", "reasoning_content": "Let me think. Done."}
    )


def test_o2a_n03_redacted_thinking_only_dropped() -> None:
    body = message([{"type": "redacted_thinking", "data": "xx"}, text("ok")])
    assert convert(body) == completion({"role": "assistant", "content": "ok"})


# ----------------------------------------------------------------------------- N04 / N07 stop reasons

N04_TABLE = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("tool_use", "tool_calls"),
    ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length"),
    ("pause_turn", "stop"),
    ("compaction", "length"),
    (None, "stop"),  # code's choice: an unknown or missing stop_reason is a plain stop
    ("some_future_reason", "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish"), N04_TABLE)
def test_o2a_n04_stop_reason_map(stop_reason: str | None, finish: str) -> None:
    content = [tool_use("toolu_1", "f", {})] if stop_reason == "tool_use" else [text("x")]
    assert convert(message(content, stop_reason))["choices"][0]["finish_reason"] == finish


def test_o2a_n04_stop_sequence_response() -> None:
    body = orjson.loads(message([text("one two")], "stop_sequence"))
    body["stop_sequence"] = "three"
    assert convert(orjson.dumps(body)) == completion({"role": "assistant", "content": "one two"})


def test_o2a_n07_pause_turn_returned_as_stop() -> None:
    """Decision taken by the code (CPP's): a pause_turn is answered as it is, with finish "stop",
    the server-tool blocks dropped (O2A-N06); no automatic re-send."""
    body = message(
        [
            text("Searching."),
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        ],
        "pause_turn",
    )
    assert convert(body) == completion({"role": "assistant", "content": "Searching."})


# ----------------------------------------------------------------------------- N05 usage

N05_TABLE = [
    (
        {"input_tokens": 100, "output_tokens": 50},
        {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150, "cached": 0},
    ),
    (
        {
            "input_tokens": 200,
            "output_tokens": 50,
            "cache_read_input_tokens": 800,
            "cache_creation_input_tokens": 0,
        },
        {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050, "cached": 800},
    ),
    (
        {
            "input_tokens": 3,
            "output_tokens": 9,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
        {"prompt_tokens": 1503, "completion_tokens": 9, "total_tokens": 1512, "cached": 1000},
    ),
    (
        {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": None},
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached": 0},
    ),
]


@pytest.mark.parametrize(("usage", "want"), N05_TABLE)
def test_o2a_n05_usage_includes_cache_in_prompt_tokens(usage: dict[str, Any], want: dict[str, int]) -> None:
    data = convert(message([text("x")], usage=usage))
    assert data["usage"] == {
        "prompt_tokens": want["prompt_tokens"],
        "completion_tokens": want["completion_tokens"],
        "total_tokens": want["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": want["cached"]},
    }


def test_o2a_n05_missing_usage_is_zero() -> None:
    body = orjson.loads(message([text("x")]))
    del body["usage"]
    assert convert(orjson.dumps(body))["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


# ----------------------------------------------------------------------------- N06 / N08


def test_o2a_n06_server_tool_blocks_dropped() -> None:
    body = message(
        [
            text("I'll search."),
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "rawproxy"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://e.x",
                        "title": "E",
                        "encrypted_content": "zz",
                    }
                ],
            },
            text(
                "It is a proxy.",
                citations=[
                    {
                        "type": "web_search_result_location",
                        "url": "https://e.x",
                        "title": "E",
                        "encrypted_index": "x",
                        "cited_text": "a proxy",
                    }
                ],
            ),
        ],
        usage={**USAGE, "server_tool_use": {"web_search_requests": 1}},
    )
    assert convert(body) == completion({"role": "assistant", "content": "I'll search.It is a proxy."})


def test_o2a_n06_unknown_future_block_dropped() -> None:
    body = message([{"type": "container_upload", "file_id": "f"}, text("ok")])
    assert convert(body) == completion({"role": "assistant", "content": "ok"})


@pytest.mark.parametrize("stop_reason", ["end_turn", "max_tokens"])
def test_o2a_n08_empty_content_is_empty_string(stop_reason: str) -> None:
    data = convert(message([], stop_reason))
    assert data["choices"][0]["message"] == {"role": "assistant", "content": ""}


def test_o2a_n08_official_sdk_reads_empty_content() -> None:
    context = ctx()
    out = openai_chat.build_response(anthropic_messages.parse_response(message([]), context), context)
    assert sdk_completion(out).choices[0].message.content == ""


# ----------------------------------------------------------------------------- R23 json answer


def test_o2a_r23_json_tool_answer_becomes_content_non_stream() -> None:
    context = ctx(json_tool="json_answer")
    body = message([tool_use("toolu_1", "json_answer", {"answer": "42", "n": 1.5})], "tool_use")
    assert convert(body, context) == completion({"role": "assistant", "content": '{"answer":"42","n":1.5}'})


def test_o2a_r23_json_answer_next_to_a_real_tool_call() -> None:
    # code's choice: a real tool call keeps its finish reason; the json answer is still the content
    context = ctx(json_tool="json_answer")
    body = message([tool_use("toolu_1", "json_answer", {"a": 1}), tool_use("toolu_2", "get", {})], "tool_use")
    data = convert(body, context)
    assert data["choices"][0]["message"] == {
        "role": "assistant",
        "content": '{"a":1}',
        "tool_calls": [{"id": "toolu_2", "type": "function", "function": {"name": "get", "arguments": "{}"}}],
    }
    assert data["choices"][0]["finish_reason"] == "tool_calls"


def test_o2a_r23_json_tool_name_only_special_when_asked_for() -> None:
    body = message([tool_use("toolu_1", "json_answer", {"a": 1})], "tool_use")
    data = convert(body, ctx())
    assert data["choices"][0]["message"]["content"] is None
    assert data["choices"][0]["finish_reason"] == "tool_calls"


def test_o2a_r23_official_sdk_parses_json_content() -> None:
    context = ctx(json_tool="json_answer")
    out = openai_chat.build_response(
        anthropic_messages.parse_response(
            message([tool_use("toolu_1", "json_answer", {"answer": "yes"})], "tool_use"), context
        ),
        context,
    )
    result = sdk_completion(out)
    assert orjson.loads(result.choices[0].message.content or "") == {"answer": "yes"}
    assert result.choices[0].finish_reason == "stop"


# ----------------------------------------------------------------------------- malformed upstream bodies


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        b"[]",
        b'{"type":"error","error":{"type":"api_error","message":"x"}}',
        b'{"id":"msg_1","type":"message"}',
    ],
)
def test_o2a_n01_non_message_body_is_a_502_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError) as exc:
        anthropic_messages.parse_response(body, ctx())
    assert exc.value.info.status == 502
    assert exc.value.info.type is ir.ErrorType.API


# ----------------------------------------------------------------------- issue 19: malformed answers

BEYOND_64_BITS = 123456789012345678901234567890  # orjson reads it as a float; json.dumps writes it exactly
TEXT = {"type": "text", "text": "hi"}


def _message(**fields: Any) -> bytes:
    base: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant", "content": [TEXT]}
    return json.dumps({**base, "usage": USAGE, **fields}).encode()


MALFORMED_MESSAGES: dict[str, tuple[bytes, str]] = {
    "content_a_number": (_message(content=5), "content"),
    "content_a_string": (_message(content="hi"), "content"),
    "block_a_number": (_message(content=[5]), "content[0]"),
    "text_a_number": (_message(content=[{"type": "text", "text": 5}]), "content[0].text"),
    "thinking_an_object": (_message(content=[{"type": "thinking", "thinking": {}}]), "content[0].thinking"),
    "signature_a_number": (
        _message(content=[{"type": "thinking", "thinking": "x", "signature": 5}]),
        "content[0].signature",
    ),
    "tool_input_a_string": (
        _message(content=[{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": "ls"}]),
        "content[0].input",
    ),
    "tool_name_a_number": (
        _message(content=[{"type": "tool_use", "id": "toolu_1", "name": 5, "input": {}}]),
        "content[0].name",
    ),
    "stop_sequence_a_number": (_message(stop_sequence=5), "message.stop_sequence"),
    "usage_a_string": (_message(usage="x"), "usage"),
    "input_tokens_a_string": (
        _message(usage={"input_tokens": "12", "output_tokens": 1}),
        "usage.input_tokens",
    ),
    "output_tokens_beyond_64_bits": (
        _message(usage={"input_tokens": 1, "output_tokens": BEYOND_64_BITS}),
        "usage.output_tokens",
    ),
    "cache_read_negative": (
        _message(usage={"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -3}),
        "usage.cache_read_input_tokens",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_MESSAGES))
def test_issue19_malformed_message_is_a_502_naming_the_field(case: str) -> None:
    # issue 19, defect 5
    body, field = MALFORMED_MESSAGES[case]
    with pytest.raises(UpstreamProtocolError) as exc:
        anthropic_messages.parse_response(body, ctx())
    info = exc.value.info
    assert (info.status, info.type) == (502, ir.ErrorType.API)
    assert info.message.startswith(f"upstream response of an unexpected shape: {field}:"), info.message


def test_issue19_a_usage_of_the_wrong_shape_is_no_usage_in_a_passthroughs_log() -> None:
    # issue 19, defect 5: the passthrough relays the answer as it came; its log reads what it can
    assert anthropic_messages.event_usage({"usage": {"input_tokens": "12"}}) is None
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 12}}}
    assert anthropic_messages.event_usage(start) == ir.Usage(input_tokens=12)
