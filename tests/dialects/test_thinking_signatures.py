"""X-08 for the OpenAI-upstream path: a thinking block made from upstream reasoning carries no invented
signature (empty, and no signature_delta), in streams and in whole responses. The other half of X-08,
replaying real signatures byte for byte, concerns Anthropic upstreams and is tested with that path."""

from __future__ import annotations

import orjson

from rawproxy import ir
from rawproxy.dialects import anthropic_messages, openai_chat
from rawproxy.profiles import PROFILES
from rawproxy.translate import StreamTranslator

CTX = dict(
    client_model="claude-sonnet-4-6",
    upstream_model="deepseek-reasoner",
    thinking=True,
    profile=PROFILES["deepseek"],
)


def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def test_x08_stream_thinking_block_has_no_invented_signature() -> None:
    translator = StreamTranslator(anthropic_messages, openai_chat, ir.Context(**CTX))  # type: ignore[arg-type]
    out = translator.feed(
        chunk({"reasoning_content": "Let me think."}) + chunk({"content": "Answer."}) + chunk({}, "stop")
    )
    out += translator.close()
    events = [orjson.loads(line[6:]) for line in out.split(b"\n") if line.startswith(b"data: ")]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert not any(e.get("delta", {}).get("type") == "signature_delta" for e in events)
    assert b"signature_delta" not in out


def test_x08_whole_response_thinking_block_has_empty_signature() -> None:
    body = orjson.dumps(
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Answer.", "reasoning_content": "Hmm."},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    ctx = ir.Context(**CTX)  # type: ignore[arg-type]
    message = orjson.loads(anthropic_messages.build_response(openai_chat.parse_response(body, ctx), ctx))
    assert message["content"][0] == {"type": "thinking", "thinking": "Hmm.", "signature": ""}
