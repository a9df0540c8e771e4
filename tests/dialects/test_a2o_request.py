"""A2O request translation: Anthropic Messages request -> the exact OpenAI Chat Completions request.

One or more tests per A2O-R item of CONFORMANCE.md (A2O-R32, model mapping, lives in test_routing.py).
Every test goes through the real entry points: ``anthropic_messages.parse_request(bytes)`` and
``translate.prepare_request(...)`` with a real upstream profile, and inspects the JSON body that would be
sent upstream. Pure: no sockets, no sleeps, nothing read outside tests/fixtures.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from typing import Any

import orjson
import pytest

from rawproxy import ir, profiles, translate
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import ClientError
from rawproxy.models import family_of
from rawproxy.profiles import Profile
from rawproxy.routing import ModelRoutes, resolve_model
from rawproxy.translate import estimate_input_tokens
from tests.support import FIXTURES_DIR
from tests.support.openai_fields import OPENAI_REQUEST_FIELDS

FIXTURES = FIXTURES_DIR / "claude_code"

# A base URL per real profile, so that the profile is *guessed* the way the proxy guesses it.
URLS = {
    "openai": "https://api.openai.com/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "generic": "http://127.0.0.1:11434/v1",
}

MISSING = openai_chat.MISSING_RESULT_TEXT  # decision 4: "no result was recorded for this tool call"
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EPHEMERAL_1H = {"type": "ephemeral", "ttl": "1h", "scope": "global"}
SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


def profile_for(name: str) -> Profile:
    profile = profiles.guess_profile(URLS[name])
    assert profile.name == name
    return profile


def prepare(
    body: dict[str, Any] | bytes,
    *,
    profile: str | Profile = "generic",
    upstream_model: str = "test-model",
    max_output_tokens: int | None = None,
) -> translate.Prepared:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = anthropic_messages.parse_request(raw)
    return translate.prepare_request(
        anthropic_messages,
        openai_chat,
        req,
        upstream_model=upstream_model,
        profile=profile_for(profile) if isinstance(profile, str) else profile,
        max_output_tokens=max_output_tokens,
    )


def build(body: dict[str, Any] | bytes, **kwargs: Any) -> dict[str, Any]:
    prepared = prepare(body, **kwargs)
    assert prepared.path == "/chat/completions"
    out: dict[str, Any] = orjson.loads(prepared.body)
    return out


def anth(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A minimal Anthropic request body."""
    return {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": messages, **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def tool_use(id_: str, name: str = "Bash", input_: Any = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id_,
        "name": name,
        "input": {"command": "ls"} if input_ is None else input_,
    }


def tool_result(id_: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": id_, **extra}
    if content is not None:
        block["content"] = content
    return block


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def call(id_: str, name: str = "Bash", arguments: str = '{"command":"ls"}') -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_msg(id_: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": id_, "content": content}


BASH_TOOL = {"name": "Bash", "description": "Run a command", "input_schema": SCHEMA}
PNG = {"type": "base64", "media_type": "image/png", "data": "AAAA"}


# ------------------------------------------------------------------------------------ R01..R04


def test_a2o_r01_system_string_is_first_message() -> None:
    out = build(anth([user("hi")], system="S"))
    assert out["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]


def test_a2o_r01_no_system_means_no_system_message() -> None:
    assert build(anth([user("hi")]))["messages"] == [{"role": "user", "content": "hi"}]


def test_a2o_r02_system_blocks_join_with_blank_line_and_no_cache_control() -> None:
    # Decision pinned by the implementation: one system message, blocks joined with "\n\n".
    system = [text("a", cache_control={"type": "ephemeral"}), text("b"), text("   "), text("c")]
    prepared = prepare(anth([user("hi")], system=system))
    out = orjson.loads(prepared.body)
    assert out["messages"][0] == {"role": "system", "content": "a\n\nb\n\nc"}
    assert [m["role"] for m in out["messages"]] == ["system", "user"]
    assert b"cache_control" not in prepared.body


@pytest.mark.parametrize(
    "system", ["", [text("")], [text("  \n")]], ids=["empty-str", "empty-block", "ws-block"]
)
def test_a2o_r02_empty_system_sends_no_system_message(system: Any) -> None:
    assert build(anth([user("hi")], system=system))["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([text(""), text("hi")], "hi"),
        ([text("  "), text("hi"), text("\n\t")], "hi"),
        ([text("a"), text(""), text("b")], [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
    ],
    ids=["empty", "whitespace", "between"],
)
def test_a2o_r03_empty_and_whitespace_text_blocks_dropped(content: Any, expected: Any) -> None:
    assert build(anth([user(content)]))["messages"] == [{"role": "user", "content": expected}]


def test_a2o_r03_whitespace_only_assistant_text_is_not_sent_as_empty_content() -> None:
    out = build(anth([user("a"), assistant([text("  ")]), user("b")]))
    for message in out["messages"]:
        assert message.get("content") not in ("", "  ", [], None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hi", "hi"),
        ([text("hi")], "hi"),
        ([text("a"), text("b")], [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
    ],
    ids=["string", "single-text-block", "multi-part"],
)
def test_a2o_r04_user_text_content_forms(content: Any, expected: Any) -> None:
    assert build(anth([user(content)]))["messages"] == [{"role": "user", "content": expected}]


# ------------------------------------------------------------------------------------ R05..R08


def texts_of(content: Any) -> list[str]:
    """The texts of a message content, whether a string or a list of text parts (A2O-R04 forms)."""
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content if p["type"] == "text"]


def test_a2o_r04_deepseek_gets_text_only_content_as_a_string() -> None:
    # DeepSeek's API rejects content part lists: "Failed to deserialize the JSON body into the target type:
    # messages[0]: invalid type: sequence, expected a string" (cline #230, litellm #6642, qwen-code PR #2320,
    # forgecode #2008, 2024-2026). Claude Code's first user message is always two text blocks, so A2O-R04's
    # "string for backends that don't accept part lists" is needed on every Claude Code request.
    out = build(
        anth([user([text("<system-reminder>r</system-reminder>"), text("do it")])]), profile="deepseek"
    )
    content = out["messages"][0]["content"]
    assert isinstance(content, str)
    assert content.index("<system-reminder>r</system-reminder>") < content.index("do it")


def test_a2o_r05_image_base64_becomes_image_url() -> None:
    out = build(anth([user([text("what is this?"), {"type": "image", "source": PNG}])]))
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]


def test_a2o_r05_image_only_message_is_a_part_list_not_text() -> None:
    out = build(anth([user([{"type": "image", "source": {**PNG, "media_type": "image/jpeg"}}])]))
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}],
        }
    ]


def test_a2o_r06_image_url_source_becomes_image_url() -> None:
    url = "https://example.com/cat.png?x=1&y=2"
    out = build(anth([user([{"type": "image", "source": {"type": "url", "url": url}}, text("describe")])]))
    assert out["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "describe"},
    ]


