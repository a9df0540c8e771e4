"""O2A requests: OpenAI Chat Completions request in, Anthropic Messages request out (CONFORMANCE.md
O2A-R01..R29, decisions 4 and 8).

Every case goes through the proxy's own sans-I/O pipeline (``openai_chat.parse_request``, the proxy's
``max_tokens`` default, ``translate.prepare_request`` to an Anthropic upstream) and compares the whole
upstream body. Requests the proxy must refuse raise ``ClientError`` with a 400 that says why.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from rawproxy import ir
from rawproxy.config import Config
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import ClientError
from rawproxy.exchange.completion import apply_defaults
from rawproxy.routing import ModelRoutes, resolve_model
from rawproxy.translate import prepare_request
from tests.support.openai_sse import UPSTREAM_MODEL, prepare, upstream_body

MODEL = "gpt-4o"
ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
MISSING = "no result was recorded for this tool call"


def req(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return message


def call(id: str, name: str = "get", arguments: Any = '{"q": 1}') -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool(id: str, content: Any = "result") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": id, "content": content}


def function(name: str = "get", **fields: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **fields}}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def turn(role: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": role, "content": list(blocks)}


def expected(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": UPSTREAM_MODEL, "max_tokens": 16384, "messages": list(messages), **extra}


def refused(body: dict[str, Any]) -> ClientError:
    with pytest.raises(ClientError) as exc:
        upstream_body(body)
    assert exc.value.info.status == 400
    assert exc.value.info.type is ir.ErrorType.INVALID_REQUEST
    return exc.value


def test_prepared_request_path_and_context() -> None:
    prepared = prepare(req(user("hi"), stream=True, stream_options={"include_usage": True}))
    assert prepared.path == "/v1/messages"
    assert prepared.ctx.client_model == MODEL
    assert prepared.ctx.upstream_model == UPSTREAM_MODEL
    assert prepared.ctx.include_usage is True
    assert orjson.loads(prepared.body) == expected(turn("user", text("hi")), stream=True)


# ----------------------------------------------------------------------------- R01 system messages


R01_CASES = {
    "string": (
        [{"role": "system", "content": "S"}, user("hi")],
        [text("S")],
    ),
    "developer_list_of_parts": (
        [{"role": "developer", "content": [text("a"), text("b")]}, user("hi")],
        [text("a"), text("b")],
    ),
    "several_leading": (
        [{"role": "system", "content": "a"}, {"role": "developer", "content": "b"}, user("hi")],
        [text("a"), text("b")],
    ),
    "empty_and_whitespace_dropped": (
        [{"role": "system", "content": ""}, {"role": "system", "content": [text("  ")]}, user("hi")],
        None,
    ),
}


@pytest.mark.parametrize("case", list(R01_CASES))
def test_o2a_r01_system_and_developer_messages_hoisted(case: str) -> None:
    messages, system = R01_CASES[case]
    want = expected(turn("user", text("hi")))
    if system is not None:
        want["system"] = system
    assert upstream_body(req(*messages)) == want


def test_o2a_r01_mid_conversation_system_messages_hoisted_in_order() -> None:
    body = req(
        {"role": "system", "content": "first"},
        user("q1"),
        assistant("a1"),
        {"role": "developer", "content": [text("mid")]},
        user("q2"),
        {"role": "system", "content": "late"},
    )
    assert upstream_body(body) == expected(
        turn("user", text("q1")),
        turn("assistant", text("a1")),
        turn("user", text("q2")),
        system=[text("first"), text("mid"), text("late")],
    )


def test_o2a_r01_hoisting_merges_the_turns_around_a_system_message() -> None:
    # user, system, user: once the system message is hoisted the two user turns are adjacent (O2A-R04)
    body = req(user("a"), {"role": "system", "content": "S"}, user("b"))
    assert upstream_body(body) == expected(turn("user", text("a"), text("b")), system=[text("S")])


# ----------------------------------------------------------------------------- R02 SYSTEM_PROMPT


def _apply_defaults(body: dict[str, Any], **config: Any) -> dict[str, Any]:
    """O2A-R02 lives in the exchange (``completion.apply_defaults``), not in the dialect: run it the way
    a translated try does between parsing and ``prepare_request``."""
    settings = Config(anthropic_key="k", **config)
    up = settings.router().upstreams["anthropic"]
    request = openai_chat.parse_request(orjson.dumps(body))
    apply_defaults(request, settings)
    prepared = prepare_request(
        openai_chat,
        up.dialect,
        request,
        upstream_model=UPSTREAM_MODEL,
        profile=up.profile,
        max_output_tokens=None,
        auto_cache=settings.auto_cache,
    )
    result: dict[str, Any] = orjson.loads(prepared.body)
    return result


def test_o2a_r02_system_prompt_injected_when_request_has_none() -> None:
    body = _apply_defaults(req(user("hi")), system_prompt="Be brief.", auto_cache=False)
    assert body == expected(turn("user", text("hi")), system=[text("Be brief.")])


@pytest.mark.parametrize("role", ["system", "developer"])
def test_o2a_r02_system_prompt_not_injected_when_request_has_one(role: str) -> None:
    body = _apply_defaults(
        req({"role": role, "content": "Mine."}, user("hi")), system_prompt="Be brief.", auto_cache=False
    )
    assert body == expected(turn("user", text("hi")), system=[text("Mine.")])


def test_o2a_r02_no_system_prompt_configured() -> None:
    assert _apply_defaults(req(user("hi")), auto_cache=False) == expected(turn("user", text("hi")))


# ----------------------------------------------------------------------------- R03 first message


def test_o2a_r03_first_message_assistant_gets_a_user_turn_before_it() -> None:
    body = req({"role": "system", "content": "S"}, assistant("Hello, how can I help?"), user("hi"))
    assert upstream_body(body) == expected(
        turn("user", text("(continue)")),
        turn("assistant", text("Hello, how can I help?")),
        turn("user", text("hi")),
        system=[text("S")],
    )


def test_o2a_r03_first_user_message_empty_is_not_a_user_turn() -> None:
    # the empty user turn disappears (O2A-R06), so the assistant would come first
    body = req(user(""), assistant("a"), user("b"))
    assert upstream_body(body) == expected(
        turn("user", text("(continue)")), turn("assistant", text("a")), turn("user", text("b"))
    )


# ----------------------------------------------------------------------------- R04 merging


def test_o2a_r04_consecutive_user_messages_merged() -> None:
    body = req(user("a"), user([text("b"), text("c")]), assistant("x"))
    assert upstream_body(body) == expected(
        turn("user", text("a"), text("b"), text("c")), turn("assistant", text("x"))
    )


def test_o2a_r04_consecutive_assistant_messages_merged() -> None:
    body = req(user("q"), assistant("a"), assistant("b"), user("c"))
    assert upstream_body(body) == expected(
        turn("user", text("q")), turn("assistant", text("a"), text("b")), turn("user", text("c"))
    )


def test_o2a_r04_assistant_tool_turns_merged_with_their_results_kept_next() -> None:
    body = req(
        user("q"),
        assistant("thinking aloud"),
        assistant(None, [call("c1")]),
        tool("c1", "r"),
    )
    assert upstream_body(body) == expected(
        turn("user", text("q")),
        turn(
            "assistant",
            text("thinking aloud"),
            {"type": "tool_use", "id": "c1", "name": "get", "input": {"q": 1}},
        ),
        turn("user", {"type": "tool_result", "tool_use_id": "c1", "content": [text("r")]}),
        tools=[{"name": "history_placeholder", "description": "Not callable.", "input_schema": _EMPTY}],
        tool_choice={"type": "none"},
    )


# ----------------------------------------------------------------------------- R05 prefill


def test_o2a_r05_trailing_assistant_kept_as_prefill() -> None:
    body = req(user("Give me JSON"), assistant("{"))
    assert upstream_body(body) == expected(turn("user", text("Give me JSON")), turn("assistant", text("{")))


def test_o2a_r05_prefill_trailing_whitespace_stripped() -> None:
    """Catalogue silent; the Anthropic API rejects it ("final assistant content cannot end with trailing
    whitespace"), so a careful proxy strips it from the prefill (only from the last assistant turn)."""
    body = req(user("q"), assistant("The answer is "))
    assert upstream_body(body) == expected(turn("user", text("q")), turn("assistant", text("The answer is")))


# ----------------------------------------------------------------------------- R06 empty content


R06_CASES = {
    "empty_string": "",
    "null": None,
    "empty_text_part": [text("")],
    "whitespace": "  \n ",
    "whitespace_part": [text(" "), text("")],
}


@pytest.mark.parametrize("case", list(R06_CASES))
def test_o2a_r06_empty_user_content_never_an_empty_text_block(case: str) -> None:
    body = req(user("a"), assistant("b"), user(R06_CASES[case]), user("c"))
    assert upstream_body(body) == expected(
        turn("user", text("a")), turn("assistant", text("b")), turn("user", text("c"))
    )


@pytest.mark.parametrize("case", list(R06_CASES))
def test_o2a_r06_empty_assistant_content_with_tool_calls_only_tool_use(case: str) -> None:
    body = req(user("q"), assistant(R06_CASES[case], [call("c1")]), tool("c1", "r"), tools=[function()])
    out = upstream_body(body)
    assert out["messages"][1] == turn(
        "assistant", {"type": "tool_use", "id": "c1", "name": "get", "input": {"q": 1}}
    )


@pytest.mark.parametrize("case", list(R06_CASES))
def test_o2a_r06_empty_assistant_turn_dropped(case: str) -> None:
    body = req(user("a"), assistant(R06_CASES[case]), user("b"))
    assert upstream_body(body) == expected(turn("user", text("a"), text("b")))


def test_o2a_r06_empty_parts_dropped_but_others_kept() -> None:
    body = req(user([text(""), text("x"), text("   ")]))
    assert upstream_body(body) == expected(turn("user", text("x")))


# ----------------------------------------------------------------------------- R07-R10 content parts


def image_part(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


R07_CASES = [
    ("data:image/jpeg;base64,/9j/AAAA", "image/jpeg", "/9j/AAAA"),
    ("data:image/png;base64,iVBORw0KGgo=", "image/png", "iVBORw0KGgo="),
    ("data:image/gif;base64,R0lGODlh", "image/gif", "R0lGODlh"),
    ("data:image/webp;base64,UklGRg==", "image/webp", "UklGRg=="),
    ("data:image/PNG;base64,iVBO", "image/png", "iVBO"),  # media type matched case-insensitively
]


@pytest.mark.parametrize(("url", "media_type", "data"), R07_CASES)
def test_o2a_r07_data_url_image_becomes_base64_block(url: str, media_type: str, data: str) -> None:
    body = req(user([text("What is this?"), image_part(url)]))
    assert upstream_body(body) == expected(
        turn(
            "user",
            text("What is this?"),
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
        )
    )


@pytest.mark.parametrize(
    "url",
    ["data:image/svg+xml;base64,PHN2Zz4=", "data:image/bmp;base64,Qk0=", "data:image/tiff;base64,SUkq"],
)
def test_o2a_r07_unsupported_image_media_type_is_a_400(url: str) -> None:
    err = refused(req(user([image_part(url)])))
    media_type = url[5 : url.index(";")]
    assert str(err) == (
        f"messages[0].content[0]: image type {media_type} is not supported (png, jpeg, gif or webp)"
    )


def test_o2a_r07_data_url_that_is_not_base64_is_a_400() -> None:
    err = refused(req(user([image_part("data:image/png,rawbytes")])))
    assert "base64" in str(err)


@pytest.mark.parametrize(
    "url", ["https://example.com/cat.png", "http://example.com/a.jpg?x=1&y=2", "https://e.x/img"]
)
def test_o2a_r08_http_url_image_becomes_url_source(url: str) -> None:
    body = req(user([image_part(url), text("describe")]))
    assert upstream_body(body) == expected(
        turn("user", {"type": "image", "source": {"type": "url", "url": url}}, text("describe"))
    )


@pytest.mark.parametrize("detail", ["low", "high", "auto"])
def test_o2a_r09_image_detail_ignored(detail: str) -> None:
    with_detail = upstream_body(req(user([image_part("https://e.x/a.png", detail=detail)])))
    without = upstream_body(req(user([image_part("https://e.x/a.png")])))
    assert with_detail == without
    assert with_detail["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://e.x/a.png"}}
    ]


