"""The fake upstream's server: :class:`FakeUpstream` (listen, read requests with h11, record them, route
each to its dialect) and the ``rawproxy fake-upstream`` command line.

One task per connection reads requests in a keep-alive loop; each request is recorded (method, path,
query, lower-case headers, parsed JSON body) before anything is answered, then routed by path (and, for
``GET .../v1/models``, by whether the client sent Anthropic headers) to :mod:`.openai_chat` or
:mod:`.anthropic_messages`. A dialect answers through a per-connection :class:`~.wire.Wire` and returns
whether the connection may serve another request. :meth:`FakeUpstream.close` cancels the handlers still
running (a scripted delay, say), so none is left for the event loop's shutdown to cancel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import h11
import orjson

from . import anthropic_messages, openai_chat
from .script import DEFAULT_MODELS, RecordedRequest, Script
from .state import UpstreamState
from .wire import Wire

__all__ = ["FakeUpstream", "build_parser", "main"]


class FakeUpstream(UpstreamState):
    def __init__(
        self,
        default: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
        *,
        models_page_size: int | None = None,
        strict: bool = True,
    ) -> None:
        super().__init__(default, models, models_page_size, strict)
        self.host = host
        self.port = port
        self._handlers: set[asyncio.Task[Any]] = set()  # one per open connection
        self._closing = False
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic SDK's ``base_url`` form: no ``/v1``."""
        return f"http://{self.host}:{self.port}"

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

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        wire = Wire(conn, reader, writer)  # the reader too: a scripted delay ends when the client leaves
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                head, body = await _read_request(conn, reader)
                if head is None:
                    return
                keep = await self._answer(wire, head, body)
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
            writer.close()

    async def _answer(self, wire: Wire, head: h11.Request, raw_body: bytes) -> bool:
        """Record the request, then route it; False when the connection is done with."""
        path, _, query = head.target.decode().partition("?")
        method = head.method.decode()
        headers = {k.decode(): v.decode("latin-1") for k, v in head.headers}
        try:
            body = orjson.loads(raw_body) if raw_body else None
        except orjson.JSONDecodeError:
            body = None
        raw_headers = tuple((k.decode().lower(), v.decode("latin-1")) for k, v in head.headers)
        self.requests.append(RecordedRequest(method, path, headers, body, query, raw_body, raw_headers))
        anthropic_client = "anthropic-version" in headers or "x-api-key" in headers
        if path.endswith("/v1/messages/count_tokens") and method == "POST":
            return await anthropic_messages.count_tokens(wire, raw_body)
        if path.endswith("/v1/messages") and method == "POST":
            return await anthropic_messages.answer(self, wire, body)
        if anthropic_client and "/v1/models" in path and method == "GET":
            return await anthropic_messages.models(self, wire, path, query)
        if path.endswith("/models"):
            return await openai_chat.models(self, wire)
        if not path.endswith("/chat/completions") or not isinstance(body, dict):
            return await openai_chat.not_found(wire, path)
        return await openai_chat.answer(self, wire, body)


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request | None, bytes]:
    """The next request's head and whole body; (None, b"") when the client closed the connection."""
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
