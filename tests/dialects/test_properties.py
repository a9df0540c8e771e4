"""Property-based tests (issue 6, item 3) of the SSE decoder and of both stream translators, with hypothesis.

Properties:

1. Chunking and framing do not matter. A realistic upstream stream, generated from strategies (text with
   CJK and emoji whose UTF-8 bytes get split, reasoning, tool calls whose arguments come in fragments,
   parallel calls sequential or interleaved, usage, finish reasons, ``[DONE]``, in-band errors,
   truncation), is framed twice: once
   canonically (LF, ``data: ``, compact JSON) and once at random (LF, CRLF or CR line ends, ``data:``
   with and without its space, comments and pings, blank lines, JSON spread over several ``data`` lines,
   ``\\u`` escapes). Both, cut at arbitrary points (1-byte chunks, cuts inside ``\\r\\n``, empty chunks),
   must give the very same client bytes and events (and ``translator.error``) as the canonical stream in
   one chunk; and those events say what the upstream said (same text, thinking, tool calls and
   arguments, stop, usage). The recorded real transcripts of ``tests/fixtures/transcripts/`` must also
   translate alike at any chunking, with CRLF line ends and with ``data:`` lacking its space.
2. Random input never raises and never yields a malformed client stream. Arbitrary bytes, SSE token soup,
   arbitrary JSON values and mutated realistic events under random event names, truncated streams and a
   ``fail()`` at a random moment: ``feed``/``close`` return bytes (only a ``ProxyError`` may leave, and
   the translator turns those into the in-stream error itself); the output is well-formed SSE for the
   client's dialect (strict framing, JSON where the dialect wants JSON, an Anthropic stream ends in
   ``message_stop`` or ``error``, an OpenAI stream ends in ``data: [DONE]``), and ``translator.error`` is
   set exactly when the stream ended in an error. The upstream decoders alone emit well-typed IR.
3. The SSE decoder alone: any chunking gives the events of one chunk, and those are the events of a
   reference interpretation written from the WHATWG rules (``event``, ``data`` joined by ``\\n``, ``id``
   and ``retry`` and unknown fields ignored, comments, LF/CRLF/CR), plus rawproxy's one leniency: at EOF
   a last event without its blank line is still dispatched.

At the end: regression examples for the bugs these properties found, and one ``xfail(strict=True)`` for
a StreamEncoder bug left to the owner of ``dialects/openai_chat/client.py``.

Each property was seen to fail on a deliberately broken decoder/translator (a trailing partial line
dropped at EOF, a CRLF split across chunks, data lines joined without LF, the space after the colon
kept, the event name kept across events, close() ignoring the last unterminated event, [DONE] taken for
EOF, the first text piece dropped, the Anthropic decoder keyed on the event line...).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from rawproxy import ir, profiles
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.errors import ProxyError
from rawproxy.sse import SSEDecoder, SSEEvent
from rawproxy.translate import StreamTranslator
from tests.support.transcripts import HERE, load

CLIENT_MODEL = "client-model"
UPSTREAM_MODEL = "upstream-model"
LINE_ENDS = (b"\n", b"\r\n", b"\r")

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRANSCRIPTS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ============================================================================================ chunking


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut into pieces: at random points, into 1-byte pieces over a window, after every CR (so
    that a CRLF is split), or at a fixed size; sometimes with empty pieces among them."""
    n = len(body)
    mode = draw(st.sampled_from(["random", "bytes", "cr", "fixed"]))
    cuts: set[int] = set()
    if mode == "bytes":
        start = draw(st.integers(0, max(n - 1, 0)))
        cuts.update(range(start, min(n, start + 400)))
    elif mode == "cr":
        cuts.update(i + 1 for i, byte in enumerate(body) if byte == 13)
    elif mode == "fixed":
        size = draw(st.integers(1, 24))
        cuts.update(range(size, n, size))
    cuts.update(draw(st.lists(st.integers(0, n), max_size=12)))
    positions = sorted(cuts | {0, n})
    chunks = [body[a:b] for a, b in pairwise(positions)] or [body]
    if draw(st.booleans()):
        for at in draw(st.lists(st.integers(0, len(chunks)), max_size=3)):
            chunks.insert(at, b"")
    return chunks


# ======================================================================================== 3. SSE alone


def reference_sse(body: bytes) -> list[tuple[str | None, bytes]]:
    """html.spec.whatwg.org "Interpreting an event stream", read literally; independent of SSEDecoder.
    One leniency, rawproxy's: at EOF a pending event is dispatched without its blank line."""
    events: list[tuple[str | None, bytes]] = []
    data: list[bytes] = []
    name: str | None = None
    for line in re.split(rb"\r\n|\n|\r", body):  # the last piece is the unterminated line, maybe b""
        if not line:  # dispatch (nothing when the data buffer is empty); the event type resets anyway
            if data:
                events.append((name, b"\n".join(data)))
            data, name = [], None
            continue
        if line.startswith(b":"):
            continue
        key, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if key == b"event":
            name = value.decode("utf-8", "replace")
        elif key == b"data":
            data.append(value)
        # id, retry and any other field: nothing a proxy uses
    if data:
        events.append((name, b"\n".join(data)))
    return events


def decode_sse(chunks: list[bytes]) -> list[tuple[str | None, bytes]]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
        assert isinstance(decoder.buffered, int)
    events += decoder.close()
    assert decoder.buffered == 0
    for ev in events:
        assert type(ev.data) is bytes, "data is handed on as bytes"
    return [(ev.event, ev.data) for ev in events]


_FIELD_NAMES = st.sampled_from(
    [b"data", b"data", b"data", b"event", b"id", b"retry", b"Data", b"data ", b" data", b"foo", b""]
)
_VALUE = st.one_of(
    st.text(max_size=10).map(str.encode),
    st.binary(max_size=6),
    st.sampled_from([b"[DONE]", b'{"a": 1}', b" lead", b"x:y", b"\xe6\x97\xa5\xf0\x9f\x98\x80", b"\x00"]),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def sse_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "comment", "blank", "bare"]))
    if kind == "blank":
        line = b""
    elif kind == "comment":
        line = b":" + draw(_VALUE)
    elif kind == "bare":  # a line without a colon: all of it is the field name
        line = draw(_FIELD_NAMES)
    else:
        line = draw(_FIELD_NAMES) + draw(st.sampled_from([b":", b": ", b":  "])) + draw(_VALUE)
    return line + draw(st.sampled_from(LINE_ENDS))


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    body = b"".join(draw(st.lists(sse_lines(), max_size=25)))
    if draw(st.booleans()):  # a last line without its line end (a truncated stream)
        body += draw(st.sampled_from([b"data", b"event"])) + b": " + draw(_VALUE)
    return body