def test_o2a_r10_input_audio_is_a_400() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    err = refused(req(user([part])))
    assert str(err) == "messages[0].content[0]: audio input is not supported by an Anthropic upstream"


def test_o2a_r10_pdf_file_becomes_document_block() -> None:
    part = {
        "type": "file",
        "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
    }
    body = req(user([part, text("Summarise")]))
    # code's choice: the title is the file name without its extension
    assert upstream_body(body) == expected(
        turn(
            "user",
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                "title": "report",
            },
            text("Summarise"),
        )
    )


def test_o2a_r10_pdf_file_without_filename_has_no_title() -> None:
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}}
    assert upstream_body(req(user([part])))["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        }
    ]


def test_o2a_r10_file_id_is_a_400() -> None:
    err = refused(req(user([{"type": "file", "file": {"file_id": "file-abc123"}}])))
    assert str(err) == (
        "messages[0].content[0].file: only inline file_data (a base64 data URL) is supported, not file ids"
    )


def test_o2a_r10_non_pdf_file_is_not_sent_as_a_base64_document() -> None:
    """Anthropic's base64 document source takes application/pdf only; a text/plain file must become a
    plain-text document (or a clear 400), never a base64 document the upstream rejects."""
    part = {
        "type": "file",
        "file": {"filename": "notes.txt", "file_data": "data:text/plain;base64,aGkgdGhlcmU="},
    }
    try:
        body = upstream_body(req(user([part])))
    except ClientError as exc:
        assert exc.info.status == 400
        assert "text/plain" in str(exc)
    else:
        assert body["messages"][0]["content"] == [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "hi there"},
                "title": "notes",
            }
        ]


