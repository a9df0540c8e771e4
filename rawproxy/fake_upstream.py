"""A scripted fake LLM server speaking OpenAI Chat Completions and Anthropic Messages, for tests, bench/,
the demo and users.

Run it with ``python -m rawproxy fake-upstream --port 18081`` and point any OpenAI client (or rawproxy's
``--openai-upstream http://127.0.0.1:18081/v1``) at ``http://127.0.0.1:18081/v1``, or any Anthropic client
(``base_url``) at ``http://127.0.0.1:18081``: no API key, no network.

Theory of operation. The path picks the dialect:

* OpenAI Chat Completions: ``POST .../chat/completions`` (streamed as ``data:`` chunks ending in
  ``[DONE]``), and ``GET .../models`` without Anthropic headers (``FakeUpstream.openai_models``: one
  ``fake-model`` unless a test lists other entries, with output-cap fields for instance).
* Anthropic Messages: ``POST .../v1/messages`` (``?beta=true`` too), streamed as the real API does it
  (``message_start``, ``content_block_start``, ``ping`` after the first block start, ``thinking_delta``s
  then one ``signature_delta``, ``input_json_delta``s starting with ``""``, ``content_block_stop``,
  ``message_delta`` with ``stop_reason`` and usage, ``message_stop``); ``POST .../v1/messages/count_tokens``
  (``{"input_tokens": len(body) // 4}``); ``GET .../v1/models`` with an ``anthropic-version`` or
  ``x-api-key`` header (Anthropic's paginated list over ``FakeUpstream.models``, honouring ``limit``,
  ``after_id`` and ``before_id``).

What it answers is a :class:`Script`, the same for both dialects, chosen in this order:
1. the next script queued by a test (``fake.enqueue(Script(...))``);
2. a keyword in the last user message, so that clients you cannot script (Claude Code) can still ask
   for a behaviour: ``MOCK:text``, ``MOCK:bash``, ``MOCK:parallel``, ``MOCK:think``, ``MOCK:429``,
   ``MOCK:midstream`` (see :data:`KEYWORDS`); after a tool result (an OpenAI ``tool`` message, or an
   Anthropic user message holding a ``tool_result`` block), a tool-calling keyword answers with its
   final text instead;
3. the default script (``--text``, ``--ttft-ms``, ``--token-interval-ms``).

In the Anthropic dialect ``reasoning`` becomes a ``thinking`` block signed with ``signature``, tool calls
become ``tool_use`` blocks (``interleave`` does not apply: Anthropic never interleaves blocks),
``finish_reason`` is the ``stop_reason`` (OpenAI names are mapped: ``length`` is ``max_tokens``),
``error_after`` sends ``event: error`` (``overloaded_error``) and ends the response, and an OpenAI-shaped
``error_body`` is rewritten into Anthropic's error envelope (use ``raw`` to send bytes untouched). Both
dialects count "content events" alike for ``error_after``, ``cut_after``, ``stall`` and
``chunks_written``: OpenAI content chunks, Anthropic ``content_block_delta`` events.

Before any answer, in both dialects, ``head_delay`` holds the response head back (an upstream slower
than the proxy's timeout), ``reset`` drops the connection with a TCP reset instead of answering, and
``wire`` writes exactly the given bytes, head and framing included, then closes (a broken server).

It records what it saw (``requests``: method, path, query, lower-case headers, parsed JSON body) and how
streams ended (``streams_cancelled`` counts streams whose client closed the connection before the end),
which the integration tests assert on. It is written on h11 directly, not on rawproxy's server, so a bug
there cannot hide itself in both arms of a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import h11
import orjson

__all__ = ["KEYWORDS", "FakeUpstream", "Script", "ToolCall", "main"]


@dataclass(slots=True, kw_only=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True, kw_only=True)
class Script:
    text: str = "Hello from the fake upstream."
    reasoning: str = ""
    reasoning_field: str = "reasoning_content"
    tool_calls: list[ToolCall] = field(default_factory=list)
    arg_fragments: int = 1  # split each call's arguments into this many chunks
    interleave: bool = False  # alternate the fragments of parallel calls
    ttft: float = 0.0  # seconds before the first chunk
    token_interval: float = 0.0  # seconds between chunks
    stall: float = 0.0  # seconds of silence after the first content chunk (with raw: its first piece)
    usage: bool | None = None  # None: as the request's stream_options.include_usage says
    finish_reason: str | None = None
    status: int = 200  # >= 400: an error before the first byte, with error_body
    error_body: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    error_after: int | None = None  # after N content chunks, an in-band error chunk, then [DONE]
    cut_after: int | None = None  # after N content chunks, drop the connection
    raw: bytes | None = None  # send exactly these bytes as the body (recorded transcripts)
    content_type: str | None = None
    chunk_size: int | None = None  # with raw: write it in pieces of this size (ttft, stall and
    # token_interval pace the pieces as they pace content chunks)
    prompt_tokens: int = 12
    cached_tokens: int = 0  # Anthropic: cache_read_input_tokens (input_tokens is the rest)
    signature: str = "sig-fake-0001"  # Anthropic: the thinking block's signature
    ping: bool = True  # Anthropic: an ``event: ping`` after the first content_block_start
    head_delay: float = 0.0  # seconds of silence before anything of the answer (the head included)
    reset: bool = False  # after head_delay, drop the connection with a TCP reset: no answer at all
    wire: bytes | None = None  # after head_delay, write exactly these bytes (head and framing too), close


def _bash(command: str, description: str) -> ToolCall:
    return ToolCall(name="Bash", arguments={"command": command, "description": description})


_RATE_LIMITED = Script(
    status=429,
    error_body=b'{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}',
    headers=[("retry-after", "0")],
)

# keyword -> (first answer, answer after the tool results came back)
KEYWORDS: dict[str, tuple[Script, Script]] = {
    "MOCK:text": (Script(text="rawproxy-e2e-ok"), Script(text="rawproxy-e2e-ok")),
    "MOCK:bash": (
        Script(
            text="I'll run the command.",
            tool_calls=[_bash("echo rawproxy-ok > out.txt", "Write out.txt")],
            arg_fragments=6,
        ),
        Script(text="The file out.txt was written."),
    ),
    "MOCK:parallel": (
        Script(
            text="",
            tool_calls=[_bash("echo one > a.txt", "Write a.txt"), _bash("echo two > b.txt", "Write b.txt")],
            arg_fragments=4,
        ),
        Script(text="Both files were written."),
    ),
    "MOCK:think": (
        Script(
            text="",
            reasoning="The user wants a file. I will use Bash.",
            tool_calls=[_bash("echo thought > think.txt", "Write think.txt")],
            arg_fragments=3,
        ),
        Script(text="Done thinking and writing."),
    ),
    "MOCK:429": (_RATE_LIMITED, _RATE_LIMITED),
    # A stream that fails after its first token. Claude Code then retries the turn without streaming,
    # and a non-streamed request never fails here, so its answer is the same text, complete.
    "MOCK:midstream": (Script(text="answer after a failed stream", error_after=1),) * 2,
}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""


DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-opus-4-8", "claude-haiku-4-5-20251001")


def _has_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in content
    )


def _last_user_text(messages: list[Any]) -> tuple[str, bool]:
    """The last user message's text, and whether tool results came after it.

    Tool results are OpenAI ``tool`` messages or Anthropic user messages holding ``tool_result`` blocks.
    """
    tool_after = False
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if message.get("role") == "tool" or (message.get("role") == "user" and _has_tool_result(content)):
            tool_after = True
        elif message.get("role") == "user":
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or ""), tool_after
    return "", tool_after


def _split(text: str, pieces: int) -> list[str]:
    if pieces <= 1 or len(text) < 2:
        return [text]
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tokens(text: str) -> list[str]:
    """Word-sized pieces, spaces kept, so the text reassembles exactly."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch == " " and i > start:
            out.append(text[start:i])
            start = i
    if start < len(text):
        out.append(text[start:])
    return out