@st.composite
def sse_body_and_chunks(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    body = draw(sse_bodies())
    return body, draw(chunkings(body))


@settings(max_examples=400, deadline=None)
@given(case=sse_body_and_chunks())
def test_issue6_sse_any_chunking_gives_the_reference_events(case: tuple[bytes, list[bytes]]) -> None:
    body, chunks = case
    assert b"".join(chunks) == body
    whole = decode_sse([body])
    assert whole == reference_sse(body)
    assert decode_sse(chunks) == whole


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["message", "content_block_delta", "error", ""])),
            st.lists(_VALUE, min_size=1, max_size=3),
        ),
        max_size=8,
    ),
    end=st.sampled_from(LINE_ENDS),
    space=st.booleans(),
    data=st.data(),
)
def test_issue6_sse_field_parsing(
    events: list[tuple[str | None, list[bytes]]], end: bytes, space: bool, data: st.DataObject
) -> None:
    """Built from known events, with id/retry/comments mixed in: the decoder gives exactly those events
    back (data lines joined by LF) at any chunking. Unlike the first SSE property, the expectation here
    does not come from a second parser."""
    sep = b": " if space else b":"
    body = b""
    for name, lines in events:
        frame = [b": keep-alive", b"id" + sep + b"42", b"retry" + sep + b"1000"]
        if name is not None:
            frame.append(b"event" + sep + name.encode())
        frame += [b"data" + sep + line for line in lines]
        body += end.join(frame) + end + end
    strip = not space  # "data: x" and "data:x" are the same, so "data:" + " x" means "x"
    expected = [
        (name, b"\n".join(v[1:] if strip and v.startswith(b" ") else v for v in lines))
        for name, lines in events
    ]
    assert decode_sse([body]) == expected
    assert decode_sse(data.draw(chunkings(body))) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The examples of the WHATWG specification, section 9.2.5.
        (b"data: YHOO\ndata: +2\ndata: 10\n\n", [(None, b"YHOO\n+2\n10")]),
        (
            b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
            [(None, b"first event"), (None, b"second event"), (None, b" third event")],
        ),
        (b"data\n\ndata\ndata\n\ndata:", [(None, b""), (None, b"\n"), (None, b"")]),
        (
            b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n",
            [("add", b"73857293"), ("remove", b"2153")],
        ),
        (b"event: x\n\ndata: y\n\n", [(None, b"y")]),  # the event type resets at every blank line
        (b"data: a\r\rdata: b\r\n\r\ndata: c\n\n", [(None, b"a"), (None, b"b"), (None, b"c")]),
        (b"event: only\nid: 3\nretry: 10\n\n", []),  # no data: nothing is dispatched
        (b"data: [DONE]\n", [(None, b"[DONE]")]),  # rawproxy's leniency at EOF
    ],
)
def test_issue6_sse_spec_examples(body: bytes, expected: list[tuple[str | None, bytes]]) -> None:
    assert reference_sse(body) == expected
    assert decode_sse([body]) == expected
    assert decode_sse([body[i : i + 1] for i in range(len(body))]) == expected


# ================================================================================ translator plumbing


def a2o_translator(ctx: ir.Context) -> StreamTranslator:
    return StreamTranslator(anthropic_messages, openai_chat, ctx)


def o2a_translator(ctx: ir.Context) -> StreamTranslator:
    return StreamTranslator(openai_chat, anthropic_messages, ctx)


@dataclass
class Run:
    pieces: list[bytes]  # what each call returned: start(), feed()..., close()
    translator: StreamTranslator
    raised: list[ProxyError] = field(default_factory=list)

    @property
    def out(self) -> bytes:
        return b"".join(self.pieces)


def run(
    make: Callable[[], StreamTranslator],
    chunks: list[bytes],
    *,
    start: bool = True,
    fail_at: int | None = None,
) -> Run:
    """Drive a translator as the proxy does. Only a ProxyError may leave feed/close (errors.py rule 2);
    should one leave, it is answered with fail(), as the proxy's stream pump would."""
    tr = make()
    result = Run([], tr)

    def call(method: Callable[[], bytes]) -> None:
        try:
            piece = method()
        except ProxyError as exc:  # documented, but the translator is meant to keep them in-stream
            result.raised.append(exc)
            piece = tr.fail(exc.info)
        assert type(piece) is bytes
        result.pieces.append(piece)

    info = ir.ErrorInfo(status=504, type=ir.ErrorType.TIMEOUT, message="upstream read timed out")
    if start:
        call(tr.start)
    for i, chunk in enumerate(chunks):
        if i == fail_at:
            call(lambda: tr.fail(info))
        call(lambda chunk=chunk: tr.feed(chunk))  # type: ignore[misc]
    if fail_at == len(chunks):
        call(lambda: tr.fail(info))
    call(tr.close)
    return result


_CREATED = re.compile(rb'"created":\d+')
_RANDOM_IDS = re.compile(rb'"(msg_|chatcmpl-|toolu_)[0-9a-f]{24}"')


def normalise(out: bytes) -> bytes:
    """The clock and the ids made up where the upstream gave none."""
    return _RANDOM_IDS.sub(rb'"\1RANDOM"', _CREATED.sub(b'"created":0', out))


def client_events(out: bytes) -> list[tuple[str | None, Any]]:
    """The client's events, split by an independent parser and parsed."""
    events: list[tuple[str | None, Any]] = []
    for name, data in reference_sse(out):
        events.append((name, data.decode() if data == b"[DONE]" else json.loads(data)))
    return events


# ---------------------------------------------------------------------- well-formedness: Anthropic


_ANTHROPIC_FRAME = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_STOP_REASONS = {reason.value for reason in ir.StopReason}
_DELTA_FOR_BLOCK = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
_DELTA_FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
    "signature_delta": "signature",
}


def _anthropic_frames(out: bytes) -> list[tuple[str, Any]]:
    frames = []
    pos = 0
    while pos < len(out):
        m = _ANTHROPIC_FRAME.match(out, pos)
        assert m is not None, f"not an Anthropic SSE frame at byte {pos}: {out[pos : pos + 120]!r}"
        data = json.loads(m.group(2))
        assert isinstance(data, dict)
        assert data.get("type") == m.group(1).decode(), "the event name is the data's type"
        frames.append((m.group(1).decode(), data))
        pos = m.end()
    return frames


def _assert_usage(usage: Any, keys: tuple[str, ...]) -> None:
    assert isinstance(usage, dict)
    for key in keys:
        assert type(usage.get(key)) is int, (key, usage)