def test_o2a_r10_refusal_part_becomes_text() -> None:
    # code's choice: an assistant refusal part in history is its text
    body = req(user("q"), assistant([{"type": "refusal", "refusal": "I can't help."}]), user("ok"))
    assert upstream_body(body)["messages"][1] == turn("assistant", text("I can't help."))


@pytest.mark.parametrize("kind", ["video_url", "audio_url", "image", "input_file"])
def test_o2a_r10_unknown_part_types_are_a_400_never_passed_raw(kind: str) -> None:
    err = refused(req(user([{"type": kind, kind: {"url": "x"}}])))
    assert str(err) == f"messages[0].content[0].type: unsupported content part {kind!r}"


# ----------------------------------------------------------------------------- R11 / R12 tool calls


def test_o2a_r11_assistant_tool_calls_become_tool_use_after_text() -> None:
    body = req(
        user("weather?"),
        assistant(
            "Let me check.", [call("call_1", "weather", '{"city": "Zürich"}'), call("call_2", "time", "{}")]
        ),
        tool("call_1", "sunny"),
        tool("call_2", "noon"),
        tools=[function("weather"), function("time")],
    )
    out = upstream_body(body)
    assert out["messages"][1] == turn(
        "assistant",
        text("Let me check."),
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Zürich"}},
        {"type": "tool_use", "id": "call_2", "name": "time", "input": {}},
    )
    assert out["tools"] == [
        {"name": "weather", "input_schema": _EMPTY},
        {"name": "time", "input_schema": _EMPTY},
    ]


R11_ARGUMENTS = [
    ('{"a": 1}', {"a": 1}),
    ('{"a": 1', {"a": 1}),  # truncated: repaired (decision 3)
    ('{"path": "/tmp/x', {"path": "/tmp/x"}),
    ('{"a": [1, 2', {"a": [1, 2]}),
    ("not json at all", {}),  # unrepairable: {} and a warning
    ("", {}),
    (None, {}),
    ("[1, 2]", {"value": [1, 2]}),  # code's choice: a non-object is wrapped
    ({"already": "object"}, {"already": "object"}),
]


@pytest.mark.parametrize(("arguments", "want"), R11_ARGUMENTS)
def test_o2a_r11_tool_call_arguments_parsed_or_repaired(arguments: Any, want: dict[str, Any]) -> None:
    body = req(user("q"), assistant(None, [call("c1", arguments=arguments)]), tool("c1"), tools=[function()])
    assert upstream_body(body)["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "get", "input": want}
    ]


