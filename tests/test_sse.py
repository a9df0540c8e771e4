"""The SSE framer matrix: every split, every line ending, comments, EOF, huge lines (A2O-S15, O2A-S11).

Every case states the events the *whole* input must give, then checks that every way of cutting the
input into chunks gives exactly the same events, and that the decoder holds nothing once an event is
complete (DESIGN.md: the sans-I/O core holds only a partial event; openai-python's
``test_ignored_lines_are_discarded_incrementally``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pytest

from rawproxy.sse import SSEDecoder, SSEEvent, encode_event


def E(data: bytes, event: str | None = None) -> SSEEvent:
    return SSEEvent(event, data)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def decode(chunks: Iterable[bytes], *, close: bool = True) -> list[SSEEvent]:
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    if close:
        out.extend(dec.close())
        assert dec.buffered == 0
    return out


def every_split(data: bytes) -> Iterator[list[bytes]]:
    """The whole input, every 2-piece split, and 1-byte pieces."""
    yield [data]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def assert_all_splits(data: bytes, expected: list[SSEEvent]) -> None:
    for chunks in every_split(data):
        assert decode(chunks) == expected, chunks


# ----------------------------------------------------------------------------- the short-stream matrix

OPENROUTER_LIKE = (
    b': OPENROUTER PROCESSING\n\ndata: {"a":1}\n\nevent: error\ndata:{"b":2}\n\ndata: [DONE]\n\n'
)
OPENROUTER_EVENTS = [E(b'{"a":1}'), E(b'{"b":2}', "error"), E(b"[DONE]")]

ANTHROPIC_LIKE = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"text":"h\xc3\xa9\xf0\x9f\x98\x80"}}\n\n'
)
ANTHROPIC_EVENTS = [
    E(b'{"type":"message_start"}', "message_start"),
    E(b'{"type": "ping"}', "ping"),
    E(b'{"type":"content_block_delta","delta":{"text":"h\xc3\xa9\xf0\x9f\x98\x80"}}', "content_block_delta"),
]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_a2o_s15_every_split_offset_every_line_ending(eol: bytes) -> None:
    data = OPENROUTER_LIKE.replace(b"\n", eol)
    assert decode([data]) == OPENROUTER_EVENTS
    assert_all_splits(data, OPENROUTER_EVENTS)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_o2a_s11_event_data_pairs_every_split_offset(eol: bytes) -> None:
    data = ANTHROPIC_LIKE.replace(b"\n", eol)
    assert decode([data]) == ANTHROPIC_EVENTS
    assert_all_splits(data, ANTHROPIC_EVENTS)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_a2o_s15_three_pieces_at_every_offset_pair(eol: bytes) -> None:
    data = (b': c\n\ndata: {"x":"\xc3\xa9"}\n\nevent: e\ndata: a\ndata: b\n\n').replace(b"\n", eol)
    expected = [E(b'{"x":"\xc3\xa9"}'), E(b"a\nb", "e")]
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert decode([data[:i], data[i:j], data[j:]]) == expected, (i, j)


def test_a2o_s15_mixed_line_endings_in_one_stream() -> None:
    data = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n"
    assert_all_splits(data, [E(b"a"), E(b"b"), E(b"c"), E(b"d")])


def test_o2a_s11_crlf_split_between_two_chunks() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"event: ping\r\ndata: {}\r") == []
    # The LF that completes the CR must not count as a second (blank) line, nor be lost.
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r") == [E(b"{}", "ping")]
    assert dec.feed(b"\ndata: x\r\n\r\n") == [E(b"x")]
    assert dec.buffered == 0
    assert dec.close() == []


def test_o2a_s11_crlf_split_then_blank_line_in_next_chunk() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: 1\r") == []
    assert dec.feed(b"\n\r\n") == [E(b"1")]
    assert dec.buffered == 0


def test_lone_cr_then_lf_at_chunk_start_is_one_line_end() -> None:
    # "data: a" CR | LF "data: b" CR CR: the LF belongs to the CR, so there is no blank line between
    # the two data lines, and they join into one event.
    assert decode([b"data: a\r", b"\ndata: b\r\r"]) == [E(b"a\nb")]


# --------------------------------------------------------------------------------------- field rules


def test_a2o_s15_comment_lines_ignored() -> None:
    data = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {}\n\n:\n\n"
    assert_all_splits(data, [E(b"{}")])


def test_a2o_s15_comment_inside_an_event_does_not_split_it() -> None:
    assert_all_splits(b"data: a\n: keep-alive\ndata: b\n\n", [E(b"a\nb")])


def test_a2o_s15_data_with_and_without_space() -> None:
    assert_all_splits(b"data:x\n\ndata: x\n\ndata:  x\n\n", [E(b"x"), E(b"x"), E(b" x")])


def test_a2o_s15_event_field_with_and_without_space() -> None:
    assert decode([b"event:error\ndata: 1\n\nevent: ping\ndata: 2\n\n"]) == [
        E(b"1", "error"),
        E(b"2", "ping"),
    ]


def test_event_name_does_not_leak_into_the_next_event() -> None:
    assert decode([b"event: error\ndata: 1\n\ndata: 2\n\n"]) == [E(b"1", "error"), E(b"2")]


def test_event_without_data_is_not_dispatched() -> None:
    # WHATWG: an empty data buffer dispatches nothing, and the event name is reset.
    assert decode([b"event: ping\n\ndata: 2\n\n"]) == [E(b"2")]


def test_a2o_s15_multi_line_data_joined_with_lf() -> None:
    assert_all_splits(b'data: {"a":\ndata: 1,\ndata: "b":2}\n\n', [E(b'{"a":\n1,\n"b":2}')])


def test_a2o_s15_blank_keep_alive_lines() -> None:
    data = b"\n\n\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n"
    assert_all_splits(data, [E(b"1"), E(b"2")])
    dec = SSEDecoder()
    assert dec.feed(b"\n" * 100) == []
    assert dec.buffered == 0


def test_a2o_s15_id_and_retry_ignored() -> None:
    data = b"id: 42\nretry: 1000\ndata: 1\nid\n\nretry: x\n\n"
    assert_all_splits(data, [E(b"1")])


def test_field_without_colon() -> None:
    # WHATWG: a line without a colon is a field name with an empty value. An unknown name is ignored;
    # a bare "data" appends an empty line to the data buffer.
    assert decode([b"foo\ndata: 1\n\n"]) == [E(b"1")]
    assert decode([b"data\n\n"]) == [E(b"")]
    assert decode([b"data: a\ndata\ndata: b\n\n"]) == [E(b"a\n\nb")]


def test_unknown_fields_ignored() -> None:
    assert decode([b"foo: bar\ndata: 1\nDATA: 2\n\n"]) == [E(b"1")]


def test_colon_inside_value_kept() -> None:
    assert decode([b'data: {"url":"http://x:1"}\n\n']) == [E(b'{"url":"http://x:1"}')]


# ----------------------------------------------------------------------------------------- UTF-8


def test_a2o_s15_chunk_boundary_inside_multibyte_code_point() -> None:
    text = "héllo 😀 世界 — ok"
    data = b'data: {"t":"' + text.encode() + b'"}\n\n'
    for chunks in every_split(data):
        events = decode(chunks)
        assert len(events) == 1
        assert isinstance(events[0].data, bytes)
        assert events[0].data.decode("utf-8") == '{"t":"' + text + '"}'


# -------------------------------------------------------------------------------------------- EOF


def test_eof_flushes_final_event_without_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: 1\n\ndata: [DONE]\n") == [E(b"1")]
    assert dec.buffered > 0
    assert dec.close() == [E(b"[DONE]")]
    assert dec.buffered == 0


def test_eof_flushes_final_unterminated_line() -> None:
    for data in (b"data: [DONE]", b"event: error\ndata: {}", b"data: a\ndata: b"):
        for chunks in every_split(data):
            out = decode(chunks)
            assert len(out) == 1
    assert decode([b"event: error\ndata: {}"]) == [E(b"{}", "error")]
    assert decode([b"data: a\ndata: b"]) == [E(b"a\nb")]


def test_eof_after_trailing_cr() -> None:
    assert decode([b"data: 1\r"]) == [E(b"1")]


def test_eof_after_complete_stream_or_nothing_gives_nothing() -> None:
    assert decode([]) == []
    assert decode([b""]) == []
    assert decode([b"data: 1\n\n"]) == [E(b"1")]
    assert decode([b": just a comment"]) == []


def test_empty_feed_is_a_no_op() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"") == []
    assert dec.feed(b"data: 1") == []
    assert dec.feed(b"") == []
    assert dec.feed(b"\n\n") == [E(b"1")]


# ---------------------------------------------------------------------- issue 19, defect 3: the BOM

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_issue19_d3_a_leading_bom_is_stripped_at_every_split(eol: bytes) -> None:
    # issue 19, defect 3
    assert_all_splits(BOM + ANTHROPIC_LIKE.replace(b"\n", eol), ANTHROPIC_EVENTS)
    assert_all_splits(BOM + OPENROUTER_LIKE.replace(b"\n", eol), OPENROUTER_EVENTS)


def test_issue19_d3_only_one_bom_and_only_at_the_start() -> None:
    # issue 19, defect 3: a second BOM, or one later on, is part of a line (a field nobody knows)
    assert_all_splits(BOM + BOM + b"data: 1\n\ndata: 2\n\n", [E(b"2")])
    assert_all_splits(b"data: 1\n\n" + BOM + b"data: 2\n\ndata: 3\n\n", [E(b"1"), E(b"3")])
    assert_all_splits(b"\xef\xbbdata: 1\n\ndata: 2\n\n", [E(b"2")])  # half a BOM is no BOM


def test_issue19_d3_a_stream_of_only_part_of_a_bom_gives_nothing() -> None:
    # issue 19, defect 3
    assert decode([b"\xef"]) == []
    assert decode([b"\xef", b"\xbb"]) == []
    assert decode([BOM]) == []


# ------------------------------------------------------------------------------- buffering bounds


def test_buffered_is_zero_after_every_complete_event() -> None:
    data = OPENROUTER_LIKE + ANTHROPIC_LIKE.replace(b"\n", b"\r\n") + b"id: 1\n\n: c\n\n"
    dec = SSEDecoder()
    complete = 0
    for i in range(len(data)):
        out = dec.feed(data[i : i + 1])
        complete += len(out)
        # after the last byte of an event (or of a blank/comment/ignored line) nothing is held
        if data[: i + 1].endswith((b"\n\n", b"\r\n\r\n")):
            assert dec.buffered == 0, i
    assert complete == len(OPENROUTER_EVENTS) + len(ANTHROPIC_EVENTS)


def test_ignored_lines_are_discarded_incrementally() -> None:
    dec = SSEDecoder()
    for line in (b": OPENROUTER PROCESSING\n", b"id: 1\n", b"retry: 5\n", b"foo\n", b"\n"):
        assert dec.feed(line) == []
        assert dec.buffered == 0, line


def test_buffered_counts_a_partial_event() -> None:
    dec = SSEDecoder()
    dec.feed(b"data: abc")
    assert dec.buffered >= 3
    dec.feed(b"\n")
    assert dec.buffered >= 3
    dec.feed(b"\n")
    assert dec.buffered == 0


# ------------------------------------------------------------------------------------ huge events


def _huge(size: int) -> tuple[bytes, bytes]:
    payload = b'{"arguments":"' + (b"0123456789abcdef" * (size // 16)) + b'"}'
    return payload, b": c\n\ndata: " + payload + b"\n\ndata: [DONE]\n\n"


@pytest.mark.parametrize("size", [1024, 97], ids=["1KiB", "97B"])
def test_a2o_s15_2mb_single_data_line(size: int) -> None:
    payload, data = _huge(2 * 1024 * 1024)
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in pieces(data, size):
        out.extend(dec.feed(chunk))
    out.extend(dec.close())
    assert out == [E(payload), E(b"[DONE]")]
    assert dec.buffered == 0


def test_a2o_s15_huge_line_is_linear() -> None:
    """4 MB in 1 KiB pieces: quadratic copying would take minutes; linear takes milliseconds."""
    payload, data = _huge(4 * 1024 * 1024)
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    start = time.perf_counter()
    for chunk in pieces(data, 1024):
        out.extend(dec.feed(chunk))
    elapsed = time.perf_counter() - start
    assert out == [E(payload), E(b"[DONE]")]
    assert elapsed < 5.0, elapsed  # loose on purpose: a guard against O(n^2), not a benchmark


def test_a2o_s15_huge_line_with_crlf_is_linear() -> None:
    payload, data = _huge(2 * 1024 * 1024)
    data = data.replace(b"\n", b"\r\n")
    start = time.perf_counter()
    out = decode(pieces(data, 1024))
    assert out == [E(payload), E(b"[DONE]")]
    assert time.perf_counter() - start < 5.0


# ---------------------------------------------------------------------------------------- encoder


@pytest.mark.parametrize(
    ("event", "data"),
    [(None, b'{"a":1}'), ("message_start", b'{"type":"message_start"}'), ("error", b"{}"), (None, b"[DONE]")],
)
def test_encode_event_round_trips(event: str | None, data: bytes) -> None:
    wire = encode_event(event, data)
    assert wire.endswith(b"\n\n")
    assert_all_splits(wire, [E(data, event)])


def test_encode_event_shapes() -> None:
    assert encode_event(None, b"[DONE]") == b"data: [DONE]\n\n"
    assert encode_event("ping", b'{"type":"ping"}') == b'event: ping\ndata: {"type":"ping"}\n\n'


# --------------------------------------------------------------------------- seeded differential fuzz


def test_a2o_s15_random_streams_match_the_reference_splitter() -> None:
    """Random mixes of fields, comments and line endings, cut at random places, decode like the
    whole-text WHATWG splitter in ``tests/support/transcripts.py`` (fixed seed: reproducible)."""
    import random

    from tests.support.transcripts import split_sse

    rng = random.Random(20240611)
    lines = [
        b"data: x",
        b"data:y",
        b"data",
        b"data: \xc3\xa9\xf0\x9f\x98\x80",
        b"event: e",
        b"event:f",
        b": comment",
        b":",
        b"id: 1",
        b"retry: 5",
        b"foo",
        b"",
    ]
    for _ in range(400):
        body = b"".join(
            rng.choice(lines) + rng.choice([b"\n", b"\r\n", b"\r"]) for _ in range(rng.randint(0, 12))
        )
        if rng.random() < 0.3:
            body += rng.choice(lines)  # an unterminated last line
        expected = [E(ev.data.encode(), ev.event) for ev in split_sse(body.decode()) if ev.data is not None]
        cuts = sorted(rng.sample(range(len(body) + 1), k=min(len(body) + 1, rng.randint(0, 6))))
        chunks = [body[i:j] for i, j in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert decode(chunks) == expected, (body, cuts)
