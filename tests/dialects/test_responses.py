"""The OpenAI Responses API client dialect (``rawproxy.dialects.openai_responses.client``), unit by unit.

Three parts, each pure (no proxy, no network):

- ``parse_request_data``: a Responses request -> ``ir.Request`` (and ``echo``), and every 400 it raises,
  each naming the field at fault.
- ``build_response``: ``ir.Response`` -> the whole answer, validated against the official SDK's
  ``openai.types.responses.Response``.
- ``StreamEncoder``: IR stream events -> Responses SSE events. Every event is parsed back from the bytes,
  checked for numbering, naming and the output-item lifecycle (added before its deltas, done before the
  end, ids stable), and validated against the SDK's ``ResponseStreamEvent`` union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import orjson
import pydantic
import pytest

from rawproxy import ir
from rawproxy.dialects import openai_responses
from rawproxy.dialects.openai_responses import (
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL_NAME,
    StreamEncoder,
    build_response,
    parse_request,
    parse_request_data,
)
from rawproxy.errors import ClientError

openai_types = pytest.importorskip("openai.types.responses")

MODEL = "gpt-5"
UPSTREAM = "claude-sonnet-4-6"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF_B64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
NAMESPACE = {
    "type": "namespace",
    "name": "mcp_files",
    "description": "File tools",
    "tools": [
        {"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "write", "description": "Write a file"},
    ],
}
EVENT_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(openai_types.ResponseStreamEvent)
# The SDK's event class of each event type, for readable validation errors (the union lists every member).
EVENT_CLASSES: dict[str, Any] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(openai_types.ResponseStreamEvent)[0])
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


# ============================================================================================ helpers


def parse(**fields: Any) -> ir.Request:
    data: dict[str, Any] = {"model": MODEL, "input": "hi", **fields}
    return parse_request_data(data)


def items(*entries: dict[str, Any], **fields: Any) -> ir.Request:
    return parse(input=list(entries), **fields)


def msg(role: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content, **extra}


def fcall(
    call_id: str, name: str = "get_weather", arguments: str = '{"city": "Paris"}', **extra: Any
) -> dict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments, **extra}


def fout(call_id: str, output: Any = "sunny") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def reasoning(*texts: str, encrypted: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": t} for t in texts],
    }
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def roles(request: ir.Request) -> list[str]:
    return [m.role for m in request.messages]


def refused(match: str, **fields: Any) -> ClientError:
    """The request is refused with a 400 invalid_request_error whose message matches ``match``."""
    with pytest.raises(ClientError, match=match) as exc:
        parse(**fields)
    assert exc.value.info.status == 400
    assert exc.value.info.type is ir.ErrorType.INVALID_REQUEST
    return exc.value


def context(request: ir.Request | None = None) -> ir.Context:
    request = request if request is not None else parse()
    json_tool = JSON_TOOL_NAME if request.response_schema is not None else None  # the emulation's
    return ir.Context(client_model=MODEL, upstream_model=UPSTREAM, echo=request.echo, json_tool=json_tool)


def answer(
    content: list[ir.Block],
    request: ir.Request | None = None,
    *,
    stop: ir.StopReason = ir.StopReason.END_TURN,
    usage: ir.Usage | None = None,
) -> dict[str, Any]:
    """``build_response`` of an answer with ``content``, checked against the SDK's ``Response`` model."""
    ctx = context(request)
    resp = ir.Response(
        id="msg_up", model=UPSTREAM, content=content, stop_reason=stop, usage=usage or ir.Usage()
    )
    body = orjson.loads(build_response(resp, ctx))
    parsed = openai_types.Response.model_validate(body)
    assert parsed.id == body["id"]
    assert len(parsed.output) == len(body["output"])
    return body


def frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """SSE bytes -> (event name, JSON data) per frame; every frame is exactly ``event:`` and ``data:``."""
    assert raw == b"" or raw.endswith(b"\n\n"), raw[-40:]
    out: list[tuple[str, dict[str, Any]]] = []
    for chunk in raw.split(b"\n\n"):
        if not chunk:
            continue
        lines = chunk.split(b"\n")
        assert len(lines) == 2, chunk
        assert lines[0].startswith(b"event: "), chunk
        assert lines[1].startswith(b"data: "), chunk
        out.append((lines[0][len(b"event: ") :].decode(), orjson.loads(lines[1][len(b"data: ") :])))
    return out