def test_o2a_r11_unrepairable_arguments_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    body = req(user("q"), assistant(None, [call("c9", arguments="{{nope")]), tool("c9"), tools=[function()])
    upstream_body(body)
    assert any("c9" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_o2a_r11_tool_call_without_function_name_is_a_400() -> None:
    err = refused(req(user("q"), assistant(None, [{"id": "c1", "type": "function", "function": {}}])))
    assert str(err) == "messages[1].tool_calls[0].function.name: field required"


R12_IDS = [
    ("functions.g:1", "toolu_rpx_ZnVuY3Rpb25zLmc6MQ"),
    ("call 1", "toolu_rpx_Y2FsbCAx"),
    ("call_x__thought__abc/+=", "toolu_rpx_Y2FsbF94X190aG91Z2h0X19hYmMvKz0"),
    ("call_abc-123", "call_abc-123"),  # already valid: unchanged
    ("toolu_01ABC", "toolu_01ABC"),
]


@pytest.mark.parametrize(("client_id", "wire_id"), R12_IDS)
def test_o2a_r12_tool_ids_encoded_identically_on_use_and_result(client_id: str, wire_id: str) -> None:
    body = req(
        user("q"),
        assistant(None, [call(client_id, "g", "{}")]),
        tool(client_id, "r"),
        tools=[function("g")],
    )
    out = upstream_body(body)
    assert ANTHROPIC_ID.match(wire_id)
    assert out["messages"][1:] == [
        turn("assistant", {"type": "tool_use", "id": wire_id, "name": "g", "input": {}}),
        turn("user", {"type": "tool_result", "tool_use_id": wire_id, "content": [text("r")]}),
    ]


def test_o2a_r12_distinct_invalid_ids_stay_distinct_and_reversible() -> None:
    from rawproxy.toolcalls import client_tool_id, upstream_tool_id

    ids = ["a.b", "a:b", "a b", "a_b", "functions.g:1", "functions.g:2", "日本"]
    wire = [client_tool_id(i) for i in ids]
    assert len(set(wire)) == len(ids)
    assert all(ANTHROPIC_ID.match(w) for w in wire)
    assert [upstream_tool_id(w) for w in wire] == ids


# ----------------------------------------------------------------------------- R13 / R14 tool messages


def test_o2a_r13_consecutive_tool_messages_one_user_turn_then_user_text() -> None:
    body = req(
        user("q"),
        assistant(None, [call("c1"), call("c2"), call("c3")]),
        tool("c1", "one"),
        tool("c2", "two"),
        tool("c3", "three"),
        user("now continue"),
        tools=[function()],
    )
    out = upstream_body(body)
    assert out["messages"] == [
        turn("user", text("q")),
        turn(
            "assistant",
            *({"type": "tool_use", "id": i, "name": "get", "input": {"q": 1}} for i in ("c1", "c2", "c3")),
        ),
        turn(
            "user",
            {"type": "tool_result", "tool_use_id": "c1", "content": [text("one")]},
            {"type": "tool_result", "tool_use_id": "c2", "content": [text("two")]},
            {"type": "tool_result", "tool_use_id": "c3", "content": [text("three")]},
            text("now continue"),
        ),
    ]


def test_o2a_r13_results_out_of_order_sent_in_call_order() -> None:
    # code's choice: results follow the order of the tool_use blocks
    body = req(
        user("q"),
        assistant(None, [call("c1"), call("c2")]),
        tool("c2", "two"),
        tool("c1", "one"),
        tools=[function()],
    )
    assert upstream_body(body)["messages"][2] == turn(
        "user",
        {"type": "tool_result", "tool_use_id": "c1", "content": [text("one")]},
        {"type": "tool_result", "tool_use_id": "c2", "content": [text("two")]},
    )


R14_CASES = {
    "string": ("42 files", [text("42 files")]),
    "text_parts": ([text("line 1"), text("line 2")], [text("line 1"), text("line 2")]),
    "image_inside": (
        [text("screenshot:"), image_part("data:image/png;base64,iVBO")],
        [
            text("screenshot:"),
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        ],
    ),
    "url_image_inside": (
        [image_part("https://e.x/s.png")],
        [{"type": "image", "source": {"type": "url", "url": "https://e.x/s.png"}}],
    ),
    "empty_string": ("", None),
    "null": (None, None),
    "empty_list": ([], None),
    "whitespace_part": ([text(" ")], None),
}


@pytest.mark.parametrize("case", list(R14_CASES))
def test_o2a_r14_tool_content_forms(case: str) -> None:
    content, want = R14_CASES[case]
    body = req(user("q"), assistant(None, [call("c1")]), tool("c1", content), tools=[function()])
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": "c1"}
    if want is not None:
        result["content"] = want
    assert upstream_body(body)["messages"][2] == turn("user", result)


def test_o2a_r14_tool_message_without_tool_call_id_is_a_400() -> None:
    err = refused(req(user("q"), assistant(None, [call("c1")]), {"role": "tool", "content": "r"}))
    assert str(err) == "messages[2].tool_call_id: field required"


# ----------------------------------------------------------------------------- R15 history repair


def test_o2a_r15_missing_tool_result_gets_synthetic_error_result(caplog: pytest.LogCaptureFixture) -> None:
    body = req(
        user("q"),
        assistant(None, [call("c1"), call("c2")]),
        tool("c2", "two"),
        user("go on"),
        tools=[function()],
    )
    out = upstream_body(body)
    # code's choice: synthetic results come first, then the real ones in call order, then the text
    assert out["messages"][2] == turn(
        "user",
        {"type": "tool_result", "tool_use_id": "c1", "content": MISSING, "is_error": True},
        {"type": "tool_result", "tool_use_id": "c2", "content": [text("two")]},
        text("go on"),
    )
    assert any("c1" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_o2a_r15_tool_calls_followed_by_assistant_get_a_synthetic_user_turn() -> None:
    body = req(
        user("q"), assistant(None, [call("c1")]), assistant("never mind"), user("ok"), tools=[function()]
    )
    out = upstream_body(body)
    # the assistant turns are merged first (O2A-R04), then the call is answered right after them
    assert out["messages"] == [
        turn("user", text("q")),
        turn(
            "assistant",
            {"type": "tool_use", "id": "c1", "name": "get", "input": {"q": 1}},
            text("never mind"),
        ),
        turn(
            "user",
            {"type": "tool_result", "tool_use_id": "c1", "content": MISSING, "is_error": True},
            text("ok"),
        ),
    ]


def test_o2a_r15_trailing_tool_calls_without_results() -> None:
    body = req(user("q"), assistant("calling", [call("c1")]), tools=[function()])
    assert upstream_body(body)["messages"] == [
        turn("user", text("q")),
        turn(
            "assistant", text("calling"), {"type": "tool_use", "id": "c1", "name": "get", "input": {"q": 1}}
        ),
        turn("user", {"type": "tool_result", "tool_use_id": "c1", "content": MISSING, "is_error": True}),
    ]


def test_o2a_r15_never_a_fake_success_result() -> None:
    body = req(user("q"), assistant(None, [call("c1")]), user("next"), tools=[function()])
    result = upstream_body(body)["messages"][2]["content"][0]
    assert result["is_error"] is True
    assert "success" not in orjson.dumps(result).decode()


def test_o2a_r15_orphan_tool_result_becomes_user_text(caplog: pytest.LogCaptureFixture) -> None:
    body = req(user("q"), assistant("a"), tool("ghost", "late output"), user("and?"))
    assert upstream_body(body) == expected(
        turn("user", text("q")),
        turn("assistant", text("a")),
        turn("user", text("[tool result ghost] late output"), text("and?")),
    )
    assert any("ghost" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_o2a_r15_orphan_result_alone_keeps_the_conversation_valid() -> None:
    body = req(user("q"), assistant("a"), tool("ghost", ""))
    assert upstream_body(body) == expected(
        turn("user", text("q")), turn("assistant", text("a")), turn("user", text("[tool result ghost]"))
    )


# ----------------------------------------------------------------------------- R16 tools

_EMPTY = {"type": "object", "properties": {}}
_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

R16_CASES = {
    "full": (
        function("weather", description="Get weather", parameters=_SCHEMA),
        {"name": "weather", "description": "Get weather", "input_schema": _SCHEMA},
    ),
    "no_parameters": (function("ping"), {"name": "ping", "input_schema": _EMPTY}),
    "null_parameters": (function("ping", parameters=None), {"name": "ping", "input_schema": _EMPTY}),
    "strict_dropped": (
        function("weather", parameters=_SCHEMA, strict=True),
        {"name": "weather", "input_schema": _SCHEMA},
    ),
    "empty_description_dropped": (
        function("ping", description=""),
        {"name": "ping", "input_schema": _EMPTY},
    ),
    "nested_anyof_allowed": (
        function("f", parameters={"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}]}}}),
        {
            "name": "f",
            "input_schema": {"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}]}}},
        },
    ),
}


@pytest.mark.parametrize("case", list(R16_CASES))
def test_o2a_r16_tools_mapping(case: str) -> None:
    tool_in, tool_out = R16_CASES[case]
    assert upstream_body(req(user("q"), tools=[tool_in])) == expected(
        turn("user", text("q")), tools=[tool_out]
    )


@pytest.mark.parametrize("key", ["oneOf", "anyOf", "allOf"])
def test_o2a_r16_top_level_combinator_is_a_400(key: str) -> None:
    schema = {key: [{"type": "object", "properties": {}}, {"type": "object"}]}
    err = refused(req(user("q"), tools=[function("f", parameters=schema)]))
    assert (
        str(err) == "tools[0].function.parameters: oneOf, anyOf and allOf are not supported at the top level"
    )


@pytest.mark.parametrize("kind", ["custom", "web_search_preview", "file_search", "code_interpreter"])
def test_o2a_r16_non_function_tools_are_a_400(kind: str) -> None:
    err = refused(req(user("q"), tools=[function("ok"), {"type": kind, kind: {}}]))
    assert str(err) == f"tools[1].type: only function tools are supported, got {kind!r}"


# ----------------------------------------------------------------------------- R17 / R18 tool_choice

R17_CASES = [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "get"}}, None, {"type": "tool", "name": "get"}),
    ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (
        {"type": "function", "function": {"name": "get"}},
        False,
        {"type": "tool", "name": "get", "disable_parallel_tool_use": True},
    ),
    ("none", False, {"type": "none"}),  # nothing to run in parallel
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("auto", True, {"type": "auto"}),
    (None, None, None),
]


@pytest.mark.parametrize(("choice", "parallel", "want"), R17_CASES)
def test_o2a_r17_tool_choice(choice: Any, parallel: Any, want: dict[str, Any] | None) -> None:
    extra: dict[str, Any] = {"tools": [function()]}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    body = upstream_body(req(user("q"), **extra))
    if want is None:
        assert "tool_choice" not in body
    else:
        assert body["tool_choice"] == want


def test_o2a_r17_tool_choice_without_tools_omitted() -> None:
    assert upstream_body(req(user("q"), tool_choice="required")) == expected(turn("user", text("q")))


@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, {"name": "x"}, 3])
def test_o2a_r17_invalid_tool_choice_is_a_400(choice: Any) -> None:
    err = refused(req(user("q"), tools=[function()], tool_choice=choice))
    assert str(err).startswith("tool_choice: expected")


@pytest.mark.parametrize("choice", [None, "auto", "required"])
def test_o2a_r18_tool_history_without_tools_gets_placeholder_and_none(choice: str | None) -> None:
    extra = {"tool_choice": choice} if choice else {}
    body = req(user("q"), assistant(None, [call("c1")]), tool("c1", "r"), user("thanks"), **extra)
    assert upstream_body(body) == expected(
        turn("user", text("q")),
        turn("assistant", {"type": "tool_use", "id": "c1", "name": "get", "input": {"q": 1}}),
        turn("user", {"type": "tool_result", "tool_use_id": "c1", "content": [text("r")]}, text("thanks")),
        tools=[{"name": "history_placeholder", "description": "Not callable.", "input_schema": _EMPTY}],
        tool_choice={"type": "none"},
    )


def test_o2a_r18_tools_declared_no_placeholder() -> None:
    body = req(user("q"), assistant(None, [call("c1")]), tool("c1", "r"), tools=[function()])
    assert upstream_body(body)["tools"] == [{"name": "get", "input_schema": _EMPTY}]
    assert "tool_choice" not in upstream_body(body)


# ----------------------------------------------------------------------------- R19 / R20 tokens, thinking

R19_CASES = [
    ({"max_completion_tokens": 300, "max_tokens": 100}, 300),
    ({"max_tokens": 100}, 100),
    ({"max_completion_tokens": 300}, 300),
    ({}, 16384),  # the proxy's default (Config.default_max_tokens)
]


@pytest.mark.parametrize(("fields", "want"), R19_CASES)
def test_o2a_r19_max_completion_tokens_preferred(fields: dict[str, Any], want: int) -> None:
    assert upstream_body(req(user("q"), **fields))["max_tokens"] == want


def test_o2a_r19_default_max_tokens_applied_by_the_proxy() -> None:
    body = _apply_defaults(req(user("q")), default_max_tokens=1234, auto_cache=False)
    assert body["max_tokens"] == 1234


def test_o2a_r19_clamped_to_the_configured_output_cap() -> None:
    assert upstream_body(req(user("q"), max_tokens=50000), max_output_tokens=8192)["max_tokens"] == 8192


@pytest.mark.parametrize("value", [0, -1, 1.5, "100", True])
def test_o2a_r19_invalid_max_tokens_is_a_400(value: Any) -> None:
    err = refused(req(user("q"), max_tokens=value))
    assert str(err) == "max_completion_tokens: expected a positive integer"


@pytest.mark.parametrize(
    ("max_tokens", "effort", "want_max"),
    [(1000, "high", 5120), (4096, "high", 5120), (20000, "high", 20000), (2048, "medium", 3072)],
)
def test_o2a_r19_max_tokens_above_the_thinking_budget(max_tokens: int, effort: str, want_max: int) -> None:
    body = upstream_body(
        req(user("q"), max_tokens=max_tokens, reasoning_effort=effort), upstream_model=BUDGETS_MODEL
    )
    assert body["max_tokens"] == want_max
    assert body["max_tokens"] > body["thinking"]["budget_tokens"]


def test_o2a_r19_thinking_budget_fits_under_the_output_cap() -> None:
    """With a configured output cap (``--max-output-tokens``) the cap still holds with thinking on: the
    budget shrinks below it (Anthropic's floor is 1024) rather than max_tokens growing past it."""
    body = upstream_body(
        req(user("q"), reasoning_effort="high"), max_output_tokens=2000, upstream_model=BUDGETS_MODEL
    )
    assert body["max_tokens"] == 2000
    assert 1024 <= body["thinking"]["budget_tokens"] < 2000


R20_BUDGETS = [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192)]
# Budgets are for the models that only have budgets (M26-01): Sonnet and Haiku 4.5 and older.
BUDGETS_MODEL = "claude-haiku-4-5"
# The forced-tool emulation of a json_schema answer is for models without structured outputs (M26-07).
NO_SCHEMA_MODEL = "claude-3-7-sonnet-latest"