class FakeUpstream:
    def __init__(
        self,
        default: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        self.default = default or Script()
        self.host = host
        self.port = port
        self.models = list(models)  # what Anthropic's GET /v1/models lists
        # What OpenAI's GET .../models lists: whole entries, so that a test can report output caps the
        # way providers do (``max_completion_tokens``, ``top_provider.max_completion_tokens``...).
        self.openai_models: list[dict[str, Any]] = [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
        ]
        self.requests: list[RecordedRequest] = []
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_cancelled = 0
        self.stream_closed = asyncio.Event()  # set whenever a stream ends early because the client left
        self.chunks_written = 0
        self._queue: deque[Script] = deque()
        self._readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
        self._handlers: set[asyncio.Task[Any]] = set()  # one per open connection
        self._closing = False
        self._server: asyncio.Server | None = None
        self._seq = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic SDK's ``base_url`` form: no ``/v1``."""
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *scripts: Script) -> None:
        self._queue.extend(scripts)

    async def start(self) -> FakeUpstream:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening, and end the connections still open (a scripted delay still running, say),
        so that no handler is left for the event loop's shutdown to cancel."""
        self._closing = True
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=1)

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def choose(self, body: Any) -> Script:
        if self._queue:
            return self._queue.popleft()
        messages = body.get("messages") if isinstance(body, dict) else None
        text, after_tools = _last_user_text(messages or [])
        for keyword, (first, final) in KEYWORDS.items():
            if keyword in text:
                return final if after_tools else first
        return self.default

    # ------------------------------------------------------------------------------------ HTTP

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        self._readers[writer] = reader  # so that a scripted delay ends when the client goes away
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                head, body = await self._read_request(conn, reader)
                if head is None:
                    return
                keep = await self._answer(conn, writer, head, body)
                if not keep or conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        except asyncio.CancelledError:
            if not self._closing:
                raise
            return  # ended by close(): a normal end for this handler
        finally:
            if task is not None:
                self._handlers.discard(task)
            self._readers.pop(writer, None)
            writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        head = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return head, bytes(body)
            else:
                return None, b""

    async def _answer(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, head: h11.Request, raw_body: bytes
    ) -> bool:
        path, _, query = head.target.decode().partition("?")
        method = head.method.decode()
        headers = {k.decode(): v.decode("latin-1") for k, v in head.headers}
        try:
            body = orjson.loads(raw_body) if raw_body else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(RecordedRequest(method, path, headers, body, query))
        anthropic_client = "anthropic-version" in headers or "x-api-key" in headers
        if path.endswith("/v1/messages/count_tokens") and method == "POST":
            return await self._json(conn, writer, 200, {"input_tokens": max(1, len(raw_body) // 4)})
        if path.endswith("/v1/messages") and method == "POST":
            return await self._anthropic(conn, writer, body)
        if anthropic_client and "/v1/models" in path and method == "GET":
            return await self._anthropic_models(conn, writer, path, query)
        if path.endswith("/models"):
            return await self._json(conn, writer, 200, {"object": "list", "data": self.openai_models})
        if not path.endswith("/chat/completions") or not isinstance(body, dict):
            return await self._json(
                conn, writer, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
            )
        script = self.choose(body)
        if not await self._before_head(writer, script):
            return False
        if script.raw is not None:
            return await self._raw(conn, writer, script)
        if script.status >= 400:
            error = script.error_body or orjson.dumps(
                {"error": {"message": "scripted error", "type": "server_error"}}
            )
            return await self._send(
                conn, writer, script.status, [("content-type", "application/json"), *script.headers], error
            )
        if body.get("stream"):
            return await self._stream(conn, writer, body, script)
        return await self._json(conn, writer, 200, self._completion(body, script))

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> bool:
        headers = [*headers, ("content-length", str(len(body)))]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return True

    async def _wait(self, writer: asyncio.StreamWriter, seconds: float) -> None:
        """Sleep, but raise ConnectionResetError as soon as the client closes the connection (one that
        timed out): nothing lingers after the test that scripted the delay."""
        reader = self._readers.get(writer)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if reader is not None and reader.at_eof():
                raise ConnectionResetError("the client closed the connection")
            await asyncio.sleep(min(left, 0.01))

    async def _before_head(self, writer: asyncio.StreamWriter, script: Script) -> bool:
        """``head_delay``, then ``reset`` or ``wire``; False when the connection is done with."""
        if script.head_delay:
            await self._wait(writer, script.head_delay)
        if script.reset:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends a RST, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if script.wire is not None:
            writer.write(script.wire)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return False
        return True

    async def _json(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, data: Any) -> bool:
        return await self._send(
            conn, writer, status, [("content-type", "application/json")], orjson.dumps(data)
        )

    async def _raw(self, conn: h11.Connection, writer: asyncio.StreamWriter, script: Script) -> bool:
        assert script.raw is not None
        content_type = script.content_type or "text/event-stream"
        writer.write(
            conn.send(
                h11.Response(
                    status_code=script.status, headers=[("content-type", content_type), *script.headers]
                )
            )
            or b""
        )
        if script.ttft:
            await self._wait(writer, script.ttft)
        size = script.chunk_size or len(script.raw) or 1
        for n, i in enumerate(range(0, len(script.raw), size)):
            if n:
                await self._pace(writer, script, n - 1)
            writer.write(conn.send(h11.Data(data=script.raw[i : i + size])) or b"")
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return True

    # ---------------------------------------------------------------------------- completions

    def _usage(self, script: Script, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": script.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
        }

    def _next_id(self) -> str:
        self._seq += 1
        return f"chatcmpl-fake{self._seq:06d}"

    def _completion(self, body: dict[str, Any], script: Script) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": script.text or None}
        if script.reasoning:
            message[script.reasoning_field] = script.reasoning
        if script.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{i:02d}{self._seq:06d}",
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments
                        if isinstance(call.arguments, str)
                        else orjson.dumps(call.arguments).decode(),
                    },
                }
                for i, call in enumerate(script.tool_calls)
            ]
        finish = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(script, max(1, len(_tokens(script.text)))),
        }

    def _deltas(self, script: Script) -> list[dict[str, Any]]:
        """The content deltas of a streamed answer, in order."""
        deltas: list[dict[str, Any]] = [
            {script.reasoning_field: piece} for piece in _tokens(script.reasoning)
        ]
        deltas += [{"content": piece} for piece in _tokens(script.text)]
        per_call = []
        for i, call in enumerate(script.tool_calls):
            args = (
                call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()
            )
            head = {
                "index": i,
                "id": call.id or f"call_{i:02d}{self._seq:06d}",
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            per_call.append(
                [head]
                + [
                    {"index": i, "function": {"arguments": frag}}
                    for frag in _split(args, script.arg_fragments)
                ]
            )
        if script.interleave:
            longest = max((len(c) for c in per_call), default=0)
            order = [c[j] for j in range(longest) for c in per_call if j < len(c)]
        else:
            order = [tc for c in per_call for tc in c]
        deltas += [{"tool_calls": [tc]} for tc in order]
        return deltas

    async def _stream(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, body: dict[str, Any], script: Script
    ) -> bool:
        self.streams_started += 1
        chunk_id = self._next_id()
        base = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
        }
        options = body.get("stream_options") or {}
        usage_on = script.usage if script.usage is not None else bool(options.get("include_usage"))

        def frame(choices: list[Any], **extra: Any) -> bytes:
            return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

        writer.write(
            conn.send(
                h11.Response(
                    status_code=200, headers=[("content-type", "text/event-stream"), *script.headers]
                )
            )
            or b""
        )
        try:
            if script.ttft:
                await self._wait(writer, script.ttft)
            deltas = self._deltas(script)
            for n, delta in enumerate(deltas):
                if script.cut_after is not None and n >= script.cut_after:
                    writer.transport.abort()  # no terminating chunk: a dead upstream
                    return False
                if script.error_after is not None and n >= script.error_after:
                    error = {"message": "upstream provider failed mid-stream", "code": 502}
                    data = (
                        frame([{"index": 0, "delta": {}, "finish_reason": "error"}], error=error)
                        + b"data: [DONE]\n\n"
                    )
                    writer.write(conn.send(h11.Data(data=data)) or b"")
                    break
                if n == 0:
                    delta = {"role": "assistant", **delta}
                writer.write(
                    conn.send(h11.Data(data=frame([{"index": 0, "delta": delta, "finish_reason": None}])))
                    or b""
                )
                self.chunks_written += 1
                await writer.drain()
                await self._pace(writer, script, n)
            else:
                finish = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
                data = frame([{"index": 0, "delta": {}, "finish_reason": finish}])
                if usage_on:
                    data += frame([], usage=self._usage(script, max(1, len(deltas))))
                data += b"data: [DONE]\n\n"
                writer.write(conn.send(h11.Data(data=data)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            self.streams_completed += 1
            return True
        except (ConnectionError, asyncio.CancelledError):
            self.streams_cancelled += 1
            self.stream_closed.set()
            raise

    # ------------------------------------------------------------------------------ Anthropic

    def _anthropic_headers(self, content_type: str, script: Script | None = None) -> list[tuple[str, str]]:
        self._seq += 1
        extra = script.headers if script else []
        return [("content-type", content_type), ("request-id", f"req_fake{self._seq:06d}"), *extra]

    async def _anthropic_error(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str
    ) -> bool:
        body = orjson.dumps(_anthropic_error_body(status, message))
        return await self._send(conn, writer, status, self._anthropic_headers("application/json"), body)

    async def _anthropic_models(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, path: str, query: str
    ) -> bool:
        model_id = path.partition("/v1/models")[2].strip("/")
        if model_id:  # GET /v1/models/{id}
            if model_id not in self.models:
                return await self._anthropic_error(conn, writer, 404, f"model: {model_id}")
            return await self._json(conn, writer, 200, _model_info(model_id))
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            limit = min(1000, max(1, int(params.get("limit", "20"))))
        except ValueError:
            return await self._anthropic_error(conn, writer, 400, "limit: must be an integer")
        ids = self.models
        if "before_id" in params:
            end = ids.index(params["before_id"]) if params["before_id"] in ids else len(ids)
            page, has_more = ids[max(0, end - limit) : end], end - limit > 0
        else:
            after = params.get("after_id")
            start = ids.index(after) + 1 if after in ids else 0
            page, has_more = ids[start : start + limit], start + limit < len(ids)
        listing = {
            "data": [_model_info(m) for m in page],
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
        return await self._json(conn, writer, 200, listing)

    async def _anthropic(self, conn: h11.Connection, writer: asyncio.StreamWriter, body: Any) -> bool:
        if not isinstance(body, dict):
            return await self._anthropic_error(conn, writer, 400, "the request body is not a JSON object")
        script = self.choose(body)
        if not await self._before_head(writer, script):
            return False
        if script.raw is not None:
            return await self._raw(conn, writer, script)
        if script.status >= 400:
            error = _anthropic_error_bytes(script.status, script.error_body)
            headers = self._anthropic_headers("application/json", script)
            return await self._send(conn, writer, script.status, headers, error)
        if body.get("stream"):
            return await self._anthropic_stream(conn, writer, body, script)
        payload = orjson.dumps(self._anthropic_message(body, script))
        return await self._send(
            conn, writer, 200, self._anthropic_headers("application/json", script), payload
        )

    def _tool_use_id(self, call: ToolCall, i: int) -> str:
        return call.id or f"toolu_fake{i:02d}{self._seq:06d}"

    def _anthropic_message(self, body: dict[str, Any], script: Script) -> dict[str, Any]:
        """A whole (non-streamed) Messages response."""
        head = self._anthropic_head(body)  # first: tool_use ids take its sequence number
        content: list[dict[str, Any]] = []
        if script.reasoning:
            content.append({"type": "thinking", "thinking": script.reasoning, "signature": script.signature})
        if script.text:
            content.append({"type": "text", "text": script.text})
        for i, call in enumerate(script.tool_calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": self._tool_use_id(call, i),
                    "name": call.name,
                    "input": _input(call),
                }
            )
        output = max(1, len(_tokens(script.reasoning)) + len(_tokens(script.text)) + len(script.tool_calls))
        return {
            **head,
            "content": content,
            "stop_reason": _stop_reason(script),
            "stop_sequence": _stop_sequence(body, script),
            "usage": {**_anthropic_usage(script), "output_tokens": output, "service_tier": "standard"},
        }

    def _anthropic_head(self, body: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        return {
            "id": f"msg_fake{self._seq:06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-model"),
        }

    def _anthropic_blocks(self, script: Script) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each content block's ``content_block_start`` payload and its deltas, in order."""
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if script.reasoning:
            deltas = [{"type": "thinking_delta", "thinking": t} for t in _tokens(script.reasoning)]
            deltas.append({"type": "signature_delta", "signature": script.signature})
            blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
        if script.text:
            deltas = [{"type": "text_delta", "text": t} for t in _tokens(script.text)]
            blocks.append(({"type": "text", "text": ""}, deltas))
        for i, call in enumerate(script.tool_calls):
            start = {"type": "tool_use", "id": self._tool_use_id(call, i), "name": call.name, "input": {}}
            fragments = ["", *_split(_arguments(call), script.arg_fragments)]
            deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
            blocks.append((start, deltas))
        return blocks

    def _anthropic_events(self, body: dict[str, Any], script: Script) -> list[tuple[str, dict[str, Any]]]:
        """The whole stream as (event name, data) pairs; ``content_block_delta`` are the content events."""
        message = {
            **self._anthropic_head(body),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                **_anthropic_usage(script),
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 1,
                "service_tier": "standard",
            },
        }
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": message})
        ]
        blocks = self._anthropic_blocks(script)
        if script.ping and not blocks:
            events.append(("ping", _PING))
        output = 0
        for index, (start, deltas) in enumerate(blocks):
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            if index == 0 and script.ping:
                events.append(("ping", _PING))
            events += [
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                for d in deltas
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            output += len(deltas)
        delta = {"stop_reason": _stop_reason(script), "stop_sequence": _stop_sequence(body, script)}
        usage = {**_anthropic_usage(script), "output_tokens": max(1, output)}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    async def _anthropic_stream(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, body: dict[str, Any], script: Script
    ) -> bool:
        self.streams_started += 1
        headers = self._anthropic_headers("text/event-stream; charset=utf-8", script)
        writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
        try:
            if script.ttft:
                await self._wait(writer, script.ttft)
            n = 0  # content events written
            for name, data in self._anthropic_events(body, script):
                content = name == "content_block_delta"
                if content and script.cut_after is not None and n >= script.cut_after:
                    writer.transport.abort()  # no message_stop: a dead upstream
                    return False
                if content and script.error_after is not None and n >= script.error_after:
                    writer.write(conn.send(h11.Data(data=_sse("error", _OVERLOADED))) or b"")
                    break
                writer.write(conn.send(h11.Data(data=_sse(name, data))) or b"")
                await writer.drain()
                if content:
                    self.chunks_written += 1
                    await self._pace(writer, script, n)
                    n += 1
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            self.streams_completed += 1
            return True
        except (ConnectionError, asyncio.CancelledError):
            self.streams_cancelled += 1
            self.stream_closed.set()
            raise

    async def _pace(self, writer: asyncio.StreamWriter, script: Script, n: int) -> None:
        """The pause after content event ``n`` (or piece ``n`` of a ``raw`` body): the stall after the
        first, which ends early when the client goes away (one that timed out), else the token
        interval (a plain sleep: short, and paid per token, so not polled)."""
        if n == 0 and script.stall:
            await self._wait(writer, script.stall)
        elif script.token_interval:
            await asyncio.sleep(script.token_interval)


_PING: dict[str, Any] = {"type": "ping"}
_OVERLOADED: dict[str, Any] = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}