@dataclass
class Stream:
    events: list[dict[str, Any]]
    encoder: StreamEncoder
    ctx: ir.Context

    @property
    def names(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of(kind)
        assert len(found) == 1, (kind, self.names)
        return found[0]

    @property
    def end(self) -> dict[str, Any]:
        assert self.events[-1]["type"] in TERMINAL, self.names
        return self.events[-1]["response"]

    def done_items(self) -> list[dict[str, Any]]:
        return [e["item"] for e in self.of("response.output_item.done")]


def check_events(parsed: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Numbering, naming, SDK validity and the output-item lifecycle of a whole stream."""
    events = [data for _, data in parsed]
    assert [data["sequence_number"] for data in events] == list(range(len(events)))
    for name, data in parsed:
        assert data["type"] == name
        assert name in EVENT_CLASSES, f"{name} is not an event type of the SDK"
        EVENT_CLASSES[name].model_validate(data)
        model = EVENT_ADAPTER.validate_python(data)
        assert model.type == name  # validated as the SDK's event of that very type
    assert events[0]["type"] == "response.created"
    assert events[1]["type"] == "response.in_progress"
    response_id = events[0]["response"]["id"]
    added: dict[int, str] = {}
    done: dict[int, dict[str, Any]] = {}
    ended = False
    for data in events:
        assert not ended, f"{data['type']} after the end of the stream"
        kind = data["type"]
        if "response" in data:
            assert data["response"]["id"] == response_id
        if kind == "response.output_item.added":
            index = data["output_index"]
            assert index == len(added), "output indexes are consecutive from 0"
            added[index] = data["item"]["id"]
        elif kind == "response.output_item.done":
            index = data["output_index"]
            assert added.get(index) == data["item"]["id"], "done for an item never added (or a new id)"
            assert index not in done, "an item done twice"
            done[index] = data["item"]
        elif "item_id" in data:
            index = data["output_index"]
            assert added.get(index) == data["item_id"], f"{kind} before its item, or for another id"
            assert index not in done, f"{kind} after its item was done"
        elif kind in ("response.completed", "response.incomplete"):
            ended = True
            assert set(done) == set(added), "the stream ended with items not done"
            assert data["response"]["output"] == [done[i] for i in sorted(done)]
        elif kind == "response.failed":
            ended = True
            assert [item["id"] for item in data["response"]["output"]] == [added[i] for i in sorted(added)]
    return events


def run(events: list[ir.StreamEvent], request: ir.Request | None = None, *, start: bool = True) -> Stream:
    ctx = context(request)
    encoder = StreamEncoder(ctx)
    raw = encoder.start() if start else b""
    for ev in events:
        raw += encoder.encode(ev)
    return Stream(check_events(frames(raw)), encoder, ctx)


def text_block(index: int, *chunks: str) -> list[ir.StreamEvent]:
    return [
        ir.BlockStart(index, ir.TextBlock(text="")),
        *(ir.TextDelta(index, c) for c in chunks),
        ir.BlockStop(index),
    ]


def thinking_block(index: int, *chunks: str, signature: str | None = None) -> list[ir.StreamEvent]:
    out: list[ir.StreamEvent] = [ir.BlockStart(index, ir.ThinkingBlock(thinking="", signature=""))]
    out += [ir.ThinkingDelta(index, c) for c in chunks]
    if signature is not None:
        out.append(ir.SignatureDelta(index, signature))
    out.append(ir.BlockStop(index))
    return out


def tool_block(index: int, call_id: str, name: str, *fragments: str) -> list[ir.StreamEvent]:
    return [
        ir.BlockStart(index, ir.ToolUseBlock(id=call_id, name=name, input={})),
        *(ir.InputJsonDelta(index, f) for f in fragments),
        ir.BlockStop(index),
    ]


def message(
    *blocks: list[ir.StreamEvent],
    stop: ir.StopReason = ir.StopReason.END_TURN,
    usage: ir.Usage | None = None,
    start_usage: ir.Usage | None = None,
) -> list[ir.StreamEvent]:
    out: list[ir.StreamEvent] = [ir.MessageStart("msg_up", UPSTREAM, start_usage or ir.Usage())]
    for block in blocks:
        out += block
    out += [ir.MessageDelta(stop, None, usage or ir.Usage()), ir.MessageStop()]
    return out


# ====================================================================================== 1. requests


def test_package_exports_the_client_dialect() -> None:
    assert openai_responses.PATHS == ("/v1/responses",)
    assert openai_responses.parse_request_data is parse_request_data
    assert openai_responses.StreamEncoder is StreamEncoder


def test_input_string_is_one_user_message() -> None:
    request = parse(input="Hello there")
    assert request.model == MODEL
    assert request.messages == [ir.Message(role="user", content=[ir.TextBlock(text="Hello there")])]
    assert request.system == []
    assert request.tools == []
    assert request.tool_choice is None
    assert request.thinking is None
    assert request.stream is False


def test_parse_request_from_bytes() -> None:
    request = parse_request(orjson.dumps({"model": MODEL, "input": "hi", "stream": True}))
    assert request.stream is True
    assert request.messages[0].content == [ir.TextBlock(text="hi")]
    with pytest.raises(ClientError, match="not valid JSON"):
        parse_request(b"{nope")
    with pytest.raises(ClientError, match="must be a JSON object"):
        parse_request(b"[1]")


def test_count_tokens_never_streams() -> None:
    assert (
        parse_request_data({"model": MODEL, "input": "hi", "stream": True}, count_tokens=True).stream is False
    )


def test_message_content_as_a_string() -> None:
    request = items(msg("user", "question"), msg("assistant", "answer"), msg("user", "again"))
    assert roles(request) == ["user", "assistant", "user"]
    assert [m.content for m in request.messages] == [
        [ir.TextBlock(text="question")],
        [ir.TextBlock(text="answer")],
        [ir.TextBlock(text="again")],
    ]


def test_message_content_text_parts() -> None:
    request = items(
        msg("user", [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]),
        msg(
            "assistant",
            [
                {"type": "output_text", "text": "c", "annotations": []},
                {"type": "refusal", "refusal": "I can't"},
            ],
        ),
    )
    assert request.messages[0].content == [ir.TextBlock(text="a"), ir.TextBlock(text="b")]
    assert request.messages[1] == ir.Message(
        role="assistant", content=[ir.TextBlock(text="c"), ir.TextBlock(text="I can't")]
    )


def test_system_and_developer_messages_are_system_turns() -> None:
    request = items(
        msg("developer", [{"type": "input_text", "text": "be terse"}]),
        msg("system", "be kind"),
        msg("user", "hi"),
    )
    assert roles(request) == ["system", "system", "user"]
    assert request.messages[0].content == [ir.TextBlock(text="be terse")]
    assert request.messages[1].content == [ir.TextBlock(text="be kind")]


def test_input_image_data_url() -> None:
    part = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "auto"}
    request = items(msg("user", [{"type": "input_text", "text": "what?"}, part]))
    assert request.messages[0].content == [
        ir.TextBlock(text="what?"),
        ir.ImageBlock(media_type="image/png", data=PNG_B64),
    ]


def test_input_image_http_url() -> None:
    request = items(msg("user", [{"type": "input_image", "image_url": "https://example.com/cat.jpg"}]))
    assert request.messages[0].content == [ir.ImageBlock(url="https://example.com/cat.jpg")]


def test_input_file_base64_pdf() -> None:
    part = {
        "type": "input_file",
        "filename": "report.pdf",
        "file_data": f"data:application/pdf;base64,{PDF_B64}",
    }
    request = items(msg("user", [part]))
    assert request.messages[0].content == [
        ir.DocumentBlock(media_type="application/pdf", data=PDF_B64, title="report")
    ]


def test_input_file_url() -> None:
    part = {"type": "input_file", "file_url": "https://example.com/a.pdf", "filename": "a.pdf"}
    request = items(msg("user", [part]))
    assert request.messages[0].content == [ir.DocumentBlock(url="https://example.com/a.pdf", title="a.pdf")]


def test_item_without_type_but_with_role_is_a_message() -> None:
    request = items({"role": "user", "content": "no type"}, {"role": "assistant", "content": "fine"})
    assert roles(request) == ["user", "assistant"]
    assert request.messages[0].content == [ir.TextBlock(text="no type")]


def test_function_call_joins_the_preceding_assistant_turn() -> None:
    request = items(
        msg("user", "weather?"),
        msg("assistant", "Let me look."),
        fcall("call_1", arguments='{"city": "Paris"}'),
        fcall("call_2", arguments='{"city": "Rome"}'),
    )
    assert roles(request) == ["user", "assistant"]
    assert request.messages[1].content == [
        ir.TextBlock(text="Let me look."),
        ir.ToolUseBlock(id="call_1", name="get_weather", input={"city": "Paris"}),
        ir.ToolUseBlock(id="call_2", name="get_weather", input={"city": "Rome"}),
    ]


def test_function_call_after_a_user_turn_opens_an_assistant_turn() -> None:
    request = items(msg("user", "weather?"), fcall("call_1", arguments=""))
    assert roles(request) == ["user", "assistant"]
    assert request.messages[1].content == [ir.ToolUseBlock(id="call_1", name="get_weather", input={})]


def test_function_call_with_a_namespace_is_flattened() -> None:
    request = items(
        msg("user", "read it"), fcall("call_1", name="read", arguments="{}", namespace="mcp_files")
    )
    block = request.messages[1].content[0]
    assert isinstance(block, ir.ToolUseBlock)
    assert block.name == "mcp_files__read"


def test_consecutive_function_call_outputs_are_one_user_turn() -> None:
    request = items(
        msg("user", "weather?"),
        fcall("call_1"),
        fcall("call_2"),
        fout("call_1", "sunny"),
        fout("call_2", [{"type": "input_text", "text": "rainy"}]),
    )
    assert roles(request) == ["user", "assistant", "user"]
    assert request.messages[2].content == [
        ir.ToolResultBlock(tool_use_id="call_1", content=[ir.TextBlock(text="sunny")]),
        ir.ToolResultBlock(tool_use_id="call_2", content=[ir.TextBlock(text="rainy")]),
    ]


def test_function_call_output_with_an_image_and_without_output() -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"}
    request = items(msg("user", "go"), fcall("call_1"), fout("call_1", [image]), fout("call_2", None))
    assert request.messages[2].content == [
        ir.ToolResultBlock(
            tool_use_id="call_1", content=[ir.ImageBlock(media_type="image/png", data=PNG_B64)]
        ),
        ir.ToolResultBlock(tool_use_id="call_2", content=[ir.TextBlock(text="")]),
    ]


def test_user_message_after_tool_outputs_joins_their_turn() -> None:
    request = items(msg("user", "go"), fcall("call_1"), fout("call_1"), msg("user", "and now?"))
    assert roles(request) == ["user", "assistant", "user"]
    assert request.messages[2].content == [
        ir.ToolResultBlock(tool_use_id="call_1", content=[ir.TextBlock(text="sunny")]),
        ir.TextBlock(text="and now?"),
    ]


def test_function_call_output_after_user_text_is_a_new_user_turn() -> None:
    request = items(msg("user", "plain"), fout("call_1"))
    assert roles(request) == ["user", "user"]
    assert request.messages[1].content == [
        ir.ToolResultBlock(tool_use_id="call_1", content=[ir.TextBlock(text="sunny")])
    ]


def test_reasoning_opens_a_new_assistant_turn() -> None:
    request = items(
        msg("user", "q1"),
        msg("assistant", "a1"),
        reasoning("first", "second", encrypted="anthropic-signature:sig-abc"),
        msg("assistant", "a2"),
        fcall("call_1"),
    )
    assert roles(request) == ["user", "assistant", "assistant"]
    assert request.messages[1].content == [ir.TextBlock(text="a1")]
    assert request.messages[2].content == [
        ir.ThinkingBlock(thinking="first\n\nsecond", signature="sig-abc"),
        ir.TextBlock(text="a2"),
        ir.ToolUseBlock(id="call_1", name="get_weather", input={"city": "Paris"}),
    ]


def test_reasoning_after_tool_outputs_opens_the_next_assistant_turn() -> None:
    request = items(
        msg("user", "q"),
        reasoning("plan"),
        fcall("call_1"),
        fout("call_1"),
        reasoning("conclude"),
        msg("assistant", "done"),
    )
    assert roles(request) == ["user", "assistant", "user", "assistant"]
    assert request.messages[1].content[0] == ir.ThinkingBlock(thinking="plan", signature=None)
    assert request.messages[3].content == [ir.ThinkingBlock(thinking="conclude"), ir.TextBlock(text="done")]


def test_reasoning_redacted_encrypted_content() -> None:
    request = items(
        msg("user", "q"), reasoning(encrypted="anthropic-redacted:opaque-data"), msg("assistant", "a")
    )
    assert request.messages[1].content == [
        ir.RedactedThinkingBlock(data="opaque-data"),
        ir.TextBlock(text="a"),
    ]


def test_reasoning_encrypted_content_not_ours_is_no_signature() -> None:
    """OpenAI's own encrypted reasoning (or anything without our prefix) is never sent as a signature."""
    request = items(msg("user", "q"), reasoning("t", encrypted="gAAAAABopaque-openai-blob"))
    assert request.messages[1].content == [ir.ThinkingBlock(thinking="t", signature=None)]


def test_reasoning_max_effort_is_the_largest_budget() -> None:
    from rawproxy.dialects.openai_responses import EFFORTS

    thinking = parse(reasoning={"effort": "max"}).thinking
    assert thinking is not None and thinking.budget_tokens == max(EFFORTS.values())


def test_reasoning_empty_encrypted_content_is_no_signature() -> None:
    request = items(msg("user", "q"), reasoning("t", encrypted=""))
    assert request.messages[1].content == [ir.ThinkingBlock(thinking="t", signature=None)]


def test_web_search_call_history_items_are_skipped() -> None:
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}}
    request = items(msg("user", "news?"), search, msg("assistant", "Here."))
    assert roles(request) == ["user", "assistant"]
    assert request.messages[1].content == [ir.TextBlock(text="Here.")]