@pytest.mark.parametrize(("effort", "budget"), R20_BUDGETS)
def test_o2a_r20_reasoning_effort_becomes_thinking_budget(effort: str, budget: int) -> None:
    assert upstream_body(req(user("q"), reasoning_effort=effort), upstream_model=BUDGETS_MODEL) == expected(
        turn("user", text("q")), model=BUDGETS_MODEL, thinking={"type": "enabled", "budget_tokens": budget}
    )


def test_o2a_r20_reasoning_effort_none_means_no_thinking() -> None:
    body = upstream_body(req(user("q"), reasoning_effort="none", temperature=0.3))
    assert body == expected(turn("user", text("q")), temperature=0.3)


def test_o2a_r20_thinking_drops_sampling_params_and_forced_tool_choice() -> None:
    body = req(
        user("q"),
        reasoning_effort="low",
        temperature=0.2,
        top_p=0.5,
        tools=[function()],
        tool_choice={"type": "function", "function": {"name": "get"}},
        parallel_tool_calls=False,
    )
    assert upstream_body(body, upstream_model=BUDGETS_MODEL) == expected(
        turn("user", text("q")),
        model=BUDGETS_MODEL,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "get", "input_schema": _EMPTY}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )


@pytest.mark.parametrize(
    ("choice", "want"),
    [("required", {"type": "auto"}), ("auto", {"type": "auto"}), ("none", {"type": "none"})],
)
def test_o2a_r20_thinking_tool_choice(choice: str, want: dict[str, Any]) -> None:
    body = upstream_body(req(user("q"), reasoning_effort="medium", tools=[function()], tool_choice=choice))
    assert body["tool_choice"] == want