def test_a2o_r07_image_inside_tool_result_follows_as_user_image() -> None:
    # Implementation choice: the tool message carries the text only; the image follows in a user message
    # right after the tool messages (the catalogue allows this form).
    big = "QUJD" * 5000
    body = anth(
        [
            user("take a screenshot"),
            assistant([tool_use("toolu_1", "Screenshot", {})]),
            user(
                [
                    tool_result(
                        "toolu_1",
                        [text("screenshot taken"), {"type": "image", "source": {**PNG, "data": big}}],
                    ),
                    text("what do you see?"),
                ]
            ),
        ]
    )
    out = build(body)
    assert out["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call("toolu_1", "Screenshot", "{}")]},
        tool_msg("toolu_1", "screenshot taken"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "(images returned by the tool calls above)"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}},
                {"type": "text", "text": "what do you see?"},
            ],
        },
    ]
    assert big not in out["messages"][2]["content"]  # never JSON-dumped into the tool text


def test_a2o_r07_image_only_tool_result_keeps_tool_message_and_image() -> None:
    body = anth(
        [
            user("x"),
            assistant([tool_use("toolu_1", "Read", {"file_path": "a.png"})]),
            user([tool_result("toolu_1", [{"type": "image", "source": PNG}])]),
        ]
    )
    msgs = build(body)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]
    assert msgs[2]["tool_call_id"] == "toolu_1"
    assert "AAAA" not in msgs[2]["content"]
    assert {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}} in msgs[3]["content"]


def test_a2o_r08_text_document_becomes_titled_text() -> None:
    doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "body"},
        "title": "T",
    }
    assert build(anth([user([doc])]))["messages"] == [{"role": "user", "content": "Document: T\nbody"}]


def test_a2o_r08_pdf_document_default_is_file_part() -> None:
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    out = build(anth([user([doc, text("summarise")])]), profile="openai", upstream_model="gpt-4o")
    assert out["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        },
        {"type": "text", "text": "summarise"},
    ]


def test_a2o_r08_pdf_document_as_placeholder_text_when_profile_says_so() -> None:
    doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        "title": "spec",
    }
    profile = dataclasses.replace(profile_for("generic"), documents="text")
    out = build(anth([user([doc])]), profile=profile)
    content = out["messages"][0]["content"]
    assert isinstance(content, str)
    assert "spec" in content
    assert "JVBE" not in content


def test_a2o_r08_unknown_block_type_is_not_an_error() -> None:
    body = anth([user([{"type": "container_upload", "file_id": "f1"}, text("hi")])])
    assert build(body)["messages"] == [{"role": "user", "content": "hi"}]


# ------------------------------------------------------------------------------------ R09..R15


def test_a2o_r09_assistant_text_and_tool_use() -> None:
    body = anth(
        [
            user("list"),
            assistant([text("Listing."), tool_use("toolu_1", "Bash", {"command": "ls"})]),
            user([tool_result("toolu_1", "a\nb")]),
        ]
    )
    assert build(body)["messages"] == [
        {"role": "user", "content": "list"},
        {"role": "assistant", "content": "Listing.", "tool_calls": [call("toolu_1")]},
        tool_msg("toolu_1", "a\nb"),
    ]


@pytest.mark.parametrize(
    ("input_", "arguments"),
    [
        ({}, "{}"),
        ({"command": "echo héllo 日本 🤖"}, '{"command":"echo héllo 日本 🤖"}'),
        ({"n": 1, "nested": {"a": [1, 2]}}, '{"n":1,"nested":{"a":[1,2]}}'),
    ],
    ids=["empty", "unicode-not-escaped", "nested"],
)
def test_a2o_r09_arguments_are_json_strings(input_: Any, arguments: str) -> None:
    body = anth([user("x"), assistant([tool_use("toolu_1", "Bash", input_)]), user([tool_result("toolu_1")])])
    tc = build(body)["messages"][1]["tool_calls"][0]
    assert tc["function"]["arguments"] == arguments
    assert isinstance(tc["function"]["arguments"], str)
    assert json.loads(tc["function"]["arguments"]) == input_


def test_a2o_r09_encoded_tool_ids_are_restored_for_the_upstream() -> None:
    # A2O-N05 gave the client `toolu_rpx_<base64url>` for Kimi's `functions.Bash:0`; the upstream gets its
    # own id back on both the call and the result.
    client_id = "toolu_rpx_" + base64.urlsafe_b64encode(b"functions.Bash:0").decode().rstrip("=")
    body = anth([user("x"), assistant([tool_use(client_id)]), user([tool_result(client_id, "r")])])
    msgs = build(body)["messages"]
    assert msgs[1]["tool_calls"][0]["id"] == "functions.Bash:0"
    assert msgs[2] == tool_msg("functions.Bash:0", "r")


def test_a2o_r10_tool_use_only_content_null_by_default() -> None:
    body = anth([user("x"), assistant([tool_use("toolu_1")]), user([tool_result("toolu_1")])])
    assert build(body)["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call("toolu_1")],
    }


def test_a2o_r10_tool_use_only_content_empty_string_under_strict_profile() -> None:
    profile = dataclasses.replace(profile_for("generic"), empty_assistant_content="empty")
    body = anth([user("x"), assistant([tool_use("toolu_1")]), user([tool_result("toolu_1")])])
    assert build(body, profile=profile)["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [call("toolu_1")],
    }


def test_a2o_r11_tool_results_then_trailing_user_text() -> None:
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1"), tool_use("t2", "Read", {"file_path": "/x"})]),
            user([tool_result("t1", "one"), tool_result("t2", "two"), text("continue")]),
        ]
    )
    assert build(body)["messages"] == [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call("t1"), call("t2", "Read", '{"file_path":"/x"}')],
        },
        tool_msg("t1", "one"),
        tool_msg("t2", "two"),
        {"role": "user", "content": "continue"},
    ]


def test_a2o_r11_user_text_before_tool_results_still_after_tool_messages() -> None:
    body = anth([user("go"), assistant([tool_use("t1")]), user([text("note"), tool_result("t1", "one")])])
    roles = [m["role"] for m in build(body)["messages"]]
    assert roles == ["user", "assistant", "tool", "user"]


def test_a2o_r12_tool_results_emitted_in_tool_use_order() -> None:
    # Implementation choice: tool_use order (what Kimi-class backends require).
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1"), tool_use("t2"), tool_use("t3")]),
            user([tool_result("t3", "three"), tool_result("t1", "one"), tool_result("t2", "two")]),
        ]
    )
    msgs = build(body)["messages"]
    assert msgs[2:] == [tool_msg("t1", "one"), tool_msg("t2", "two"), tool_msg("t3", "three")]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (tool_result("t1", "plain"), "plain"),
        (tool_result("t1", [text("a"), text("b")]), "a\nb"),
        (tool_result("t1", []), ""),
        (tool_result("t1", None), ""),
        (tool_result("t1", ""), ""),
        # is_error: text kept (implementation choice: no "ERROR" prefix).
        (tool_result("t1", "boom: exit 1", is_error=True), "boom: exit 1"),
        (
            tool_result("t1", [{"type": "tool_reference", "tool_name": "WebFetch"}, text("loaded")]),
            "loaded",
        ),
        (tool_result("t1", [{"type": "tool_reference", "tool_name": "WebFetch"}]), ""),
        (tool_result("t1", "x", cache_control=EPHEMERAL_1H), "x"),
    ],
    ids=[
        "string",
        "text-list",
        "empty-list",
        "missing",
        "empty-string",
        "is-error",
        "tool-ref",
        "only-ref",
        "cache",
    ],
)
def test_a2o_r13_tool_result_content_forms(result: dict[str, Any], expected: str) -> None:
    body = anth([user("go"), assistant([tool_use("t1")]), user([result])])
    msgs = build(body)["messages"]
    assert msgs[2] == tool_msg("t1", expected)
    assert len(msgs) == 3