def test_instructions_are_the_system_prompt() -> None:
    request = parse(instructions="You are helpful.")
    assert request.system == [ir.TextBlock(text="You are helpful.")]
    assert request.echo["instructions"] == "You are helpful."
    assert parse(instructions="").system == []


def test_function_tools() -> None:
    request = parse(tools=[WEATHER, {"type": "function", "name": "noop"}])
    assert request.tools == [
        ir.Tool(name="get_weather", description="Weather for a city", input_schema=WEATHER["parameters"]),
        ir.Tool(name="noop", input_schema={"type": "object", "properties": {}}),
    ]


def test_namespace_tools_are_flattened_and_recorded() -> None:
    request = parse(tools=[WEATHER, NAMESPACE])
    assert [t.name for t in request.tools] == ["get_weather", "mcp_files__read", "mcp_files__write"]
    assert request.tools[2].description == "Write a file"
    assert request.echo["namespaces"] == {
        "mcp_files__read": ("mcp_files", "read"),
        "mcp_files__write": ("mcp_files", "write"),
    }
    assert request.echo["tools"] == [WEATHER, NAMESPACE]  # echoed as the client sent them


def test_web_search_tool_is_anthropics_server_tool() -> None:
    for kind in ("web_search", "web_search_preview"):
        request = parse(tools=[{"type": kind}])
        assert request.tools == [
            ir.Tool(
                name="web_search",
                server_type="web_search_20250305",
                raw={"type": "web_search_20250305", "name": "web_search"},
            )
        ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", ir.ToolChoice(type="auto")),
        ("none", ir.ToolChoice(type="none")),
        ("required", ir.ToolChoice(type="any")),
        ({"type": "function", "name": "get_weather"}, ir.ToolChoice(type="tool", name="get_weather")),
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
            ir.ToolChoice(type="any"),
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": []}, None),
        ({"type": "web_search"}, ir.ToolChoice(type="tool", name="web_search")),
        (None, None),
    ],
)
def test_tool_choice(value: Any, expected: ir.ToolChoice | None) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER]}
    if value is not None:
        fields["tool_choice"] = value
    request = parse(**fields)
    assert request.tool_choice == expected
    assert request.echo["tool_choice"] == (value if value is not None else "auto")


def test_parallel_tool_calls_false_disables_parallel() -> None:
    assert parse(tools=[WEATHER], parallel_tool_calls=False).tool_choice == ir.ToolChoice(
        type="auto", disable_parallel=True
    )
    assert parse(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False).tool_choice == (
        ir.ToolChoice(type="any", disable_parallel=True)
    )
    assert parse(tools=[WEATHER], parallel_tool_calls=True).tool_choice is None
    assert parse(parallel_tool_calls=False).echo["parallel_tool_calls"] is False
    assert parse().echo["parallel_tool_calls"] is True


@pytest.mark.parametrize(
    ("effort", "budget"), [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)]
)
def test_reasoning_effort_is_a_thinking_budget(effort: str, budget: int) -> None:
    request = parse(reasoning={"effort": effort, "summary": "auto"})
    assert request.thinking == ir.ThinkingConfig(type="enabled", budget_tokens=budget, effort=effort)
    assert request.thinking_enabled
    assert request.echo["reasoning"] == {"effort": effort, "summary": "auto"}


def test_reasoning_none_or_absent_is_no_thinking() -> None:
    assert parse(reasoning={"effort": "none"}).thinking is None
    assert parse(reasoning={"summary": "auto"}).thinking is None
    assert parse(reasoning=None).thinking is None
    assert parse().thinking is None
    assert parse().echo["reasoning"] == {"effort": None, "summary": None}