def test_o2a_r20_unknown_reasoning_effort_is_a_400() -> None:
    err = refused(req(user("q"), reasoning_effort="extreme"))
    assert str(err).startswith("reasoning_effort: expected one of none, ")


# ----------------------------------------------------------------------------- R21 stop

R21_CASES = [
    ("END", ["END"]),
    (["END", "STOP"], ["END", "STOP"]),
    ([" ", "\n", "END", "\t\n"], ["END"]),
    ("\n\n", None),
    ([], None),
    (None, None),
]


@pytest.mark.parametrize(("stop", "want"), R21_CASES)
def test_o2a_r21_stop_sequences_whitespace_dropped(stop: Any, want: list[str] | None) -> None:
    body = upstream_body(req(user("q"), stop=stop))
    if want is None:
        assert "stop_sequences" not in body
    else:
        assert body["stop_sequences"] == want


def test_o2a_r21_stop_with_non_string_is_a_400() -> None:
    assert str(refused(req(user("q"), stop=["a", 3]))) == "stop: expected a string or a list of strings"


# ----------------------------------------------------------------------------- R22 unsupported params

R22_REFUSED = [
    ({"n": 2}, "n: only one choice per request is supported by an Anthropic upstream"),
    ({"n": 5}, "n: only one choice per request is supported by an Anthropic upstream"),
    ({"logprobs": True}, "logprobs: logprobs are not available from an Anthropic upstream"),
    ({"top_logprobs": 3}, "top_logprobs: logprobs are not available from an Anthropic upstream"),
    (
        {"audio": {"voice": "alloy", "format": "wav"}},
        "audio: audio output is not available from an Anthropic upstream",
    ),
]


@pytest.mark.parametrize(("fields", "message"), R22_REFUSED)
def test_o2a_r22_n_and_logprobs_are_a_400_with_a_reason(fields: dict[str, Any], message: str) -> None:
    assert str(refused(req(user("q"), **fields))) == message


R22_DROPPED = {
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "seed": 42,
    "logit_bias": {"50256": -100},
    "service_tier": "flex",
    "store": True,
    "prompt_cache_key": "k1",
    "metadata": {"a": "b"},
    "modalities": ["text"],
    "prediction": {"type": "content", "content": "x"},
    "safety_identifier": "s",
    "verbosity": "low",
    "n": 1,
    "logprobs": False,
}


@pytest.mark.parametrize("field", list(R22_DROPPED))
def test_o2a_r22_openai_only_params_never_forwarded(field: str) -> None:
    assert upstream_body(req(user("q"), **{field: R22_DROPPED[field]})) == expected(turn("user", text("q")))


def test_o2a_r22_all_openai_only_params_together_never_forwarded() -> None:
    assert upstream_body(req(user("q"), **R22_DROPPED)) == expected(turn("user", text("q")))


# ----------------------------------------------------------------------------- R23 response_format

_ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_o2a_r23_json_schema_becomes_forced_json_answer_tool() -> None:
    body = req(
        user("q"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": _ANSWER_SCHEMA, "strict": True},
        },
    )
    prepared = prepare(body, upstream_model=NO_SCHEMA_MODEL)
    assert prepared.ctx.json_tool == "json_answer"
    assert orjson.loads(prepared.body) == expected(
        turn("user", text("q")),
        model=NO_SCHEMA_MODEL,
        tools=[
            {
                "name": "json_answer",
                "description": "Give the answer as this tool's input.",
                "input_schema": _ANSWER_SCHEMA,
            }
        ],
        tool_choice={"type": "tool", "name": "json_answer"},
    )


def test_o2a_r23_json_schema_next_to_client_tools() -> None:
    body = req(
        user("q"),
        tools=[function()],
        tool_choice="auto",
        response_format={"type": "json_schema", "json_schema": {"name": "a"}},
    )
    out = upstream_body(body, upstream_model=NO_SCHEMA_MODEL)
    assert out["tools"] == [
        {"name": "get", "input_schema": _EMPTY},
        {
            "name": "json_answer",
            "description": "Give the answer as this tool's input.",
            "input_schema": {"type": "object"},
        },
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "json_answer"}


def test_o2a_r23_json_object_becomes_system_instruction() -> None:
    body = req({"role": "system", "content": "S"}, user("q"), response_format={"type": "json_object"})
    assert upstream_body(body) == expected(
        turn("user", text("q")),
        system=[text("Respond with a single valid JSON object and nothing else."), text("S")],
    )


def test_o2a_r23_text_format_ignored() -> None:
    assert upstream_body(req(user("q"), response_format={"type": "text"})) == expected(
        turn("user", text("q"))
    )