def test_a2o_r14_dangling_tool_use_followed_by_user_text_gets_synthetic_result() -> None:
    body = anth([user("go"), assistant([tool_use("t9")]), user("never mind, do something else")])
    assert build(body)["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call("t9")]},
        tool_msg("t9", MISSING),
        {"role": "user", "content": "never mind, do something else"},
    ]


def test_a2o_r14_partial_results_fill_the_missing_one_in_call_order() -> None:
    body = anth([user("go"), assistant([tool_use("t1"), tool_use("t2")]), user([tool_result("t2", "two")])])
    assert build(body)["messages"][2:] == [tool_msg("t1", MISSING), tool_msg("t2", "two")]


def test_a2o_r14_dangling_tool_use_at_end_of_conversation() -> None:
    body = anth([user("go"), assistant([text("running"), tool_use("t1")])])
    assert build(body)["messages"][1:] == [
        {"role": "assistant", "content": "running", "tool_calls": [call("t1")]},
        tool_msg("t1", MISSING),
    ]


def test_a2o_r14_dangling_tool_use_followed_by_assistant() -> None:
    body = anth([user("go"), assistant([tool_use("t1")]), assistant([text("later")]), user("ok")])
    roles = [m["role"] for m in build(body)["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


def test_a2o_r14_synthetic_result_is_never_a_fake_success() -> None:
    body = anth([user("go"), assistant([tool_use("t1")]), user("hm")])
    content = build(body)["messages"][2]["content"]
    assert "success" not in content.lower()
    assert content


def test_a2o_r14_system_message_between_call_and_result_keeps_the_real_result() -> None:
    # Not in the catalogue, but decision 4 only allows a synthetic result when there is *no* result: a
    # mid-conversation system message (Claude Code sends them) between a call and its result must not
    # turn the real result into "no result was recorded" plus an orphan user text.
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1")]),
            {"role": "system", "content": "note"},
            user([tool_result("t1", "real")]),
        ]
    )
    msgs = build(body)["messages"]
    assert msgs[1:3] == [
        {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
        tool_msg("t1", "real"),
    ]
    assert {"role": "system", "content": "note"} in msgs[3:]
    assert MISSING not in json.dumps(msgs)
    assert "[tool result" not in json.dumps(msgs)


def test_a2o_r15_orphan_tool_result_becomes_user_text() -> None:
    body = anth([user([tool_result("toolu_x", "stale output")])])
    assert build(body)["messages"] == [{"role": "user", "content": "[tool result toolu_x] stale output"}]


def test_a2o_r15_orphan_next_to_matched_result() -> None:
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1")]),
            user([tool_result("t1", "one"), tool_result("t_old", "old"), text("next")]),
        ]
    )
    msgs = build(body)["messages"]
    assert msgs[2:] == [
        tool_msg("t1", "one"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[tool result t_old] old"},
                {"type": "text", "text": "next"},
            ],
        },
    ]
    assert all(m.get("tool_call_id") != "t_old" for m in msgs)


def test_a2o_r15_result_for_an_older_turn_is_an_orphan() -> None:
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1")]),
            user([tool_result("t1", "one")]),
            assistant([text("done")]),
            user([tool_result("t1", "again")]),
        ]
    )
    msgs = build(body)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "user"]
    assert msgs[-1] == {"role": "user", "content": "[tool result t1] again"}


# ------------------------------------------------------------------------------------ R16..R17

THINKING_HISTORY = anth(
    [
        user("go"),
        assistant(
            [
                {"type": "thinking", "thinking": "I should list files.", "signature": "SIG+abc/=="},
                {"type": "redacted_thinking", "data": "REDACTED_BLOB"},
                text("Listing."),
                tool_use("t1"),
            ]
        ),
        user([tool_result("t1", "a b")]),
    ],
    thinking={"type": "enabled", "budget_tokens": 2048},
)


@pytest.mark.parametrize("name", ["openai", "openrouter", "gemini", "generic"])
def test_a2o_r16_thinking_in_history_stripped_by_default(name: str) -> None:
    prepared = prepare(THINKING_HISTORY, profile=name, upstream_model="gpt-4o")
    msgs = orjson.loads(prepared.body)["messages"]
    assert msgs[1] == {"role": "assistant", "content": "Listing.", "tool_calls": [call("t1")]}
    for needle in (b"I should list files", b"SIG+abc", b"REDACTED_BLOB", b"signature", b"reasoning_content"):
        assert needle not in prepared.body


def test_a2o_r16_thinking_replayed_as_reasoning_content_for_deepseek() -> None:
    prepared = prepare(THINKING_HISTORY, profile="deepseek", upstream_model="deepseek-reasoner")
    msgs = orjson.loads(prepared.body)["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "Listing.",
        "tool_calls": [call("t1")],
        "reasoning_content": "I should list files.",
    }
    for needle in (b"SIG+abc", b"REDACTED_BLOB", b"signature"):  # redacted_thinking always dropped
        assert needle not in prepared.body


def test_a2o_r16_replay_can_be_switched_off_for_deepseek() -> None:
    profile = dataclasses.replace(profile_for("deepseek"), replay_reasoning=False)
    prepared = prepare(THINKING_HISTORY, profile=profile, upstream_model="deepseek-reasoner")
    assert b"reasoning_content" not in prepared.body
    assert b"I should list files" not in prepared.body


def test_a2o_r16_upstream_rejecting_reasoning_content_gets_one_retry_without_it() -> None:
    from rawproxy.exchange.retry import rewrite_for  # the retry decision is pure

    prepared = prepare(THINKING_HISTORY, profile=profile_for("deepseek"), upstream_model="deepseek-reasoner")
    assert b'"reasoning_content"' in prepared.body
    error = b'{"error":{"message":"Unknown field: reasoning_content","type":"invalid_request_error"}}'
    rewrite = rewrite_for(prepared, 400, error)
    assert rewrite is not None and rewrite.profile is not None and not rewrite.profile.replay_reasoning
    retried = prepare(THINKING_HISTORY, profile=rewrite.profile, upstream_model="deepseek-reasoner")
    assert b"reasoning_content" not in retried.body
    # an unrelated 400 is not retried
    assert rewrite_for(prepared, 400, b'{"error":{"message":"bad max_tokens"}}') is None
    assert rewrite_for(prepared, 500, error) is None  # only a 400 says the field was refused


