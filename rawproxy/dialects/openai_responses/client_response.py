"""The Responses API, client role, answers: IR -> a whole ``response`` object, and the parts of one that
the event stream (``client_stream``) sends as well.

Output: reasoning items (the thinking as a summary, the signature as ``encrypted_content`` when the
client asked for it), one message item per run of text, function calls (a namespace's tool named back
as the client knows it), the calls of custom, shell, local shell and tool search tools as their own
items (``items.call_item``: CX-04, CX-05), web search calls; ``status`` ``incomplete`` when the output was cut by
``max_output_tokens``. Everything the request said that the answer echoes is in ``Context.echo``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ... import ir
from ...carrier import is_sealed
from ...errors import UpstreamProtocolError
from ...ids import random_hex
from .client_request import REDACTED_PREFIX, SIGNATURE_PREFIX
from .compaction import compaction_item
from .items import call_item, new_item_id


def usage_dict(usage: ir.Usage, reasoning_chars: int) -> dict[str, Any]:
    """OpenAI's semantics: input tokens include the cached ones, also reported apart. Reasoning tokens are
    the upstream's figure when it gave one, else estimated from the thinking text (a quarter of its
    characters), never more than the output tokens."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    reasoning = usage.reasoning_tokens or min((reasoning_chars + 3) // 4, usage.output_tokens)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,  # required by the SDK's ResponseUsage
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + usage.output_tokens,
    }


def status_of(stop: ir.StopReason | None) -> tuple[str, dict[str, str] | None]:
    if stop in (ir.StopReason.MAX_TOKENS, ir.StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop is ir.StopReason.REFUSAL:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    ctx: ir.Context, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    echo = ctx.echo
    return {
        "id": echo.get("id") or "resp_" + random_hex(48),
        "object": "response",
        "created_at": echo.get("created_at") or int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "model": ctx.client_model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning") or {"effort": None, "summary": None},
        "store": echo.get("store", True),
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p"),
        "truncation": echo.get("truncation", "disabled"),
        "usage": usage,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
        **extra,
    }


def function_call_item(
    block_id: str, call_id: str, name: str, arguments: str, status: str, ctx: ir.Context
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": block_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }
    named = ctx.echo.get("namespaces", {}).get(name)
    if named is not None:  # a namespace's tool, flattened for the upstream: named as the client knows it
        item["namespace"], item["name"] = named
    return item


def reasoning_item(item_id: str, thinking: str, encrypted: str | None, ctx: ir.Context) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": thinking}] if thinking else [],
    }
    if encrypted and ctx.echo.get("encrypted_reasoning"):
        # a redacted block and rawproxy's sealed upstream state (RS-07) say what they are already
        said = encrypted.startswith(REDACTED_PREFIX) or is_sealed(encrypted)
        item["encrypted_content"] = encrypted if said else SIGNATURE_PREFIX + encrypted
    return item


def message_item(item_id: str, texts: list[str], status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": t, "annotations": []} for t in texts],
    }


def output_items(resp: ir.Response, ctx: ir.Context) -> tuple[list[dict[str, Any]], int]:
    """The output items of a whole answer, and how many characters of thinking it had."""
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    thinking_chars = 0

    def flush() -> None:
        if texts:
            items.append(message_item("msg_" + random_hex(48), texts[:], "completed"))
            texts.clear()

    for block in resp.content:
        if isinstance(block, ir.TextBlock):
            texts.append(block.text)
            continue
        if isinstance(block, ir.ToolUseBlock) and ctx.json_tool is not None and block.name == ctx.json_tool:
            texts.append(orjson.dumps(block.input).decode())  # text.format json_schema: the answer
            continue
        flush()
        if isinstance(block, ir.ThinkingBlock):
            thinking_chars += len(block.thinking)
            items.append(reasoning_item("rs_" + random_hex(48), block.thinking, block.signature, ctx))
        elif isinstance(block, ir.RedactedThinkingBlock):
            items.append(reasoning_item("rs_" + random_hex(48), "", REDACTED_PREFIX + block.data, ctx))
        elif isinstance(block, ir.ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            kind = ctx.echo.get("tool_kinds", {}).get(block.name)
            if kind is not None:
                items.append(
                    call_item(kind, new_item_id(kind), block.id, block.name, arguments, "completed", ctx)
                )
                continue
            items.append(
                function_call_item("fc_" + random_hex(48), block.id, block.name, arguments, "completed", ctx)
            )
        elif isinstance(block, ir.OtherBlock) and block.type == "server_tool_use":
            query = (
                block.raw.get("input", {}).get("query") if isinstance(block.raw.get("input"), dict) else None
            )
            items.append(
                {
                    "id": "ws_" + random_hex(48),
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {"type": "search", "query": query},
                }
            )
    flush()
    return items, thinking_chars


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    if ctx.echo.get("compaction"):  # CX-02: exactly one compaction item, the summary inside
        summary = "".join(b.text for b in resp.content if isinstance(b, ir.TextBlock)).strip()
        if not summary:
            raise UpstreamProtocolError("the upstream wrote no summary for the compaction")
        items, thinking_chars = [compaction_item(summary)], 0
    else:
        items, thinking_chars = output_items(resp, ctx)
    status, details = status_of(resp.stop_reason)
    ctx.echo["output"] = items  # for the store of recent responses (previous_response_id)
    if ctx.echo.get("compact_endpoint"):  # POST /v1/responses/compact: a response.compaction object
        usage = usage_dict(resp.usage, 0)
        return orjson.dumps(
            {
                "id": ctx.echo.get("id") or "resp_" + random_hex(48),
                "object": "response.compaction",
                "created_at": ctx.echo.get("created_at") or int(time.time()),
                "output": items,
                "usage": usage,
            }
        )
    body = response_object(ctx, status, items, usage_dict(resp.usage, thinking_chars))
    body["incomplete_details"] = details
    return orjson.dumps(body)