# ----------------------------------------------------------------------------- R24 / R25

R24_CASES = [
    ("user-1234", {"user_id": "user-1234"}),
    ("6f1c2e0a-uuid", {"user_id": "6f1c2e0a-uuid"}),
    ("alice@example.com", None),
    ("+1 (555) 123-4567", None),
    ("5551234567", None),
    ("", None),
]


@pytest.mark.parametrize(("user_field", "metadata"), R24_CASES)
def test_o2a_r24_user_becomes_metadata_unless_email_or_phone(user_field: str, metadata: Any) -> None:
    body = upstream_body(req(user("q"), user=user_field))
    if metadata is None:
        assert "metadata" not in body
    else:
        assert body["metadata"] == metadata


R25_CASES = [(0, 0.0), (0.3, 0.3), (1, 1.0), (1.5, 1.0), (2, 1.0), (-0.5, 0.0)]


@pytest.mark.parametrize(("temperature", "want"), R25_CASES)
def test_o2a_r25_temperature_clamped_to_0_1(temperature: float, want: float) -> None:
    assert upstream_body(req(user("q"), temperature=temperature)) == expected(
        turn("user", text("q")), temperature=want
    )


def test_o2a_r25_top_p_passed_and_bad_numbers_refused() -> None:
    assert upstream_body(req(user("q"), top_p=0.9))["top_p"] == 0.9
    assert str(refused(req(user("q"), temperature="hot"))) == "temperature: expected a number"


# ----------------------------------------------------------------------------- R26 / R27 / R28


@pytest.mark.parametrize(
    ("options", "want"), [({"include_usage": True}, True), ({"include_usage": False}, False), (None, False)]
)
def test_o2a_r26_include_usage_reaches_the_context(options: Any, want: bool) -> None:
    extra = {"stream_options": options} if options is not None else {}
    prepared = prepare(req(user("q"), stream=True, **extra))
    assert prepared.ctx.include_usage is want
    assert orjson.loads(prepared.body) == expected(turn("user", text("q")), stream=True)


def test_o2a_r27_missing_model_left_to_the_proxy_default() -> None:
    """The dialect accepts a request without ``model``; the proxy (``App._completion``) fills in the
    configured default via ``resolve_model`` before routing. The HTTP level is tested in integration."""
    parsed = openai_chat.parse_request(orjson.dumps({"messages": [user("q")]}))
    assert parsed.model == ""
    assert resolve_model("", ModelRoutes(default="claude-sonnet-4-6")) == "claude-sonnet-4-6"
    assert resolve_model("gpt-4o", ModelRoutes(model_map={"gpt-4o": "claude-opus-4-8"})) == "claude-opus-4-8"


def test_o2a_r27_upstream_model_is_the_routed_one() -> None:
    assert upstream_body(req(user("q")))["model"] == UPSTREAM_MODEL


@pytest.mark.parametrize("options", [{}, {"search_context_size": "low"}])
def test_o2a_r28_web_search_options_become_web_search_tool(options: dict[str, Any]) -> None:
    body = upstream_body(req(user("q"), web_search_options=options, tools=[function()]))
    assert body["tools"] == [
        {"name": "get", "input_schema": _EMPTY},
        {"type": "web_search_20250305", "name": "web_search"},
    ]


def test_o2a_r28_web_search_alone() -> None:
    assert upstream_body(req(user("q"), web_search_options={})) == expected(
        turn("user", text("q")), tools=[{"type": "web_search_20250305", "name": "web_search"}]
    )


# ----------------------------------------------------------------------------- R29 cache breakpoints

EPHEMERAL = {"type": "ephemeral"}


def test_o2a_r29_auto_cache_on_system_tools_and_last_user_turn() -> None:
    body = req(
        {"role": "system", "content": "S1"},
        {"role": "system", "content": "S2"},
        user("q1"),
        assistant("a1"),
        user([text("q2"), text("q3")]),
        tools=[function("a"), function("b")],
    )
    assert upstream_body(body, auto_cache=True) == expected(
        turn("user", text("q1")),
        turn("assistant", text("a1")),
        turn("user", text("q2"), text("q3", cache_control=EPHEMERAL)),
        system=[text("S1"), text("S2", cache_control=EPHEMERAL)],
        tools=[
            {"name": "a", "input_schema": _EMPTY},
            {"name": "b", "input_schema": _EMPTY, "cache_control": EPHEMERAL},
        ],
    )


def test_o2a_r29_no_breakpoints_when_auto_cache_off() -> None:
    body = req({"role": "system", "content": "S"}, user("q"), tools=[function()])
    assert "cache_control" not in upstream_body(body, auto_cache=False).__repr__()


def test_o2a_r29_last_user_turn_before_a_prefill() -> None:
    body = req(user("q"), assistant("{"))
    assert upstream_body(body, auto_cache=True)["messages"] == [
        turn("user", text("q", cache_control=EPHEMERAL)),
        turn("assistant", text("{")),
    ]


def test_o2a_r29_last_user_turn_of_tool_results() -> None:
    body = req(user("q"), assistant(None, [call("c1")]), tool("c1", "r"), tools=[function()])
    out = upstream_body(body, auto_cache=True)
    assert out["messages"][0] == turn("user", text("q"))
    assert out["messages"][2] == turn(
        "user",
        {"type": "tool_result", "tool_use_id": "c1", "content": [text("r")], "cache_control": EPHEMERAL},
    )


def test_o2a_r29_client_cache_control_passed_through_and_counted() -> None:
    cc = {"type": "ephemeral", "ttl": "1h"}
    body = req(
        {"role": "system", "content": [text("S", cache_control=cc)]},
        user([text("a", cache_control=cc)]),
        assistant("x"),
        user([text("b", cache_control=cc)]),
        assistant("y"),
        user("last"),
        tools=[function()],
    )
    out = upstream_body(body, auto_cache=True)
    # 3 of the client's own + 1 of ours (the tools: the system block already had one) = 4
    assert out["system"] == [text("S", cache_control=cc)]
    assert out["tools"] == [{"name": "get", "input_schema": _EMPTY, "cache_control": EPHEMERAL}]
    assert out["messages"] == [
        turn("user", text("a", cache_control=cc)),
        turn("assistant", text("x")),
        turn("user", text("b", cache_control=cc)),
        turn("assistant", text("y")),
        turn("user", text("last")),
    ]
    assert orjson.dumps(out).count(b'"cache_control"') == 4