def test_a2o_r16_thinking_never_dumped_into_text() -> None:
    body = anth(
        [
            user("q"),
            assistant([{"type": "thinking", "thinking": "hmm", "signature": "s"}, text("A")]),
            user("q2"),
        ]
    )
    for name in URLS:
        msgs = build(body, profile=name)["messages"]
        assert msgs[1]["content"] == "A"


def test_a2o_r17_server_tool_blocks_in_history_dropped() -> None:
    body = anth(
        [
            user("search the web"),
            assistant(
                [
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"query": "q"},
                    },
                    {
                        "type": "web_search_tool_result",
                        "tool_use_id": "srvtoolu_1",
                        "content": [{"type": "web_search_result", "url": "https://x", "title": "X"}],
                    },
                    text("Found it."),
                ]
            ),
            user("thanks"),
        ]
    )
    prepared = prepare(body)
    msgs = orjson.loads(prepared.body)["messages"]
    assert msgs == [
        {"role": "user", "content": "search the web"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "thanks"},
    ]
    assert b"srvtoolu_1" not in prepared.body


def test_a2o_r17_server_tool_only_assistant_is_not_sent_empty() -> None:
    body = anth(
        [
            user("search"),
            assistant([{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]),
            user("again"),
        ]
    )
    msgs = build(body)["messages"]
    assert all(m["role"] != "assistant" for m in msgs)
    assert all("tool_calls" not in m for m in msgs)


# ------------------------------------------------------------------------------------ R18..R23


def test_a2o_r18_tool_definition_shape_and_stripped_fields() -> None:
    tools = [
        {
            **BASH_TOOL,
            "type": "custom",
            "cache_control": EPHEMERAL_1H,
            "defer_loading": True,
            "eager_input_streaming": True,
            "input_examples": [{"command": "ls"}],
            "allowed_callers": ["direct"],
        },
        {"name": "NoSchema", "description": "d"},
        {"name": "NoDescription", "input_schema": {"type": "object", "properties": {}}},
    ]
    out = build(anth([user("x")], tools=tools))
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "Bash", "description": "Run a command", "parameters": SCHEMA},
        },
        {
            "type": "function",
            "function": {
                "name": "NoSchema",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
            },
        },
        # implementation choice: no description key at all when the tool has none
        {
            "type": "function",
            "function": {"name": "NoDescription", "parameters": {"type": "object", "properties": {}}},
        },
    ]


def test_a2o_r18_type_is_never_merged_into_parameters() -> None:
    out = build(anth([user("x")], tools=[{**BASH_TOOL, "type": "custom"}]))
    assert out["tools"][0]["function"]["parameters"] == SCHEMA


SERVER_TOOLS = [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    {"type": "web_fetch_20250910", "name": "web_fetch"},
    {"type": "code_execution_20250825", "name": "code_execution"},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
]


def test_a2o_r19_server_tools_are_not_sent_as_functions() -> None:
    out = build(anth([user("x")], tools=[*SERVER_TOOLS, BASH_TOOL]))
    assert [t["function"]["name"] for t in out["tools"]] == ["Bash"]


def test_a2o_r19_only_server_tools_means_no_tools_key() -> None:
    out = build(anth([user("x")], tools=SERVER_TOOLS))
    assert "tools" not in out
    assert "tool_choice" not in out


LONG_NAME = "mcp__some_very_long_server_name__" + "AVeryLongToolNameThatKeepsGoingAndGoing" * 2


def expected_wire_name(name: str) -> str:
    """LiteLLM's `<55>_<8hex>` scheme, case preserved."""
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:55]
    return f"{cleaned}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@pytest.mark.parametrize(
    ("name", "changed"),
    [
        ("Bash", False),
        ("MixedCase_Tool-2", False),
        ("x" * 64, False),
        ("x" * 65, True),
        (LONG_NAME, True),
        ("my.tool:v1", True),
        ("mcp__server__tool with spaces", True),
        ("ünïcode", True),
    ],
)
def test_a2o_r20_tool_name_limits(name: str, changed: bool) -> None:
    body = anth(
        [user("x"), assistant([tool_use("t1", name, {})]), user([tool_result("t1")])],
        tools=[{"name": name, "input_schema": {"type": "object", "properties": {}}}],
        tool_choice={"type": "tool", "name": name},
    )
    prepared = prepare(body)
    out = orjson.loads(prepared.body)
    wire = out["tools"][0]["function"]["name"]
    assert TOOL_NAME.match(wire)
    assert wire == (expected_wire_name(name) if changed else name)
    assert out["tool_choice"] == {"type": "function", "function": {"name": wire}}
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == wire
    assert prepared.ctx.tool_names == ({wire: name} if changed else {})
    # deterministic: the same request maps the same way
    assert orjson.loads(prepare(body).body)["tools"][0]["function"]["name"] == wire


def test_a2o_r20_long_name_keeps_case_and_maps_back_in_the_response() -> None:
    prepared = prepare(anth([user("x")], tools=[{"name": LONG_NAME, "input_schema": {"type": "object"}}]))
    wire = orjson.loads(prepared.body)["tools"][0]["function"]["name"]
    assert wire.startswith(LONG_NAME[:55])  # case preserved, never lower-cased
    response = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call("call_1", wire, "{}")]},
            }
        ],
    }
    parsed = openai_chat.parse_response(orjson.dumps(response), prepared.ctx)
    assert [(b.name, b.id) for b in parsed.content if isinstance(b, ir.ToolUseBlock)] == [
        (LONG_NAME, "call_1")
    ]


NESTED_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "urn:x",
    "type": "object",
    "additionalProperties": False,
    "propertyNames": {"pattern": "^[a-z]+$"},
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "when": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "format": "enum", "enum": ["a", "b"]},
        "n": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        "mode": {"const": "fast"},
        "format": {"type": "string", "description": "a property named format"},
        "const": {"type": "string", "description": "a property named const"},
        "items": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {}},
        },
        "either": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
    },
    "required": ["url"],
}

SANITIZED_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string"},
        "when": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "format": "enum", "enum": ["a", "b"]},
        "n": {"type": "integer"},
        "mode": {},
        "format": {"type": "string", "description": "a property named format"},
        "const": {"type": "string", "description": "a property named const"},
        "items": {"type": "array", "items": {"type": "object", "properties": {}}},
        "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["url"],
}


def test_a2o_r21_gemini_profile_sanitises_tool_schemas() -> None:
    out = build(anth([user("x")], tools=[{"name": "T", "input_schema": NESTED_SCHEMA}]), profile="gemini")
    assert out["tools"][0]["function"]["parameters"] == SANITIZED_SCHEMA


@pytest.mark.parametrize("name", ["openai", "openrouter", "deepseek", "generic"])
def test_a2o_r21_schema_untouched_by_default(name: str) -> None:
    out = build(anth([user("x")], tools=[{"name": "T", "input_schema": NESTED_SCHEMA}]), profile=name)
    assert out["tools"][0]["function"]["parameters"] == NESTED_SCHEMA


