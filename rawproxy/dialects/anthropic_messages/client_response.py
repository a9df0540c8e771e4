"""Anthropic Messages, the client role, answers: IR -> a whole message, or an error, in Anthropic's shape.

Thinking blocks are shown with the signature they came with, or an empty one (decision 1); a message id
always has Anthropic's ``msg_`` prefix (A2O-N14).
"""

from __future__ import annotations

from typing import Any

import orjson

from ... import ir
from ...ids import random_hex


def usage_dict(usage: ir.Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
    }


def block_dict(block: ir.Block) -> dict[str, Any] | None:
    if isinstance(block, ir.TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ir.ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, ir.ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature or ""}
    if isinstance(block, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ir.OtherBlock):
        return block.raw
    return None


def message_id(source_id: str | None) -> str:
    """A message id with Anthropic's ``msg_`` prefix (A2O-N14)."""
    if source_id and source_id.startswith("msg_"):
        return source_id
    if source_id:
        return "msg_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in source_id)
    return "msg_" + random_hex(24)


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    content = [d for d in map(block_dict, resp.content) if d is not None]
    return orjson.dumps(
        {
            "id": message_id(resp.id),
            "type": "message",
            "role": "assistant",
            "model": ctx.client_model,
            "content": content,
            "stop_reason": resp.stop_reason.value,
            "stop_sequence": resp.stop_sequence,
            "usage": usage_dict(resp.usage),
        }
    )


def build_error(err: ir.ErrorInfo) -> tuple[int, bytes]:
    body = {"type": "error", "error": {"type": err.type.value, "message": err.message}}
    return err.status, orjson.dumps(body)
