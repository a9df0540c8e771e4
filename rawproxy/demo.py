"""``python -m rawproxy demo``: the whole product on one screen, no API key needed.

Starts the fake upstream (both dialects) and the proxy in this process, streams one request in each
direction (an Anthropic client to the OpenAI upstream, an OpenAI client to the Anthropic upstream), each
with reasoning and a tool call, prints what each client received, and the time to first token measured
directly against the fake upstream and through the proxy (the best of a few rounds each).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import h11
import orjson

from .config import Config
from .dialects import anthropic_messages, openai_chat, spec_named
from .routing import ModelRoutes
from .service import serve
from .sse import SSEDecoder
from .testing.fake_upstream import FakeUpstream, Script, ToolCall

SCRIPT = Script(
    text="Let me look at the files.",
    reasoning="The user wants the Python files.",
    tool_calls=[ToolCall(name="list_files", arguments={"path": ".", "pattern": "*.py"})],
    arg_fragments=4,
    ttft=0.02,
)
TOOL = {"type": "object", "properties": {"path": {"type": "string"}, "pattern": {"type": "string"}}}
ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-6",  # mapped to gpt-4.1: an OpenAI-protocol model, so translated
    "max_tokens": 1024,
    "stream": True,
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "tools": [{"name": "list_files", "description": "List files", "input_schema": TOOL}],
    "messages": [{"role": "user", "content": "Which Python files are here?"}],
}
OPENAI_REQUEST = {
    "model": "claude-opus-4-8",  # a Claude model: goes to the Anthropic upstream, translated
    "stream": True,
    "stream_options": {"include_usage": True},
    "reasoning_effort": "low",
    "tools": [
        {
            "type": "function",
            "function": {"name": "list_files", "description": "List files", "parameters": TOOL},
        }
    ],
    "messages": [{"role": "user", "content": "Which Python files are here?"}],
}
ANTHROPIC_HEADERS = [("anthropic-version", "2023-06-01"), ("x-api-key", "any")]
MESSAGES = spec_named("anthropic_messages").path  # the proxy's paths, as its clients use them
CHAT = spec_named("openai_chat").path


async def post_stream(
    url: str, body: bytes, headers: list[tuple[str, str]]
) -> tuple[float, list[tuple[str | None, bytes]]]:
    """POST and read an SSE response: (seconds to the first content event, all events)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    conn = h11.Connection(h11.CLIENT)
    head = h11.Request(
        method="POST",
        target=parts.path,
        headers=[
            ("host", parts.netloc),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            *headers,
        ],
    )
    started = time.perf_counter()
    writer.write(
        (conn.send(head) or b"")
        + (conn.send(h11.Data(data=body)) or b"")
        + (conn.send(h11.EndOfMessage()) or b"")
    )
    decoder = SSEDecoder()
    events: list[tuple[str | None, bytes]] = []
    first: float | None = None
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Data):
                for sse in decoder.feed(bytes(event.data)):
                    events.append((sse.event, sse.data))
                    if first is None and (b'"text_delta"' in sse.data or _has_content(sse.data)):
                        first = time.perf_counter() - started
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    finally:
        writer.close()
    return (first if first is not None else time.perf_counter() - started), events


def _show(title: str, events: list[tuple[str | None, bytes]]) -> None:
    print(title)
    for name, data in events:
        text = data.decode()
        if '"choices":' in text:  # an OpenAI chunk: its id, created and model repeat on every line
            text = text[text.index('"choices":') :]
        print(f"  {name or 'data'}: {text[:104]}")


async def _ttft(url: str, body: bytes, headers: list[tuple[str, str]], rounds: int = 5) -> float:
    return min([(await post_stream(url, body, headers))[0] for _ in range(rounds)]) * 1000


async def run() -> int:
    fake = await FakeUpstream(SCRIPT).start()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = Config(
        port=0,
        openai_upstream=fake.url,
        openai_key="demo-openai-key",
        anthropic_upstream=fake.anthropic_url,
        anthropic_key="demo-anthropic-key",
        routes=ModelRoutes(middle="gpt-4.1"),
    )
    server = asyncio.create_task(
        serve(config, ready=lambda h, p: ready.set_result(f"http://{h}:{p}"), stop=stop)
    )
    proxy = await ready
    print(
        f"fake upstream: {fake.url} (OpenAI) and {fake.anthropic_url} (Anthropic)\nrawproxy:      {proxy}\n"
    )
    _, a2o = await post_stream(proxy + MESSAGES, orjson.dumps(ANTHROPIC_REQUEST), ANTHROPIC_HEADERS)
    _show("1. An Anthropic client (claude-sonnet-4-6 -> gpt-4.1 on the OpenAI upstream) received:", a2o)
    _, o2a = await post_stream(proxy + CHAT, orjson.dumps(OPENAI_REQUEST), [])
    _show("\n2. An OpenAI client (claude-opus-4-8 on the Anthropic upstream) received:", o2a)

    direct_openai = orjson.dumps(
        {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    direct_anthropic = orjson.dumps(
        {
            "model": "claude-opus-4-8",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    rows = [
        (
            "Anthropic client -> OpenAI upstream",
            await _ttft(fake.url + openai_chat.UPSTREAM_PATH, direct_openai, []),
            await _ttft(proxy + MESSAGES, orjson.dumps(ANTHROPIC_REQUEST), ANTHROPIC_HEADERS),
        ),
        (
            "OpenAI client -> Anthropic upstream",
            await _ttft(
                fake.anthropic_url + anthropic_messages.UPSTREAM_PATH, direct_anthropic, ANTHROPIC_HEADERS
            ),
            await _ttft(proxy + CHAT, orjson.dumps(OPENAI_REQUEST), []),
        ),
    ]
    print(
        f"\ntime to first token, best of 5 (the fake upstream waits {SCRIPT.ttft * 1000:.0f} ms before its first token):"
    )
    print(f"  {'path':38} {'direct':>9} {'proxied':>9} {'overhead':>9}")
    for name, direct, proxied in rows:
        print(f"  {name:38} {direct:7.2f}ms {proxied:7.2f}ms {proxied - direct:7.2f}ms")
    stop.set()
    await server
    await fake.close()
    a2o_ok = (
        a2o[0][0] == "message_start"
        and a2o[-1][0] == "message_stop"
        and any(b'"tool_use"' in d for _, d in a2o)
    )
    o2a_ok = o2a[-1][1] == b"[DONE]" and any(b'"tool_calls"' in d for _, d in o2a)
    return 0 if a2o_ok and o2a_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(  # -h/--help prints this and exits, before anything starts
        prog="rawproxy demo",
        description="The fake upstream (both dialects) and the proxy in this process, no API key and no "
        "network: one streamed request with reasoning and a tool call in each direction, what each client "
        "received, and the time to first token direct and through the proxy.",
    ).parse_args(list(argv or []))
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def _has_content(data: bytes) -> bool:
    """An OpenAI chunk with text in it (the opening chunk's empty content does not count)."""
    return b'"content":"' in data and b'"content":""' not in data
