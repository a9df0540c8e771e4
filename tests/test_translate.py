"""translate.StreamTranslator and Passthrough, sans-I/O: how a stream ends when translation meets what it
did not expect (issue 19). The translation itself is tested per direction in tests/dialects/."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import Passthrough, StreamTranslator
from tests.support import openai_sse
from tests.support.openai_sse import message_start, message_stop, parse_chunks, text_delta, text_start


def _o2a(stream: bytes) -> bytes:
    """An Anthropic upstream's stream for an OpenAI client that asked for usage, in one read, then EOF."""
    t = StreamTranslator(openai_chat, anthropic_messages, openai_sse.ctx(include_usage=True))
    return t.start() + t.feed(stream) + t.close()


def _text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f.get("choices"))


def test_issue19_d1_absurd_usage_from_an_anthropic_upstream_is_a_protocol_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 19, defect 1
    absurd = (
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":100000000000000000000}}\n\n'
    )
    stream = message_start() + text_start(0) + text_delta(0, "Hello") + absurd + message_stop()
    with caplog.at_level(logging.WARNING, logger="rawproxy"):
        frames = parse_chunks(_o2a(stream))
    assert _text(frames) == "Hello"
    assert frames[-1]["error"]["type"] == "api_error"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the upstream's fault, not a bug


def test_issue19_d1_a_bug_mid_stream_ends_in_the_clients_error_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 19, defect 1
    feed = anthropic_messages.StreamDecoder.feed

    def broken(self: Any, event: Any) -> list[ir.StreamEvent]:
        if b"message_stop" in event.data:
            raise KeyError("a bug in the decoder")
        return feed(self, event)

    monkeypatch.setattr(anthropic_messages.StreamDecoder, "feed", broken)
    t = StreamTranslator(openai_chat, anthropic_messages, openai_sse.ctx())
    opening = t.start() + t.feed(message_start() + text_start(0))
    with caplog.at_level(logging.ERROR, logger="rawproxy"):
        last_read = t.feed(text_delta(0, "Hello") + message_stop())  # the text and the bug in one read
    frames = parse_chunks(opening + last_read + t.close())
    assert _text(frames) == "Hello"  # what that read translated before the bug still goes out
    assert frames[-1]["error"]["type"] == "api_error"
    assert t.error is None  # a bug is not the upstream's failure: no retry elsewhere
    [bug] = caplog.records
    assert bug.name == "rawproxy" and bug.levelno == logging.ERROR
    assert bug.exc_info is not None and isinstance(bug.exc_info[1], KeyError)


def test_issue19_d1_passthrough_ignores_a_usage_it_cannot_read() -> None:
    # issue 19, defect 1: usage is read for the log only; a broken one must not end the stream
    t = Passthrough(openai_chat, openai_sse.ctx())
    stream = b'data: {"choices":[],"usage":{"prompt_tokens":"many","completion_tokens":[]}}\n\n'
    assert t.feed(stream) is stream
    t.observe(stream)
    assert t.usage is None


# ------------------------------------------------------------------ Passthrough: whole events only

_ANTHROPIC_STREAM = message_start() + text_start(0) + text_delta(0, "Hello") + message_stop()


def _anthropic_passthrough() -> Passthrough:
    return Passthrough(anthropic_messages, openai_sse.ctx())


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_issue19_d4_passthrough_relays_every_byte_and_only_whole_events(newline: bytes) -> None:
    # issue 19, defect 4
    stream = _ANTHROPIC_STREAM.replace(b"\n", newline)
    for size in (1, 2, 3, 5, 97, len(stream)):
        t = _anthropic_passthrough()
        out = []
        for i in range(0, len(stream), size):
            piece = t.feed(stream[i : i + size])
            assert not piece or piece.endswith(newline * 2), (size, piece)  # never half an event
            out.append(piece)
        out.append(t.close())
        assert b"".join(out) == stream, size  # untouched, none lost


def test_issue19_d4_passthrough_failure_drops_the_unfinished_event() -> None:
    # issue 19, defect 4
    t = _anthropic_passthrough()
    cut = len(_ANTHROPIC_STREAM) - 10  # inside message_stop's data line
    sent = t.feed(_ANTHROPIC_STREAM[:cut])
    error = t.fail(ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="upstream gone"))
    assert sent == _ANTHROPIC_STREAM[: _ANTHROPIC_STREAM.rindex(b"event: message_stop")]
    assert error.startswith(b"event: error\ndata: ") and error.endswith(b"\n\n")
    assert t.close() == b""


def test_issue19_d4_passthrough_whole_reads_pass_as_the_same_object() -> None:
    # issue 19, defect 4: the common case costs no copy
    t = _anthropic_passthrough()
    assert t.feed(_ANTHROPIC_STREAM) is _ANTHROPIC_STREAM