def test_text_format_json_schema_is_the_requests_response_schema() -> None:
    """The upstream decides how it travels (natively, or as a forced tool: test_o2a_request R23/M26-07);
    the client's own tools and tool_choice are left as they were."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "name": "count", "schema": schema, "strict": True}
    request = parse(tools=[WEATHER], tool_choice="auto", text={"format": fmt})
    assert request.response_schema == ir.ResponseSchema(schema=schema, name="count", strict=True)
    assert [t.name for t in request.tools] == ["get_weather"]
    assert request.tool_choice == ir.ToolChoice(type="auto")
    assert request.echo["text"] == {"format": fmt}


def test_text_format_json_object_is_an_instruction() -> None:
    request = parse(instructions="Be brief.", text={"format": {"type": "json_object"}})
    assert request.system == [ir.TextBlock(text="Be brief."), ir.TextBlock(text=JSON_OBJECT_INSTRUCTION)]
    assert request.response_schema is None
    assert request.tools == []


def test_text_format_text_changes_nothing() -> None:
    request = parse(text={"format": {"type": "text"}, "verbosity": "low"})
    assert request.system == []
    assert request.response_schema is None
    assert parse().echo["text"] == {"format": {"type": "text"}}


def test_max_output_tokens() -> None:
    request = parse(max_output_tokens=256)
    assert request.max_tokens == 256
    assert request.echo["max_output_tokens"] == 256
    assert parse().max_tokens is None


def test_sampling_parameters() -> None:
    request = parse(temperature=0.5, top_p=1)
    assert request.temperature == 0.5
    assert request.top_p == 1.0
    assert request.echo["temperature"] == 0.5


def test_include_encrypted_reasoning() -> None:
    assert parse(include=["reasoning.encrypted_content"]).echo["encrypted_reasoning"] is True
    assert parse(include=["message.output_text.logprobs"]).echo["encrypted_reasoning"] is False
    assert parse().echo["encrypted_reasoning"] is False


def test_store_false() -> None:
    assert parse(store=False).echo["store"] is False
    assert parse(store=True).echo["store"] is True
    assert parse().echo["store"] is True


def test_echo_of_the_request() -> None:
    request = parse(
        metadata={"k": "v"},
        previous_response_id="resp_prev",
        truncation="auto",
        user="user-42",
        prompt_cache_key="cache-1",
    )
    echo = request.echo
    assert echo["id"].startswith("resp_")
    assert isinstance(echo["created_at"], int)
    assert echo["metadata"] == {"k": "v"}
    assert echo["previous_response_id"] == "resp_prev"
    assert echo["truncation"] == "auto"
    assert echo["user"] == "user-42"
    assert echo["prompt_cache_key"] == "cache-1"
    assert request.user_id == "user-42"
    assert parse().echo["id"] != echo["id"]


def test_user_id_is_never_an_email_or_a_phone() -> None:
    assert parse(safety_identifier="someone@example.com").user_id is None
    assert parse(user="+1 555 123 4567").user_id is None
    assert parse(safety_identifier="hashed-id", user="other").user_id == "hashed-id"


def test_codex_style_request() -> None:
    """The shape the Codex CLI sends on every turn."""
    request = parse(
        instructions="You are Codex.",
        input=[
            msg("developer", [{"type": "input_text", "text": "<permissions>"}]),
            msg("user", [{"type": "input_text", "text": "list files"}]),
        ],
        tools=[WEATHER, {"type": "web_search", "external_web_access": False}, NAMESPACE],
        tool_choice="auto",
        parallel_tool_calls=False,
        reasoning={"effort": "medium", "summary": "auto"},
        store=False,
        stream=True,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="thread-1",
    )
    assert request.stream is True
    assert request.system == [ir.TextBlock(text="You are Codex.")]
    assert roles(request) == ["system", "user"]
    assert [t.name for t in request.tools] == [
        "get_weather",
        "web_search",
        "mcp_files__read",
        "mcp_files__write",
    ]
    assert request.tool_choice == ir.ToolChoice(type="auto", disable_parallel=True)
    assert request.thinking is not None and request.thinking.budget_tokens == 2048
    assert request.echo["store"] is False
    assert request.echo["encrypted_reasoning"] is True


# ================================================================================ 2. request errors


def test_input_missing() -> None:
    with pytest.raises(ClientError, match=r"^input: field required"):
        parse_request_data({"model": MODEL})


def test_input_wrong_type() -> None:
    refused(r"^input: field required \(a string or a list of items\)", input=42)
    refused(r"^input: field required", input={"role": "user", "content": "hi"})


def test_input_empty_list() -> None:
    refused(r"^input: at least one item is required", input=[])


def test_input_only_history_items_is_empty() -> None:
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    refused(r"^input: at least one item is required", input=[search])


def test_input_item_not_an_object() -> None:
    refused(r"^input\[1\]: expected an object", input=[msg("user", "hi"), "hello"])


def test_input_item_unknown_type() -> None:
    refused(
        r"^input\[0\]\.type: unsupported input item 'file_search_call'", input=[{"type": "file_search_call"}]
    )
    refused(r"^input\[0\]\.type: unsupported input item None", input=[{"content": "no role, no type"}])


def test_input_item_reference() -> None:
    refused(
        r"^input\[0\]: item references are not supported", input=[{"type": "item_reference", "id": "msg_1"}]
    )


def test_message_unknown_role() -> None:
    refused(r"^input\[0\]\.role: unknown role 'tool'", input=[msg("tool", "x")])
    refused(r"^input\[0\]\.role: unknown role None", input=[{"type": "message", "content": "x"}])


def test_message_content_wrong_type() -> None:
    refused(r"^input\[0\]\.content: expected a string or a list", input=[msg("user", 42)])
    refused(r"^input\[0\]\.content\[0\]: expected an object", input=[msg("user", ["text"])])
    refused(
        r"^input\[0\]\.content\[0\]\.text: expected a string", input=[msg("user", [{"type": "input_text"}])]
    )


def test_function_call_without_name() -> None:
    item = {"type": "function_call", "call_id": "call_1", "arguments": "{}"}
    refused(r"^input\[1\]\.name: field required", input=[msg("user", "go"), item])


def test_function_call_without_call_id() -> None:
    item = {"type": "function_call", "name": "get_weather", "arguments": "{}"}
    refused(r"^input\[1\]\.call_id: field required", input=[msg("user", "go"), item])
    refused(r"^input\[1\]\.call_id: field required", input=[msg("user", "go"), {**item, "call_id": ""}])


def test_function_call_output_without_call_id() -> None:
    refused(
        r"^input\[2\]\.call_id: field required",
        input=[msg("user", "go"), fcall("call_1"), {"type": "function_call_output", "output": "x"}],
    )


def test_function_call_output_bad_output() -> None:
    refused(r"^input\[1\]\.output: expected a string or a list", input=[msg("user", "go"), fout("call_1", 3)])


def test_bad_content_part_type() -> None:
    refused(
        r"^input\[0\]\.content\[1\]\.type: unsupported content part 'video'",
        input=[msg("user", [{"type": "input_text", "text": "see"}, {"type": "video", "url": "x"}])],
    )


def test_input_audio() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    refused(r"^input\[0\]\.content\[0\]: audio input is not supported", input=[msg("user", [part])])


def test_input_image_with_only_a_file_id() -> None:
    part = {"type": "input_image", "file_id": "file-123", "detail": "auto"}
    refused(r"^input\[0\]\.content\[0\]: file ids are not supported", input=[msg("user", [part])])


def test_input_image_bad_urls() -> None:
    refused(
        r"input\[0\]\.content\[0\]\.image_url\.url: expected a URL",
        input=[msg("user", [{"type": "input_image"}])],
    )
    refused(
        r"input\[0\]\.content\[0\]\.image_url\.url: a data URL must be base64",
        input=[msg("user", [{"type": "input_image", "image_url": "data:image/png,raw"}])],
    )
    refused(
        r"input\[0\]\.content\[0\]: image type image/tiff is not supported",
        input=[msg("user", [{"type": "input_image", "image_url": "data:image/tiff;base64,AAAA"}])],
    )


def test_input_file_bad_data() -> None:
    refused(
        r"input\[0\]\.content\[0\]\.file: only inline file_data",
        input=[msg("user", [{"type": "input_file", "file_id": "file-1"}])],
    )
    refused(
        r"input\[0\]\.content\[0\]\.file: application/zip files are not supported",
        input=[msg("user", [{"type": "input_file", "file_data": "data:application/zip;base64,UEsDBA=="}])],
    )


def test_reasoning_item_bad_summary() -> None:
    refused(
        r"^input\[1\]\.summary: expected a list",
        input=[msg("user", "q"), {"type": "reasoning", "summary": "x"}],
    )


@pytest.mark.parametrize(
    "kind",
    [
        "file_search",
        "code_interpreter",
        "computer_use_preview",
        "mcp",
        "image_generation",
        "apply_patch",
    ],
)
def test_hosted_tools_are_refused_by_name(kind: str) -> None:
    error = refused(
        rf"^tools\[1\]\.type: .*\('{kind}'\) is not supported by this proxy", tools=[WEATHER, {"type": kind}]
    )
    assert kind in str(error)


def test_unknown_tool_type() -> None:
    refused(r"^tools\[0\]\.type: unsupported tool type 'teleport'", tools=[{"type": "teleport"}])


def test_tools_not_a_list() -> None:
    refused(r"^tools: expected a list", tools=WEATHER)
    refused(r"^tools\[0\]: expected an object", tools=["get_weather"])


def test_function_tool_errors() -> None:
    refused(r"^tools\[0\]\.name: expected a string", tools=[{"type": "function"}])
    refused(
        r"^tools\[0\]\.parameters: expected an object",
        tools=[{"type": "function", "name": "f", "parameters": []}],
    )


def test_namespace_tool_errors() -> None:
    refused(r"^tools\[0\]\.tools: expected a list", tools=[{"type": "namespace", "name": "ns"}])
    refused(
        r"^tools\[0\]\.tools\[0\]: only function and custom tools are supported inside a namespace",
        tools=[{"type": "namespace", "name": "ns", "tools": [{"type": "web_search"}]}],
    )
    refused(r"^tools\[0\]\.name: expected a string", tools=[{"type": "namespace", "tools": []}])


@pytest.mark.parametrize(
    "value", ["sometimes", 1, {"type": "function"}, {"type": "function", "name": 3}, {"type": "file_search"}]
)
def test_bad_tool_choice(value: Any) -> None:
    refused(r"^tool_choice: expected 'auto', 'required', 'none'", tools=[WEATHER], tool_choice=value)


def test_bad_reasoning() -> None:
    refused(
        r"^reasoning\.effort: expected one of none, minimal, low, medium, high",
        reasoning={"effort": "extreme"},
    )
    refused(r"^reasoning\.effort: expected one of", reasoning={"effort": 3})
    refused(r"^reasoning: expected an object", reasoning="high")


@pytest.mark.parametrize("value", [0, -5, "x", True, 10.5])
def test_bad_max_output_tokens(value: Any) -> None:
    refused(r"^max_output_tokens: expected a positive integer", max_output_tokens=value)


def test_bad_stream() -> None:
    refused(r"^stream: expected a boolean, got str", stream="yes")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("background", True, r"^background: background responses are not supported"),
        ("conversation", "conv_123", r"^conversation: conversations are not supported"),
        ("conversation", {"id": "conv_123"}, r"^conversation: conversations are not supported"),
        ("prompt", {"id": "pmpt_1"}, r"^prompt: prompt templates are not supported"),
        ("top_logprobs", 3, r"^top_logprobs: logprobs are not available"),
    ],
)
def test_unsupported_fields(field: str, value: Any, match: str) -> None:
    refused(match, **{field: value})


def test_unsupported_fields_when_falsy_are_accepted() -> None:
    assert parse(background=False, conversation=None).messages


@pytest.mark.parametrize("fmt", [{"type": "xml"}, "json", {"schema": {}}])
def test_bad_text_format(fmt: Any) -> None:
    refused(r"^text\.format: expected \{'type': 'text'\|'json_object'\|'json_schema'", text={"format": fmt})


def test_bad_scalars() -> None:
    refused(r"^model: expected a string", model=5)
    refused(r"^instructions: expected a string", instructions=["a"])
    refused(r"^temperature: expected a number", temperature="hot")
    refused(r"^top_p: expected a number", top_p=True)


# ================================================================================= 3. build_response


def test_text_blocks_are_one_message_item() -> None:
    body = answer([ir.TextBlock(text="Hello, "), ir.TextBlock(text="world.")])
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["incomplete_details"] is None
    assert body["error"] is None
    assert body["model"] == MODEL
    [item] = body["output"]
    assert item["type"] == "message"
    assert item["id"].startswith("msg_")
    assert item["role"] == "assistant"
    assert item["status"] == "completed"
    assert item["content"] == [
        {"type": "output_text", "text": "Hello, ", "annotations": []},
        {"type": "output_text", "text": "world.", "annotations": []},
    ]
    assert openai_types.Response.model_validate(body).output_text == "Hello, world."


def test_text_runs_split_by_a_tool_call_are_two_messages() -> None:
    body = answer(
        [
            ir.TextBlock(text="before"),
            ir.ToolUseBlock(id="call_1", name="get_weather", input={}),
            ir.TextBlock(text="after"),
        ]
    )
    assert [i["type"] for i in body["output"]] == ["message", "function_call", "message"]
    assert body["output"][0]["content"][0]["text"] == "before"
    assert body["output"][2]["content"][0]["text"] == "after"
    assert len({i["id"] for i in body["output"]}) == 3


def test_thinking_is_a_reasoning_item_with_a_summary() -> None:
    request = parse(include=["reasoning.encrypted_content"])
    body = answer(
        [ir.ThinkingBlock(thinking="Let me think.", signature="sig-1"), ir.TextBlock(text="Done")], request
    )
    reasoning_item, message_item = body["output"]
    assert reasoning_item["type"] == "reasoning"
    assert reasoning_item["id"].startswith("rs_")
    assert reasoning_item["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert reasoning_item["encrypted_content"] == "anthropic-signature:sig-1"
    assert message_item["content"][0]["text"] == "Done"


def test_thinking_without_include_has_no_encrypted_content() -> None:
    body = answer([ir.ThinkingBlock(thinking="hmm", signature="sig-1")])
    assert body["output"][0]["summary"] == [{"type": "summary_text", "text": "hmm"}]
    assert "encrypted_content" not in body["output"][0]


def test_thinking_without_signature_has_no_encrypted_content() -> None:
    request = parse(include=["reasoning.encrypted_content"])
    body = answer([ir.ThinkingBlock(thinking="hmm", signature=None)], request)
    assert "encrypted_content" not in body["output"][0]


def test_redacted_thinking_round_trips_through_encrypted_content() -> None:
    request = parse(include=["reasoning.encrypted_content"])
    body = answer([ir.RedactedThinkingBlock(data="opaque"), ir.TextBlock(text="ok")], request)
    item = body["output"][0]
    assert item["summary"] == []
    assert item["encrypted_content"] == "anthropic-redacted:opaque"
    replayed = items(msg("user", "q"), {k: v for k, v in item.items() if k != "id"})
    assert replayed.messages[1].content == [ir.RedactedThinkingBlock(data="opaque")]


def test_tool_use_is_a_function_call_item() -> None:
    body = answer([ir.ToolUseBlock(id="call_abc", name="get_weather", input={"city": "Paris", "days": 2})])
    [item] = body["output"]
    assert item["type"] == "function_call"
    assert item["id"].startswith("fc_")
    assert item["id"] != "call_abc"
    assert item["call_id"] == "call_abc"
    assert item["name"] == "get_weather"
    assert item["status"] == "completed"
    assert isinstance(item["arguments"], str)
    assert orjson.loads(item["arguments"]) == {"city": "Paris", "days": 2}
    assert "namespace" not in item


def test_namespaced_tool_call_is_named_back() -> None:
    request = parse(tools=[NAMESPACE])
    body = answer([ir.ToolUseBlock(id="call_1", name="mcp_files__read", input={"path": "a"})], request)
    [item] = body["output"]
    assert item["name"] == "read"
    assert item["namespace"] == "mcp_files"
    assert orjson.loads(item["arguments"]) == {"path": "a"}


def test_unknown_double_underscore_name_is_not_split() -> None:
    request = parse(tools=[NAMESPACE])
    body = answer([ir.ToolUseBlock(id="call_1", name="my__tool", input={})], request)
    assert body["output"][0]["name"] == "my__tool"
    assert "namespace" not in body["output"][0]


def test_json_tool_block_is_the_output_text() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = parse(text={"format": {"type": "json_schema", "name": "count", "schema": schema}})
    body = answer([ir.ToolUseBlock(id="toolu_1", name=JSON_TOOL_NAME, input={"n": 3})], request)
    [item] = body["output"]
    assert item["type"] == "message"
    assert orjson.loads(item["content"][0]["text"]) == {"n": 3}
    assert body["text"]["format"]["type"] == "json_schema"


def test_json_tool_name_without_json_format_is_a_function_call() -> None:
    body = answer([ir.ToolUseBlock(id="toolu_1", name=JSON_TOOL_NAME, input={"n": 3})])
    assert body["output"][0]["type"] == "function_call"


def test_server_web_search_is_a_web_search_call_item() -> None:
    raw = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "news"}}
    body = answer(
        [
            ir.OtherBlock(type="server_tool_use", raw=raw),
            ir.OtherBlock(type="web_search_tool_result", raw={"type": "web_search_tool_result"}),
            ir.TextBlock(text="Here is the news."),
        ]
    )
    assert [i["type"] for i in body["output"]] == ["web_search_call", "message"]
    assert body["output"][0]["action"] == {"type": "search", "query": "news"}
    assert body["output"][0]["status"] == "completed"


@pytest.mark.parametrize(
    ("stop", "status", "details"),
    [
        (ir.StopReason.END_TURN, "completed", None),
        (ir.StopReason.TOOL_USE, "completed", None),
        (ir.StopReason.STOP_SEQUENCE, "completed", None),
        (ir.StopReason.MAX_TOKENS, "incomplete", {"reason": "max_output_tokens"}),
        (ir.StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED, "incomplete", {"reason": "max_output_tokens"}),
        (ir.StopReason.REFUSAL, "incomplete", {"reason": "content_filter"}),
    ],
)
def test_stop_reason_is_the_status(stop: ir.StopReason, status: str, details: dict[str, str] | None) -> None:
    body = answer([ir.TextBlock(text="cut")], stop=stop)
    assert body["status"] == status
    assert body["incomplete_details"] == details


def test_usage_counts_cache_reads_in_input_tokens() -> None:
    usage = ir.Usage(
        input_tokens=100,
        output_tokens=40,
        cache_read_input_tokens=30,
        cache_creation_input_tokens=5,
        reasoning_tokens=12,
    )
    body = answer([ir.TextBlock(text="x")], usage=usage)
    assert body["usage"] == {
        "input_tokens": 135,
        "input_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 5},
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 175,
    }


def test_usage_reasoning_tokens_estimated_from_thinking() -> None:
    usage = ir.Usage(input_tokens=10, output_tokens=100)
    body = answer([ir.ThinkingBlock(thinking="x" * 41), ir.TextBlock(text="y")], usage=usage)
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 11  # ceil(41 / 4)
    assert body["usage"]["total_tokens"] == 110


def test_usage_reasoning_estimate_never_exceeds_output_tokens() -> None:
    body = answer([ir.ThinkingBlock(thinking="x" * 400)], usage=ir.Usage(input_tokens=1, output_tokens=7))
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 7


def test_usage_reported_reasoning_tokens_win_over_the_estimate() -> None:
    usage = ir.Usage(output_tokens=100, reasoning_tokens=3)
    body = answer([ir.ThinkingBlock(thinking="x" * 400)], usage=usage)
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 3


def test_answer_echoes_the_request() -> None:
    request = parse(
        instructions="Be brief.",
        tools=[WEATHER],
        tool_choice="required",
        metadata={"trace": "t1"},
        store=False,
        previous_response_id="resp_prev",
        max_output_tokens=500,
        temperature=0.2,
        top_p=0.9,
        parallel_tool_calls=False,
        reasoning={"effort": "low", "summary": "auto"},
        truncation="auto",
        user="u1",
    )
    body = answer([ir.TextBlock(text="ok")], request)
    assert body["id"] == request.echo["id"]
    assert body["created_at"] == request.echo["created_at"]
    assert body["instructions"] == "Be brief."
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == "required"
    assert body["metadata"] == {"trace": "t1"}
    assert body["store"] is False
    assert body["previous_response_id"] == "resp_prev"
    assert body["max_output_tokens"] == 500
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["truncation"] == "auto"
    assert body["user"] == "u1"


def test_answer_defaults_without_echo() -> None:
    body = answer([ir.TextBlock(text="ok")])
    assert body["instructions"] is None
    assert body["tools"] == []
    assert body["tool_choice"] == "auto"
    assert body["metadata"] == {}
    assert body["store"] is True
    assert body["previous_response_id"] is None
    assert body["parallel_tool_calls"] is True
    assert body["truncation"] == "disabled"


def test_answer_output_is_kept_in_echo() -> None:
    request = parse()
    body = answer([ir.ThinkingBlock(thinking="t"), ir.TextBlock(text="a")], request)
    assert request.echo["output"] == body["output"]
    assert [i["type"] for i in request.echo["output"]] == ["reasoning", "message"]


def test_answer_output_replays_as_the_same_turn() -> None:
    """An answer's output items sent back as input (what a store or a client does) parse to its turn."""
    request = parse(tools=[NAMESPACE], include=["reasoning.encrypted_content"])
    content: list[ir.Block] = [
        ir.ThinkingBlock(thinking="plan", signature="sig-9"),
        ir.TextBlock(text="Reading."),
        ir.ToolUseBlock(id="call_7", name="mcp_files__read", input={"path": "x"}),
    ]
    body = answer(content, request, stop=ir.StopReason.TOOL_USE)
    replayed = items(msg("user", "go"), *body["output"])
    assert replayed.messages[1] == ir.Message(role="assistant", content=content)


