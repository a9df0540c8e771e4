"""The client-side HTTP/1.1 codec of ``rawproxy.http1``: request bytes out, response framing in.

Covered, table-driven:

* framing at every cut: each response is fed whole, in two pieces at every offset and byte by byte; the
  head and the concatenated body must be the same every time, and h11 (client role) is the oracle for the
  status, the headers, the body and *when* body bytes come out (byte by byte, the body decoded so far must
  match h11's at every byte). Content-Length, chunked (several chunks, extensions, upper-case hex,
  trailers, chunk data that looks like framing), close-delimited bodies ended by ``close()``,
  ``Transfer-Encoding: gzip, chunked`` against a final coding that is not chunked (read until close);
* interim responses (100, 103 skipped; 101 refused) and responses without a body (204, 304, HEAD);
* ``done``, ``reusable`` and ``keep_alive``: reusable only when the response ended, nothing extra came
  after it and the server keeps the connection (HTTP/1.1 unless ``close``, HTTP/1.0 only with
  ``keep-alive``);
* every malformed input raising :class:`HTTPProtocolError`, at every cut, and ``close()`` before the end;
* ``encode_request``: exact bytes, h11 (server role) parsing them back, header injection refused;
* hypothesis: random bodies, random chunk sizes and extensions, random cuts.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawproxy.http1 import (
    MAX_HEAD_BYTES,
    HTTPProtocolError,
    ResponseHead,
    ResponseReader,
    decode_content,
    encode_headers,
    encode_request,
    origin_path,
    partial_head,
)

Headers = tuple[tuple[bytes, bytes], ...]

# --------------------------------------------------------------------------------------------- helpers


def every_split(data: bytes) -> Iterator[list[bytes]]:
    """The whole input, every cut into two pieces (empty pieces included), then one byte at a time."""
    yield [data]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def cut(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped, sorted, repeats give empty pieces)."""
    points = sorted(min(max(o, 0), len(data)) for o in offsets)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def read(
    pieces: Sequence[bytes], *, head_request: bool = False, eof: bool = False
) -> tuple[ResponseReader, bytes]:
    reader = ResponseReader(head_request=head_request)
    body = b"".join([reader.feed(piece) for piece in pieces])
    if eof:
        reader.close()
    return reader, body


@dataclass
class H11Result:
    status: int
    headers: Headers
    http_version: bytes
    body: bytes
    progress: list[int]  # body bytes decoded after each piece
    ended: bool