def test_a2o_r21_sanitiser_switch_on_any_profile() -> None:
    profile = dataclasses.replace(profile_for("generic"), sanitize_schema=True)
    out = build(anth([user("x")], tools=[{"name": "T", "input_schema": NESTED_SCHEMA}]), profile=profile)
    assert out["tools"][0]["function"]["parameters"] == SANITIZED_SCHEMA


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
        ({"type": "none"}, "none"),
    ],
    ids=["auto", "any", "tool", "none"],
)
def test_a2o_r22_tool_choice_mapping(choice: dict[str, Any], expected: Any) -> None:
    out = build(anth([user("x")], tools=[BASH_TOOL], tool_choice=choice))
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out  # option off by default


@pytest.mark.parametrize("kind", ["auto", "any"])
def test_a2o_r22_disable_parallel_tool_use_on(kind: str) -> None:
    out = build(
        anth([user("x")], tools=[BASH_TOOL], tool_choice={"type": kind, "disable_parallel_tool_use": True})
    )
    assert out["parallel_tool_calls"] is False
    assert out["tool_choice"] == ("auto" if kind == "auto" else "required")


def test_a2o_r22_disable_parallel_false_sends_nothing() -> None:
    out = build(
        anth([user("x")], tools=[BASH_TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": False})
    )
    assert "parallel_tool_calls" not in out


def test_a2o_r22_no_tool_choice_sends_none() -> None:
    out = build(anth([user("x")], tools=[BASH_TOOL]))
    assert "tool_choice" not in out
    assert "parallel_tool_calls" not in out


@pytest.mark.parametrize(
    "tools",
    [None, [], SERVER_TOOLS],
    ids=["absent", "empty", "all-server-tools"],
)
def test_a2o_r23_tool_choice_without_tools_is_omitted(tools: Any) -> None:
    extra = {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}}
    if tools is not None:
        extra["tools"] = tools
    out = build(anth([user("x")], **extra))
    assert "tools" not in out
    assert "tool_choice" not in out
    assert "parallel_tool_calls" not in out


def test_a2o_r23_forced_choice_of_a_filtered_server_tool_is_not_sent() -> None:
    # The named tool was filtered out (server tool), so a forced choice for it would be an OpenAI 400
    # ("tool_choice ... function not found in tools"); the remaining function tools stay callable.
    out = build(
        anth(
            [user("x")], tools=[*SERVER_TOOLS, BASH_TOOL], tool_choice={"type": "tool", "name": "web_search"}
        )
    )
    assert [t["function"]["name"] for t in out["tools"]] == ["Bash"]
    assert out.get("tool_choice") in (None, "auto")


# ------------------------------------------------------------------------------------ R24..R31


@pytest.mark.parametrize(
    ("profile", "model", "max_tokens", "cap", "expected"),
    [
        ("generic", "qwen3-coder", 32000, None, {"max_tokens": 32000}),  # never a tiny global default
        ("deepseek", "deepseek-chat", 32000, family_of("deepseek-chat").output_cap, {"max_tokens": 8192}),
        ("deepseek", "deepseek-chat", 128000, 8192, {"max_tokens": 8192}),
        ("openai", "gpt-4o", 128000, family_of("gpt-4o").output_cap, {"max_tokens": 16384}),
        ("openai", "gpt-4o", 1000, 16384, {"max_tokens": 1000}),  # clamp, never raise
        ("openai", "o3-mini", 32000, family_of("o3-mini").output_cap, {"max_completion_tokens": 32000}),
        ("openai", "o1", 200000, 100000, {"max_completion_tokens": 100000}),
        ("openai", "o4-mini", 32000, None, {"max_completion_tokens": 32000}),
        ("openai", "gpt-5", 128000, family_of("gpt-5").output_cap, {"max_completion_tokens": 128000}),
        ("openai", "gpt-5-mini", 64000, 4096, {"max_completion_tokens": 4096}),  # configured cap wins
        ("openrouter", "openai/gpt-5", 32000, None, {"max_tokens": 32000}),
        ("generic", "gpt-5", 32000, None, {"max_tokens": 32000}),
    ],
)
def test_a2o_r24_max_tokens_cap_and_parameter_name(
    profile: str, model: str, max_tokens: int, cap: int | None, expected: dict[str, int]
) -> None:
    out = build(
        anth([user("x")], max_tokens=max_tokens), profile=profile, upstream_model=model, max_output_tokens=cap
    )
    assert {k: out[k] for k in ("max_tokens", "max_completion_tokens") if k in out} == expected


def test_a2o_r24_known_output_caps() -> None:
    assert family_of("deepseek-chat").output_cap == 8192
    assert family_of("openai/gpt-4o-mini").output_cap == 16384
    assert family_of("some-unknown-model").output_cap is None


@pytest.mark.parametrize(
    ("profile", "model", "params", "expected"),
    [
        ("openai", "o3", {"temperature": 0.5, "top_p": 0.9}, {"top_p": 0.9}),
        ("openai", "gpt-5", {"temperature": 1.0}, {}),
        ("openai", "gpt-4o", {"temperature": 0.5, "top_p": 0.9}, {"temperature": 0.5, "top_p": 0.9}),
        ("openai", "gpt-4o", {"temperature": 0}, {"temperature": 0}),  # 0 is a value, not "unset"
        ("openai", "gpt-4o", {"top_k": 40}, {}),
        ("deepseek", "deepseek-chat", {"top_k": 40, "temperature": 0.2}, {"temperature": 0.2}),
        ("openrouter", "openai/o3", {"temperature": 0.3}, {"temperature": 0.3}),
        ("generic", "llama3", {"top_k": 40, "top_p": 0.5}, {"top_k": 40, "top_p": 0.5}),
        ("generic", "llama3", {}, {}),  # never invent sampling params
        ("openai", "gpt-4o", {}, {}),
    ],
)
def test_a2o_r25_sampling_params(
    profile: str, model: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    out = build(anth([user("x")], **params), profile=profile, upstream_model=model)
    assert {k: out[k] for k in ("temperature", "top_p", "top_k") if k in out} == expected


@pytest.mark.parametrize(
    ("profile", "stops", "expected"),
    [
        ("openai", ["a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d"]),
        ("openai", ["END"], ["END"]),
        ("gemini", ["a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e"]),
        ("generic", ["a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e", "f"]),
        ("openrouter", ["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e"]),
        ("openai", [], None),
        ("generic", [""], None),
    ],
)
def test_a2o_r26_stop_sequences(profile: str, stops: list[str], expected: list[str] | None) -> None:
    out = build(anth([user("x")], stop_sequences=stops), profile=profile, upstream_model="gpt-4o")
    assert out.get("stop") == expected


@pytest.mark.parametrize(
    ("thinking", "output_config", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 1025}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 8192}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 8193}, None, "high"),
        ({"type": "enabled", "budget_tokens": 31999}, None, "high"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
        ({"type": "adaptive", "display": "omitted"}, {"effort": "medium"}, "medium"),
        ({"type": "adaptive"}, {"effort": "high"}, "high"),
        ({"type": "adaptive"}, {"effort": "max"}, "high"),  # implementation choice: max -> high
        ({"type": "adaptive"}, None, "medium"),  # implementation choice: adaptive alone -> medium
        ({"type": "disabled"}, None, None),
        ({"type": "disabled"}, {"effort": "high"}, None),
        (None, None, None),
    ],
)
def test_a2o_r27_thinking_to_reasoning_effort(
    thinking: dict[str, Any] | None, output_config: dict[str, Any] | None, expected: str | None
) -> None:
    extra: dict[str, Any] = {}
    if thinking is not None:
        extra["thinking"] = thinking
    if output_config is not None:
        extra["output_config"] = output_config
    body = anth([user("x")], max_tokens=32000, **extra)
    out = build(body, profile="openai", upstream_model="o3")
    assert out.get("reasoning_effort") == expected
    assert "thinking" not in out and "output_config" not in out and "reasoning" not in out
    # OpenRouter takes the same effort as a `reasoning` object, for any model
    routed = build(body, profile="openrouter", upstream_model="anthropic/claude-sonnet-4")
    assert routed.get("reasoning") == ({"effort": expected} if expected else None)
    assert "reasoning_effort" not in routed and "thinking" not in routed


