"""What the sealed carrier costs (issue 16): a 100-event streamed answer with reasoning, translated for an
Anthropic client from an OpenAI-compatible upstream, with the carrier and without, in process.

The envelope is made once per thinking block, when the block ends (after the first token: time to first
token cannot change), and opened once per thinking block of the next request. This measures both, and
the first-token event's own cost, as medians over many runs; interleaved, so machine drift hits both arms.

    python bench/carrier_cost.py [--runs 2000] [--details]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import orjson

from rawproxy import ir
from rawproxy.carrier import Carrier
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.translate import StreamTranslator, prepare_request

CARRIER = Carrier(b"k" * 32, "deepseek", "deepseek-reasoner")
EVENTS = 100  # 50 reasoning pieces, then 50 text pieces


def _stream(details: bool = False) -> list[bytes]:
    def chunk(delta: dict[str, Any]) -> bytes:
        data = {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": delta}],
        }
        return b"data: " + orjson.dumps(data) + b"\n\n"

    def thought(i: int) -> dict[str, Any]:
        if not details:  # DeepSeek's field
            return {"reasoning_content": f"thought {i} "}
        part = {
            "type": "reasoning.text",
            "text": f"thought {i} ",
            "format": "anthropic-claude-v1",
            "index": 0,
        }
        return {"reasoning": f"thought {i} ", "reasoning_details": [part]}  # OpenRouter's (RS-04)

    pieces = [chunk(thought(i)) for i in range(EVENTS // 2)]
    pieces += [chunk({"content": f"word {i} "}) for i in range(EVENTS // 2)]
    done = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    return [*pieces, b"data: " + orjson.dumps(done) + b"\n\n", b"data: [DONE]\n\n"]


def _context(carrier: Carrier | None) -> ir.Context:
    return ir.Context(
        client_model="claude-sonnet-4-6", upstream_model="deepseek-reasoner", thinking=True, carrier=carrier
    )


def translate(chunks: list[bytes], carrier: Carrier | None) -> tuple[float, float, bytes]:
    """(seconds to the first token, seconds for the whole stream, the client's bytes)."""
    translator = StreamTranslator(anthropic_messages, openai_chat, _context(carrier))
    start = time.perf_counter()
    out = [translator.start(), translator.feed(chunks[0])]
    first = time.perf_counter() - start
    out += [translator.feed(c) for c in chunks[1:]]
    out.append(translator.close())
    return first, time.perf_counter() - start, b"".join(out)


def replay_cost(body: bytes, carrier: Carrier | None) -> float:
    """Seconds to build the next request, whose assistant turn carries the thinking block back."""
    request = anthropic_messages.parse_request(body)
    start = time.perf_counter()
    prepare_request(
        anthropic_messages,
        openai_chat,
        request,
        upstream_model="deepseek-reasoner",
        profile=_context(None).profile,
        max_output_tokens=None,
        carrier=carrier,
    )
    return time.perf_counter() - start


def _next_request(client_bytes: bytes) -> bytes:
    thinking, signature = "", ""
    for line in client_bytes.split(b"\n"):
        if line.startswith(b"data: "):
            delta = orjson.loads(line[6:]).get("delta") or {}
            thinking += delta.get("thinking", "")
            signature += delta.get("signature", "")
    assistant = [
        {"type": "thinking", "thinking": thinking, "signature": signature},
        {"type": "text", "text": "ok"},
    ]
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": "more"},
    ]
    return orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": messages})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument(
        "--details", action="store_true", help="OpenRouter's reasoning_details beside reasoning (RS-04)"
    )
    args = parser.parse_args()
    runs = args.runs
    chunks = _stream(args.details)
    samples: dict[str, list[float]] = {
        k: [] for k in ("first0", "first1", "whole0", "whole1", "next0", "next1")
    }
    sealed_bytes = translate(chunks, CARRIER)[2]
    assert b"signature_delta" in sealed_bytes, "the carrier made no envelope"
    body = _next_request(sealed_bytes)
    for _ in range(runs):
        for arm, carrier in (("0", None), ("1", CARRIER)):
            first, whole, _ = translate(chunks, carrier)
            samples["first" + arm].append(first)
            samples["whole" + arm].append(whole)
            samples["next" + arm].append(replay_cost(body, carrier))

    def us(key: str) -> float:
        return statistics.median(samples[key]) * 1e6

    print(
        f"{EVENTS}-event stream with reasoning{' (reasoning_details)' if args.details else ''}, {runs} runs"
        " each, medians in µs (without / with the carrier):"
    )
    print(
        f"  first token event        {us('first0'):8.1f} / {us('first1'):8.1f}   ({us('first1') - us('first0'):+.1f})"
    )
    print(
        f"  whole stream             {us('whole0'):8.1f} / {us('whole1'):8.1f}   ({us('whole1') - us('whole0'):+.1f})"
    )
    print(
        f"  next request, built      {us('next0'):8.1f} / {us('next1'):8.1f}   ({us('next1') - us('next0'):+.1f})"
    )


if __name__ == "__main__":
    main()