def h11_read(pieces: Sequence[bytes], *, method: bytes = b"GET", eof: bool = False) -> H11Result:
    """The oracle: what h11, as a client that sent ``method``, makes of the same pieces."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("host", "example.com")]))
    conn.send(h11.EndOfMessage())
    response: h11.Response | None = None
    body = bytearray()
    progress: list[int] = []
    ended = False

    def drain() -> None:
        nonlocal response, ended
        while not ended:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body.extend(event.data)
            elif isinstance(event, h11.EndOfMessage):
                ended = True

    for piece in pieces:
        if piece:  # an empty piece means EOF to h11
            conn.receive_data(piece)
        drain()
        progress.append(len(body))
    if eof:
        conn.receive_data(b"")
        drain()
    assert response is not None
    headers = tuple((bytes(k), bytes(v)) for k, v in response.headers)
    return H11Result(response.status_code, headers, response.http_version, bytes(body), progress, ended)


def chunked(*chunks: bytes, trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"


GZIPPED = gzip.compress(b"hello hello hello hello, gzip", mtime=0)
SNEAKY = b"x\r\n0\r\n\r\nyyyy"  # chunk data that looks like the last chunk
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Framed:
    id: str
    raw: bytes
    status: int
    headers: Headers
    body: bytes
    version: bytes = b"1.1"
    until_close: bool = False  # ended by close(), not by the bytes
    head_request: bool = False
    oracle: Literal["full", "body", "none"] = "full"  # how much h11 can confirm

    @property
    def head(self) -> ResponseHead:
        return ResponseHead(self.status, list(self.headers), self.version)

    @property
    def head_end(self) -> int:
        """Offset just past the final (non-interim) head."""
        return self.raw.index(b"\r\n\r\n", self.raw.rfind(b"HTTP/1.")) + 4


FRAMED = [
    Framed(
        "content-length",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n"
        b"X-Padded:   spaced value \t\r\n\r\nbody with\r\n\r\nCRLFs inside",
        200,
        (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"25"),
            (b"x-padded", b"spaced value"),
        ),
        b"body with\r\n\r\nCRLFs inside",
    ),
    Framed(
        "content-length-http10",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        200,
        ((b"content-length", b"5"),),
        b"hello",
        version=b"1.0",
    ),
    Framed(
        "content-length-zero",
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        201,
        ((b"content-length", b"0"),),
        b"",
    ),
    Framed(
        "content-length-repeated-same-value",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        200,
        ((b"content-length", b"3"), (b"content-length", b"3")),
        b"abc",
        oracle="body",  # h11 merges the two fields into one
    ),
    Framed(
        "chunked-several",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
        + chunked(b"Hello", b", ", b"world!", b"\n"),
        200,
        ((b"transfer-encoding", b"chunked"), (b"content-type", b"text/event-stream")),
        b"Hello, world!\n",
    ),
    Framed(
        "chunked-extensions-uppercase-hex-trailers",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
        b"5;name=value\r\nHello\r\n"
        b'1A;a=1;b="two words"\r\n' + ALPHABET + b"\r\n"
        b"00C\r\n" + SNEAKY + b"\r\n"
        b"0;final=yes\r\nX-Checksum: abc123\r\nServer-Timing: total;dur=12\r\n\r\n",
        200,
        ((b"transfer-encoding", b"chunked"), (b"trailer", b"X-Checksum")),
        b"Hello" + ALPHABET + SNEAKY,
    ),
    Framed(
        "chunked-coding-name-any-case",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED \r\n\r\n" + chunked(b"abc"),
        200,
        ((b"transfer-encoding", b"gzip, CHUNKED"),),
        b"abc",
        oracle="none",
    ),
    Framed(
        "chunked-extension-after-whitespace",  # RFC 9112 7.1.1 allows BWS before ';'; h11 does not
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ;ext\r\nabc\r\n2\t;a=b\r\nde\r\n0\r\n\r\n",
        200,
        ((b"transfer-encoding", b"chunked"),),
        b"abcde",
        oracle="none",
    ),
    Framed(
        "chunked-wins-over-content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(b"abc", b"d"),
        200,
        ((b"content-length", b"100"), (b"transfer-encoding", b"chunked")),
        b"abcd",
    ),
    Framed(
        "chunked-empty-body",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        200,
        ((b"transfer-encoding", b"chunked"),),
        b"",
    ),
    Framed(
        "close-delimited",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread\r\n\r\nuntil close 0\r\n\r\n",
        200,
        ((b"content-type", b"text/plain"),),
        b"read\r\n\r\nuntil close 0\r\n\r\n",
        until_close=True,
    ),
    Framed(
        "close-delimited-http10",
        b"HTTP/1.0 200 OK\r\n\r\nold-style body",
        200,
        (),
        b"old-style body",
        version=b"1.0",
        until_close=True,
    ),
    Framed(
        "close-delimited-empty",
        b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
        200,
        ((b"server", b"x"),),
        b"",
        until_close=True,
    ),
    Framed(
        "gzip-then-chunked",  # chunked is the final coding: dechunked, the gzip bytes left as they are
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunked(GZIPPED[:10], GZIPPED[10:]),
        200,
        ((b"transfer-encoding", b"gzip, chunked"),),
        GZIPPED,
        oracle="none",  # h11 only supports chunked alone
    ),
    Framed(
        "gzip-then-chunked-two-fields",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(GZIPPED),
        200,
        ((b"transfer-encoding", b"gzip"), (b"transfer-encoding", b"chunked")),
        GZIPPED,
        oracle="none",
    ),
    Framed(
        "chunked-then-gzip-reads-until-close",  # final coding not chunked: RFC 9112 6.3 (read until close)
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n5\r\nHello\r\n0\r\n\r\n",
        200,
        ((b"transfer-encoding", b"chunked, gzip"), (b"content-length", b"3")),
        b"5\r\nHello\r\n0\r\n\r\n",
        until_close=True,
        oracle="none",
    ),
    Framed(
        "chunked-then-gzip-two-fields",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" + GZIPPED,
        200,
        ((b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"gzip")),
        GZIPPED,
        until_close=True,
        oracle="none",
    ),
    Framed(
        "gzip-only-reads-until-close",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + GZIPPED,
        200,
        ((b"transfer-encoding", b"gzip"),),
        GZIPPED,
        until_close=True,
        oracle="none",
    ),
    Framed(
        "interim-100-and-103-skipped",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        200,
        ((b"content-length", b"2"),),
        b"ok",
    ),
    Framed(
        "interim-before-chunked",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"one", b"two"),
        200,
        ((b"transfer-encoding", b"chunked"),),
        b"onetwo",
    ),
    Framed(
        "no-body-204",
        b"HTTP/1.1 204 No Content\r\nX-Request-Id: 7\r\n\r\n",
        204,
        ((b"x-request-id", b"7"),),
        b"",
    ),
    Framed(
        "no-body-204-despite-chunked",
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        204,
        ((b"transfer-encoding", b"chunked"),),
        b"",
    ),
    Framed(
        "no-body-304-despite-content-length",
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n',
        304,
        ((b"etag", b'"v1"'), (b"content-length", b"1234")),
        b"",
    ),
    Framed(
        "no-body-head-content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        200,
        ((b"content-length", b"1234"),),
        b"",
        head_request=True,
    ),
    Framed(
        "no-body-head-chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        200,
        ((b"transfer-encoding", b"chunked"),),
        b"",
        head_request=True,
    ),
    Framed(
        "no-body-head-after-interim",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
        200,
        ((b"content-length", b"9"),),
        b"",
        head_request=True,
    ),
    Framed(
        "status-line-without-reason",
        b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
        200,
        ((b"content-length", b"1"),),
        b"x",
    ),
    Framed(
        "status-line-odd-reason",
        b"HTTP/1.1 599 Not  Quite \t Right \r\nCONTENT-LENGTH: 1\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\nx",
        599,
        ((b"content-length", b"1"), (b"x-empty", b""), (b"x-tab", b"v")),
        b"x",
    ),
    Framed(
        "header-value-with-colons-and-obs-text",
        b"HTTP/1.1 200 OK\r\nLocation: http://h:8080/a?b=c:d\r\nX-Latin: caf\xe9\r\nContent-Length: 0\r\n\r\n",
        200,
        ((b"location", b"http://h:8080/a?b=c:d"), (b"x-latin", b"caf\xe9"), (b"content-length", b"0")),
        b"",
    ),
]


# ----------------------------------------------------------------------------------------- framing


@pytest.mark.parametrize("case", FRAMED, ids=lambda c: c.id)
def test_same_head_and_body_at_every_split(case: Framed) -> None:
    for pieces in every_split(case.raw):
        reader, body = read(pieces, head_request=case.head_request)
        assert reader.head == case.head, pieces
        assert body == case.body, pieces
        assert reader.done is not case.until_close, pieces
        if case.until_close:
            reader.close()
            assert reader.done
        reader.close()  # once ended, EOF is no error
        assert reader.feed(b"") == b""


@pytest.mark.parametrize("case", FRAMED, ids=lambda c: c.id)
def test_byte_by_byte_head_and_end_appear_at_the_right_byte(case: Framed) -> None:
    reader = ResponseReader(head_request=case.head_request)
    decoded = b""
    for i, byte in enumerate(case.raw):
        assert not reader.done, i
        decoded += reader.feed(bytes([byte]))
        fed = i + 1
        assert (reader.head is not None) is (fed >= case.head_end), fed
        assert case.body.startswith(decoded), fed
    assert reader.head == case.head
    assert decoded == case.body
    assert reader.done is not case.until_close
    if case.until_close:
        reader.close()
    assert reader.done


@pytest.mark.parametrize("case", [c for c in FRAMED if c.oracle != "none"], ids=lambda c: c.id)
def test_agrees_with_h11(case: Framed) -> None:
    method = b"HEAD" if case.head_request else b"GET"
    for pieces in every_split(case.raw):
        oracle = h11_read(pieces, method=method, eof=case.until_close)
        assert oracle.ended
        reader = ResponseReader(head_request=case.head_request)
        progress: list[int] = []
        decoded = b""
        for piece in pieces:
            decoded += reader.feed(piece)
            progress.append(len(decoded))
        if case.until_close:
            reader.close()
        assert reader.done
        assert decoded == oracle.body == case.body
        assert progress == oracle.progress, pieces  # body bytes come out as soon as h11 would give them
        assert reader.head is not None
        assert reader.head.status == oracle.status
        assert reader.head.http_version == oracle.http_version
        if case.oracle == "full":
            assert tuple(reader.head.headers) == oracle.headers


def test_body_bytes_are_returned_by_the_read_that_carried_them() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"
    reader = ResponseReader()
    assert reader.feed(raw[:-6]) == b""
    assert reader.feed(b"ab") == b"ab"
    assert reader.feed(b"cd") == b"cd"
    assert not reader.done
    assert reader.feed(b"efEXTRA") == b"ef"
    assert reader.done
    assert reader.feed(b"more") == b""


def test_chunked_feed_returns_every_complete_and_partial_chunk_of_the_read() -> None:
    reader = ResponseReader()
    assert (
        reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\nde") == b"abcde"
    )
    assert reader.feed(b"fg\r") == b"fg"
    assert reader.feed(b"\n1\r\nh\r\n0\r\n\r") == b"h"
    assert not reader.done
    assert reader.feed(b"\n") == b""
    assert reader.done and reader.reusable


# ----------------------------------------------------------------------------------------- interim


def test_101_switching_protocols_raises() -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    for pieces in every_split(raw):
        with pytest.raises(HTTPProtocolError, match="101"):
            read(pieces)


def test_101_after_an_interim_response_raises() -> None:
    with pytest.raises(HTTPProtocolError, match="101"):
        read([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n"])


def test_an_interim_response_alone_is_not_the_head() -> None:
    reader = ResponseReader()
    assert reader.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n") == b""
    assert reader.head is None
    assert not reader.done
    with pytest.raises(HTTPProtocolError):
        reader.close()


# ------------------------------------------------------------------------------ done and reusable


@dataclass(frozen=True)
class Reuse:
    id: str
    pieces: tuple[bytes, ...]
    done: bool
    reusable: bool
    head_request: bool = False


CL_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REUSE = [
    Reuse("http11-content-length", (CL_OK,), True, True),
    Reuse(
        "http11-chunked",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ok"),),
        True,
        True,
    ),
    Reuse(
        "http11-chunked-trailers",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ok", trailers=b"T: 1\r\n"),),
        True,
        True,
    ),
    Reuse(
        "http11-keep-alive-explicit",
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",),
        True,
        True,
    ),
    Reuse(
        "http11-connection-close",
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",),
        True,
        False,
    ),
    Reuse(
        "http11-connection-close-uppercase",
        (b"HTTP/1.1 200 OK\r\nConnection: CLOSE\r\nContent-Length: 0\r\n\r\n",),
        True,
        False,
    ),
    Reuse(
        "http11-close-in-token-list",
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive ,Close\r\nContent-Length: 0\r\n\r\n",),
        True,
        False,
    ),
    Reuse(
        "http11-close-in-second-field",
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",),
        True,
        False,
    ),
    Reuse(
        "http11-close-as-value-of-other-header",
        (b"HTTP/1.1 200 OK\r\nX-Connection: close\r\nContent-Length: 0\r\n\r\n",),
        True,
        True,
    ),
    Reuse("http10-default-close", (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",), True, False),
    Reuse(
        "http10-keep-alive",
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",),
        True,
        True,
    ),
    Reuse(
        "http10-keep-alive-mixed-case",
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",),
        True,
        True,
    ),
    Reuse(
        "http10-keep-alive-in-list",
        (b"HTTP/1.0 200 OK\r\nConnection: foo, keep-alive\r\nContent-Length: 0\r\n\r\n",),
        True,
        True,
    ),
    Reuse("204", (b"HTTP/1.1 204 No Content\r\n\r\n",), True, True),
    Reuse("304", (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",), True, True),
    Reuse("head", (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",), True, True, head_request=True),
    Reuse(
        "head-of-http10", (b"HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\n",), True, False, head_request=True
    ),
    Reuse("interim-then-final", (b"HTTP/1.1 100 Continue\r\n\r\n", CL_OK), True, True),
    # not ended
    Reuse("head-incomplete", (CL_OK[:20],), False, False),
    Reuse("body-incomplete", (CL_OK[:-1],), False, False),
    Reuse(
        "chunked-last-crlf-missing",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",),
        False,
        False,
    ),
    Reuse("close-delimited-before-close", (b"HTTP/1.1 200 OK\r\n\r\nbody",), False, False),
    # extra bytes after the end
    Reuse("extra-in-same-read", (CL_OK + b"H",), True, False),
    Reuse("extra-in-later-read", (CL_OK, b"HTTP/1.1 200 OK\r\n"), True, False),
    Reuse(
        "extra-after-chunked",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ok") + b"\r\n",),
        True,
        False,
    ),
    Reuse(
        "extra-after-chunked-later-read",
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ok"), b"x"),
        True,
        False,
    ),
    Reuse("extra-after-204", (b"HTTP/1.1 204 No Content\r\n\r\nbody",), True, False),
    Reuse("extra-after-304", (b"HTTP/1.1 304 Not Modified\r\n\r\n", b"x"), True, False),
    Reuse(
        "extra-after-head",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",),
        True,
        False,
        head_request=True,
    ),
    Reuse(
        "extra-after-content-length-zero", (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n",), True, False
    ),
]


@pytest.mark.parametrize("case", REUSE, ids=lambda c: c.id)
def test_done_and_reusable(case: Reuse) -> None:
    reader, _ = read(case.pieces, head_request=case.head_request)
    assert reader.done is case.done
    assert reader.reusable is case.reusable


@pytest.mark.parametrize("case", REUSE, ids=lambda c: c.id)
def test_done_and_reusable_do_not_depend_on_how_the_bytes_were_cut(case: Reuse) -> None:
    whole = b"".join(case.pieces)
    for pieces in every_split(whole):
        reader, _ = read(pieces, head_request=case.head_request)
        assert (reader.done, reader.reusable) == (case.done, case.reusable), pieces


def test_reusable_turns_false_when_extra_bytes_arrive() -> None:
    reader = ResponseReader()
    reader.feed(CL_OK)
    assert reader.reusable
    reader.feed(b"")
    assert reader.reusable  # an empty read is not an extra byte
    reader.feed(b"\r\n")
    assert reader.done
    assert not reader.reusable


@pytest.mark.parametrize(
    "raw",
    [b"HTTP/1.1 200 OK\r\n\r\nbody", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"],
    ids=["with-body", "empty-body"],
)
def test_close_delimited_body_is_never_reusable(raw: bytes) -> None:
    reader, _ = read([raw], eof=True)
    assert reader.done
    assert not reader.reusable


def test_close_delimited_body_not_reusable_when_the_head_says_close() -> None:
    for raw in (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody", b"HTTP/1.0 200 OK\r\n\r\nbody"):
        reader, body = read([raw], eof=True)
        assert reader.done and body == b"body"
        assert not reader.reusable


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", [], True),
        (b"1.1", [b"keep-alive"], True),
        (b"1.1", [b"close"], False),
        (b"1.1", [b"Close"], False),
        (b"1.1", [b" upgrade , close "], False),
        (b"1.1", [b"upgrade"], True),
        (b"1.1", [b"keep-alive", b"close"], False),
        (b"1.1", [b"closed"], True),
        (b"1.0", [], False),
        (b"1.0", [b"keep-alive"], True),
        (b"1.0", [b"KEEP-ALIVE"], True),
        (b"1.0", [b"close, keep-alive"], True),
        (b"1.0", [b"keep-alive-ish"], False),
        (b"1.0", [b"foo", b"keep-alive"], True),
    ],
)
def test_keep_alive(version: bytes, connection: list[bytes], keep_alive: bool) -> None:
    headers = [(b"content-length", b"0"), *((b"connection", v) for v in connection)]
    assert ResponseHead(200, headers, version).keep_alive is keep_alive


def test_head_get_returns_the_first_value_or_none() -> None:
    head = ResponseHead(200, [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"x", b"")], b"1.1")
    assert head.get(b"set-cookie") == b"a=1"
    assert head.get(b"x") == b""
    assert head.get(b"missing") is None
    assert head.get(b"Set-Cookie") is None  # names are stored lower-case; look them up that way


def test_header_names_are_lower_cased_by_the_reader() -> None:
    reader, _ = read([b"HTTP/1.1 200 OK\r\nX-MiXeD-Case: Value Kept\r\nContent-Length: 0\r\n\r\n"])
    assert reader.head is not None
    assert reader.head.get(b"x-mixed-case") == b"Value Kept"


# ---------------------------------------------------------------------------------------- errors

HEAD_200 = b"HTTP/1.1 200 OK\r\n"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

MALFORMED = {
    # status line
    "status-http2": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-http12": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-lowercase-protocol": b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-two-digits": b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    "status-four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-no-space-before-reason": b"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
    "status-leading-space": b" HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-tab-separator": b"HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-not-http": b"ICY 200 OK\r\n\r\n",
    "status-empty-line": b"\r\n\r\n",
    "status-bare-lf-ended": b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
    "status-in-interim-bad": b"HTTP/1.1 100\tContinue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    # header lines
    "header-without-colon": HEAD_200 + b"Content-Length 0\r\n\r\n",
    "header-obs-fold-space": HEAD_200 + b"X-Long: first\r\n second: part\r\nContent-Length: 0\r\n\r\n",
    "header-obs-fold-space-no-colon": HEAD_200 + b"X-Long: first\r\n  continued\r\nContent-Length: 0\r\n\r\n",
    "header-obs-fold-tab": HEAD_200 + b"X-Long: first\r\n\tcontinued\r\nContent-Length: 0\r\n\r\n",
    "header-name-with-space": HEAD_200 + b"Content Length: 0\r\n\r\n",
    "header-space-before-colon": HEAD_200 + b"Content-Length : 0\r\n\r\n",
    "header-empty-name": HEAD_200 + b": value\r\nContent-Length: 0\r\n\r\n",
    "header-name-not-token": HEAD_200 + b"X(y): 1\r\nContent-Length: 0\r\n\r\n",
    "header-line-starting-with-bare-lf": HEAD_200 + b"X: 1\r\n\nY: 2\r\nContent-Length: 0\r\n\r\n",
    "header-in-interim-bad": b"HTTP/1.1 103 Early Hints\r\nLink </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    # RFC 9110 5.5: CR, LF or NUL in a field value (could split a head relayed to a client)
    "value-bare-lf": HEAD_200 + b"X-Hidden: a\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    "value-bare-lf-at-end": HEAD_200 + b"X-Hidden: a\n\r\nContent-Length: 0\r\n\r\n",
    "value-bare-cr": HEAD_200 + b"X-Hidden: a\rb\r\nContent-Length: 0\r\n\r\n",
    "value-bare-cr-at-end": HEAD_200 + b"X-Hidden: a\r\r\nContent-Length: 0\r\n\r\n",
    "value-nul": HEAD_200 + b"X-Hidden: a\x00b\r\nContent-Length: 0\r\n\r\n",
    # Content-Length
    "content-length-conflict": HEAD_200 + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content-length-conflict-leading-zero": HEAD_200
    + b"Content-Length: 5\r\nContent-Length: 05\r\n\r\nhello",
    "content-length-letters": HEAD_200 + b"Content-Length: abc\r\n\r\nabc",
    "content-length-negative": HEAD_200 + b"Content-Length: -1\r\n\r\n",
    "content-length-plus": HEAD_200 + b"Content-Length: +5\r\n\r\nhello",
    "content-length-decimal": HEAD_200 + b"Content-Length: 5.0\r\n\r\nhello",
    "content-length-hex": HEAD_200 + b"Content-Length: 0x5\r\n\r\nhello",
    "content-length-empty": HEAD_200 + b"Content-Length:\r\n\r\n",
    "content-length-inner-space": HEAD_200 + b"Content-Length: 1 2\r\n\r\n",
    "content-length-unicode-digit": HEAD_200 + "Content-Length: \u0665\r\n\r\n".encode(),
    # chunk size line
    "chunk-size-non-hex": CHUNKED_HEAD + b"g\r\nabc\r\n0\r\n\r\n",
    "chunk-size-0x-prefix": CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": CHUNKED_HEAD + b"-1\r\nx\r\n0\r\n\r\n",
    "chunk-size-empty": CHUNKED_HEAD + b"\r\nabc\r\n0\r\n\r\n",
    "chunk-size-empty-with-extension": CHUNKED_HEAD + b";name=value\r\nabc\r\n0\r\n\r\n",
    "chunk-size-only-spaces": CHUNKED_HEAD + b"  \r\nabc\r\n0\r\n\r\n",
    "chunk-size-inner-space": CHUNKED_HEAD + b"1 0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",
    "chunk-size-17-hex-digits": CHUNKED_HEAD + b"1" + b"0" * 16 + b"\r\nx\r\n0\r\n\r\n",
    "chunk-size-line-too-long": CHUNKED_HEAD + b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-size-line-without-end": CHUNKED_HEAD + b"5" + b"0" * 5000,
    "chunk-size-of-second-chunk": CHUNKED_HEAD + b"3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n",
    # chunk data
    "chunk-data-not-followed-by-crlf": CHUNKED_HEAD + b"5\r\nHelloX\r\n0\r\n\r\n",
    "chunk-data-followed-by-lf": CHUNKED_HEAD + b"5\r\nHello\n0\r\n\r\n",
    "chunk-data-followed-by-cr-only": CHUNKED_HEAD + b"5\r\nHello\r0\r\n\r\n",
    "chunk-data-longer-than-size": CHUNKED_HEAD + b"3\r\nHello\r\n0\r\n\r\n",
    "chunk-data-directly-followed-by-next-size": CHUNKED_HEAD + b"5\r\nHello0\r\n\r\n",
    # two bytes that are not CRLF where CRLF belongs, the rest well framed: only the CRLF check can see it
    "chunk-data-followed-by-two-other-bytes": CHUNKED_HEAD + b"5\r\nHelloXY0\r\n\r\n",
    "chunk-data-followed-by-lf-cr": CHUNKED_HEAD + b"5\r\nHello\n\r3\r\nabc\r\n0\r\n\r\n",
    # 101 is not a response this client can take
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_at_every_split(raw: bytes) -> None:
    for pieces in every_split(raw):
        reader = ResponseReader()
        with pytest.raises(HTTPProtocolError):
            for piece in pieces:  # raised by a feed: close() is never called here
                reader.feed(piece)


# Refused here on purpose although h11 takes them: another protocol version, bare LF as a line end,
# obs-fold (RFC 9112 5.2 lets a client unfold it; refusing is simpler), and chunk-line limits h11 sets
# higher (20 hex digits, 16 KiB of buffered line).
STRICTER_THAN_H11 = {
    "status-http12",
    "status-bare-lf-ended",
    "header-obs-fold-space",
    "header-obs-fold-space-no-colon",
    "header-obs-fold-tab",
    "header-line-starting-with-bare-lf",
    "value-bare-lf",
    "value-bare-lf-at-end",
    "chunk-size-17-hex-digits",
    "chunk-size-line-too-long",
    "chunk-size-line-without-end",
}


@pytest.mark.parametrize(
    "raw",
    [raw for name, raw in MALFORMED.items() if name not in STRICTER_THAN_H11],
    ids=[name for name in MALFORMED if name not in STRICTER_THAN_H11],
)
def test_malformed_input_is_refused_by_h11_too(raw: bytes) -> None:
    """The oracle check on the table itself: each of these inputs is really malformed."""
    with pytest.raises(h11.RemoteProtocolError):
        h11_read([raw])


def test_head_larger_than_64_kib_without_its_end_raises() -> None:
    big = HEAD_200 + b"X-Big: " + b"a" * MAX_HEAD_BYTES  # no blank line yet
    with pytest.raises(HTTPProtocolError, match="too large"):
        ResponseReader().feed(big)
    for size in (1, 1000, 8192, 65536):  # the limit counts everything buffered, not one read
        reader = ResponseReader()
        with pytest.raises(HTTPProtocolError, match="too large"):
            for i in range(0, len(big), size):
                reader.feed(big[i : i + size])


def test_head_just_under_the_limit_is_accepted() -> None:
    prefix = HEAD_200 + b"X-Big: "
    partial = prefix + b"a" * (MAX_HEAD_BYTES - len(prefix))
    assert len(partial) == MAX_HEAD_BYTES
    reader = ResponseReader()
    assert reader.feed(partial) == b""  # exactly the limit, still incomplete: no error yet
    assert reader.feed(b"\r\nContent-Length: 2\r\n\r\nok") == b"ok"
    assert reader.done


def test_interim_responses_do_not_count_towards_the_head_limit() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: " + b"l" * 60000 + b"\r\n\r\n"
    reader = ResponseReader()
    for _ in range(3):
        assert reader.feed(interim) == b""
    assert reader.feed(CL_OK) == b"ok"
    assert reader.done


CL_10 = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
CHUNKED_FULL = CHUNKED_HEAD + b"5;e=1\r\nHello\r\n0\r\nTrailer: t\r\n\r\n"
INTERIM_THEN_CL = b"HTTP/1.1 100 Continue\r\n\r\n" + CL_10


@pytest.mark.parametrize(
    "raw", [CL_10, CHUNKED_FULL, INTERIM_THEN_CL], ids=["content-length", "chunked", "interim"]
)
def test_close_before_the_end_raises_for_every_prefix(raw: bytes) -> None:
    for n in range(len(raw)):  # every proper prefix: before the head, inside it, inside the body
        reader, _ = read([raw[:n]])
        assert not reader.done
        with pytest.raises(HTTPProtocolError, match="closed before the end"):
            reader.close()
    reader, _ = read([raw])
    reader.close()  # the whole response: EOF is fine
    assert reader.done


def test_close_delimited_every_prefix_with_a_head_is_a_complete_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body"
    head_end = raw.index(b"\r\n\r\n") + 4
    for n in range(len(raw) + 1):
        reader, body = read([raw[:n]])
        if n < head_end:
            with pytest.raises(HTTPProtocolError):
                reader.close()
        else:
            reader.close()
            assert reader.done
            assert body == raw[head_end:n]


@pytest.mark.parametrize(
    "raw",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Len", b"HTTP/1.1 200 OK\r\n\r"],
    ids=["nothing", "mid-header", "mid-blank-line"],
)
def test_close_before_the_head_raises(raw: bytes) -> None:
    reader, _ = read([raw])
    assert reader.head is None
    with pytest.raises(HTTPProtocolError):
        reader.close()


# ---------------------------------------------------------------------------------- encode_request


@dataclass(frozen=True)
class Encoded:
    id: str
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes | None
    expected: bytes


ENCODED = [
    Encoded(
        "get-without-body",
        b"GET",
        b"/v1/models?limit=2",
        ((b"host", b"api.example.com"), (b"Accept", b"*/*")),
        None,
        b"GET /v1/models?limit=2 HTTP/1.1\r\nhost: api.example.com\r\nAccept: */*\r\n\r\n",
    ),
    Encoded(
        "post-with-body",
        b"POST",
        b"/v1/messages",
        ((b"host", b"localhost:8080"), (b"content-type", b"application/json")),
        b'{"a": "b"}',
        b"POST /v1/messages HTTP/1.1\r\nhost: localhost:8080\r\ncontent-type: application/json\r\n"
        b'content-length: 10\r\n\r\n{"a": "b"}',
    ),
    Encoded(
        "empty-body-is-length-zero",
        b"POST",
        b"/",
        ((b"host", b"h"),),
        b"",
        b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
    ),
    Encoded("no-headers", b"GET", b"/", (), None, b"GET / HTTP/1.1\r\n\r\n"),
    Encoded(
        "body-with-crlf-is-data",
        b"PUT",
        b"/x",
        (),
        b"a\r\n\r\nb",
        b"PUT /x HTTP/1.1\r\ncontent-length: 6\r\n\r\na\r\n\r\nb",
    ),
    Encoded(
        "legal-odd-values",
        b"GET",
        b"/",
        ((b"x-empty", b""), (b"x-tab", b"a\tb c"), (b"x-obs", b"caf\xe9"), (b"!#$%&'*+-.^_`|~09azAZ", b"v")),
        None,
        b"GET / HTTP/1.1\r\nx-empty: \r\nx-tab: a\tb c\r\nx-obs: caf\xe9\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
    ),
]


@pytest.mark.parametrize("case", ENCODED, ids=lambda c: c.id)
def test_encode_request_exact_bytes(case: Encoded) -> None:
    assert encode_request(case.method, case.target, list(case.headers), case.body) == case.expected


@pytest.mark.parametrize("case", [c for c in ENCODED if c.id != "no-headers"], ids=lambda c: c.id)
def test_encoded_request_parses_back_with_h11(case: Encoded) -> None:
    headers = list(case.headers)
    if not any(name.lower() == b"host" for name, _ in headers):
        headers.insert(0, (b"host", b"h"))  # h11 insists on Host
    raw = encode_request(case.method, case.target, headers, case.body)
    server = h11.Connection(h11.SERVER)
    server.receive_data(raw)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.method == case.method
    assert request.target == case.target
    expected_headers = [(n.lower(), v) for n, v in headers]
    if case.body is not None:
        expected_headers.append((b"content-length", b"%d" % len(case.body)))
    assert [(bytes(n), bytes(v)) for n, v in request.headers] == expected_headers
    body = b""
    while True:
        event = server.next_event()
        if isinstance(event, h11.EndOfMessage):
            break
        assert isinstance(event, h11.Data)
        body += event.data
    assert body == (case.body or b"")
    assert server.next_event() is h11.NEED_DATA  # nothing buffered after the request


BAD_NAMES = [
    b"",
    b"bad name",
    b"bad:name",
    b"x\r\ny",
    b"x\n",
    b"na\x00me",
    b"(x)",
    b"a/b",
    b"a@b",
    b'a"b',
    b"\t",
    b"caf\xc3\xa9",
    b"x-inject\r\nevil: 1",
]
BAD_VALUES = [
    b"a\r\nInjected: 1",
    b"a\r\n\r\nGET /smuggled HTTP/1.1",
    b"a\rb",
    b"a\nb",
    b"a\x00b",
    b"\r\n",
    b"trailing\r",
    b"\n",
    b"\x00",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_encode_request_refuses_header_names_that_are_not_tokens(name: bytes) -> None:
    with pytest.raises(HTTPProtocolError):
        encode_request(b"GET", b"/", [(b"host", b"h"), (name, b"v")], None)


@pytest.mark.parametrize("value", BAD_VALUES)
def test_encode_request_refuses_values_with_cr_lf_or_nul(value: bytes) -> None:
    with pytest.raises(HTTPProtocolError):
        encode_request(
            b"POST", b"/", [(b"host", b"h"), (b"x-from-client", value), (b"accept", b"*/*")], b"{}"
        )


# ----------------------------------------------------------------------------------------- property

EXT_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8).map(str.encode)
EXTENSION = st.one_of(
    st.just(b""),
    st.builds(lambda n: b";" + n, EXT_TOKEN),
    st.builds(lambda n, v: b";" + n + b"=" + v, EXT_TOKEN, EXT_TOKEN),
    st.builds(lambda n, v: b';%s="%s"' % (n, v), EXT_TOKEN, EXT_TOKEN),
)


@st.composite
def chunked_response(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    """(raw response, its decoded body, cut offsets)."""
    body = draw(st.binary(max_size=2000))
    sizes = draw(st.lists(st.integers(1, 300), min_size=1, max_size=20))
    wire = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    pos, i = 0, 0
    while pos < len(body):
        data = body[pos : pos + sizes[i % len(sizes)]]
        pos += len(data)
        i += 1
        digits = b"%x" % len(data)
        if draw(st.booleans()):
            digits = digits.upper()
        digits = b"0" * draw(st.integers(0, 3)) + digits
        wire.append(digits + draw(EXTENSION) + b"\r\n" + data + b"\r\n")
    wire.append(b"0" + draw(EXTENSION) + b"\r\n")
    for _ in range(draw(st.integers(0, 3))):
        wire.append(b"x-trailer-" + draw(EXT_TOKEN) + b": " + draw(EXT_TOKEN) + b"\r\n")
    wire.append(b"\r\n")
    raw = b"".join(wire)
    offsets = draw(st.lists(st.integers(0, len(raw)), max_size=30))
    return raw, body, offsets


@settings(max_examples=300, deadline=None)
@given(chunked_response())
def test_property_random_chunked_bodies_decode_at_any_cut(case: tuple[bytes, bytes, list[int]]) -> None:
    raw, body, offsets = case
    pieces = cut(raw, offsets)
    assert b"".join(pieces) == raw
    reader, decoded = read(pieces)
    assert decoded == body
    assert reader.done
    assert reader.reusable
    assert h11_read(pieces).body == body


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3100), max_size=30), st.booleans())
def test_property_length_and_close_delimited_bodies_decode_at_any_cut(
    body: bytes, offsets: list[int], by_length: bool
) -> None:
    framing = b"Content-Length: %d\r\n" % len(body) if by_length else b""
    raw = b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + body
    pieces = cut(raw, offsets)
    reader, decoded = read(pieces)
    assert decoded == body
    assert reader.done is by_length
    if not by_length:
        reader.close()
        assert reader.done


@pytest.mark.parametrize(
    ("method", "target"),
    [
        (b"GET", b"/x HTTP/1.1\r\nEvil: 1\r\n"),
        (b"GET", b"/a b"),
        (b"GET", b"/a\x00"),
        (b"GET", b""),
        (b"GE T", b"/"),
        (b"GET\r\n", b"/"),
    ],
)
def test_encode_request_refuses_a_request_line_that_could_be_split(method: bytes, target: bytes) -> None:
    with pytest.raises(HTTPProtocolError):
        encode_request(method, target, [], None)


@pytest.mark.parametrize("value", [b"a\x01b", b"\x7f", b"x\x1by", b"\x08"])
def test_control_characters_in_a_header_value_are_refused_both_ways(value: bytes) -> None:
    with pytest.raises(HTTPProtocolError):
        ResponseReader().feed(b"HTTP/1.1 200 OK\r\nX-Bad: " + value + b"\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(HTTPProtocolError):
        encode_headers([(b"x-bad", value)])
    assert encode_headers([(b"x-tab", b"a\tb")]) == b"x-tab: a\tb\r\n"  # HTAB is field content


def test_a_head_with_bare_lf_line_ends_is_refused_at_once() -> None:
    with pytest.raises(HTTPProtocolError, match="bare LF"):
        ResponseReader().feed(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n")


# ---------------------------------------------------------- issue 19: the server side's helpers


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("X-GZIP", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS)),
        ("gzip", lambda b: gzip.compress(b[:3]) + gzip.compress(b[3:])),  # two members
        ("identity", lambda b: b),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-members", "identity"],
)
def test_issue19_decode_content_undoes_gzip_and_deflate(coding: str, encode: Any) -> None:
    # issue 19, defects 6 and 9
    body = b'{"hello": "' + b"x" * 5000 + b'"}'
    assert decode_content(coding, encode(body), len(body)) == body


def test_issue19_decode_content_inflates_no_more_than_the_limit_and_a_byte() -> None:
    # issue 19, defect 9: a zip bomb says it is too large without being inflated
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(decode_content("gzip", bomb, 1000)) == 1001
    assert len(decode_content("deflate", zlib.compress(b"\0" * 20_000_000), 10)) == 11


@pytest.mark.parametrize(
    ("coding", "data", "words"),
    [
        ("br", b"\x1b", "'br' is not supported"),
        ("gzip, deflate", b"x", "'gzip, deflate' is not supported"),
        ("gzip", b"not gzip at all", "not valid gzip"),
        ("gzip", gzip.compress(b"hello" * 100)[:-6], "cut short"),
        ("deflate", b"\x78\x9c\xff\xff", "not valid deflate"),
    ],
)
def test_issue19_decode_content_refuses_what_it_cannot_read(coding: str, data: bytes, words: str) -> None:
    # issue 19, defect 9
    with pytest.raises(ValueError, match=words):
        decode_content(coding, data, 1_000_000)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/messages", "/v1/messages"),
        ("http://127.0.0.1:8080/v1/messages", "/v1/messages"),
        ("HTTPS://api.example/v1/chat/completions", "/v1/chat/completions"),
        ("http://host", "/"),
        ("*", "*"),
        ("ftp://host/v1/messages", "ftp://host/v1/messages"),
    ],
)
def test_issue19_origin_path_of_an_absolute_form_target(path: str, expected: str) -> None:
    # issue 19, defect 11
    assert origin_path(path) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAnthropic-Version: 2023-06-01\r\nx-big: aaa",
            ("POST", "/v1/messages", "", [(b"host", b"x"), (b"anthropic-version", b"2023-06-01")]),
        ),
        (b"POST /v1/messages?beta=true&q=aaaa", ("POST", "/v1/messages", "beta=true&q=aaaa", [])),
        (b"POST http://host/v1/messages HTTP/1.1\r\n", ("POST", "/v1/messages", "", [])),
        (b"POST /v1/messages HTTP/1.1", ("POST", "/v1/messages", "", [])),
        (b"POST /v1/mess", None),  # the target may go on
        (b"\x16\x03\x01\x02\x00", None),  # a TLS hello
        (b"GARBAGE\r\n", None),
    ],
)
def test_issue19_partial_head_says_the_path_once_the_request_line_tells_it(
    data: bytes, expected: Any
) -> None:
    # issue 19, defect 10
    assert partial_head(data) == expected