@pytest.mark.parametrize(
    ("profile", "model"),
    [
        ("openai", "gpt-4o"),
        ("generic", "o3"),
        ("deepseek", "deepseek-reasoner"),
        ("gemini", "gemini-2.5-pro"),
    ],
)
def test_a2o_r27_no_reasoning_param_for_other_models_and_profiles(profile: str, model: str) -> None:
    body = anth(
        [user("x")], thinking={"type": "enabled", "budget_tokens": 20000}, output_config={"effort": "high"}
    )
    out = build(body, profile=profile, upstream_model=model)
    assert not {"reasoning_effort", "reasoning", "thinking", "output_config"} & out.keys()


def test_a2o_r28_unknown_top_level_fields_never_forwarded() -> None:
    body = anth(
        [user("x")],
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        diagnostics={"enabled": True},
        output_config={"effort": "medium"},
        service_tier="auto",
        container="container_1",
        mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "m"}],
        inference_geo="us",
        metadata={"user_id": "u1"},
        betas=["x"],
        some_future_field={"a": 1},
    )
    for name in URLS:
        out = build(body, profile=name, upstream_model="gpt-4o")
        assert set(out) == {"model", "messages", "max_tokens"}, name


_SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("gpt-4o", {"type": "json_schema", "json_schema": {"name": "response", "schema": _SCHEMA}}),
        ("qwen3-coder", {"type": "json_schema", "json_schema": {"name": "response", "schema": _SCHEMA}}),
        ("deepseek-chat", {"type": "json_object"}),  # DeepSeek has JSON mode, no schema
    ],
)
def test_m26_07_output_config_format_becomes_response_format(model: str, sent: dict[str, Any]) -> None:
    """Structured outputs the other way: an Anthropic client's ``output_config.format`` is the OpenAI
    upstream's ``response_format`` (platform.claude.com structured-outputs; OpenAI's response_format)."""
    body = anth([user("x")], output_config={"format": {"type": "json_schema", "schema": _SCHEMA}})
    assert build(body, profile="generic", upstream_model=model)["response_format"] == sent


@pytest.mark.parametrize(
    "fmt", [{"type": "json_schema"}, {"type": "text"}, "json", {"type": "json_schema", "schema": 1}]
)
def test_m26_07_a_malformed_output_config_format_is_a_400(fmt: Any) -> None:
    with pytest.raises(ClientError, match=r"^output_config\.format: expected"):
        anthropic_messages.parse_request(orjson.dumps(anth([user("x")], output_config={"format": fmt})))


def test_a2o_r29_cache_control_stripped_everywhere() -> None:
    body = anth(
        [
            user(
                [
                    text("look", cache_control=EPHEMERAL_1H),
                    {"type": "image", "source": PNG, "cache_control": EPHEMERAL_1H},
                ]
            ),
            assistant(
                [text("ok", cache_control=EPHEMERAL_1H), {**tool_use("t1"), "cache_control": EPHEMERAL_1H}]
            ),
            user([tool_result("t1", [text("r", cache_control=EPHEMERAL_1H)], cache_control=EPHEMERAL_1H)]),
            {"role": "system", "content": [text("cwd /tmp", cache_control=EPHEMERAL_1H)]},
            user([text("go on", cache_control={"type": "ephemeral"})]),
        ],
        system=[text("S", cache_control=EPHEMERAL_1H)],
        tools=[{**BASH_TOOL, "cache_control": EPHEMERAL_1H}],
    )
    for name in URLS:
        prepared = prepare(body, profile=name, upstream_model="gpt-4o")
        for needle in (b"cache_control", b"ephemeral", b'"ttl"', b'"scope"'):
            assert needle not in prepared.body, (name, needle)


@pytest.mark.parametrize("name", list(URLS))
def test_a2o_r30_stream_adds_include_usage(name: str) -> None:
    prepared = prepare(anth([user("x")], stream=True), profile=name, upstream_model="gpt-4o")
    out = orjson.loads(prepared.body)
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    # The estimate shown in message_start is filled in while the upstream works, not before sending.
    assert prepared.ctx.input_tokens == 0
    estimate_input_tokens(prepared)
    assert prepared.ctx.input_tokens > 0


def test_a2o_r30_stream_options_omitted_when_profile_says_so() -> None:
    profile = dataclasses.replace(profile_for("generic"), stream_usage=False)
    out = build(anth([user("x")], stream=True), profile=profile)
    assert out["stream"] is True
    assert "stream_options" not in out


@pytest.mark.parametrize("stream", [False, None])
def test_a2o_r30_non_stream_has_no_stream_keys(stream: bool | None) -> None:
    extra = {} if stream is None else {"stream": stream}
    out = build(anth([user("x")], **extra))
    assert "stream" not in out and "stream_options" not in out


CLAUDE_CODE_USER_ID = (
    '{"device_id":"abc","account_uuid":"","session_id":"beb9c725-1a08-4ce9-bec7-a58277c28029"}'
)


@pytest.mark.parametrize("name", list(URLS))
def test_a2o_r31_user_id_not_forwarded_by_default(name: str) -> None:
    out = build(anth([user("x")], metadata={"user_id": "user-123"}), profile=name)
    assert "user" not in out and "metadata" not in out


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("user-123", "user-123"),
        # implementation choice: truncated to 64 characters
        (CLAUDE_CODE_USER_ID, CLAUDE_CODE_USER_ID[:64]),
    ],
)
def test_a2o_r31_user_id_forwarded_when_enabled(user_id: str, expected: str) -> None:
    profile = dataclasses.replace(profile_for("openai"), forward_user=True)
    out = build(anth([user("x")], metadata={"user_id": user_id}), profile=profile, upstream_model="gpt-4o")
    assert out["user"] == expected
    assert "metadata" not in out