def test_o2a_r29_client_cache_control_kept_without_auto_cache() -> None:
    body = req(user([text("a", cache_control=EPHEMERAL)]))
    assert upstream_body(body) == expected(turn("user", text("a", cache_control=EPHEMERAL)))


def test_o2a_r29_never_more_than_four_breakpoints() -> None:
    cc = EPHEMERAL
    body = req(
        {"role": "system", "content": "S"},
        user(
            [
                text("1", cache_control=cc),
                text("2", cache_control=cc),
                text("3", cache_control=cc),
                text("4", cache_control=cc),
            ]
        ),
        assistant("x"),
        user("last"),
        tools=[function()],
    )
    out = upstream_body(body, auto_cache=True)
    assert orjson.dumps(out).count(b'"cache_control"') == 4
    assert out["system"] == [text("S")]
    assert out["tools"] == [{"name": "get", "input_schema": _EMPTY}]


def test_o2a_r29_request_is_unchanged_by_building_it_twice() -> None:
    """The proxy may rebuild a body (a retry): the breakpoints must not accumulate in the IR."""
    prepared = prepare(
        req({"role": "system", "content": "S"}, user("q"), web_search_options={}), auto_cache=True
    )
    _, again = anthropic_messages.build_request(prepared.request, prepared.ctx)
    assert again == prepared.body
    assert orjson.dumps(orjson.loads(again)).count(b'"cache_control"') == 3


# ------------------------------------------------------------- M26: the models of 2026 (models.py)


def test_m26_02_m26_05_reasoning_effort_on_opus_4_8_is_adaptive_thinking_shown_summarized() -> None:
    """The headline 400 of 2026: ``"thinking.type.enabled" is not supported for this model``. An
    OpenAI client's ``reasoning_effort`` becomes adaptive thinking plus ``output_config.effort``, shown
    summarized (M26-05: these models omit it otherwise, and the client asked to see reasoning)."""
    body = upstream_body(
        req(user("q"), reasoning_effort="high", max_tokens=2000), upstream_model="claude-opus-4-8"
    )
    assert body["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert body["output_config"] == {"effort": "high"}
    assert body["max_tokens"] == 2000  # no budget to fit under it


def test_m26_04_effort_the_4_6_models_refuse_is_never_sent_there() -> None:
    body = upstream_body(req(user("q"), reasoning_effort="xhigh"), upstream_model="claude-sonnet-4-6")
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "high"}


def test_m26_01_an_effort_on_a_4_6_model_is_adaptive_thinking_at_that_effort() -> None:
    """Adaptive where the model has it, even when it still takes budgets (4.6: "enabled" is deprecated);
    its thinking is shown by default, so no display is asked."""
    body = upstream_body(req(user("q"), reasoning_effort="low"), upstream_model="claude-opus-4-6")
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}


def test_m26_04_opus_4_5_has_budgets_and_effort_both() -> None:
    body = upstream_body(req(user("q"), reasoning_effort="xhigh"), upstream_model="claude-opus-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["output_config"] == {"effort": "high"}  # low, medium, high: the nearest lower value


_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


@pytest.mark.parametrize("effort", [None, "high"])
def test_m26_07_json_schema_is_output_config_format_where_supported(effort: str | None) -> None:
    """Structured outputs (no forced tool), with or without thinking: the two coexist (M26-07)."""
    extra = {"reasoning_effort": effort} if effort else {}
    prepared = prepare(
        req(user("q"), response_format=_SCHEMA_FORMAT, **extra), upstream_model="claude-opus-4-8"
    )
    body = orjson.loads(prepared.body)
    assert prepared.ctx.json_tool is None and "tools" not in body and "tool_choice" not in body
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": {"type": "object"}}
    assert ("effort" in body["output_config"]) is (effort is not None)


def test_m26_07_the_emulation_with_thinking_on_is_never_a_forced_tool() -> None:
    body = upstream_body(
        req(user("q"), response_format=_SCHEMA_FORMAT, reasoning_effort="low"), upstream_model=NO_SCHEMA_MODEL
    )
    assert body["tools"][-1]["name"] == "json_answer" and body["tool_choice"] == {"type": "auto"}


def test_m26_03_sampling_parameters_are_not_sent_to_opus_4_8(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="rawproxy")
    for _ in range(3):
        body = upstream_body(
            req(user("q"), temperature=0.2, top_p=0.9), upstream_model="claude-opus-4-8-m26-03"
        )
        assert "temperature" not in body and "top_p" not in body and "thinking" not in body
    said = [r for r in caplog.records if "claude-opus-4-8-m26-03" in r.getMessage()]
    assert len(said) == 1  # once per model, not per request
    kept = upstream_body(
        req(user("q"), temperature=0.2, top_p=0.9), upstream_model="claude-3-7-sonnet-latest"
    )
    assert (kept["temperature"], kept["top_p"]) == (0.2, 0.9)


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5", "claude-opus-4-1"]
)
def test_m26_03_temperature_and_top_p_together_keep_the_temperature(
    model: str, caplog: pytest.LogCaptureFixture
) -> None:
    """From Opus 4.1 to the 4.6 models the pair is refused ("`temperature` and `top_p` cannot both be
    specified for this model. Please use only one.", BerriAI/litellm#15097): the temperature is kept,
    the more common knob; either alone goes through."""
    caplog.set_level("INFO", logger="rawproxy")
    model += "-pair-test"  # a name no other test sends: the log line is said once per model
    for _ in range(2):
        body = upstream_body(req(user("q"), temperature=0.2, top_p=0.9), upstream_model=model)
        assert body["temperature"] == 0.2 and "top_p" not in body
    assert upstream_body(req(user("q"), top_p=0.9), upstream_model=model)["top_p"] == 0.9
    assert sum("not both" in r.getMessage() and model in r.getMessage() for r in caplog.records) == 1


def test_m26_06_fable_thinks_unasked_so_a_forced_tool_becomes_auto_and_disabled_is_never_sent() -> None:
    body = upstream_body(
        req(user("q"), tools=[function()], tool_choice="required", reasoning_effort="none"),
        upstream_model="claude-fable-1-0",
    )
    assert "thinking" not in body  # never {"type": "disabled"}: Fable refuses it
    assert body["tool_choice"] == {"type": "auto"}  # a forced tool is refused while it thinks
