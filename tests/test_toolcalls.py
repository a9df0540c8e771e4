"""toolcalls.StreamedJson: a streamed tool call's arguments, kept in pieces and asked whether they are whole
(issue 19, defect 2: the question used to parse everything received, on every fragment: quadratic).

The ids, names and repairs of toolcalls.py are tested where the dialects use them (tests/dialects/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.toolcalls import StreamedJson
from rawproxy.translate import StreamTranslator
from tests.support.anthropic_sse import DONE, chunk, ctx, parse_sse, tc, tools_delta

TEXTS = [
    '{"command": "ls -la", "description": "List"}',
    ' \n{"a": [1, {"b": "}]{["}], "c": "say \\"hi\\" {"}  ',
    '{"path": "C:\\\\", "x": "\\\\\\"", "y": "\\u00e9\\ud83d\\ude00 \\n"}',
    '[{"nested": [[], {}]}, "]"]',
    "{}",
    '{"a": tru}',  # balanced but not JSON: never whole
    '{"a": 1}}',  # something after the end: never whole again
    '"a bare string"',  # a scalar: left for the end of the message
    "42",
]


def _whole(text: str) -> bool:
    """The reference: an object or array, parsed whole (what the decoder used to ask orjson each time)."""
    try:
        return isinstance(orjson.loads(text), dict | list)
    except orjson.JSONDecodeError:
        return False


def _cuts(text: str) -> Iterator[list[str]]:
    yield [text]
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
    yield list(text)
    yield [text[i : i + 3] for i in range(0, len(text), 3)]


@pytest.mark.parametrize("text", TEXTS)
def test_issue19_d2_streamed_json_is_whole_exactly_when_parsing_it_would_say_so(text: str) -> None:
    # issue 19, defect 2
    for pieces in _cuts(text):
        args = StreamedJson()
        received = ""
        for piece in pieces:
            args.append(piece)
            received += piece
            assert args.whole() is (_whole(received) and received.lstrip()[0] in "{["), (pieces, received)
        assert args.text() == text
        assert args.size == len(text)


def test_issue19_d2_streamed_json_costs_linear_work_however_it_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # issue 19, defect 2: counted, not timed: the characters parsed and joined stay within twice the text
    text = orjson.dumps({"content": 'x\\"{[' * 30_000, "end": [1, 2]}).decode()
    work = _count_work(monkeypatch)
    args = StreamedJson()
    for i in range(0, len(text), 4):
        args.append(text[i : i + 4])
        assert args.whole() is (i + 4 >= len(text))
    assert work["chars"] <= 2 * len(text), work


@pytest.mark.parametrize("interleaved", [False, True], ids=["one-after-the-other", "interleaved"])
def test_issue19_d2_arguments_beside_an_announced_second_call_cost_linear_work(
    monkeypatch: pytest.MonkeyPatch, interleaved: bool
) -> None:
    # issue 19, defect 2: the decoder asks on every fragment while a second call waits for the first
    first = orjson.dumps({"content": "x" * 40_000}).decode()
    second = orjson.dumps({"path": "y" * 20_000}).decode()
    fragments = [(0, first[i : i + 4]) for i in range(0, len(first), 4)]
    later = [(1, second[i : i + 4]) for i in range(0, len(second), 4)]
    if interleaved:  # one of each while both last, then the rest of the first call
        rest = fragments[len(later) :]
        fragments = [f for pair in zip(fragments, later, strict=False) for f in pair] + rest
    else:
        fragments += later
    frames = [
        chunk({"role": "assistant"}),
        chunk(tools_delta(tc(0, "call_a", "Write", ""))),
        chunk(tools_delta(tc(1, "call_b", "Read", ""))),  # announced: it waits until call_a is whole
        *(chunk(tools_delta(tc(index, args=piece))) for index, piece in fragments),
        chunk({}, "tool_calls"),
        DONE,
    ]
    work = _count_work(monkeypatch)
    t = StreamTranslator(anthropic_messages, openai_chat, ctx())
    out = t.start() + b"".join(t.feed(frame) for frame in frames) + t.close()
    assert work["chars"] <= 3 * (len(first) + len(second)), work  # (the chunks are bytes: not counted)
    events = parse_sse(out)
    partial = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(partial) == first + second
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["content_block"]["name"] for e in starts] == ["Write", "Read"]


def _count_work(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the characters of text (str, not the chunks' bytes) that orjson parses or StreamedJson
    joins."""
    work = {"chars": 0}
    loads = orjson.loads
    text = StreamedJson.text

    def counted_loads(data: Any) -> Any:
        if isinstance(data, str):
            work["chars"] += len(data)
        return loads(data)

    def counted_text(self: StreamedJson) -> str:
        joined = text(self)
        work["chars"] += len(joined)
        return joined

    monkeypatch.setattr(orjson, "loads", counted_loads)
    monkeypatch.setattr(StreamedJson, "text", counted_text)
    return work
