"""exchange.relay.Relay, the stream pump's callback side: the first token of a read goes out at once, the rest of
that read on the event loop's next turn (so that other streams' first tokens, read in the same turn, go
before it), and nothing is reordered or lost on the way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from rawproxy import ir
from rawproxy._types import AccessRecord
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.exchange.context import Streams
from rawproxy.exchange.relay import Relay
from rawproxy.translate import StreamTranslator


class Sink:
    """The ResponseSink calls a relay makes, recorded: what was written, and what is held for the end."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.held = b""
        self.started = True
        self.last_write = time.monotonic()
        self.backlogged = False

    def send_nowait(self, data: bytes) -> None:
        self.written.append(self.held + data)
        self.held = b""

    def hold(self, data: bytes) -> None:
        self.held += data

    def flush(self) -> None:
        if self.held:
            self.send_nowait(b"")

    def discard(self) -> bool:
        return False

    def texts(self) -> list[str]:
        """The text deltas written so far, in order."""
        out = []
        for frame in b"".join(self.written).split(b"\n\n"):
            for line in frame.split(b"\n"):
                if line.startswith(b"data: ") and b"text_delta" in line:
                    out.append(orjson.loads(line[6:])["delta"]["text"])
        return out


def chunk(finish: str | None = None, **delta: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c", "object": "chat.completion.chunk", "model": "gpt", "choices": [choice]}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def relay_and_sink() -> tuple[Relay, Sink]:
    ctx = ir.Context(client_model="claude-sonnet-4-6", upstream_model="gpt")
    translator = StreamTranslator(anthropic_messages, openai_chat, ctx)
    sink = Sink()
    record = AccessRecord(rid="1", method="POST", path="/v1/messages", received=time.perf_counter())
    relay = Relay(Streams(10.0), translator, sink, record, limit=3600.0, keepalive=False)  # type: ignore[arg-type]
    sink.hold(translator.start())
    return relay, sink


async def test_the_rest_of_a_read_waits_one_turn_after_its_first_token() -> None:
    relay, sink = await relay_and_sink()
    relay.on_body(chunk(role="assistant", content="") + chunk(content="A") + chunk(content="B"), False)
    assert sink.texts() == ["A"]  # the first token went out in the callback, the rest did not
    relay.on_body(chunk(content="C"), False)  # a read that arrives meanwhile waits behind that rest
    assert sink.texts() == ["A"]
    await asyncio.sleep(0)  # the loop's next turn
    assert sink.texts() == ["A", "B", "C"]
    relay.on_body(chunk(content="D"), False)  # from then on, each read is translated as it arrives
    assert sink.texts() == ["A", "B", "C", "D"]
    relay.release()


async def test_a_body_that_ends_before_the_next_turn_still_writes_its_rest_first() -> None:
    """run() takes what is queued before it closes the translator: the end never overtakes the rest."""
    relay, sink = await relay_and_sink()
    relay.on_body(chunk(content="A") + chunk(content="B") + chunk("stop") + b"data: [DONE]\n\n", True)
    relay._flush_queued()  # what run() does when the upstream body has ended
    assert sink.texts() == ["A"] and b'"text":"B"' in sink.held  # the last read is held for the end
    assert b"message_stop" in sink.held and relay.translator.close() == b""
    held = sink.held
    await asyncio.sleep(0)  # the queued callback finds nothing left: nothing translated twice
    assert sink.texts() == ["A"] and sink.held == held
    relay.release()


async def test_a_released_relay_writes_nothing_more() -> None:
    """The client went away (the exchange was cancelled): what was queued is dropped, not written."""
    relay, sink = await relay_and_sink()
    relay.on_body(chunk(content="A") + chunk(content="B"), False)
    relay.release()
    await asyncio.sleep(0)
    assert sink.texts() == ["A"]