def check_anthropic(result: Run, *, started: bool, blocks: bool) -> list[tuple[str, Any]]:
    """An Anthropic client's stream, complete (close() was called): strict framing, one message_start
    first (or nothing but an error), one terminal event last (message_stop or error). With ``blocks``,
    the block discipline too: indices 0, 1, 2..., one open block at a time, deltas of its kind."""
    frames = _anthropic_frames(result.out)
    names = [name for name, _ in frames]
    assert names, "a stream that ends says how"
    assert names[-1] in ("message_stop", "error"), names[-1]
    assert names.count("message_stop") + names.count("error") == 1, names
    if started or names[0] != "error":
        assert names[0] == "message_start", names[:3]
    assert names.count("message_start") <= 1
    if names[-1] == "message_stop":
        assert names.count("message_delta") == 1 and names[-2] == "message_delta", names[-3:]
    assert (result.translator.error is not None) == (names[-1] == "error"), "translator.error is the error"
    open_block: tuple[int, str] | None = None
    count = 0
    for name, data in frames:
        if name == "message_start":
            message = data["message"]
            assert message["role"] == "assistant" and message["model"] == CLIENT_MODEL
            assert message["content"] == [] and message["id"].startswith("msg_")
            _assert_usage(message["usage"], ("input_tokens", "output_tokens"))
        elif name == "message_delta":
            assert data["delta"]["stop_reason"] in _STOP_REASONS
            sequence = data["delta"]["stop_sequence"]
            assert sequence is None or isinstance(sequence, str)
            _assert_usage(data["usage"], ("input_tokens", "output_tokens"))
            if blocks:
                assert open_block is None, "every block is closed before message_delta"
        elif name == "error":
            assert isinstance(data["error"]["type"], str) and isinstance(data["error"]["message"], str)
        elif name == "content_block_start":
            block = data["content_block"]
            assert type(data["index"]) is int
            if block["type"] == "tool_use":
                assert _TOOL_ID.match(block["id"]), block["id"]
                assert isinstance(block["name"], str) and block["input"] == {}
            if blocks:
                assert open_block is None, "blocks never interleave"
                assert data["index"] == count, (data["index"], count)
                assert block["type"] in _DELTA_FOR_BLOCK, block
                open_block = (count, block["type"])
                count += 1
        elif name == "content_block_delta":
            delta = data["delta"]
            assert type(data["index"]) is int
            assert isinstance(delta[_DELTA_FIELDS[delta["type"]]], str), delta
            if blocks:
                assert open_block is not None and data["index"] == open_block[0], (data, open_block)
                assert delta["type"] == _DELTA_FOR_BLOCK[open_block[1]], (delta, open_block)
        elif name == "content_block_stop":
            if blocks:
                assert open_block is not None and data["index"] == open_block[0], (data, open_block)
                open_block = None
        else:
            assert name in ("ping", "message_stop"), name
    return frames


# ------------------------------------------------------------------------- well-formedness: OpenAI


_OPENAI_FRAME = re.compile(rb"(?:data: ([^\n]*)|: ping)\n\n")
_FINISH = {"stop", "length", "tool_calls", "content_filter"}


def check_openai(result: Run, *, started: bool, ctx: ir.Context) -> list[Any]:
    """An OpenAI client's stream, complete: strict framing (``data:`` lines and ping comments), JSON
    chunks the official SDK accepts, a role chunk first (when start() was called or anything but an error
    came), then either exactly one finish chunk (and the usage chunk, if asked for) or one error chunk,
    and ``data: [DONE]`` once, last. Tool calls are numbered 0, 1, 2... and named at first sight."""
    payloads: list[Any] = []
    pos = 0
    out = result.out
    while pos < len(out):
        m = _OPENAI_FRAME.match(out, pos)
        assert m is not None, f"not an OpenAI SSE frame at byte {pos}: {out[pos : pos + 120]!r}"
        if m.group(1) is not None:
            payloads.append("[DONE]" if m.group(1) == b"[DONE]" else json.loads(m.group(1)))
        pos = m.end()
    assert payloads and payloads[-1] == "[DONE]", "an OpenAI stream ends with data: [DONE]"
    assert payloads.count("[DONE]") == 1
    chunks = payloads[:-1]
    assert all(isinstance(c, dict) for c in chunks)
    errors = [i for i, c in enumerate(chunks) if "error" in c]
    finishes = [i for i, c in enumerate(chunks) if c.get("choices") and c["choices"][0]["finish_reason"]]
    assert (result.translator.error is not None) == bool(errors), "translator.error is the error"
    if errors:
        assert errors == [len(chunks) - 1], "an error chunk is the last before [DONE]"
        error = chunks[-1]["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
        assert not finishes
    else:
        assert len(finishes) == 1, finishes
        usage_chunks = len(chunks) - 1 - finishes[0]
        assert usage_chunks == (1 if ctx.include_usage else 0)
        if ctx.include_usage:
            assert chunks[-1]["choices"] == []
            _assert_usage(chunks[-1]["usage"], ("prompt_tokens", "completion_tokens", "total_tokens"))
    normal = [c for c in chunks if "error" not in c]
    if normal and (started or not errors):
        assert normal[0]["choices"][0]["delta"].get("role") == "assistant"
    tool_ids: dict[int, str] = {}
    for c in normal:
        ChatCompletionChunk.model_validate(c)
        assert c["object"] == "chat.completion.chunk" and c["model"] == CLIENT_MODEL
        assert c["id"] == normal[0]["id"]
        if not c["choices"]:
            assert "usage" in c
            continue
        (choice,) = c["choices"]
        assert choice["index"] == 0
        assert choice["finish_reason"] is None or choice["finish_reason"] in _FINISH
        for tc in choice["delta"].get("tool_calls") or ():
            if tc["index"] not in tool_ids:
                assert tc["index"] == len(tool_ids), "tool calls are numbered in order"
                assert isinstance(tc["id"], str) and isinstance(tc["function"]["name"], str)
                tool_ids[tc["index"]] = tc["id"]
            else:
                assert tc.get("id") in (None, tool_ids[tc["index"]])
            assert isinstance(tc["function"]["arguments"], str)
    return chunks


# ====================================================================== generated upstream streams


# Text that exercises UTF-8: CJK, emoji (4 bytes, ZWJ sequences), combining marks, escapes.
_SPECIAL = '日本語中文한국어😀🎉👩‍💻ñé€\u0301\u200b\n\t"\\/<>'
TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(_SPECIAL)), min_size=1, max_size=10
)
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
ARGS = st.dictionaries(
    st.sampled_from(["path", "command", "q", "x", "日本", "a b"]) | TEXT,
    st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=4),
    max_size=4,
)
TOOL_NAMES = st.sampled_from(["Bash", "Read", "get_weather", "mcp__server__search", "x"])


