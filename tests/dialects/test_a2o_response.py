"""A2O non-stream responses: an OpenAI chat completion in, an Anthropic message out (CONFORMANCE.md A2O-N*).

Each case runs ``openai_chat.parse_response`` then ``anthropic_messages.build_response`` and compares the
exact Anthropic JSON; the main shapes are also validated by the official SDK's ``Message`` model.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import replace
from typing import Any

import orjson
import pytest
from anthropic.types import Message

from rawproxy import ir, profiles, toolcalls
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import ProxyError, UpstreamProtocolError, UpstreamStatus

CLIENT_MODEL = "claude-sonnet-4-6"
ZERO_USAGE = {
    "input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 0,
}


def make_ctx(**overrides: Any) -> ir.Context:
    profile = overrides.pop("profile", "generic")
    values: dict[str, Any] = {
        "client_model": CLIENT_MODEL,
        "upstream_model": "gpt-4o-2024-08-06",
        "thinking": False,
        "stop": [],
        "tool_names": {},
        "profile": profiles.PROFILES[profile] if isinstance(profile, str) else profile,
    }
    values.update(overrides)
    return ir.Context(**values)


def completion(
    message: dict[str, Any] | None = None,
    finish: str | None = "stop",
    *,
    usage: dict[str, Any] | None = None,
    choice_extra: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": None, **(message or {})},
        "finish_reason": finish,
        "logprobs": None,
    }
    choice.update(choice_extra or {})
    body: dict[str, Any] = {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [choice],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(top)
    return body


def translate(body: dict[str, Any] | bytes, ctx: ir.Context | None = None) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    context = ctx or make_ctx()
    resp = openai_chat.parse_response(raw, context)
    out = anthropic_messages.build_response(resp, context)
    data: dict[str, Any] = orjson.loads(out)
    Message.model_validate(data)  # the official SDK's response model accepts it
    return data


def call(id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if id is not None:
        c["id"] = id
    return c


def _usage(prompt: int, completion_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        **extra,
    }


# --------------------------------------------------------------------------------------- N01 text


def test_a2o_n01_text() -> None:
    body = completion({"content": "hi"}, usage=_usage(10, 2))
    assert translate(body) == {
        "id": "msg_chatcmpl-abc123",
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 2,
        },
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", []),
        (None, []),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], [{"type": "text", "text": "ab"}]),
        ("unicode 😀 日本語", [{"type": "text", "text": "unicode 😀 日本語"}]),
    ],
)
def test_a2o_n01_text_content_forms(content: Any, expected: list[dict[str, Any]]) -> None:
    out = translate(completion({"content": content}))
    assert out["content"] == expected
    assert out["stop_reason"] == "end_turn"


# ------------------------------------------------------------------------------ N02 tool calls only


def test_a2o_n02_tool_calls_only() -> None:
    body = completion(
        {
            "content": None,
            "tool_calls": [
                call("call_1", "Bash", '{"command": "ls"}'),
                call("call_2", "Read", '{"file_path": "/tmp/ü.txt"}'),
            ],
        },
        "tool_calls",
        usage=_usage(50, 20),
    )
    assert translate(body) == {
        "id": "msg_chatcmpl-abc123",
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "call_2", "name": "Read", "input": {"file_path": "/tmp/ü.txt"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 20,
        },
    }


@pytest.mark.parametrize("content", [None, ""])
def test_a2o_n02_no_empty_text_block(content: Any) -> None:
    out = translate(
        completion({"content": content, "tool_calls": [call("call_1", "Ls", "{}")]}, "tool_calls")
    )
    assert [b["type"] for b in out["content"]] == ["tool_use"]


def test_a2o_n02_text_then_tool_calls() -> None:
    out = translate(
        completion(
            {"content": "Running it.", "tool_calls": [call("call_1", "Bash", '{"command":"make"}')]},
            "tool_calls",
        )
    )
    assert out["content"] == [
        {"type": "text", "text": "Running it."},
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "make"}},
    ]


def test_a2o_n02_tool_name_mapped_back_to_client_name() -> None:
    long_name = "mcp__server__" + "x" * 70
    wire = toolcalls.wire_tool_name(long_name)
    out = translate(
        completion({"tool_calls": [call("call_1", wire, "{}")]}, "tool_calls"),
        make_ctx(tool_names={wire: long_name}),
    )
    assert out["content"][0]["name"] == long_name


# ------------------------------------------------------------------- N03 finish stop with tool_calls


@pytest.mark.parametrize("finish", ["stop", None, "eos"])
def test_a2o_n03_finish_stop_with_tool_calls_is_tool_use(finish: str | None) -> None:
    out = translate(completion({"tool_calls": [call("call_1", "Bash", '{"command":"ls"}')]}, finish))
    assert out["stop_reason"] == "tool_use"
    assert out["content"][0]["input"] == {"command": "ls"}


def test_a2o_n03_length_with_tool_calls_stays_max_tokens() -> None:
    out = translate(completion({"tool_calls": [call("call_1", "Bash", '{"command":"l')]}, "length"))
    assert out["stop_reason"] == "max_tokens"


# ------------------------------------------------------------------------ N04 argument edge forms


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        ("   ", {}),
        (None, {}),
        ("{}", {}),
        ('{"a": 1}', {"a": 1}),
        ({"already": "object"}, {"already": "object"}),
        ("[1,2]", {"value": [1, 2]}),
        ('"x"', {"value": "x"}),
        ("42", {"value": 42}),
        ('{"command": "ls', {"command": "ls"}),  # truncated: repaired (decision 3)
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": {"b": "c"', {"a": {"b": "c"}}),
        ('{"a": 1,', {"a": 1}),
        ('{"a": 1, "b"', {"a": 1, "b": None}),
        ('{"a":', {"a": None}),
        ('{"path": "C:\\\\', {"path": "C:\\"}),
        ('{"s": "日本', {"s": "日本"}),
        ("{bad", {}),  # not repairable: {} and a warning
        ("not json at all", {}),
    ],
)
def test_a2o_n04_argument_edge_forms(arguments: Any, expected: dict[str, Any]) -> None:
    out = translate(completion({"tool_calls": [call("call_1", "T", arguments)]}, "tool_calls"))
    assert out["content"][0]["input"] == expected


@pytest.mark.parametrize(("arguments", "words"), [("{bad", "could not be repaired"), ('{"a": 1', "repaired")])
def test_a2o_n04_broken_arguments_log_a_warning_naming_the_call(
    arguments: str, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "rawproxy"):
        translate(completion({"tool_calls": [call("call_broken_7", "T", arguments)]}, "tool_calls"))
    assert "call_broken_7" in caplog.text
    assert words in caplog.text


# ---------------------------------------------------------------------------------- N05 tool ids

_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@pytest.mark.parametrize(
    "upstream_id",
    [
        "functions.Bash:0",
        "call_x__thought__Cr0kAbc/def+ghi==",
        "call 1",
        "id.with.dots",
        "ünïcode",
        "toolu_rpx_abc",
    ],
)
def test_a2o_n05_tool_ids_sanitised_reversibly(upstream_id: str) -> None:
    out = translate(completion({"tool_calls": [call(upstream_id, "Bash", "{}")]}, "tool_calls"))
    client_id = out["content"][0]["id"]
    assert _ANTHROPIC_ID.match(client_id), client_id
    assert client_id != upstream_id
    assert toolcalls.upstream_tool_id(client_id) == upstream_id
    # deterministic: the same upstream id always maps the same way
    assert (
        translate(completion({"tool_calls": [call(upstream_id, "Bash", "{}")]}, "tool_calls"))["content"][0][
            "id"
        ]
        == client_id
    )


@pytest.mark.parametrize("upstream_id", ["call_abc123", "toolu_01A09q90qw90lq917835lq9", "tool-1"])
def test_a2o_n05_valid_ids_unchanged(upstream_id: str) -> None:
    out = translate(completion({"tool_calls": [call(upstream_id, "Bash", "{}")]}, "tool_calls"))
    assert out["content"][0]["id"] == upstream_id


@pytest.mark.parametrize("upstream_id", [None, ""])
def test_a2o_n05_missing_id_gets_toolu_hex(upstream_id: str | None) -> None:
    body = completion(
        {"tool_calls": [call(upstream_id, "A", "{}"), call(upstream_id, "B", "{}")]}, "tool_calls"
    )
    ids = [b["id"] for b in translate(body)["content"]]
    for tool_id in ids:
        assert re.fullmatch(r"toolu_[0-9a-f]{24}", tool_id), tool_id
    assert ids[0] != ids[1]


def test_a2o_n05_sanitised_id_maps_back_in_the_next_request() -> None:
    """The client returns the sanitised id in its tool_result; the upstream must see its own id again."""
    upstream_id = "functions.Bash:0"
    out = translate(completion({"tool_calls": [call(upstream_id, "Bash", '{"command":"ls"}')]}, "tool_calls"))
    client_id = out["content"][0]["id"]
    request = {
        "model": CLIENT_MODEL,
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": out["content"]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": client_id, "content": "a.py"}],
            },
        ],
    }
    req = anthropic_messages.parse_request(orjson.dumps(request))
    _, body = openai_chat.build_request(req, make_ctx())
    messages = orjson.loads(body)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == upstream_id
    assert messages[2] == {"role": "tool", "tool_call_id": upstream_id, "content": "a.py"}


def test_a2o_n05_encoded_id_is_base64url_of_the_original() -> None:
    client_id = toolcalls.client_tool_id("functions.Bash:0")
    assert client_id.startswith("toolu_rpx_")
    encoded = client_id[len("toolu_rpx_") :]
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == b"functions.Bash:0"


# ----------------------------------------------------------------------------- N06 finish mapping


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
        ("error", "end_turn"),
        ("something_new", "end_turn"),
        (None, "end_turn"),
        ("eos", "end_turn"),
    ],
)
def test_a2o_n06_finish_mapping(finish: str | None, stop_reason: str) -> None:
    assert translate(completion({"content": "x"}, finish))["stop_reason"] == stop_reason


def test_a2o_n06_legacy_function_call() -> None:
    out = translate(
        completion({"function_call": {"name": "Bash", "arguments": '{"command":"ls"}'}}, "function_call")
    )
    assert out["stop_reason"] == "tool_use"
    assert len(out["content"]) == 1
    block = out["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "Bash" and block["input"] == {"command": "ls"}
    assert _ANTHROPIC_ID.match(block["id"])


# -------------------------------------------------------------------------- N07 stop sequences


@pytest.mark.parametrize(
    ("choice_extra", "stop", "stop_reason", "stop_sequence"),
    [
        ({"stop_reason": "###"}, ["###", "END"], "stop_sequence", "###"),  # vLLM
        ({"matched_stop": "END"}, ["###", "END"], "stop_sequence", "END"),  # SGLang
        ({"matched_stop": 151645}, ["###"], "end_turn", None),  # SGLang: a token id (EOS), not a stop string
        ({"stop_reason": "other"}, ["###"], "end_turn", None),  # not one of the request's stop sequences
        ({}, ["###"], "end_turn", None),  # OpenAI proper never says which stop matched
        ({"stop_reason": None}, ["###"], "end_turn", None),
    ],
)
def test_a2o_n07_stop_sequence_attribution(
    choice_extra: dict[str, Any], stop: list[str], stop_reason: str, stop_sequence: str | None
) -> None:
    out = translate(completion({"content": "abc"}, "stop", choice_extra=choice_extra), make_ctx(stop=stop))
    assert out["stop_reason"] == stop_reason
    assert out["stop_sequence"] == stop_sequence


def test_a2o_n07_stop_sequence_does_not_override_tool_use() -> None:
    out = translate(
        completion({"tool_calls": [call("c", "T", "{}")]}, "tool_calls", choice_extra={"stop_reason": "###"}),
        make_ctx(stop=["###"]),
    )
    assert out["stop_reason"] == "tool_use"


# ------------------------------------------------------------------------------------ N08 reasoning


@pytest.mark.parametrize(
    "reasoning",
    [
        {"reasoning_content": "Let me think."},
        {"reasoning": "Let me think."},
        {
            "reasoning_details": [
                {"type": "reasoning.text", "text": "Let me "},
                {"type": "reasoning.text", "text": "think."},
            ]
        },
        {"reasoning_details": [{"type": "reasoning.summary", "summary": "Let me think."}]},
    ],
    ids=["reasoning_content", "reasoning", "reasoning_details_text", "reasoning_details_summary"],
)
def test_a2o_n08_reasoning_becomes_first_thinking_block(reasoning: dict[str, Any]) -> None:
    body = completion(
        {"content": "Answer.", **reasoning, "tool_calls": [call("c1", "Ls", "{}")]}, "tool_calls"
    )
    out = translate(body, make_ctx(thinking=True))
    assert out["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},  # decision 1: never invented
        {"type": "text", "text": "Answer."},
        {"type": "tool_use", "id": "c1", "name": "Ls", "input": {}},
    ]


def test_a2o_n08_reasoning_dropped_without_client_thinking() -> None:
    out = translate(
        completion({"content": "Answer.", "reasoning_content": "secret"}), make_ctx(thinking=False)
    )
    assert out["content"] == [{"type": "text", "text": "Answer."}]


def test_a2o_n08_empty_reasoning_gives_no_thinking_block() -> None:
    out = translate(completion({"content": "A", "reasoning_content": ""}), make_ctx(thinking=True))
    assert out["content"] == [{"type": "text", "text": "A"}]


# ------------------------------------------------------------------------------- N09 <think> tags


def test_a2o_n09_think_tags_kept_by_default() -> None:
    text = "<think>hmm</think>\nThe answer."
    out = translate(completion({"content": text}), make_ctx(thinking=True))
    assert out["content"] == [{"type": "text", "text": text}]


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        (
            True,
            [
                {"type": "thinking", "thinking": "hmm, 2+2", "signature": ""},
                {"type": "text", "text": "The answer is 4."},
            ],
        ),
        (False, [{"type": "text", "text": "The answer is 4."}]),
    ],
)
def test_a2o_n09_think_tags_split_when_profile_says_so(
    thinking: bool, expected: list[dict[str, Any]]
) -> None:
    profile = replace(profiles.PROFILES["generic"], split_think_tags=True)
    body = completion({"content": "<think>\nhmm, 2+2\n</think>\n\nThe answer is 4."})
    assert translate(body, make_ctx(thinking=thinking, profile=profile))["content"] == expected


# -------------------------------------------------------------------------------------- N10 usage


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            _usage(1000, 50, prompt_tokens_details={"cached_tokens": 800}),
            {
                "input_tokens": 200,
                "cache_read_input_tokens": 800,
                "cache_creation_input_tokens": 0,
                "output_tokens": 50,
            },
        ),
        (
            _usage(1000, 50, prompt_tokens_details={"cached_tokens": 0}),
            {
                "input_tokens": 1000,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "output_tokens": 50,
            },
        ),
        (
            _usage(1000, 50, prompt_tokens_details=None),
            {
                "input_tokens": 1000,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "output_tokens": 50,
            },
        ),
        (  # DeepSeek reports its cache this way
            _usage(1000, 50, prompt_cache_hit_tokens=600, prompt_cache_miss_tokens=400),
            {
                "input_tokens": 400,
                "cache_read_input_tokens": 600,
                "cache_creation_input_tokens": 0,
                "output_tokens": 50,
            },
        ),
        (
            _usage(
                300,
                40,
                completion_tokens_details={"reasoning_tokens": 30},
                prompt_tokens_details={"cached_tokens": 100},
            ),
            {
                "input_tokens": 200,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "output_tokens": 40,
            },
        ),
        ({}, ZERO_USAGE),
    ],
)
def test_a2o_n10_usage(usage: dict[str, Any], expected: dict[str, int]) -> None:
    assert translate(completion({"content": "x"}, usage=usage))["usage"] == expected


def test_a2o_n10_missing_usage_gives_zeros() -> None:
    assert translate(completion({"content": "x"}))["usage"] == ZERO_USAGE


def test_a2o_n10_null_usage_gives_zeros() -> None:
    body = completion({"content": "x"})
    body["usage"] = None
    assert translate(body)["usage"] == ZERO_USAGE


# ------------------------------------------------------------------------------------ N11 refusal


def test_a2o_n11_refusal_field() -> None:
    out = translate(completion({"content": None, "refusal": "I can't help with that."}, "stop"))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_a2o_n11_null_refusal_is_ignored() -> None:
    out = translate(completion({"content": "fine", "refusal": None}, "stop"))
    assert out["content"] == [{"type": "text", "text": "fine"}]
    assert out["stop_reason"] == "end_turn"


# --------------------------------------------------------------------------- N12 choices / errors


def test_a2o_n12_multiple_choices_uses_first() -> None:
    body = completion({"content": "first"})
    second = {"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "length"}
    body["choices"].append(second)
    out = translate(body)
    assert out["content"] == [{"type": "text", "text": "first"}]
    assert out["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "choices": []},
        {"id": "x", "object": "chat.completion"},
        {"id": "x", "object": "chat.completion", "choices": None},
        {"id": "x", "object": "chat.completion", "choices": ["not an object"]},
        [],
        "just a string",
    ],
)
def test_a2o_n12_no_choices_is_502_api_error(body: Any) -> None:
    with pytest.raises(UpstreamProtocolError) as excinfo:
        openai_chat.parse_response(orjson.dumps(body), make_ctx())
    status, error = anthropic_messages.build_error(excinfo.value.info)
    assert status == 502
    assert orjson.loads(error) == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream response has no choices"},
    }


def test_a2o_n12_non_json_body_is_502() -> None:
    with pytest.raises(UpstreamProtocolError) as excinfo:
        openai_chat.parse_response(b"<html>gateway</html>", make_ctx())
    assert excinfo.value.info.status == 502
    assert excinfo.value.info.type is ir.ErrorType.API


def test_a2o_n12_error_object_with_200_status() -> None:
    body = {"error": {"message": "Provider returned error", "code": 502}}
    with pytest.raises(UpstreamStatus) as excinfo:
        openai_chat.parse_response(orjson.dumps(body), make_ctx())
    status, error = anthropic_messages.build_error(excinfo.value.info)
    assert status == 502
    assert orjson.loads(error) == {
        "type": "error",
        "error": {"type": "api_error", "message": "Provider returned error"},
    }
    assert isinstance(excinfo.value, ProxyError)


# ---------------------------------------------------------------------------------- N13 model echo


@pytest.mark.parametrize("client_model", ["claude-sonnet-4-6", "claude-haiku-4-5-20251001", "my-alias"])
def test_a2o_n13_model_echo(client_model: str) -> None:
    body = completion({"content": "x"}, model="deepseek/deepseek-chat-v3")
    out = translate(body, make_ctx(client_model=client_model, upstream_model="deepseek/deepseek-chat-v3"))
    assert out["model"] == client_model


# ---------------------------------------------------------------------------------- N14 message id


@pytest.mark.parametrize(
    ("upstream_id", "expected"),
    [
        ("chatcmpl-abc123", "msg_chatcmpl-abc123"),
        ("msg_01XFDUDYJgAACzvnptvVoYEL", "msg_01XFDUDYJgAACzvnptvVoYEL"),
        ("gen-1712345678-AbCdEf", "msg_gen-1712345678-AbCdEf"),
        ("a:b/c d", "msg_a_b_c_d"),
    ],
)
def test_a2o_n14_message_id_prefix(upstream_id: str, expected: str) -> None:
    assert translate(completion({"content": "x"}, id=upstream_id))["id"] == expected


@pytest.mark.parametrize("upstream_id", [None, ""])
def test_a2o_n14_missing_message_id(upstream_id: str | None) -> None:
    body = completion({"content": "x"})
    if upstream_id is None:
        del body["id"]
    else:
        body["id"] = upstream_id
    out_id = translate(body)["id"]
    assert re.fullmatch(r"msg_[0-9a-f]{24}", out_id), out_id
    assert translate(body)["id"] != out_id  # fresh each time


# ----------------------------------------------------------------------- issue 19: malformed answers

BEYOND_64_BITS = 123456789012345678901234567890  # orjson reads it as a float; json.dumps writes it exactly

MALFORMED_COMPLETIONS: dict[str, tuple[Any, str]] = {
    "choices_a_number": ({"id": "x", "choices": 5}, "choices"),
    "choices_an_object": ({"id": "x", "choices": {"0": {"message": {}}}}, "choices"),
    "message_a_string": (completion(choice_extra={"message": "x"}), "choices[0].message"),
    "content_a_number": (completion({"content": 5}), "choices[0].message.content"),
    "content_an_object": (completion({"content": {"text": "hi"}}), "choices[0].message.content"),
    "refusal_a_number": (completion({"refusal": 5}), "choices[0].message.refusal"),
    "tool_calls_a_string": (completion({"tool_calls": "x"}), "choices[0].message.tool_calls"),
    "tool_call_a_number": (completion({"tool_calls": [5]}), "choices[0].message.tool_calls[0]"),
    "function_a_string": (
        completion({"tool_calls": [{"id": "call_1", "function": "x"}]}),
        "choices[0].message.tool_calls[0].function",
    ),
    "tool_name_a_list": (
        completion({"tool_calls": [call("call_1", ["Bash"], "{}")]}),  # type: ignore[arg-type]
        "choices[0].message.tool_calls[0].function.name",
    ),
    "tool_id_a_number": (
        completion({"tool_calls": [{"id": 5, "function": {"name": "Bash", "arguments": "{}"}}]}),
        "choices[0].message.tool_calls[0].id",
    ),
    "thinking_part_a_number": (
        completion({"content": [{"type": "thinking", "thinking": 5}]}),
        "content[0].thinking",
    ),
    "reasoning_details_text_a_number": (
        completion({"content": "hi", "reasoning_details": [{"type": "reasoning.text", "text": 5}]}),
        "reasoning_details[0]",
    ),
    "id_an_object": (completion({"content": "hi"}, id={"a": 1}), "id"),
    "usage_a_string": (completion({"content": "hi"}, usage="x"), "usage"),  # type: ignore[arg-type]
    "prompt_tokens_a_string": (
        completion({"content": "hi"}, usage={"prompt_tokens": "12", "completion_tokens": 3}),
        "usage.prompt_tokens",
    ),
    "completion_tokens_a_word": (
        completion({"content": "hi"}, usage={"prompt_tokens": 1, "completion_tokens": "many"}),
        "usage.completion_tokens",
    ),
    "completion_tokens_beyond_64_bits": (
        completion({"content": "hi"}, usage={"prompt_tokens": 1, "completion_tokens": BEYOND_64_BITS}),
        "usage.completion_tokens",
    ),
    "prompt_tokens_2_to_the_64": (
        completion({"content": "hi"}, usage={"prompt_tokens": 2**64 - 1, "completion_tokens": 1}),
        "usage.prompt_tokens",
    ),
    "cached_tokens_negative": (
        completion({"content": "hi"}, usage=_usage(5, 1, prompt_tokens_details={"cached_tokens": -1})),
        "usage.prompt_tokens_details.cached_tokens",
    ),
    "prompt_tokens_details_a_list": (
        completion({"content": "hi"}, usage=_usage(5, 1, prompt_tokens_details=[1])),
        "usage.prompt_tokens_details",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_COMPLETIONS))
def test_issue19_malformed_completion_is_a_502_naming_the_field(case: str) -> None:
    # issue 19, defect 5
    body, field = MALFORMED_COMPLETIONS[case]
    with pytest.raises(UpstreamProtocolError) as excinfo:
        openai_chat.parse_response(json.dumps(body).encode(), make_ctx(thinking=True))
    info = excinfo.value.info
    assert (info.status, info.type) == (502, ir.ErrorType.API)
    assert info.message.startswith(f"upstream response of an unexpected shape: {field}:"), info.message


def test_issue19_a_usage_of_the_wrong_shape_is_no_usage_in_a_passthroughs_log() -> None:
    # issue 19, defect 5: the passthrough relays the answer as it came; its log reads what it can
    assert openai_chat.event_usage({"usage": {"prompt_tokens": "12"}}) is None
    assert openai_chat.event_usage({"usage": {"prompt_tokens": 12}}) is not None