# ================================================================================== 4. the stream


def test_stream_text_event_sequence() -> None:
    stream = run(message(text_block(0, "Hel", "lo", "!")))
    assert stream.names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = stream.of("response.output_text.delta")
    assert [d["delta"] for d in deltas] == ["Hel", "lo", "!"]
    assert stream.one("response.output_text.done")["text"] == "Hello!"
    assert stream.one("response.content_part.done")["part"] == {
        "type": "output_text",
        "text": "Hello!",
        "annotations": [],
    }
    item = stream.one("response.output_item.done")["item"]
    assert item["content"] == [{"type": "output_text", "text": "Hello!", "annotations": []}]
    assert item["status"] == "completed"
    added = stream.one("response.output_item.added")["item"]
    assert added["status"] == "in_progress"
    assert added["content"] == []
    assert stream.end["status"] == "completed"
    assert stream.end["output"] == [item]


def test_stream_created_and_in_progress() -> None:
    request = parse(instructions="sys", metadata={"a": "b"})
    stream = run(message(text_block(0, "x")), request)
    created = stream.events[0]["response"]
    assert created["id"] == request.echo["id"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    assert created["usage"] is None
    assert created["instructions"] == "sys"
    assert created["metadata"] == {"a": "b"}
    assert stream.events[1]["response"] == created
    assert stream.end["id"] == request.echo["id"]


def test_stream_full_turn_thinking_text_and_tool_call() -> None:
    request = parse(tools=[WEATHER], include=["reasoning.encrypted_content"])
    stream = run(
        message(
            thinking_block(0, "Need ", "weather.", signature="sig-xyz"),
            text_block(1, "Checking."),
            tool_block(2, "toolu_1", "get_weather", '{"ci', 'ty": ', '"Paris"}'),
            stop=ir.StopReason.TOOL_USE,
            usage=ir.Usage(output_tokens=50),
            start_usage=ir.Usage(input_tokens=20, cache_read_input_tokens=80),
        ),
        request,
    )
    assert stream.names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["output_index"] for e in stream.of("response.output_item.added")] == [0, 1, 2]
    reasoning_done, message_done, call_done = stream.done_items()
    assert stream.one("response.reasoning_summary_text.done")["text"] == "Need weather."
    assert reasoning_done["summary"] == [{"type": "summary_text", "text": "Need weather."}]
    assert reasoning_done["encrypted_content"] == "anthropic-signature:sig-xyz"
    assert message_done["content"][0]["text"] == "Checking."
    assert stream.one("response.function_call_arguments.done")["arguments"] == '{"city": "Paris"}'
    assert call_done["arguments"] == '{"city": "Paris"}'
    assert call_done["call_id"] == "toolu_1"
    assert call_done["name"] == "get_weather"
    assert call_done["status"] == "completed"
    end = stream.end
    assert end["status"] == "completed"
    assert end["output"] == [reasoning_done, message_done, call_done]
    assert end["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 0},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 4},  # ceil(len("Need weather.") / 4)
        "total_tokens": 150,
    }
    assert openai_types.Response.model_validate(end).output_text == "Checking."


