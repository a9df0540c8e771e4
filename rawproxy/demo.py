"""``python -m rawproxy demo``: the whole path on one screen, no API key needed.

Starts the fake upstream and the proxy in this process, streams one Anthropic Messages request with a tool
call through the proxy, prints the events the client received, and the time to first token measured
directly against the fake upstream and through the proxy (the best of a few rounds each).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import h11
import orjson

from .config import Config
from .fake_upstream import FakeUpstream, Script, ToolCall
from .server import serve
from .sse import SSEDecoder

SCRIPT = Script(
    text="Let me look at the files.",
    tool_calls=[ToolCall(name="list_files", arguments={"path": ".", "pattern": "*.py"})],
    arg_fragments=4,
    ttft=0.02,
)


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
                    if first is None and (b'"text_delta"' in sse.data or b'"content":"' in sse.data):
                        first = time.perf_counter() - started
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    finally:
        writer.close()
    return (first if first is not None else time.perf_counter() - started), events


async def run() -> int:
    fake = await FakeUpstream(SCRIPT).start()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = Config(port=0, openai_upstream=fake.url, openai_key="demo-key", routes=Config().routes)
    server = asyncio.create_task(
        serve(config, ready=lambda h, p: ready.set_result(f"http://{h}:{p}"), stop=stop)
    )
    proxy_url = await ready
    request = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "stream": True,
        "tools": [
            {
                "name": "list_files",
                "description": "List files",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        ],
        "messages": [{"role": "user", "content": "Which Python files are here?"}],
    }
    anthropic_headers = [("anthropic-version", "2023-06-01"), ("x-api-key", "any")]
    print(f"fake upstream: {fake.url}\nrawproxy:      {proxy_url}\n")
    _, events = await post_stream(proxy_url + "/v1/messages", orjson.dumps(request), anthropic_headers)
    print("What an Anthropic client received through rawproxy:")
    for name, data in events:
        print(f"  {name or 'message'}: {data.decode()[:110]}")
    direct_body = orjson.dumps(
        {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    direct, proxied = [], []
    for _ in range(5):
        direct.append((await post_stream(fake.url + "/chat/completions", direct_body, []))[0])
        proxied.append(
            (await post_stream(proxy_url + "/v1/messages", orjson.dumps(request), anthropic_headers))[0]
        )
    best_direct, best_proxied = min(direct) * 1000, min(proxied) * 1000
    print(f"\ntime to first token (best of 5, fake upstream TTFT {SCRIPT.ttft * 1000:.0f} ms):")
    print(
        f"  direct:        {best_direct:7.2f} ms\n  through proxy: {best_proxied:7.2f} ms\n  overhead:      {best_proxied - best_direct:7.2f} ms"
    )
    stop.set()
    await server
    await fake.close()
    kinds = [name for name, _ in events]
    ok = (
        kinds[0] == "message_start"
        and kinds[-1] == "message_stop"
        and any(b'"tool_use"' in d for _, d in events)
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