# HTTP status -> Anthropic error type (https://docs.anthropic.com/en/api/errors)
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# OpenAI finish_reason -> Anthropic stop_reason, so one Script serves both dialects
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    # The real API writes ping as spaced JSON and every other event compact.
    payload = b'{"type": "ping"}' if event == "ping" else orjson.dumps(data)
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def _anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic_error_bytes(status: int, error_body: bytes | None) -> bytes:
    """A scripted error for an Anthropic client: the default one, or ``error_body`` (an OpenAI-shaped
    JSON body is rewritten into Anthropic's envelope with the same message; anything else goes as given)."""
    if error_body is None:
        return orjson.dumps(_anthropic_error_body(status, "scripted error"))
    try:
        parsed = orjson.loads(error_body)
    except orjson.JSONDecodeError:
        return error_body
    if isinstance(parsed, dict) and parsed.get("type") != "error" and isinstance(parsed.get("error"), dict):
        return orjson.dumps(
            _anthropic_error_body(status, str(parsed["error"].get("message", "scripted error")))
        )
    return error_body


def _anthropic_usage(script: Script) -> dict[str, Any]:
    return {
        "input_tokens": max(0, script.prompt_tokens - script.cached_tokens),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": script.cached_tokens,
    }


def _stop_reason(script: Script) -> str:
    if script.finish_reason:
        return _STOP_REASONS.get(script.finish_reason, script.finish_reason)
    return "tool_use" if script.tool_calls else "end_turn"