def test_stream_ids_are_stable_per_item() -> None:
    stream = run(message(text_block(0, "a", "b"), tool_block(1, "call_1", "f", "{}")))
    by_index: dict[int, set[str]] = {}
    for event in stream.events:
        if "output_index" not in event:
            continue
        item_id = event["item"]["id"] if "item" in event else event["item_id"]
        by_index.setdefault(event["output_index"], set()).add(item_id)
    assert {i: len(ids) for i, ids in by_index.items()} == {0: 1, 1: 1}
    assert by_index[0] != by_index[1]
    assert next(iter(by_index[0])).startswith("msg_")
    assert next(iter(by_index[1])).startswith("fc_")


def test_stream_content_index_is_zero_for_text() -> None:
    stream = run(message(text_block(0, "a")))
    for kind in ("response.content_part.added", "response.output_text.delta", "response.output_text.done"):
        assert stream.one(kind)["content_index"] == 0


def test_stream_function_call_arguments_are_forwarded_byte_for_byte() -> None:
    fragments = ['{"q": ', '"caf\\u00e9  "', ', "n": 1.50}']
    stream = run(message(tool_block(0, "call_1", "search", *fragments)))
    assert [d["delta"] for d in stream.of("response.function_call_arguments.delta")] == fragments
    assert stream.one("response.function_call_arguments.done")["arguments"] == "".join(fragments)
    assert stream.done_items()[0]["arguments"] == "".join(fragments)


def test_stream_function_call_without_fragments_has_empty_object_arguments() -> None:
    stream = run(message(tool_block(0, "call_1", "noop")))
    assert stream.of("response.function_call_arguments.delta") == []
    assert stream.one("response.function_call_arguments.done")["arguments"] == "{}"
    assert stream.done_items()[0]["arguments"] == "{}"
    added = stream.one("response.output_item.added")["item"]
    assert added["arguments"] == ""
    assert added["status"] == "in_progress"
    assert added["call_id"] == "call_1"


def test_stream_parallel_tool_calls() -> None:
    stream = run(
        message(
            tool_block(0, "call_a", "get_weather", '{"city": "Paris"}'),
            tool_block(1, "call_b", "get_weather", '{"city": "Rome"}'),
            stop=ir.StopReason.TOOL_USE,
        )
    )
    calls = stream.end["output"]
    assert [c["call_id"] for c in calls] == ["call_a", "call_b"]
    assert [orjson.loads(c["arguments"]) for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]


def test_stream_namespaced_function_call() -> None:
    request = parse(tools=[NAMESPACE])
    stream = run(message(tool_block(0, "call_1", "mcp_files__write", '{"p": 1}')), request)
    added = stream.one("response.output_item.added")["item"]
    done = stream.one("response.output_item.done")["item"]
    for item in (added, done):
        assert item["name"] == "write"
        assert item["namespace"] == "mcp_files"