@pytest.mark.parametrize("metadata", [{}, {"user_id": None}, {"user_id": 42}, "junk"])
def test_a2o_r31_missing_or_odd_user_id_sends_nothing(metadata: Any) -> None:
    profile = dataclasses.replace(profile_for("openai"), forward_user=True)
    out = build(anth([user("x")], metadata=metadata), profile=profile, upstream_model="gpt-4o")
    assert "user" not in out


# ------------------------------------------------------------------------------------ R33..R37

ALTERNATION = anth(
    [
        user("go"),
        assistant([tool_use("t1"), tool_use("t2")]),
        user([tool_result("t1", "one"), tool_result("t2", "two"), text("first")]),
        user("second"),
    ]
)


def test_a2o_r33_consecutive_user_messages_kept_by_default() -> None:
    msgs = build(ALTERNATION)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "user", "user"]
    assert msgs[4:] == [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]


def test_a2o_r33_consecutive_user_messages_merged_when_enabled() -> None:
    profile = dataclasses.replace(profile_for("generic"), merge_user_turns=True)
    msgs = build(ALTERNATION, profile=profile)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "user"]
    # implementation choice: merged as content parts, in order
    assert msgs[4] == {
        "role": "user",
        "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
    }


def test_a2o_r33_merge_keeps_tool_messages_right_after_the_calls() -> None:
    profile = dataclasses.replace(profile_for("generic"), merge_user_turns=True)
    body = anth(
        [user("a"), user("b"), assistant([tool_use("t1")]), user([tool_result("t1", "r")]), user("c")]
    )
    msgs = build(body, profile=profile)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]


def test_a2o_r34_thinking_only_assistant_dropped_and_users_merged() -> None:
    body = anth(
        [
            user("a"),
            assistant([{"type": "thinking", "thinking": "hmm", "signature": "sig"}]),
            user("b"),
        ]
    )
    for name in URLS:
        msgs = build(body, profile=name)["messages"]
        assert len(msgs) == 1 and msgs[0]["role"] == "user", name
        # A2O-R04: DeepSeek takes text-only content as one string only.
        expected = ["a\n\nb"] if name == "deepseek" else ["a", "b"]
        assert texts_of(msgs[0]["content"]) == expected, name
    assert build(body)["messages"][0]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "redacted_thinking", "data": "x"}],
        [text("   ")],
        [{"type": "thinking", "thinking": "t", "signature": "s"}, text("")],
        [],
    ],
    ids=["redacted", "whitespace", "thinking-and-empty-text", "empty-list"],
)
def test_a2o_r34_no_empty_assistant_message(blocks: list[dict[str, Any]]) -> None:
    msgs = build(anth([user("a"), assistant(blocks), user("b")]))["messages"]
    assert all(m["role"] != "assistant" for m in msgs)
    assert len(msgs) == 1


def test_a2o_r34_thinking_only_assistant_after_tool_turn() -> None:
    body = anth(
        [
            user("go"),
            assistant([tool_use("t1")]),
            user([tool_result("t1", "r")]),
            assistant([{"type": "thinking", "thinking": "t", "signature": "s"}]),
            user("next"),
        ]
    )
    msgs = build(body)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]
    assert msgs[-1] == {"role": "user", "content": "next"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\\ud83d"}]}',
        b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\\ud83d x"}]}',
        b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\\udc00"}]}',
        b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\xff\xfe"}]}',
        b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\xed\xa0\xbd"}]}',
        b'{"model":"claude-sonnet-4-6","max_tokens":10,',
        b"",
        b"not json",
        b"[]",
        b'"a string"',
    ],
    ids=[
        "lone-high-surrogate",
        "lone-high-then-text",
        "lone-low-surrogate",
        "invalid-utf8",
        "utf8-encoded-surrogate",
        "truncated",
        "empty",
        "garbage",
        "array",
        "string",
    ],
)
def test_a2o_r35_invalid_body_is_a_400_client_error(raw: bytes) -> None:
    with pytest.raises(ClientError) as excinfo:
        anthropic_messages.parse_request(raw)
    assert excinfo.value.info.status == 400
    assert excinfo.value.info.type is ir.ErrorType.INVALID_REQUEST


def test_a2o_r35_valid_surrogate_pair_round_trips() -> None:
    raw = b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"\\ud83e\\udd16 hi"}]}'
    out = build(raw)
    assert out["messages"] == [{"role": "user", "content": "\U0001f916 hi"}]


