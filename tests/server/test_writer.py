"""server.ResponseWriter: the response framing written without h11, checked byte for byte and against h11
as the client-side parser; and the number of writes (syscalls, client wake-ups) each response costs."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import pytest

from rawproxy.server import ResponseWriter


class FakeWriter:
    """A ClientStream that records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.write_paused = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    async def drain(self) -> None:
        await asyncio.sleep(0)

    @property
    def wire(self) -> bytes:
        return b"".join(self.writes)


def make(**kwargs: Any) -> tuple[ResponseWriter, FakeWriter]:
    writer = FakeWriter()
    return ResponseWriter(writer, **kwargs), writer


def parse(wire: bytes, *, method: bytes = b"GET") -> tuple[h11.Response, bytes, bool]:
    """The response as an h11 client reads it: (head, body, whether it ended before EOF)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(wire)
    head: h11.Response | None = None
    body = b""
    eof = False
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, body, True
        elif event is h11.NEED_DATA and not eof:
            conn.receive_data(b"")  # EOF: ends a close-delimited body
            eof = True
        elif event is h11.NEED_DATA:
            assert head is not None
            return head, body, False
        else:
            raise AssertionError(f"unexpected {event!r}")


async def test_respond_is_one_write_with_content_length() -> None:
    sink, writer = make(head_only=False)
    await sink.respond(200, [(b"content-type", b"application/json")], b'{"ok":true}')
    assert len(writer.writes) == 1
    head, body, ended = parse(writer.wire)
    assert (head.status_code, body, ended) == (200, b'{"ok":true}', True)
    assert (b"content-length", b"11") in head.headers
    assert (b"server", b"rawproxy/" + __import__("rawproxy").__version__.encode()) in head.headers
    assert not sink.must_close


async def test_stream_is_chunked_and_the_head_goes_with_the_first_bytes() -> None:
    sink, writer = make(head_only=False)
    sink.begin(200, [(b"content-type", b"text/event-stream")])
    assert writer.writes == []  # the head waits for the first body bytes
    sink.send_nowait(b"event: a\n\n")
    sink.send_nowait(b"event: b\n\n")
    await sink.end(b"event: c\n\n")
    assert len(writer.writes) == 3
    head, body, ended = parse(writer.wire)
    assert (b"transfer-encoding", b"chunked") in head.headers
    assert body == b"event: a\n\nevent: b\n\nevent: c\n\n" and ended


async def test_hold_shares_one_write_with_the_first_token_and_flush_sends_it_alone() -> None:
    sink, writer = make(head_only=False)
    sink.begin(200, [(b"content-type", b"text/event-stream")])
    sink.hold(b"event: message_start\n\n")
    sink.send_nowait(b"event: first_token\n\n")
    assert len(writer.writes) == 1  # head, opening event and first token: one syscall
    sink.flush()
    assert len(writer.writes) == 1  # nothing held: no write

    sink2, writer2 = make(head_only=False)
    sink2.begin(200, [])
    sink2.hold(b"event: message_start\n\n")
    sink2.flush()  # the upstream is slow: the opening event goes out on its own
    assert len(writer2.writes) == 1
    await sink2.end()
    _, body, ended = parse(writer2.wire)
    assert body == b"event: message_start\n\n" and ended


async def test_http10_stream_is_close_delimited() -> None:
    sink, writer = make(head_only=False, http10=True)
    sink.begin(200, [(b"content-type", b"text/event-stream")])
    await sink.end(b"data: x\n\n")
    assert sink.must_close
    head, body, ended = parse(writer.wire)  # no length, not chunked: h11 reads it to the close
    assert (b"connection", b"close") in head.headers
    assert not any(k == b"transfer-encoding" for k, _ in head.headers)
    assert body == b"data: x\n\n" and ended


async def test_client_that_asked_to_close_gets_connection_close() -> None:
    sink, writer = make(head_only=False, close=True)
    await sink.respond(200, [], b"{}")
    head, _, _ = parse(writer.wire)
    assert (b"connection", b"close") in head.headers and sink.must_close


@pytest.mark.parametrize("streamed", [False, True])
async def test_head_request_gets_the_head_only(streamed: bool) -> None:
    sink, writer = make(head_only=True)
    if streamed:
        sink.begin(200, [(b"content-type", b"text/event-stream")])
        sink.send_nowait(b"data: x\n\n")
        await sink.end(b"data: y\n\n")
    else:
        await sink.respond(200, [(b"content-type", b"application/json")], b'{"status":"ok"}')
    assert writer.wire.endswith(b"\r\n\r\n") and writer.wire.count(b"\r\n\r\n") == 1
    head, body, ended = parse(writer.wire, method=b"HEAD")
    assert head.status_code == 200 and body == b"" and ended


@pytest.mark.parametrize(("status", "reason"), [(404, b"Not Found"), (529, b""), (499, b"")])
async def test_status_lines(status: int, reason: bytes) -> None:
    sink, writer = make(head_only=False)
    await sink.respond(status, [], b"{}")
    assert writer.wire.startswith(b"HTTP/1.1 %d %b\r\n" % (status, reason))


async def test_a_body_other_than_declared_closes_the_connection() -> None:
    short, _ = make(head_only=False)
    short.begin(200, [(b"content-length", b"10")])
    await short.end(b"12345")
    assert short.must_close  # the client would wait for 5 more bytes otherwise

    long, writer = make(head_only=False)
    long.begin(200, [(b"content-length", b"3")])
    await long.end(b"12345")
    assert long.must_close
    assert writer.wire.endswith(b"\r\n\r\n123")  # never more than declared


async def test_204_has_no_body_framing() -> None:
    sink, writer = make(head_only=False)
    sink.begin(204, [])
    await sink.end()
    assert not any(k == b"transfer-encoding" for k, _ in parse(writer.wire)[0].headers)
    assert writer.wire.endswith(b"\r\n\r\n")


async def test_nothing_past_the_declared_length_even_over_several_writes() -> None:
    sink, writer = make(head_only=False)
    sink.begin(200, [(b"content-length", b"5")])
    sink.send_nowait(b"0123456789")
    sink.send_nowait(b"SMUGGLED")  # would be read as the start of the next response
    await sink.end(b"MORE")
    assert writer.wire.endswith(b"\r\n\r\n01234") and sink.must_close


async def test_discard_takes_back_a_response_only_while_nothing_was_written() -> None:
    sink, writer = make(head_only=False)
    sink.begin(200, [(b"content-type", b"text/event-stream")])
    sink.hold(b"event: message_start\n\n")
    assert sink.discard() and not sink.started  # held only: an error can still get its own status
    await sink.respond(500, [], b"{}")
    assert writer.wire.startswith(b"HTTP/1.1 500 ") and writer.wire.count(b"HTTP/1.1") == 1

    sink2, _ = make(head_only=False)
    sink2.begin(200, [])
    sink2.send_nowait(b"data: first\n\n")
    sink2.hold(b"data: held\n\n")
    assert not sink2.discard() and sink2.started  # bytes went out: too late to take it back


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"http10": True}, {"close": True}, {"head_only": True}],
    ids=["1.1", "1.0", "close", "HEAD"],
)
async def test_a_streams_head_from_its_template_is_the_head_built_field_by_field(
    kwargs: dict[str, Any],
) -> None:
    """``begin(200, SSE_HEADERS)`` takes a prebuilt head: byte for byte what the same fields give when
    built one by one (a copy of the list), for every kind of response the template must not serve."""
    from rawproxy._types import SSE_HEADERS

    kwargs = {"head_only": False, **kwargs}
    fast, fast_wire = make(**kwargs)
    slow, slow_wire = make(**kwargs)
    fast.begin(200, SSE_HEADERS)
    slow.begin(200, list(SSE_HEADERS))
    for sink in (fast, slow):
        await sink.end(b"data: x\n\n")
    assert fast_wire.wire == slow_wire.wire
    assert (fast.must_close, fast.ended) == (slow.must_close, slow.ended)