def test_stream_json_tool_is_message_text() -> None:
    request = parse(text={"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}})
    stream = run(message(tool_block(0, "toolu_1", JSON_TOOL_NAME, '{"n"', ": 3}")), request)
    assert "response.function_call_arguments.delta" not in stream.names
    assert [d["delta"] for d in stream.of("response.output_text.delta")] == ['{"n"', ": 3}"]
    assert stream.one("response.output_text.done")["text"] == '{"n": 3}'
    assert stream.end["output"][0]["type"] == "message"


def test_stream_thinking_signature_only_with_include() -> None:
    events = message(thinking_block(0, "hmm", signature="sig-"), text_block(1, "ok"))
    events.insert(3, ir.SignatureDelta(0, "part1"))  # a signature in two deltas
    with_include = run(events, parse(include=["reasoning.encrypted_content"]))
    assert with_include.done_items()[0]["encrypted_content"] == "anthropic-signature:part1sig-"
    without = run(events, parse())
    assert "encrypted_content" not in without.done_items()[0]


def test_stream_redacted_thinking() -> None:
    request = parse(include=["reasoning.encrypted_content"])
    events = message(
        [ir.BlockStart(0, ir.RedactedThinkingBlock(data="opaque")), ir.BlockStop(0)], text_block(1, "ok")
    )
    stream = run(events, request)
    assert "response.reasoning_summary_part.added" not in stream.names
    assert "response.reasoning_summary_text.done" not in stream.names
    done = stream.done_items()[0]
    assert done["type"] == "reasoning"
    assert done["summary"] == []
    assert done["encrypted_content"] == "anthropic-redacted:opaque"


def test_stream_reasoning_summary_indexes() -> None:
    stream = run(message(thinking_block(0, "a", "b")))
    for kind in (
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ):
        assert stream.one(kind)["summary_index"] == 0
    assert stream.one("response.reasoning_summary_part.done")["part"] == {
        "type": "summary_text",
        "text": "ab",
    }


def test_stream_usage_reasoning_tokens_from_the_upstream() -> None:
    stream = run(message(thinking_block(0, "x" * 400), usage=ir.Usage(output_tokens=90, reasoning_tokens=5)))
    assert stream.end["usage"]["output_tokens_details"]["reasoning_tokens"] == 5
    assert stream.end["usage"]["output_tokens"] == 90


def test_stream_incomplete_on_max_tokens() -> None:
    stream = run(message(text_block(0, "cut sh"), stop=ir.StopReason.MAX_TOKENS))
    assert stream.names[-1] == "response.incomplete"
    assert "response.completed" not in stream.names
    assert stream.end["status"] == "incomplete"
    assert stream.end["incomplete_details"] == {"reason": "max_output_tokens"}
    assert stream.end["output"][0]["content"][0]["text"] == "cut sh"


def test_stream_refusal_is_incomplete_content_filter() -> None:
    stream = run(message(text_block(0, "no"), stop=ir.StopReason.REFUSAL))
    assert stream.names[-1] == "response.incomplete"
    assert stream.end["incomplete_details"] == {"reason": "content_filter"}


def test_stream_blocks_left_open_are_closed_at_the_end() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.TextDelta(0, "unfinished"),
        ir.MessageDelta(ir.StopReason.END_TURN, None, ir.Usage(output_tokens=2)),
        ir.MessageStop(),
    ]
    stream = run(events)
    assert stream.names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert stream.end["output"][0]["content"][0]["text"] == "unfinished"


def test_stream_error_mid_stream_is_response_failed() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage(input_tokens=5)),
        *text_block(0, "done part"),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_1", name="get_weather", input={})),
        ir.InputJsonDelta(1, '{"city": "Pa'),
        ir.StreamError(ir.ErrorInfo(status=529, type=ir.ErrorType.OVERLOADED, message="Overloaded")),
    ]
    stream = run(events, parse(tools=[WEATHER]))
    assert stream.names[-1] == "response.failed"
    assert "response.completed" not in stream.names
    response = stream.end
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "Overloaded"}
    finished, partial = response["output"]
    assert finished == stream.one("response.output_item.done")["item"]
    assert finished["status"] == "completed"
    assert partial["type"] == "function_call"
    assert partial["status"] == "incomplete"
    assert partial["arguments"] == '{"city": "Pa'
    assert partial["id"] == stream.of("response.output_item.added")[1]["item"]["id"]
    assert response["usage"]["input_tokens"] == 5
    # nothing after the end
    assert stream.encoder.encode(ir.TextDelta(0, "late")) == b""
    assert stream.encoder.encode(ir.MessageStop()) == b""
    assert (
        stream.encoder.encode(ir.StreamError(ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="x")))
        == b""
    )
    assert stream.encoder.ping() == b""
    assert stream.encoder.start() == b""


def test_stream_error_open_text_and_reasoning_are_incomplete() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.ThinkingBlock(thinking="")),
        ir.ThinkingDelta(0, "half a thought"),
        ir.StreamError(ir.ErrorInfo(status=429, type=ir.ErrorType.RATE_LIMIT, message="slow down")),
    ]
    stream = run(events)
    [partial] = stream.end["output"]
    assert partial["type"] == "reasoning"
    assert partial["status"] == "incomplete"
    assert partial["summary"] == [{"type": "summary_text", "text": "half a thought"}]
    assert stream.end["error"]["code"] == "rate_limit_exceeded"

    text_events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.TextDelta(0, "half"),
        ir.StreamError(
            ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="upstream stream ended prematurely")
        ),
    ]
    [partial_text] = run(text_events).end["output"]
    assert partial_text["status"] == "incomplete"
    assert partial_text["content"] == [{"type": "output_text", "text": "half", "annotations": []}]


def test_stream_error_before_anything_still_opens_the_stream() -> None:
    error = ir.StreamError(ir.ErrorInfo(status=400, type=ir.ErrorType.INVALID_REQUEST, message="bad"))
    stream = run([error], start=False)
    assert stream.names == ["response.created", "response.in_progress", "response.failed"]
    assert stream.end["output"] == []
    assert stream.end["error"] == {"code": "invalid_prompt", "message": "bad"}


def test_stream_block_index_opened_twice_is_one_item() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.TextDelta(0, "a"),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.TextDelta(0, "b"),
        ir.BlockStop(0),
        ir.BlockStop(0),  # a second stop of a closed index: nothing
        ir.MessageDelta(ir.StopReason.END_TURN, None, ir.Usage()),
        ir.MessageStop(),
    ]
    stream = run(events)
    assert len(stream.of("response.output_item.added")) == 1
    assert len(stream.of("response.output_item.done")) == 1
    assert stream.one("response.output_text.done")["text"] == "ab"


def test_stream_deltas_for_unknown_or_empty_blocks_emit_nothing() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.TextDelta(7, "orphan"),
        ir.InputJsonDelta(8, "{}"),
        ir.ThinkingDelta(9, "x"),
        ir.SignatureDelta(9, "s"),
        ir.BlockStop(9),
        *text_block(0, "", "real", ""),
        ir.MessageDelta(ir.StopReason.END_TURN, None, ir.Usage()),
        ir.MessageStop(),
    ]
    stream = run(events)
    assert [d["delta"] for d in stream.of("response.output_text.delta")] == ["real"]
    assert len(stream.of("response.output_item.added")) == 1


def test_stream_web_search_results_are_not_items() -> None:
    result = ir.OtherBlock(type="web_search_tool_result", raw={"type": "web_search_tool_result"})
    stream = run(message([ir.BlockStart(0, result), ir.BlockStop(0)], text_block(1, "answer")))
    assert [i["type"] for i in stream.end["output"]] == ["message"]
    assert stream.one("response.output_item.added")["output_index"] == 0