def test_a2o_r36_warmup_request_translates_normally_on_the_small_model() -> None:
    body = {
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 1,
        "messages": [user([text("Warmup", cache_control={"type": "ephemeral"})])],
        "system": [text("You are Claude Code.", cache_control={"type": "ephemeral"})],
        "tools": [BASH_TOOL],
        "metadata": {"user_id": "u"},
        "stream": True,
    }
    routes = ModelRoutes(big="gpt-5", middle="gpt-4.1", small="gpt-4o-mini")
    model = resolve_model(body["model"], routes)
    assert model == "gpt-4o-mini"
    prepared = prepare(
        body, profile="openai", upstream_model=model, max_output_tokens=family_of(model).output_cap
    )
    out = orjson.loads(prepared.body)
    assert out == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "Warmup"},
        ],
        "max_tokens": 1,
        "tools": [
            {
                "type": "function",
                "function": {"name": "Bash", "description": "Run a command", "parameters": SCHEMA},
            }
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert prepared.ctx.client_model == "claude-haiku-4-5-20251001"


COMPACT_SYSTEM = "You are a helpful AI assistant tasked with summarizing conversations."
COMPACT_PROMPT = (
    "Your task is to create a detailed summary of the conversation so far.\n"
    "Wrap your analysis in <analysis> tags, then give the summary in <summary> tags.\n"
    "<summary>\n1. Primary Request and Intent: ...\n</summary>"
)


def test_a2o_r37_compaction_request_passes_through() -> None:
    body = anth(
        [
            user("fix the bug"),
            assistant([text("Looking."), tool_use("t1", "Read", {"file_path": "a.py"})]),
            user([tool_result("t1", "print(1)")]),
            assistant([text("Fixed.")]),
            user([text(COMPACT_PROMPT, cache_control={"type": "ephemeral"})]),
        ],
        system=[text(COMPACT_SYSTEM)],
        max_tokens=20000,
    )
    out = build(body, profile="openai", upstream_model="gpt-4o", max_output_tokens=16384)
    assert out["messages"][0] == {"role": "system", "content": COMPACT_SYSTEM}
    assert out["messages"][-1] == {"role": "user", "content": COMPACT_PROMPT}
    assert [m["role"] for m in out["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert out["max_tokens"] == 16384
    assert "tools" not in out


# ------------------------------------------------------------------------ real Claude Code requests


def assert_valid_openai_request(out: dict[str, Any], cap: int) -> None:
    """OpenAI's structural rules for a chat completions request, as its API enforces them."""
    assert set(out) <= OPENAI_REQUEST_FIELDS, set(out) - OPENAI_REQUEST_FIELDS
    for key in ("thinking", "context_management", "output_config", "metadata", "system"):
        assert key not in out
    msgs = out["messages"]
    assert msgs and msgs[0]["role"] == "system"
    tool_names = {t["function"]["name"] for t in out.get("tools", [])}
    for tool in out.get("tools", []):
        assert set(tool) == {"type", "function"} and tool["type"] == "function"
        assert set(tool["function"]) <= {"name", "description", "parameters"}
        assert TOOL_NAME.match(tool["function"]["name"])
        assert isinstance(tool["function"]["parameters"], dict)
    i = 0
    while i < len(msgs):
        m = msgs[i]
        assert m["role"] in ("system", "user", "assistant", "tool"), m
        assert m["role"] != "tool", f"tool message {i} does not follow an assistant tool_calls message"
        if m["role"] == "assistant" and m.get("tool_calls"):
            assert m.get("content") is None or (isinstance(m["content"], str) and m["content"].strip())
            ids = []
            for tc in m["tool_calls"]:
                assert tc["type"] == "function"
                assert isinstance(tc["function"]["arguments"], str)
                assert isinstance(json.loads(tc["function"]["arguments"]), dict)
                assert tc["function"]["name"] in tool_names
                ids.append(tc["id"])
            following = msgs[i + 1 : i + 1 + len(ids)]
            assert [t["role"] for t in following] == ["tool"] * len(ids)
            assert [t["tool_call_id"] for t in following] == ids
            for t in following:
                assert isinstance(t["content"], str)
            i += 1 + len(ids)
            continue
        content = m.get("content")
        if isinstance(content, str):
            assert content.strip(), f"empty content in message {i}"
        else:
            assert isinstance(content, list) and content, f"empty content in message {i}"
            for part in content:
                if part["type"] == "text":
                    assert part["text"].strip()
        i += 1
    raw = json.dumps(out)
    assert "cache_control" not in raw
    assert '"signature"' not in raw
    limit = out.get("max_tokens", out.get("max_completion_tokens"))
    assert isinstance(limit, int) and 0 < limit <= cap


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


CAPTURES = ["tool_bash", "parallel_bash", "thinking_tool"]
TARGETS = [
    ("openai", "gpt-5", None),
    ("openai", "gpt-4o", None),
    ("deepseek", "deepseek-chat", None),
    ("openrouter", "openai/gpt-5", 32000),
    ("gemini", "gemini-2.5-pro", 65536),
    ("generic", "qwen3-coder", 16000),
]


@pytest.mark.parametrize("capture", CAPTURES)
@pytest.mark.parametrize(("profile", "model", "configured_cap"), TARGETS)
def test_claude_code_capture_builds_a_valid_openai_request(
    capture: str, profile: str, model: str, configured_cap: int | None
) -> None:
    body = load_fixture(capture)
    cap = configured_cap or family_of(model).output_cap
    assert cap is not None
    prepared = prepare(
        json.dumps(body).encode(), profile=profile, upstream_model=model, max_output_tokens=cap
    )
    out = orjson.loads(prepared.body)
    assert_valid_openai_request(out, cap)
    assert out["model"] == model
    assert body["max_tokens"] >= cap  # Claude Code asks for 128000: the cap applies
    assert out.get("max_tokens", out.get("max_completion_tokens")) == cap

    msgs = out["messages"]
    # system blocks joined into one first message; the mid-conversation system message kept in place
    expected_system = "\n\n".join(b["text"] for b in body["system"] if b["text"].strip())
    assert msgs[0] == {"role": "system", "content": expected_system}
    assert msgs[1]["role"] == "user"
    assert msgs[2] == {"role": "system", "content": body["messages"][1]["content"]}
    assert msgs[3]["role"] == "assistant"
    assert all(m["role"] != "system" for m in msgs[3:])

    # the tool loop: every call of the last assistant turn answered, in order
    calls = [b for b in body["messages"][2]["content"] if b["type"] == "tool_use"]
    assert [tc["id"] for tc in msgs[3]["tool_calls"]] == [c["id"] for c in calls]
    assert [json.loads(tc["function"]["arguments"]) for tc in msgs[3]["tool_calls"]] == [
        c["input"] for c in calls
    ]
    assert [m["role"] for m in msgs[4:]] == ["tool"] * len(calls)
    results = {b["tool_use_id"]: b["content"] for b in body["messages"][3]["content"]}
    assert [(m["tool_call_id"], m["content"]) for m in msgs[4:]] == [
        (c["id"], results[c["id"]]) for c in calls
    ]

    # tools: every custom tool kept, none of Claude Code's extra keys
    assert [t["function"]["name"] for t in out["tools"]] == [t["name"] for t in body["tools"]]
    assert "defer_loading" not in prepared.body.decode()
    assert ("$schema" in prepared.body.decode()) is (profile != "gemini")
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "tool_choice" not in out and "user" not in out


def test_claude_code_thinking_history_replayed_only_for_deepseek() -> None:
    body = load_fixture("thinking_tool")
    thinking = body["messages"][2]["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"]
    raw = json.dumps(body).encode()
    stripped = orjson.loads(
        prepare(raw, profile="openai", upstream_model="gpt-5", max_output_tokens=128000).body
    )
    assert "reasoning_content" not in stripped["messages"][3]
    assert thinking["thinking"] not in json.dumps(stripped)
    assert thinking["signature"] not in json.dumps(stripped)
    # Claude Code's adaptive thinking + output_config.effort reach OpenAI's reasoning models as an effort
    assert stripped["reasoning_effort"] == "medium"
    assert stripped["max_completion_tokens"] == 128000

    replayed = orjson.loads(
        prepare(raw, profile="deepseek", upstream_model="deepseek-reasoner", max_output_tokens=65536).body
    )
    assert replayed["messages"][3]["reasoning_content"] == thinking["thinking"]
    assert thinking["signature"] not in json.dumps(replayed)
    assert_valid_openai_request(replayed, 65536)


def test_claude_code_capture_without_config_cap_uses_known_model_cap() -> None:
    raw = json.dumps(load_fixture("tool_bash")).encode()
    out = orjson.loads(
        prepare(
            raw, profile="openai", upstream_model="gpt-4o", max_output_tokens=family_of("gpt-4o").output_cap
        ).body
    )
    assert out["max_tokens"] == 16384


@pytest.mark.parametrize("capture", CAPTURES)
def test_a2o_r04_claude_code_capture_to_deepseek_has_string_content_only(capture: str) -> None:
    # DeepSeek rejects content part lists (see test_a2o_r04_deepseek_gets_text_only_content_as_a_string).
    raw = json.dumps(load_fixture(capture)).encode()
    out = orjson.loads(
        prepare(raw, profile="deepseek", upstream_model="deepseek-chat", max_output_tokens=8192).body
    )
    bad = [i for i, m in enumerate(out["messages"]) if not isinstance(m.get("content"), str | None)]
    assert bad == [], f"messages with list content: {bad}"