@st.composite
def fragments(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` in 1..6 non-empty pieces."""
    if len(text) < 2:
        return [text]
    cuts = draw(st.lists(st.integers(1, len(text) - 1), max_size=5, unique=True))
    bounds = [0, *sorted(cuts), len(text)]
    return [text[a:b] for a, b in pairwise(bounds)]


@dataclass
class Expected:
    """What the generated upstream stream says, for the oracle."""

    text: str = ""
    thinking: str = ""
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, input), first-seen order
    finish: str | None = None  # the upstream's own word
    complete: bool = True  # the stream says how the message ended
    usage: dict[str, int] | None = None
    error_type: str | None = None  # the stream ends in the upstream's in-band error, of this type


@dataclass
class Stream:
    events: list[tuple[str | None, Any]]  # (event name, JSON value or "[DONE]")
    expected: Expected


# ---------------------------------------------------------------------------- OpenAI upstream (A2O)


@st.composite
def openai_streams(draw: st.DrawFn) -> Stream:
    cid = draw(st.sampled_from(["chatcmpl-gen1", "gen-1700000000-abc", ""]))
    exp = Expected()

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": 1,
            "model": UPSTREAM_MODEL,
        }
        c["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return c

    events: list[Any] = []
    if draw(st.booleans()):
        events.append(chunk({"role": "assistant", "content": ""}))
    call_count = 0
    for kind in draw(st.lists(st.sampled_from(["text", "reasoning", "tools"]), max_size=5)):
        if kind == "text":
            for piece in draw(st.lists(TEXT, min_size=1, max_size=4)):
                events.append(chunk({"content": piece}))
                exp.text += piece
        elif kind == "reasoning":
            key = draw(st.sampled_from(["reasoning_content", "reasoning"]))
            for piece in draw(st.lists(TEXT, min_size=1, max_size=4)):
                events.append(chunk({key: piece}))
                exp.thinking += piece
        else:
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                index, call_count = call_count, call_count + 1
                name, args = draw(TOOL_NAMES), draw(ARGS)
                text = orjson.dumps(args).decode()
                pieces = draw(fragments(text))
                head: dict[str, Any] = {"index": index, "id": f"call_{index}", "type": "function"}
                if draw(st.booleans()):  # OpenAI: name first, arguments "" (others: the first piece)
                    head["function"] = {"name": name, "arguments": ""}
                    deltas = [head]
                else:
                    head["function"] = {"name": name, "arguments": pieces.pop(0)}
                    deltas = [head]
                deltas += [{"index": index, "function": {"arguments": p}} for p in pieces]
                calls.append(deltas)
            order = [i for i, deltas in enumerate(calls) for _ in deltas]
            if draw(st.booleans()):  # parallel calls, their fragments interleaved
                order = draw(st.permutations(order))
            cursor = [0] * len(calls)
            seen: list[int] = []
            tool_chunks: list[list[dict[str, Any]]] = []
            for i in order:
                tc = calls[i][cursor[i]]
                cursor[i] += 1
                if i not in seen:
                    seen.append(i)
                joinable = tool_chunks and all(d["index"] != tc["index"] for d in tool_chunks[-1])
                if joinable and draw(st.booleans()):  # several calls in one chunk
                    tool_chunks[-1].append(tc)
                else:
                    tool_chunks.append([tc])
            events += [chunk({"tool_calls": group}) for group in tool_chunks]
            for i in seen:
                head = calls[i][0]
                args_text = "".join(d["function"]["arguments"] for d in calls[i])
                exp.calls.append((head["id"], head["function"]["name"], json.loads(args_text)))
    if draw(st.integers(0, 4)) == 0:  # an in-band error: OpenRouter's chunk or Groq's `event: error`
        code, exp.error_type = draw(
            st.sampled_from(
                [(429, "rate_limit_error"), (502, "api_error"), (None, "api_error"), ("x", "api_error")]
            )
        )
        if draw(st.booleans()):
            error = {**chunk({"content": ""}, "error"), "error": {"code": code, "message": "Rate limited"}}
            events.append(error)
            names: list[str | None] = [None] * len(events)
        else:
            names = [*([None] * len(events)), "error"]
            events.append(
                {"error": {"message": "Internal", "type": "internal_server_error", "status_code": 503}}
            )
            exp.error_type = "overloaded_error"
        if draw(st.booleans()):
            events.append("[DONE]")
            names.append(None)
        exp.complete = False
        return Stream(list(zip(names, events, strict=True)), exp)
    exp.finish = draw(st.sampled_from(["stop", "tool_calls", "length", "content_filter", None]))
    if exp.finish is not None:
        events.append(chunk({}, exp.finish))
    where = draw(st.sampled_from(["none", "finish", "own"])) if exp.finish else "own"
    if where != "none" and draw(st.booleans()):
        prompt, completion, cached = draw(st.tuples(*[st.integers(0, 10**6)] * 3))
        cached = min(cached, prompt)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
        if where == "finish":
            events[-1]["usage"] = usage
        else:
            events.append({**chunk(None), "usage": usage})
        exp.usage = {"input_tokens": prompt - cached, "output_tokens": completion}
    done = draw(st.booleans())
    if done:
        events.append("[DONE]")
    exp.complete = exp.finish is not None or done
    return Stream([(None, e) for e in events], exp)


def a2o_ctx(draw: Callable[[st.SearchStrategy[Any]], Any]) -> ir.Context:
    profile = draw(st.sampled_from(sorted(profiles.PROFILES)))
    return ir.Context(
        client_model=CLIENT_MODEL,
        upstream_model=UPSTREAM_MODEL,
        thinking=draw(st.booleans()),
        input_tokens=draw(st.integers(0, 5000)),
        profile=replace(profiles.PROFILES[profile], buffer_tool_args=draw(st.booleans())),
    )


def check_a2o_oracle(frames: list[tuple[str, Any]], exp: Expected, ctx: ir.Context) -> None:
    text = thinking = ""
    calls: list[list[Any]] = []
    kinds = []
    for name, data in frames:
        if name == "content_block_start":
            kinds.append(data["content_block"]["type"])
            if kinds[-1] == "tool_use":
                calls.append([data["content_block"]["id"], data["content_block"]["name"], ""])
        elif name == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                text += delta["text"]
            elif delta["type"] == "thinking_delta":
                thinking += delta["thinking"]
            else:
                calls[-1][2] += delta["partial_json"]
    last = frames[-1]
    if not exp.complete:  # what reached the client before the error is a prefix of the message
        assert last[0] == "error", "a stream that stops without a finish reason is an error (A2O-S13)"
        assert last[1]["error"]["type"] == (exp.error_type or "api_error")
        assert exp.text.startswith(text) and exp.thinking.startswith(thinking)
        assert [(i, n) for i, n, _ in calls] == [(i, n) for i, n, _ in exp.calls[: len(calls)]]
        return
    assert text == exp.text
    assert thinking == (exp.thinking if ctx.thinking else "")
    assert [(i, n, json.loads(a)) for i, n, a in calls] == exp.calls
    assert last[0] == "message_stop"
    stop = frames[-2][1]["delta"]["stop_reason"]
    expected_stop = {"length": "max_tokens", "content_filter": "refusal"}.get(exp.finish or "", "end_turn")
    if expected_stop == "end_turn" and (exp.calls or exp.finish == "tool_calls"):
        expected_stop = "tool_use"
    assert stop == expected_stop
    if exp.usage is not None:
        usage = frames[-2][1]["usage"]
        assert (usage["input_tokens"], usage["output_tokens"]) == (
            exp.usage["input_tokens"],
            exp.usage["output_tokens"],
        )


# ------------------------------------------------------------------------- Anthropic upstream (O2A)


@st.composite
def anthropic_streams(draw: st.DrawFn) -> Stream:
    exp = Expected()
    events: list[dict[str, Any]] = []

    def ping() -> None:
        if draw(st.integers(0, 5)) == 0:
            events.append({"type": "ping"})

    usage = {
        "input_tokens": draw(st.integers(0, 10**5)),
        "cache_read_input_tokens": draw(st.integers(0, 10**5)),
        "cache_creation_input_tokens": draw(st.integers(0, 100)),
        "output_tokens": 1,
    }
    msg_id = draw(st.sampled_from(["msg_01GenAbc", ""]))
    message = {"id": msg_id, "type": "message", "role": "assistant", "model": UPSTREAM_MODEL, "content": []}
    events.append({"type": "message_start", "message": {**message, "stop_reason": None, "usage": usage}})
    ping()
    kinds = draw(
        st.lists(st.sampled_from(["text", "thinking", "tool_use", "redacted", "server"]), max_size=5)
    )
    for index, kind in enumerate(kinds):

        def delta(body: dict[str, Any], index: int = index) -> None:
            events.append({"type": "content_block_delta", "index": index, "delta": body})
            ping()

        if kind == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            for piece in draw(st.lists(TEXT, min_size=1, max_size=4)):
                delta({"type": "text_delta", "text": piece})
                exp.text += piece
        elif kind == "thinking":
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            events.append({"type": "content_block_start", "index": index, "content_block": block})
            for piece in draw(st.lists(TEXT, min_size=1, max_size=4)):
                delta({"type": "thinking_delta", "thinking": piece})
                exp.thinking += piece
            delta({"type": "signature_delta", "signature": "EqQBCkYIBRgCKkBsig=="})
        elif kind in ("tool_use", "server"):
            tool_id = f"toolu_01Gen{index}" if kind == "tool_use" else f"srvtoolu_01Gen{index}"
            name = draw(TOOL_NAMES) if kind == "tool_use" else "web_search"
            block = {
                "type": "tool_use" if kind == "tool_use" else "server_tool_use",
                "id": tool_id,
                "name": name,
                "input": {},
            }
            events.append({"type": "content_block_start", "index": index, "content_block": block})
            args = draw(ARGS)
            for piece in ["", *draw(fragments(orjson.dumps(args).decode()))]:
                delta({"type": "input_json_delta", "partial_json": piece})
            if kind == "tool_use":
                exp.calls.append((tool_id, name, args))
        else:
            block = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"}
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
        ping()
    exp.finish = draw(st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal"]))
    out_tokens = draw(st.integers(0, 10**5))
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": exp.finish,
                "stop_sequence": "END" if exp.finish == "stop_sequence" else None,
            },
            "usage": {"output_tokens": out_tokens},
        }
    )
    events.append({"type": "message_stop"})
    ending = draw(st.sampled_from(["complete", "complete", "complete", "cut", "error"]))
    exp.complete = ending == "complete"
    if not exp.complete:  # cut somewhere after message_start: an error, never a silent truncation
        del events[draw(st.integers(1, len(events) - 1)) :]
    if ending == "error":
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        exp.error_type = "overloaded_error"
    exp.usage = {
        "prompt_tokens": usage["input_tokens"]
        + usage["cache_read_input_tokens"]
        + usage["cache_creation_input_tokens"],
        "completion_tokens": out_tokens or 1,  # a zero does not replace message_start's figure
    }
    return Stream([(e["type"], e) for e in events], exp)


def o2a_ctx(draw: Callable[[st.SearchStrategy[Any]], Any]) -> ir.Context:
    return ir.Context(
        client_model=CLIENT_MODEL,
        upstream_model=UPSTREAM_MODEL,
        include_usage=draw(st.booleans()),
        input_tokens=draw(st.integers(0, 5000)),
    )


_O2A_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def check_o2a_oracle(chunks: list[Any], exp: Expected, ctx: ir.Context) -> None:
    text = reasoning = ""
    calls: dict[int, list[Any]] = {}
    for c in chunks:
        if "error" in c or not c["choices"]:
            continue
        delta = c["choices"][0]["delta"]
        text += delta.get("content") or ""
        reasoning += delta.get("reasoning_content") or ""
        for tc in delta.get("tool_calls") or ():
            call = calls.setdefault(tc["index"], [tc.get("id"), tc["function"].get("name"), ""])
            call[2] += tc["function"]["arguments"]
    if exp.complete:
        assert text == exp.text
        assert reasoning == exp.thinking
        assert [(i, n, json.loads(a)) for i, n, a in calls.values()] == exp.calls
        assert chunks[-1 - ctx.include_usage]["choices"][0]["finish_reason"] == _O2A_FINISH[exp.finish or ""]
        if ctx.include_usage:
            usage = chunks[-1]["usage"]
            assert usage["prompt_tokens"] == exp.usage["prompt_tokens"]  # type: ignore[index]
            assert usage["completion_tokens"] == exp.usage["completion_tokens"]  # type: ignore[index]
    else:
        assert "error" in chunks[-1]
        assert chunks[-1]["error"]["message"] == (
            "Overloaded" if exp.error_type else "upstream stream ended prematurely"
        )
        assert exp.text.startswith(text) and exp.thinking.startswith(reasoning)


# -------------------------------------------------------------------------------------------- framing


def render_canonical(stream: Stream) -> bytes:
    out = []
    for name, value in stream.events:
        data = value.encode() if isinstance(value, str) else orjson.dumps(value)
        out.append((b"event: " + name.encode() + b"\n" if name else b"") + b"data: " + data + b"\n\n")
    return b"".join(out)


@st.composite
def render_random(draw: st.DrawFn, stream: Stream, *, free_names: bool) -> bytes:
    """The same events framed as some upstream might: every framing choice the SSE rules allow."""
    end = draw(st.sampled_from(LINE_ENDS))
    mixed = draw(st.integers(0, 3)) == 0  # a different line end on every line
    out: list[bytes] = []

    def line(content: bytes) -> None:
        eol = draw(st.sampled_from(LINE_ENDS)) if mixed else end
        if not content and eol == b"\n" and out and out[-1].endswith(b"\r"):
            eol = b"\r\n"  # CR then LF would be one CRLF: the blank line would vanish
        out.append(content + eol)

    space = draw(st.sampled_from([b"data: ", b"data:", None]))
    if draw(st.booleans()):
        line(b": OPENROUTER PROCESSING")
        line(b"")
    for name, value in stream.events:
        if draw(st.integers(0, 4)) == 0:
            line(draw(st.sampled_from([b": ping", b"id: 7", b"retry: 3000", b":"])))
        if name is not None and free_names:  # keyed on the JSON type (O2A-S11): any name, or none
            name = draw(st.sampled_from([name, name, name, name, None, "message"]))
        if name is not None:
            line(b"event:" + draw(st.sampled_from([b" ", b""])) + name.encode())
        if isinstance(value, str):
            payloads = [value.encode()]
        else:
            style = draw(st.sampled_from(["compact", "ascii", "indent"]))
            if style == "compact":
                payloads = [orjson.dumps(value)]
            elif style == "ascii":
                payloads = [json.dumps(value, ensure_ascii=True).encode()]
            else:  # one JSON document over several data lines, joined again with LF by the decoder
                payloads = orjson.dumps(value, option=orjson.OPT_INDENT_2).split(b"\n")
        prefix = space if space is not None else draw(st.sampled_from([b"data: ", b"data:"]))
        for payload in payloads:
            line(prefix + payload)
        line(b"")
        if draw(st.integers(0, 6)) == 0:
            line(draw(st.sampled_from([b": keep-alive", b""])))
    if stream.events and out[-1] in LINE_ENDS and draw(st.booleans()):
        out.pop()  # no blank line after the last event: dispatched anyway at EOF
        if draw(st.booleans()):  # nor a line end after its last line
            out[-1] = out[-1].rstrip(b"\r\n")
    return b"".join(out)


# ============================================================================ 1. chunking: generated


@FAST
@given(data=st.data())
def test_issue6_a2o_any_chunking_and_framing_gives_identical_output(data: st.DataObject) -> None:
    stream = data.draw(openai_streams(), label="stream")
    ctx = a2o_ctx(data.draw)
    canonical = render_canonical(stream)
    framed = data.draw(render_random(stream, free_names=False), label="framed")

    def make() -> StreamTranslator:
        return a2o_translator(replace(ctx))

    reference = run(make, [canonical])
    frames = check_anthropic(reference, started=True, blocks=True)
    check_a2o_oracle(frames, stream.expected, ctx)
    want = normalise(reference.out)
    for body in (canonical, framed):
        chunks = data.draw(chunkings(body), label="chunks")
        got = run(make, chunks)
        assert not got.raised
        assert client_events(normalise(got.out)) == client_events(want)
        assert normalise(got.out) == want
        assert got.translator.error == reference.translator.error, "the framing must not decide a retry"


@FAST
@given(data=st.data())
def test_issue6_o2a_any_chunking_and_framing_gives_identical_output(data: st.DataObject) -> None:
    stream = data.draw(anthropic_streams(), label="stream")
    ctx = o2a_ctx(data.draw)
    canonical = render_canonical(stream)
    framed = data.draw(render_random(stream, free_names=True), label="framed")

    def make() -> StreamTranslator:
        return o2a_translator(replace(ctx))

    reference = run(make, [canonical])
    chunks_out = check_openai(reference, started=True, ctx=ctx)
    check_o2a_oracle(chunks_out, stream.expected, ctx)
    want = normalise(reference.out)
    for body in (canonical, framed):
        chunks = data.draw(chunkings(body), label="chunks")
        got = run(make, chunks)
        assert not got.raised
        assert client_events(normalise(got.out)) == client_events(want)
        assert normalise(got.out) == want
        assert got.translator.error == reference.translator.error, "the framing must not decide a retry"


# ========================================================================== 1. chunking: transcripts


def _upstream_host(t: Any) -> str:
    raw = json.loads((HERE / "openai_chat" / f"{t.name}.json").read_text(encoding="utf-8"))
    return str(raw["source"]["upstream_host"])


OPENAI_STREAMS = [t for t in load("openai_chat") if t.is_sse and t.status == 200]
ANTHROPIC_STREAMS = [t for t in load("anthropic_messages") if t.is_sse and t.status == 200]


def _crlf(body: bytes) -> bytes:
    """The same stream with CRLF line ends (a JSON data line never holds a raw line break)."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def _transcript_case(
    data: st.DataObject, transcripts: list[Any], make_ctx: Callable[[Any, bool], ir.Context]
) -> tuple[Any, ir.Context, bytes, bytes]:
    t = data.draw(st.sampled_from(transcripts), label="transcript")
    ctx = make_ctx(t, data.draw(st.booleans(), label="flag"))
    body = t.body
    variant = data.draw(st.sampled_from(["as recorded", "crlf", "no space"]), label="variant")
    if variant == "crlf":
        body = _crlf(body)
    elif variant == "no space":
        body = re.sub(rb"(^|[\r\n])(data|event): ", rb"\1\2:", body)
    return t, ctx, t.body, body


@TRANSCRIPTS
@given(data=st.data())
def test_issue6_a2o_transcripts_any_chunking_gives_identical_output(data: st.DataObject) -> None:
    def make_ctx(t: Any, thinking: bool) -> ir.Context:
        stop = t.request_body.get("stop")
        return ir.Context(
            client_model=CLIENT_MODEL,
            upstream_model=t.model,
            thinking=thinking,
            stop=[stop] if isinstance(stop, str) else list(stop or []),
            profile=profiles.guess_profile(f"https://{_upstream_host(t)}/v1"),
        )

    _, ctx, recorded, body = _transcript_case(data, OPENAI_STREAMS, make_ctx)
    reference = run(lambda: a2o_translator(replace(ctx)), [recorded])
    check_anthropic(reference, started=True, blocks=True)
    got = run(lambda: a2o_translator(replace(ctx)), data.draw(chunkings(body), label="chunks"))
    assert client_events(normalise(got.out)) == client_events(normalise(reference.out))
    assert normalise(got.out) == normalise(reference.out)


@TRANSCRIPTS
@given(data=st.data())
def test_issue6_o2a_transcripts_any_chunking_gives_identical_output(data: st.DataObject) -> None:
    def make_ctx(t: Any, include_usage: bool) -> ir.Context:
        return ir.Context(client_model=CLIENT_MODEL, upstream_model=t.model, include_usage=include_usage)

    _, ctx, recorded, body = _transcript_case(data, ANTHROPIC_STREAMS, make_ctx)
    reference = run(lambda: o2a_translator(replace(ctx)), [recorded])
    check_openai(reference, started=True, ctx=ctx)
    got = run(lambda: o2a_translator(replace(ctx)), data.draw(chunkings(body), label="chunks"))
    assert client_events(normalise(got.out)) == client_events(normalise(reference.out))
    assert normalise(got.out) == normalise(reference.out)


# ================================================================================= 2. random inputs


JSON_VALUES = st.recursive(
    _JSON_SCALARS | st.sampled_from(["", "[DONE]", "text_delta", "tool_use", "stop", "error"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "index", "delta", "choices", "error", "usage", "id", "content"]) | TEXT,
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, but the root."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, sub in items:
        yield (*path, key)
        yield from _paths(sub, (*path, key))


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one place, picked uniformly, replaced by a value of another type than expected
    (or any JSON value), or a key dropped: a realistic event of the wrong shape."""
    paths = list(_paths(value))
    if not paths:
        return draw(JSON_VALUES)
    *parents, last = draw(st.sampled_from(paths))
    value = copy.deepcopy(value)
    parent = value
    for key in parents:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.integers(0, 5)) == 0:
        del parent[last]
    else:
        parent[last] = draw(WRONG_TYPES | JSON_VALUES)
    return value


WRONG_TYPES = st.sampled_from([0, 1, -1, 2.5, True, False, "", "x", "0", [], [1], {}, {"a": 1}, None])
EVENT_NAMES = st.one_of(
    st.none(),
    st.sampled_from(["message", "error", "ping", "message_start", "content_block_delta", "message_stop", ""]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", max_size=8),
)


@st.composite
def random_streams(draw: st.DrawFn, realistic: st.SearchStrategy[Stream]) -> bytes:
    modes = ["bytes", "soup", "json", "mutated", "mutated", "mutated", "truncated", "realistic"]
    mode = draw(st.sampled_from(modes))
    if mode == "bytes":
        return draw(st.binary(max_size=400))
    if mode == "soup":  # SSE-ish tokens and garbage
        tokens = st.sampled_from(
            [
                b"data:",
                b"data: ",
                b"event: ",
                b"event: error",
                b"\n",
                b"\r",
                b"\r\n",
                b"\n\n",
                b":",
                b"{",
                b"}",
                b"[DONE]",
                b'"type":',
                b'"message_stop"',
                b'"choices":[',
                b"null",
                b",",
                b"\xf0\x9f",
            ]
        )
        return b"".join(draw(st.lists(tokens | st.binary(max_size=4), max_size=60)))
    if mode == "json":
        events = draw(st.lists(st.tuples(EVENT_NAMES, JSON_VALUES), max_size=10))
        stream = Stream(events, Expected())
    else:
        stream = draw(realistic)
        if mode == "mutated":
            events = list(stream.events)
            for i in draw(st.lists(st.integers(0, max(len(events) - 1, 0)), min_size=1, max_size=6)):
                if events:
                    name, value = events[i]
                    events[i] = (
                        draw(EVENT_NAMES) if draw(st.integers(0, 4)) == 0 else name,
                        draw(mutated(value)),
                    )
            stream = Stream(events, stream.expected)
    body = draw(render_random(stream, free_names=True))
    if mode == "truncated":
        body = body[: draw(st.integers(0, len(body)))]
    return body


@FAST
@given(data=st.data())
def test_issue6_a2o_random_input_gives_a_well_formed_anthropic_stream(data: st.DataObject) -> None:
    ctx = a2o_ctx(data.draw)
    body = data.draw(random_streams(openai_streams()), label="body")
    chunks = data.draw(chunkings(body), label="chunks")
    started = data.draw(st.booleans(), label="start")
    # fail() before some chunk, or after the last (a reset after a complete message), or never
    fail_at = data.draw(st.none() | st.just(len(chunks)) | st.integers(0, len(chunks)), label="fail_at")
    result = run(lambda: a2o_translator(ctx), chunks, start=started, fail_at=fail_at)
    check_anthropic(result, started=started, blocks=True)


@FAST
@given(data=st.data())
def test_issue6_o2a_random_input_gives_a_well_formed_openai_stream(data: st.DataObject) -> None:
    ctx = o2a_ctx(data.draw)
    if data.draw(st.booleans(), label="json_tool"):
        ctx.json_tool = "Bash"
    body = data.draw(random_streams(anthropic_streams()), label="body")
    chunks = data.draw(chunkings(body), label="chunks")
    started = data.draw(st.booleans(), label="start")
    # fail() before some chunk, or after the last (a reset after a complete message), or never
    fail_at = data.draw(st.none() | st.just(len(chunks)) | st.integers(0, len(chunks)), label="fail_at")
    result = run(lambda: o2a_translator(ctx), chunks, start=started, fail_at=fail_at)
    check_openai(result, started=started, ctx=ctx)


def _check_ir(ev: ir.StreamEvent) -> None:
    """Every field of an IR stream event has the type the IR declares."""
    if isinstance(ev, ir.MessageStart):
        assert type(ev.id) is str and type(ev.model) is str
        _check_usage(ev.usage)
    elif isinstance(ev, ir.BlockStart):
        assert type(ev.index) is int
        block = ev.block
        if isinstance(block, ir.TextBlock):
            assert type(block.text) is str
        elif isinstance(block, ir.ThinkingBlock):
            assert type(block.thinking) is str and (block.signature is None or type(block.signature) is str)
        elif isinstance(block, ir.ToolUseBlock):
            assert type(block.id) is str and type(block.name) is str
        elif isinstance(block, ir.RedactedThinkingBlock):
            assert type(block.data) is str
        else:
            assert isinstance(block, ir.OtherBlock) and type(block.type) is str and type(block.raw) is dict
    elif isinstance(ev, ir.TextDelta | ir.ThinkingDelta | ir.SignatureDelta | ir.InputJsonDelta):
        assert type(ev.index) is int
        value = {
            ir.TextDelta: "text",
            ir.ThinkingDelta: "thinking",
            ir.SignatureDelta: "signature",
            ir.InputJsonDelta: "partial_json",
        }[type(ev)]
        assert type(getattr(ev, value)) is str
    elif isinstance(ev, ir.BlockStop):
        assert type(ev.index) is int
    elif isinstance(ev, ir.MessageDelta):
        assert isinstance(ev.stop_reason, ir.StopReason)
        assert ev.stop_sequence is None or type(ev.stop_sequence) is str
        _check_usage(ev.usage)
    elif isinstance(ev, ir.StreamError):
        info = ev.info
        assert type(info.status) is int and isinstance(info.type, ir.ErrorType) and type(info.message) is str
    else:
        assert isinstance(ev, ir.MessageStop | ir.Ping)


def _check_usage(usage: ir.Usage) -> None:
    assert isinstance(usage, ir.Usage)
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        assert type(getattr(usage, name)) is int, (name, usage)


def _decode_ir(decoder: Any, chunks: list[bytes]) -> Iterator[ir.StreamEvent]:
    sse = SSEDecoder()
    try:
        for chunk in chunks:
            for event in sse.feed(chunk):
                yield from decoder.feed(event)
        for event in sse.close():
            yield from decoder.feed(event)
        yield from decoder.eof()
    except ProxyError:
        return


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_issue6_upstream_decoders_emit_well_typed_ir(data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="openai"):
        ctx = a2o_ctx(data.draw)
        decoder: Any = openai_chat.StreamDecoder(ctx)
        body = data.draw(random_streams(openai_streams()), label="body")
    else:
        ctx = o2a_ctx(data.draw)
        decoder = anthropic_messages.StreamDecoder(ctx)
        body = data.draw(random_streams(anthropic_streams()), label="body")
    for ev in _decode_ir(decoder, data.draw(chunkings(body), label="chunks")):
        _check_ir(ev)
    if decoder.usage is not None:
        _check_usage(decoder.usage)


# ============================================================ regressions the properties found (issue 6)


def _sse(*events: Any, name: bool = False) -> bytes:
    return b"".join(
        (b"event: " + e["type"].encode() + b"\n" if name else b"") + b"data: " + orjson.dumps(e) + b"\n\n"
        for e in events
    )


@pytest.mark.parametrize(
    ("dialect", "chunk"),
    [
        ("openai", {"choices": [{"index": 0, "delta": "abc"}]}),
        ("openai", {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "x"}]}}]}),
        ("openai", {"usage": {"prompt_tokens": "many"}}),
        ("openai", {"choices": [{"index": 0, "delta": {"reasoning_details": [{"text": 5}]}}]}),
        ("openai", {"choices": [{"index": 0, "delta": {"content": [{"type": "thinking", "thinking": 5}]}}]}),
        ("anthropic", {"type": "content_block_delta", "index": 0, "delta": "x"}),
        (
            "anthropic",
            {"type": "content_block_delta", "index": "a", "delta": {"type": "text_delta", "text": "x"}},
        ),
        ("anthropic", {"type": "content_block_start", "index": [0], "content_block": {"type": "text"}}),
        ("anthropic", {"type": "content_block_start", "index": 0, "content_block": "x"}),
        ("anthropic", {"type": "message_start", "message": "x"}),
        ("anthropic", {"type": "message_start", "message": {"usage": {"input_tokens": "x"}}}),
        ("anthropic", {"type": "message_delta", "delta": 1}),
    ],
)
def test_issue6_a_chunk_of_the_wrong_shape_ends_in_an_error_event(
    dialect: str, chunk: dict[str, Any]
) -> None:
    """These raised AttributeError/TypeError/ValueError out of feed(), past the proxy's stream handling;
    now they are an upstream protocol error like a chunk that is not JSON, in the client's dialect."""
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL, thinking=True)
    if dialect == "openai":
        result = run(lambda: a2o_translator(ctx), [b"data: " + orjson.dumps(chunk) + b"\n\n"])
        frames = check_anthropic(result, started=True, blocks=True)
    else:
        start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}
        result = run(lambda: o2a_translator(ctx), [_sse(start) + b"data: " + orjson.dumps(chunk) + b"\n\n"])
        frames = check_openai(result, started=True, ctx=ctx)
    assert not result.raised
    assert result.translator.error is not None
    assert "unexpected shape" in result.translator.error.message
    last: Any = frames[-1][1] if dialect == "openai" else frames[-1]  # Anthropic (name, data); OpenAI chunks
    noun = "chunk" if dialect == "openai" else "event"
    assert last["error"]["message"] == f"upstream sent a stream {noun} of an unexpected shape"


def test_issue6_a_tool_call_id_and_name_that_are_not_strings_are_not_kept() -> None:
    """An id or name of another type was kept and crashed client_tool_id() at the end of the stream."""
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL)
    call = {"index": 0, "id": 5, "function": {"name": ["x"], "arguments": "{}"}}
    chunks = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    frames = check_anthropic(run(lambda: a2o_translator(ctx), [body]), started=True, blocks=True)
    (block,) = [d["content_block"] for n, d in frames if n == "content_block_start"]
    assert block["name"] == "unknown_tool" and block["id"].startswith("toolu_")
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_issue6_an_in_band_error_without_its_blank_line_is_still_the_error() -> None:
    """The last event, dispatched by close(), was encoded but not recorded in translator.error: a
    retryable 429 was retried or not depending on the upstream's last blank line."""
    body = b'data: {"error": {"code": 429, "message": "Rate limited"}}'
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL)
    for framed in (body + b"\n\n", body + b"\n", body):
        result = run(lambda: a2o_translator(ctx), [framed], start=False)
        assert result.translator.error is not None and result.translator.error.status == 429
        assert check_anthropic(result, started=False, blocks=True)[-1][0] == "error"


def test_issue6_a_failure_after_the_message_ended_is_no_error() -> None:
    """fail() after message_stop writes nothing (the client's stream is complete), so it must not
    report an error either."""
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL)
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    ]
    result = run(lambda: o2a_translator(ctx), [_sse(*events)], fail_at=1)
    assert result.translator.error is None
    check_openai(result, started=True, ctx=ctx)


def test_issue6_content_after_the_finish_reason_is_closed_before_message_delta() -> None:
    """Text after a finish_reason (before [DONE]) opened a block that was never closed: the Anthropic
    client saw message_delta and message_stop with a content block still open."""
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL)
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    frames = check_anthropic(run(lambda: a2o_translator(ctx), [body]), started=True, blocks=True)
    assert [n for n, _ in frames].count("content_block_stop") == 2


def test_issue6_o2a_a_reused_block_index_still_numbers_tool_calls_apart() -> None:
    """Input: tool_use blocks A at index 0, B at index 0 again, C at index 1. Expected: tool_calls
    indices 0, 1, 2. Got: 0 (A), 1 (B), 1 (C), so an OpenAI client merges C into B."""
    ctx = ir.Context(client_model=CLIENT_MODEL, upstream_model=UPSTREAM_MODEL)
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {"id": "msg_1", "usage": {}}}]
    for index, tool_id in ((0, "toolu_A"), (0, "toolu_B"), (1, "toolu_C")):
        block = {"type": "tool_use", "id": tool_id, "name": "f", "input": {}}
        events += [
            {"type": "content_block_start", "index": index, "content_block": block},
            {"type": "content_block_stop", "index": index},
        ]
    events += [
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    chunks = check_openai(run(lambda: o2a_translator(ctx), [_sse(*events, name=True)]), started=True, ctx=ctx)
    calls = [
        (tc["index"], tc["id"])
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
        if "id" in tc
    ]
    assert calls == [(0, "toolu_A"), (1, "toolu_B"), (2, "toolu_C")]