def _stop_sequence(body: dict[str, Any], script: Script) -> str | None:
    sequences = body.get("stop_sequences")
    if _stop_reason(script) == "stop_sequence" and isinstance(sequences, list) and sequences:
        return str(sequences[0])
    return None


def _arguments(call: ToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()


def _input(call: ToolCall) -> Any:
    if not isinstance(call.arguments, str):
        return call.arguments
    try:
        return orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        return {}


def _model_info(model_id: str) -> dict[str, Any]:
    """``claude-haiku-4-5-20251001`` -> display name ``Claude Haiku 4.5``."""
    words = [w for w in model_id.split("-") if not (w.isdigit() and len(w) == 8)]
    names = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return {
        "type": "model",
        "id": model_id,
        "display_name": " ".join([*names, version] if version else names),
        "created_at": "2025-01-01T00:00:00Z",
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rawproxy fake-upstream",
        description="A scripted fake LLM server (OpenAI Chat Completions and Anthropic Messages).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18081)
    p.add_argument("--text", default=Script().text, help="the default answer")
    p.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first chunk")
    p.add_argument("--token-interval-ms", type=float, default=0.0, help="delay between chunks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    default = Script(text=args.text, ttft=args.ttft_ms / 1000, token_interval=args.token_interval_ms / 1000)

    async def run() -> None:
        fake = await FakeUpstream(default, args.host, args.port).start()
        print(
            f"fake-upstream listening on {fake.url} (OpenAI Chat Completions)"
            f" and {fake.anthropic_url} (Anthropic Messages)",
            flush=True,
        )
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
