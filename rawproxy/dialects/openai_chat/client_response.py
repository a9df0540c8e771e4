"""OpenAI Chat Completions, the client role, answers: IR -> a whole ``chat.completion``.

Answers repeat the client's model name; usage counts cached prompt tokens in ``prompt_tokens`` and apart
in ``prompt_tokens_details.cached_tokens`` (O2A-N05). The error shape is the Responses API's too
(``dialects._common.build_openai_error``).
"""

from __future__ import annotations

import time
from typing import Any, Final

import orjson

from ... import ir
from ...ids import random_hex


def created_now() -> int:
    return int(time.time())


# O2A-N04: Anthropic stop reasons -> OpenAI finish reasons.
FINISH_REASONS: Final = {
    ir.StopReason.END_TURN: "stop",
    ir.StopReason.STOP_SEQUENCE: "stop",
    ir.StopReason.MAX_TOKENS: "length",
    ir.StopReason.TOOL_USE: "tool_calls",
    ir.StopReason.REFUSAL: "content_filter",
    ir.StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED: "length",
    ir.StopReason.PAUSE_TURN: "stop",
    ir.StopReason.COMPACTION: "length",
}


def usage_dict(usage: ir.Usage) -> dict[str, Any]:
    """O2A-N05: prompt tokens include the cached ones, which are also reported apart."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
    }


def completion_id(source_id: str | None) -> str:
    return "chatcmpl-" + (source_id.removeprefix("msg_") if source_id else random_hex(24))


def thinking_state(block: ir.ThinkingBlock | ir.RedactedThinkingBlock) -> dict[str, Any]:
    """One Anthropic thinking block as the first tool call's sealed id carries it (see sealed_call_id)."""
    if isinstance(block, ir.RedactedThinkingBlock):
        return {"r": block.data}
    return {"t": block.thinking, "s": block.signature}


def sealed_call_id(call_id: str, thinking: list[dict[str, Any]], ctx: ir.Context) -> str:
    """The id a Chat client sees for a turn's first tool call when thinking blocks came before it.

    Anthropic refuses the next tool turn unless that assistant turn starts with its thinking blocks,
    byte for byte ("When `thinking` is enabled, a final `assistant` message must start with a thinking
    block", OpenRouterTeam/ai-sdk-provider#162, n8n-io/n8n#22550), and a Chat Completions client sends
    back nothing of them: ``reasoning_content`` is not part of the protocol's request, and SDKs drop it.
    The tool call's id is the one field every client returns, so the blocks ride in it, sealed for this
    upstream and model (RS-07, ``Carrier.seal_id``); the Anthropic request builder puts them back."""
    if not thinking or ctx.carrier is None:
        return call_id
    return ctx.carrier.seal_id(call_id, {"a": thinking}) or call_id


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    texts: list[str] = []
    thoughts: list[str] = []
    thinking: list[dict[str, Any]] = []  # the blocks the first tool call's id carries
    calls: list[dict[str, Any]] = []
    finish = FINISH_REASONS.get(resp.stop_reason, "stop")
    json_answer = False
    for block in resp.content:
        if isinstance(block, ir.TextBlock):
            texts.append(block.text)
        elif isinstance(block, ir.ThinkingBlock | ir.RedactedThinkingBlock):
            if isinstance(block, ir.ThinkingBlock):
                thoughts.append(block.thinking)  # O2A-N03; redacted thinking is not shown
            thinking.append(thinking_state(block))
        elif isinstance(block, ir.ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            if ctx.json_tool is not None and block.name == ctx.json_tool:
                texts.append(arguments)  # response_format json_schema: the answer is the tool input
                json_answer = True
            else:
                call_id = block.id if calls else sealed_call_id(block.id, thinking, ctx)
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": block.name, "arguments": arguments},
                    }
                )
    if json_answer and not calls:
        finish = "stop"  # the forced answer tool is the answer, not a call to make
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return orjson.dumps(
        {
            "id": completion_id(resp.id),
            "object": "chat.completion",
            "created": created_now(),
            "model": ctx.client_model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_dict(resp.usage),
        }
    )