def test_stream_web_search_call_names_its_query() -> None:
    """Anthropic streams a server tool's input as input_json_delta after an empty start."""
    start = ir.OtherBlock(
        type="server_tool_use",
        raw={"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
    )
    stream = run(
        message(
            [
                ir.BlockStart(0, start),
                ir.InputJsonDelta(0, '{"query": '),
                ir.InputJsonDelta(0, '"rust 2024"}'),
                ir.BlockStop(0),
            ],
            text_block(1, "Found it."),
        )
    )
    assert stream.names[2:4] == ["response.output_item.added", "response.output_item.done"]
    search = stream.done_items()[0]
    assert search["type"] == "web_search_call"
    assert search["status"] == "completed"
    assert search["action"] == {"type": "search", "query": "rust 2024"}
    assert stream.end["output"][0] == search


def test_stream_web_search_call_with_its_input_at_start() -> None:
    start = ir.OtherBlock(type="server_tool_use", raw={"type": "server_tool_use", "input": {"query": "q1"}})
    stream = run(message([ir.BlockStart(0, start), ir.BlockStop(0)]))
    assert stream.done_items()[0]["action"] == {"type": "search", "query": "q1"}


def test_stream_output_follows_output_index_when_blocks_close_out_of_order() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_1", name="f", input={})),
        ir.TextDelta(0, "text"),
        ir.InputJsonDelta(1, "{}"),
        ir.BlockStop(1),
        ir.BlockStop(0),
        ir.MessageDelta(ir.StopReason.TOOL_USE, None, ir.Usage()),
        ir.MessageStop(),
    ]
    stream = run(events)  # check_events asserts output == done items by output_index
    assert [i["type"] for i in stream.end["output"]] == ["message", "function_call"]


def test_stream_failed_output_follows_output_index() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m", UPSTREAM, ir.Usage()),
        ir.BlockStart(0, ir.TextBlock(text="")),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_1", name="f", input={})),
        ir.InputJsonDelta(1, "{}"),
        ir.BlockStop(1),
        ir.StreamError(ir.ErrorInfo(status=500, type=ir.ErrorType.API, message="boom")),
    ]
    stream = run(events)
    assert [(i["type"], i["status"]) for i in stream.end["output"]] == [
        ("message", "incomplete"),
        ("function_call", "completed"),
    ]


def test_stream_output_is_kept_in_echo() -> None:
    request = parse()
    stream = run(message(text_block(0, "a"), tool_block(1, "call_1", "f", "{}")), request)
    assert request.echo["output"] == stream.end["output"]
    assert len(request.echo["output"]) == 2


def test_stream_ping() -> None:
    encoder = StreamEncoder(context())
    assert encoder.ping() == b": ping\n\n"  # before anything
    opening = encoder.start()
    assert encoder.ping() == b": ping\n\n"
    assert encoder.encode(ir.Ping()) == b""
    body = b"".join(encoder.encode(ev) for ev in message(text_block(0, "x")))
    assert encoder.ping() == b""
    assert encoder.encode(ir.TextDelta(0, "more")) == b""
    assert encoder.close() == b""
    check_events(frames(opening + body))


def test_stream_pings_do_not_consume_sequence_numbers() -> None:
    encoder = StreamEncoder(context())
    raw = encoder.start()
    for ev in message(text_block(0, "a", "b")):
        raw += encoder.encode(ev)
        raw += encoder.encode(ir.Ping())
        assert encoder.ping() in (b": ping\n\n", b"")
    check_events(frames(raw))


def test_stream_start_is_emitted_once() -> None:
    encoder = StreamEncoder(context())
    first = encoder.start()
    assert [name for name, _ in frames(first)] == ["response.created", "response.in_progress"]
    assert encoder.start() == b""
    rest = b"".join(encoder.encode(ev) for ev in message(text_block(0, "x")))
    assert encoder.start() == b""
    events = check_events(frames(first + rest))
    assert [e["type"] for e in events].count("response.created") == 1


def test_stream_starts_itself_on_the_first_event() -> None:
    stream = run(message(text_block(0, "x")), start=False)
    assert stream.names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    delta_first = run([ir.TextDelta(0, "x")], start=False)
    assert delta_first.names == ["response.created", "response.in_progress"]


def test_stream_frames_are_event_and_data_lines() -> None:
    encoder = StreamEncoder(context())
    raw = encoder.start()
    assert raw.startswith(b"event: response.created\ndata: {")
    assert raw.count(b"\n\n") == 2


def test_stream_validates_each_event_type_with_the_sdk() -> None:
    """Every event type this encoder can emit, in one stream, each validated by the SDK's union."""
    request = parse(tools=[WEATHER, NAMESPACE], include=["reasoning.encrypted_content"])
    search = ir.OtherBlock(type="server_tool_use", raw={"type": "server_tool_use", "input": {}})
    stream = run(
        message(
            thinking_block(0, "t", signature="s"),
            [ir.BlockStart(1, ir.RedactedThinkingBlock(data="r")), ir.BlockStop(1)],
            [ir.BlockStart(2, search), ir.InputJsonDelta(2, '{"query": "q"}'), ir.BlockStop(2)],
            text_block(3, "a"),
            tool_block(4, "call_1", "mcp_files__read", "{}"),
            stop=ir.StopReason.MAX_TOKENS,
        ),
        request,
    )
    assert set(stream.names) == {
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.incomplete",
    }
    assert len(stream.end["output"]) == 5
    openai_types.Response.model_validate(stream.end)


def test_check_events_catches_a_broken_stream() -> None:
    """The stream checks above can fail: a gap in numbering, a delta before its item, a wrong name."""
    good = frames(StreamEncoder(context()).start())
    gap = [good[0], (good[1][0], {**good[1][1], "sequence_number": 5})]
    with pytest.raises(AssertionError):
        check_events(gap)
    renamed = [good[0], ("response.queued", good[1][1])]
    with pytest.raises(AssertionError):
        check_events(renamed)
    orphan_delta = {
        "type": "response.output_text.delta",
        "sequence_number": 2,
        "item_id": "msg_x",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
        "logprobs": [],
    }
    with pytest.raises(AssertionError, match="before its item"):
        check_events([*good, ("response.output_text.delta", orphan_delta)])
    invalid = {"type": "response.output_text.delta", "sequence_number": 2}
    with pytest.raises(pydantic.ValidationError):
        check_events([*good, ("response.output_text.delta", invalid)])


def test_stream_reasoning_without_text_announces_no_summary_part() -> None:
    """A thinking block with only a signature (no summary text): its events agree with its done item,
    which has no summary part, as ``build_response`` gives it."""
    request = parse(include=["reasoning.encrypted_content"])
    stream = run(message(thinking_block(0, signature="sig-only"), text_block(1, "ok")), request)
    summary_events = [n for n in stream.names if "reasoning_summary" in n]
    done = stream.done_items()[0]
    assert done["summary"] == []
    assert summary_events == []
    assert done["encrypted_content"] == "anthropic-signature:sig-only"
    whole = answer([ir.ThinkingBlock(thinking="", signature="sig-only"), ir.TextBlock(text="ok")], request)
    assert whole["output"][0]["summary"] == done["summary"]


def test_allowed_tools_sends_only_the_listed_tools() -> None:
    """tool_choice allowed_tools: the listed functions (a namespace's too) and web search go upstream,
    the rest do not; mode required means some tool must be called."""
    namespace = {
        "type": "namespace",
        "name": "crm",
        "description": "d",
        "tools": [{"type": "function", "name": "find"}, {"type": "function", "name": "drop"}],
    }
    tools = [WEATHER, {"type": "function", "name": "get_time"}, namespace, {"type": "web_search"}]
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [
            {"type": "function", "name": "get_weather"},
            {"type": "function", "name": "find", "namespace": "crm"},
            {"type": "web_search"},
        ],
    }
    request = parse(tools=tools, tool_choice=choice)
    assert [t.name for t in request.tools] == ["get_weather", "crm__find", "web_search"]
    assert request.tool_choice == ir.ToolChoice(type="any")
    whole = parse(
        tools=tools,
        tool_choice={
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "namespace", "name": "crm"}],
        },
    )
    assert [t.name for t in whole.tools] == ["crm__find", "crm__drop"]
    with pytest.raises(ClientError, match=r"^tool_choice\.tools"):
        parse(tools=tools, tool_choice={"type": "allowed_tools", "mode": "auto"})


def test_a_namespaced_function_choice_names_the_flattened_tool() -> None:
    choice = {"type": "function", "name": "find", "namespace": "crm"}
    namespace = {
        "type": "namespace",
        "name": "crm",
        "description": "d",
        "tools": [{"type": "function", "name": "find"}],
    }
    request = parse(tools=[namespace], tool_choice=choice)
    assert request.tool_choice == ir.ToolChoice(type="tool", name="crm__find")


@pytest.mark.parametrize("combinator", ["oneOf", "anyOf", "allOf"])
def test_a_top_level_schema_combinator_is_refused_as_for_chat_completions(combinator: str) -> None:
    tool = {"type": "function", "name": "f", "parameters": {combinator: [{"type": "object"}]}}
    with pytest.raises(ClientError, match=r"^tools\[0\]\.parameters: oneOf, anyOf and allOf"):
        parse(tools=[tool])
