"""A fast bench upstream: OpenAI Chat Completions and Anthropic Messages answered with pre-built bytes.

The package's fake upstream (``rawproxy.testing.fake_upstream``) is written for tests: it parses every
request with h11 and JSON and builds every event with orjson, which costs more CPU per request than the
proxy is meant to. On a 2-core machine that cost is shared with the proxy and the load generator, so the
bench uses this server instead: a raw :class:`asyncio.Protocol`, keep-alive, minimal request parsing
(head, then ``Content-Length`` or chunked body), and responses sent from bytes built once at start.

What it answers is chosen by a marker in the request body, ``bench:<kind>:<delay ms>[:<gap ms>]`` (the
last user message carries it, so it survives translation), and by ``"stream": true``:

* ``short``: a five-token answer (streamed or not);
* ``stream200``: 200 text events;
* ``text100``: 100 text events (the tool call's counterpart);
* ``tool100``: one tool call whose arguments come in 100 fragments.

A non-streamed request is answered with the short text whatever its kind, and an unknown kind as
``short``: :func:`answer` says what a request's answer holds, and both the events built here and the bench
client's check of every response (``validate.py``) take the text from it.

OpenAI at ``POST .../chat/completions``, Anthropic at ``POST .../v1/messages``. The head of a streamed
response is sent at once and the events after the delay, each event in its own write (one chunk of
``Transfer-Encoding: chunked``), as a real upstream sends them. Without a gap the events go back to back;
with one, the events up to the first token go after the delay and every later token ``gap`` ms after the
one before (the closing events with the last token), as a model generating at that pace would send them.

    python bench/canned_upstream.py --port 18090 [--max-seconds 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson

MARKER = b"bench:"
_MARKER = re.compile(rb"bench:(\w+):(\d+)(?::(\d+))?")
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')

TEXT_SHORT = ["Hello", " from", " the", " bench", " upstream."]
TEXT_200 = [f" word{i}" for i in range(200)]
TEXT = {"short": TEXT_SHORT, "stream200": TEXT_200, "text100": TEXT_200[:100]}
TOOL_NAME = "Bash"
TOOL_ARGS = orjson.dumps(
    {
        "command": "find . -name '*.py' -not -path './.venv/*' | xargs grep -n 'async def' | sort | head -200",
        "description": "List every coroutine in the project's Python sources, sorted, first 200 lines",
        "timeout": 120000,
    }
).decode()


def text_tokens(kind: str) -> list[str]:
    """The text events of a streamed answer of this kind (an unknown kind is answered as ``short``)."""
    return TEXT.get(kind, TEXT_SHORT)


def answer(kind: str, stream: bool) -> tuple[str, str | None]:
    """What the answer to a request with this marker kind holds: (its text, the tool call's arguments or
    None). Only a streamed ``tool100`` is a tool call (named :data:`TOOL_NAME`, no text); a non-streamed
    request gets the short text whatever its kind. The events below are built from the same values."""
    if stream and kind == "tool100":
        return "", TOOL_ARGS
    return "".join(text_tokens(kind if stream else "short")), None


def _split(text: str, pieces: int) -> list[str]:
    size = -(-len(text) // pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


# ----------------------------------------------------------------------------------------- OpenAI


def _openai_events(kind: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(the events before the first token, one event a token, the closing events)."""
    base: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-bench",
    }

    def frame(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

    head = [frame({"role": "assistant", "content": ""})]
    _, args = answer(kind, True)
    if args is not None:
        call = {
            "index": 0,
            "id": "call_bench0001",
            "type": "function",
            "function": {"name": TOOL_NAME, "arguments": ""},
        }
        head.append(frame({"tool_calls": [call]}))
        tokens = [
            frame({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in _split(args, 100)
        ]
        finish = "tool_calls"
    else:
        tokens = [frame({"content": t}) for t in text_tokens(kind)]
        finish = "stop"
    out = 100 if args is not None else len(tokens)  # usage as before (the split gives 72 fragments)
    usage = {"prompt_tokens": 12, "completion_tokens": out, "total_tokens": 12 + out}
    tail = [frame({}, finish), frame(None, usage=usage) + b"data: [DONE]\n\n"]
    return head, tokens, tail


def _openai_whole() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer("short", False)[0]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        }
    )


# -------------------------------------------------------------------------------------- Anthropic


def _sse(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _anthropic_events(kind: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(the events before the first token, one event a token, the closing events)."""
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    _, args = answer(kind, True)
    block: dict[str, Any]
    if args is not None:
        block = {"type": "tool_use", "id": "toolu_bench0001", "name": TOOL_NAME, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in _split(args, 100)]
        lead = [{"type": "input_json_delta", "partial_json": ""}]  # as the API starts a tool_use block
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in text_tokens(kind)]
        lead = []
        stop = "end_turn"
    out = 100 if args is not None else len(deltas)
    head = [
        _sse({"type": "message_start", "message": message}),
        _sse({"type": "content_block_start", "index": 0, "content_block": block}),
        b'event: ping\ndata: {"type": "ping"}\n\n',
        *(_sse({"type": "content_block_delta", "index": 0, "delta": d}) for d in lead),
    ]
    tokens = [_sse({"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    tail = [_sse({"type": "content_block_stop", "index": 0})]
    tail.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {**usage, "output_tokens": out},
            }
        )
    )
    tail.append(_sse({"type": "message_stop"}))
    return head, tokens, tail


def _anthropic_whole() -> bytes:
    return orjson.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": answer("short", False)[0]}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 5,
            },
        }
    )


# ------------------------------------------------------------------------------------- responses

_STREAM_HEAD = {
    "openai": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    "anthropic": (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
    ),
}
KINDS = ("short", "stream200", "text100", "tool100")
# (dialect, kind) -> the chunked frames of the events; the last one carries the terminating chunk
STREAMS: dict[tuple[str, str], list[bytes]] = {}
# (dialect, kind) -> the same frames in the writes of a paced answer: the events up to the first token,
# then one write a token, the closing events (and the terminating chunk) with the last token
PACED: dict[tuple[str, str], list[bytes]] = {}
for _kind in KINDS:
    for _dialect, (_head, _tokens, _tail) in (
        ("openai", _openai_events(_kind)),
        ("anthropic", _anthropic_events(_kind)),
    ):
        _frames = [_chunk(e) for e in (*_head, *_tokens, *_tail)]
        _frames[-1] += b"0\r\n\r\n"
        STREAMS[_dialect, _kind] = _frames
        _writes = [_chunk(e) for e in _tokens]
        _writes[0] = b"".join(_chunk(e) for e in _head) + _writes[0]
        _writes[-1] += b"".join(_chunk(e) for e in _tail) + b"0\r\n\r\n"
        PACED[_dialect, _kind] = _writes


def _whole(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


WHOLE = {"openai": _whole(_openai_whole()), "anthropic": _whole(_anthropic_whole())}
MODELS = _whole(b'{"object":"list","data":[{"id":"gpt-bench","object":"model","created":0,"owned_by":"b"}]}')
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: parse a request, answer it, repeat (no pipelining needed)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(buf[:end]).lower()
        start = end + 4
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            length = int(head[i + 17 : j if j >= 0 else len(head)])
            if len(buf) < start + length:
                return False
            body = bytes(buf[start : start + length])
            del buf[: start + length]
        elif b"\r\ntransfer-encoding: chunked" in head:
            parsed = _dechunk(buf, start)
            if parsed is None:
                return False
            body, consumed = parsed
            del buf[:consumed]
        else:
            body = b""
            del buf[:start]
        self._answer(head, body)
        return True

    def _answer(self, head: bytes, body: bytes) -> None:
        transport = self.transport
        assert transport is not None
        target = head[: head.find(b"\r\n")].split(b" ")[1]
        if target.endswith(b"/chat/completions"):
            dialect = "openai"
        elif target.split(b"?")[0].endswith(b"/v1/messages"):
            dialect = "anthropic"
        elif b"/models" in target:
            transport.write(MODELS)
            return
        else:
            transport.write(NOT_FOUND)
            return
        kind, delay_ms, gap_ms = "short", 0, 0
        m = body.find(MARKER)
        if m >= 0:
            found = _MARKER.match(body, m, m + 48)
            if found is not None:
                kind = found[1].decode()
                delay_ms = int(found[2])
                gap_ms = int(found[3] or 0)
        if _STREAM_TRUE.search(body) is None:
            transport.write(WHOLE[dialect])
            return
        if (dialect, kind) not in STREAMS:
            kind = "short"
        transport.write(_STREAM_HEAD[dialect])
        if gap_ms:
            loop = asyncio.get_running_loop()
            for i, write in enumerate(PACED[dialect, kind]):
                loop.call_later((delay_ms + i * gap_ms) / 1000, _write_all, transport, (write,))
            return
        frames = STREAMS[dialect, kind]
        if delay_ms:
            asyncio.get_running_loop().call_later(delay_ms / 1000, _write_all, transport, frames)
        else:
            _write_all(transport, frames)


def _write_all(transport: asyncio.Transport, frames: Sequence[bytes]) -> None:
    if transport.is_closing():
        return
    for frame in frames:
        transport.write(frame)


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """A whole chunked body starting at ``pos``: (body, bytes consumed) or None if incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            if end < 0:
                return None
            return bytes(out), end + 4
        if len(buf) < eol + 2 + size + 2:
            return None
        out += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def loop_factory(enabled: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (as the proxy uses it), else asyncio's own."""
    if not enabled:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def serve(host: str, port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=2048)
    print(f"bench-upstream listening on http://{host}:{port}", flush=True)
    try:
        await asyncio.sleep(max_seconds)  # stops by itself
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="fast canned-bytes upstream for bench/")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18090)
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=loop_factory(not args.no_uvloop)) as runner:
            runner.run(serve(args.host, args.port, args.max_seconds))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
