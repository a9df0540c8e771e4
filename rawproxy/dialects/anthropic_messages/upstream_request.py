"""Anthropic Messages, the upstream role, requests: IR -> a request for an Anthropic upstream.

Rules an Anthropic upstream enforces that an OpenAI client never had to know (CONFORMANCE.md O2A-R*):
system messages live outside `messages` (hoisted, O2A-R01); the first message is a user message
(O2A-R03); roles alternate (merged, O2A-R04); text blocks are never empty (O2A-R06); every tool_use is
answered by a tool_result in the very next user message (repaired as decision 4 says, O2A-R15, with the
rule both upstream dialects share: ``_common.pair_tool_results``); tool ids match ^[a-zA-Z0-9_-]+$
(reversibly encoded, O2A-R12); with thinking on, temperature, top_k and top_p must stay unset and
tool_choice cannot force a tool (O2A-R20); max_tokens exceeds the budget.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from ... import ir
from ...carrier import ID_PREFIX, foreign_call_id, is_sealed
from ...models import anthropic_effort, family_of
from ...toolcalls import client_tool_id
from .._common import (
    JSON_TOOL_NAME,
    MISSING_RESULT_TEXT,
    json_answer_tool,
    orphan_result_text,
    pair_tool_results,
)

log = logging.getLogger("rawproxy")

UPSTREAM_PATH: Final = "/v1/messages"
FIRST_USER_TEXT: Final = "(continue)"
MAX_CACHE_BREAKPOINTS: Final = 4
THINKING_MIN_BUDGET: Final = 1024
_SAMPLING_LOGGED: set[str] = set()  # models whose dropped sampling parameters were logged (bounded)
_PAIR_LOGGED: set[str] = set()  # models whose dropped top_p (beside a temperature) was logged


def _image_dict(block: ir.ImageBlock) -> dict[str, Any]:
    if block.url is not None:
        return {"type": "image", "source": {"type": "url", "url": block.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": block.media_type, "data": block.data}}


def _document_dict(block: ir.DocumentBlock) -> dict[str, Any]:
    if block.text is not None:
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": block.text}
    elif block.url is not None:
        source = {"type": "url", "url": block.url}
    else:
        source = {"type": "base64", "media_type": block.media_type or "application/pdf", "data": block.data}
    doc: dict[str, Any] = {"type": "document", "source": source}
    if block.title:
        doc["title"] = block.title
    return doc


def _text_dict(block: ir.TextBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control:
        out["cache_control"] = block.cache_control
    return out


def _result_dict(block: ir.ToolResultBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": client_tool_id(block.tool_use_id)}
    parts: list[dict[str, Any]] = []
    for part in block.content:
        if isinstance(part, ir.TextBlock):
            if part.text.strip():
                parts.append(_text_dict(part))
        elif isinstance(part, ir.ImageBlock):
            parts.append(_image_dict(part))
        else:
            parts.append(_document_dict(part))
    if parts:  # an empty result has no content at all (O2A-R14)
        out["content"] = parts
    if block.is_error:
        out["is_error"] = True
    return out


def _unseal_calls(req: ir.Request, ctx: ir.Context) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Sealed tool-call ids a Chat client sent back (``client_response.sealed_call_id``): each one's
    original id and the thinking blocks it carries, for this upstream and model only (RS-07)."""
    carrier = ctx.carrier
    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if carrier is None:
        return found
    for message in req.messages:
        for block in message.content:
            if isinstance(block, ir.ToolUseBlock) and block.id.startswith(ID_PREFIX):
                opened = carrier.open_id(block.id)
                if opened is not None:
                    found[block.id] = (opened[0], _thinking_blocks(opened[1].get("a")))
                else:  # another upstream's or model's envelope: a short stand-in, nothing restored
                    found[block.id] = (foreign_call_id(block.id), [])
    return found


def _thinking_blocks(carried: Any) -> list[dict[str, Any]]:
    """The Anthropic blocks a sealed id carried, as they came (only the two kinds, only their fields)."""
    blocks: list[dict[str, Any]] = []
    for entry in carried if isinstance(carried, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("r"), str):
            blocks.append({"type": "redacted_thinking", "data": entry["r"]})
        elif isinstance(entry, dict) and isinstance(entry.get("t"), str) and isinstance(entry.get("s"), str):
            blocks.append({"type": "thinking", "thinking": entry["t"], "signature": entry["s"]})
    return blocks


def _restore_thinking(turn: dict[str, Any], message: ir.Message, sealed: dict[str, Any]) -> None:
    """An assistant turn whose first call carried its thinking blocks starts with them again, unless the
    client sent thinking of its own (an Anthropic-signed block is then already there)."""
    first = next((b for b in message.content if isinstance(b, ir.ToolUseBlock)), None)
    if first is None or first.id not in sealed:
        return
    if any(b.get("type") in ("thinking", "redacted_thinking") for b in turn["content"]):
        return
    turn["content"][:0] = sealed[first.id][1]


def _upstream_block(block: ir.Block) -> dict[str, Any] | None:
    if isinstance(block, ir.TextBlock):
        return _text_dict(block) if block.text.strip() else None  # O2A-R06: never an empty text block
    if isinstance(block, ir.ImageBlock):
        return _image_dict(block)
    if isinstance(block, ir.DocumentBlock):
        return _document_dict(block)
    if isinstance(block, ir.ToolUseBlock):
        return {"type": "tool_use", "id": client_tool_id(block.id), "name": block.name, "input": block.input}
    if isinstance(block, ir.ToolResultBlock):
        return _result_dict(block)
    if isinstance(block, ir.ThinkingBlock):
        # Only a block Anthropic signed can be replayed, and then byte for byte; unsigned reasoning
        # from an OpenAI-side history cannot be, nor one carrying another upstream's state (RS-07).
        return (
            {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
            if block.signature and not is_sealed(block.signature)
            else None
        )
    if isinstance(block, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    return block.raw


def _original_ids(blocks: list[dict[str, Any]], sealed: dict[str, tuple[str, Any]]) -> None:
    """Calls and results under the ids the upstream gave them, not the sealed ones the client saw."""
    for block in blocks:
        key = "id" if block.get("type") == "tool_use" else "tool_use_id"
        unsealed = sealed.get(block.get(key, ""))
        if unsealed is not None:
            block[key] = unsealed[0]


def _repair_tool_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decision 4: every tool_use answered in the next user message; no result without its call."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for message in messages:
        if message["role"] == "user":
            results = [(b["tool_use_id"], b) for b in message["content"] if b.get("type") == "tool_result"]
            others = [b for b in message["content"] if b.get("type") != "tool_result"]
            turn = pair_tool_results(pending, results)
            # Each orphan goes in front of what was there, so that the last one comes first.
            for call_id, orphan in turn.orphans:
                text = "\n".join(
                    p.get("text", "") for p in orphan.get("content", ()) if p.get("type") == "text"
                )
                others.insert(0, {"type": "text", "text": orphan_result_text(call_id, text).rstrip()})
            missing = [_missing_result(i) for i in turn.missing]
            message = {"role": "user", "content": missing + [b for _, b in turn.answered] + others}
        elif pending:
            out.append(_unanswered(pending))
        pending = (
            [b["id"] for b in message["content"] if b.get("type") == "tool_use"]
            if message["role"] == "assistant"
            else []
        )
        if message["content"]:
            out.append(message)
    if pending:
        out.append(_unanswered(pending))
    return out


def _unanswered(pending: list[str]) -> dict[str, Any]:
    """The user turn an assistant turn's calls get when no user turn follows it: all synthetic."""
    return {"role": "user", "content": [_missing_result(i) for i in pair_tool_results(pending, []).missing]}


def _missing_result(call_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": MISSING_RESULT_TEXT, "is_error": True}


def _merge_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive turns of one role become one turn (O2A-R04); the first turn is a user's (O2A-R03)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {"role": message["role"], "content": out[-1]["content"] + message["content"]}
        else:
            out.append(message)
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": FIRST_USER_TEXT}]})
    return out


def _add_cache_breakpoints(body: dict[str, Any]) -> None:
    """Decision 8: breakpoints on the system prompt, the tools and the last user turn, at most 4 in all."""

    def marked(blocks: list[dict[str, Any]]) -> int:
        return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)

    used = marked(body.get("system") or []) + marked(body.get("tools") or [])
    used += sum(marked(m["content"]) for m in body["messages"])
    targets: list[dict[str, Any]] = []
    if body.get("system"):
        targets.append(body["system"][-1])
    if body.get("tools"):
        targets.append(body["tools"][-1])
    users = [m for m in body["messages"] if m["role"] == "user" and m["content"]]
    if users:
        targets.append(users[-1]["content"][-1])
    for target in targets:
        if used >= MAX_CACHE_BREAKPOINTS:
            break
        if "cache_control" not in target and target.get("type") not in ("thinking", "redacted_thinking"):
            target["cache_control"] = {"type": "ephemeral"}
            used += 1


def _tool_dict(tool: ir.Tool) -> dict[str, Any]:
    if tool.server_type is not None:
        return tool.raw or {"type": tool.server_type, "name": tool.name}
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.input_schema
    return out


def _tool_choice_dict(choice: ir.ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": choice.type}
    if choice.type == "tool":
        out["name"] = choice.name
    if choice.disable_parallel and choice.type != "none":
        out["disable_parallel_tool_use"] = True
    return out


def build_request(req: ir.Request, ctx: ir.Context) -> tuple[str, bytes]:
    """IR -> (path, body) for an Anthropic Messages upstream."""
    system = [_text_dict(b) for b in req.system if b.text.strip()]
    sealed = _unseal_calls(req, ctx)
    turns: list[dict[str, Any]] = []
    for message in req.messages:
        if message.role == "system":  # hoisted: mid-conversation system turns are not portable (O2A-R01)
            system += [
                _text_dict(b) for b in message.content if isinstance(b, ir.TextBlock) and b.text.strip()
            ]
            continue
        blocks = [d for d in map(_upstream_block, message.content) if d is not None]
        turns.append({"role": message.role, "content": blocks})
        if sealed:
            _original_ids(blocks, sealed)
            if message.role == "assistant":
                _restore_thinking(turns[-1], message, sealed)
    messages = _merge_roles(_repair_tool_turns(_merge_roles(turns)))
    _strip_prefill(messages)
    max_tokens = req.max_tokens or ctx.max_output_tokens or 4096
    if ctx.max_output_tokens is not None:
        max_tokens = min(max_tokens, ctx.max_output_tokens)
    body: dict[str, Any] = {"model": ctx.upstream_model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    tools = [_tool_dict(t) for t in req.tools]
    choice = req.tool_choice
    output_config: dict[str, Any] = {}
    if req.response_schema is not None:
        if ctx.json_tool is not None:  # O2A-R23: no schema taken natively; a forced answer tool
            tools.append(_tool_dict(json_answer_tool(req.response_schema.schema)))
            choice = ir.ToolChoice(type="tool", name=ctx.json_tool)
        else:  # M26-07: structured outputs, which also work with thinking on
            output_config["format"] = {"type": "json_schema", "schema": req.response_schema.schema}
    used_tools = any(b.get("type") in ("tool_use", "tool_result") for m in messages for b in m["content"])
    if not tools and used_tools:
        # O2A-R18: Anthropic rejects tool blocks in a request that declares no tools. A placeholder that
        # cannot be chosen keeps the history intact.
        tools = [
            {
                "name": "history_placeholder",
                "description": "Not callable.",
                "input_schema": {"type": "object", "properties": {}},
            }
        ]
        choice = ir.ToolChoice(type="none")
    family = ctx.family or family_of(ctx.upstream_model)
    thinking = req.thinking if req.thinking is not None and req.thinking.enabled else None
    if (
        thinking is not None
        and family.adaptive
        and (thinking.effort or thinking.type == "adaptive" or not family.budgets)
    ):
        # M26-01/02: adaptive thinking at the asked effort (M26-04), shown as the client asked to see
        # it (M26-05: the adaptive-only models omit it unless told otherwise).
        body["thinking"] = {"type": "adaptive"}
        if not family.shows_thinking:
            body["thinking"]["display"] = "summarized"
    elif thinking is not None and family.budgets:
        fitted = _thinking_budget(thinking.budget_tokens, max_tokens, ctx.max_output_tokens)
        if fitted is None:
            log.warning("max_tokens %d leaves no room for a thinking budget; thinking is off", max_tokens)
            thinking = None
        else:
            budget, max_tokens = fitted
            body["max_tokens"] = max_tokens
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        thinking = None  # a model with neither way to think is not asked to
    effort = anthropic_effort(thinking.effort, family) if thinking is not None else None
    if effort is not None:
        output_config["effort"] = effort
    if output_config:
        body["output_config"] = output_config
    asked = thinking is not None
    if asked or family.thinks_unasked:
        if choice is not None and choice.type in ("any", "tool"):
            choice = ir.ToolChoice(type="auto", disable_parallel=choice.disable_parallel)  # O2A-R20
    elif family.sampling:
        if req.temperature is not None:
            body["temperature"] = min(max(req.temperature, 0.0), 1.0)  # O2A-R25: clamped to [0, 1]
        if req.top_p is not None and (req.temperature is None or family.sampling_pair):
            body["top_p"] = req.top_p
        elif req.top_p is not None:
            _said_once(
                _PAIR_LOGGED, ctx.upstream_model, "takes temperature or top_p, not both: top_p is not sent"
            )
        if req.top_k is not None:
            body["top_k"] = req.top_k
    elif req.temperature is not None or req.top_p is not None or req.top_k is not None:
        # M26-03: removed from the model
        _said_once(
            _SAMPLING_LOGGED, ctx.upstream_model, "takes no temperature, top_p or top_k: they are not sent"
        )
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = _tool_choice_dict(choice)
    stop = [s for s in req.stop if s.strip()]  # O2A-R21: whitespace-only sequences are rejected
    if stop:
        body["stop_sequences"] = stop
    if req.user_id:
        body["metadata"] = {"user_id": req.user_id}
    if req.stream:
        body["stream"] = True
    if ctx.auto_cache:
        _add_cache_breakpoints(body)
    return UPSTREAM_PATH, orjson.dumps(body)


def _said_once(said: set[str], model: str, what: str) -> None:
    """A parameter left out for what the model takes, logged once per model (a bounded memory)."""
    if model not in said and len(said) < 256:
        said.add(model)
        log.info("%s %s (said once per model)", model, what)


def _thinking_budget(asked: int | None, max_tokens: int, cap: int | None) -> tuple[int, int] | None:
    """(budget, max_tokens) with max_tokens above the budget (O2A-R19), never past the output cap;
    None when even the minimum budget does not fit under the cap."""
    budget = max(asked or THINKING_MIN_BUDGET, THINKING_MIN_BUDGET)
    if max_tokens > budget:
        return budget, max_tokens
    if cap is None:
        return budget, budget + THINKING_MIN_BUDGET
    if cap <= THINKING_MIN_BUDGET:
        return None
    return min(budget, cap - 1), cap


def _strip_prefill(messages: list[dict[str, Any]]) -> None:
    """A final assistant turn is a prefill (O2A-R05), and Anthropic rejects one that ends in white space
    ("final assistant content cannot end with trailing whitespace")."""
    if not messages or messages[-1]["role"] != "assistant":
        return
    content = messages[-1]["content"]
    if content and content[-1].get("type") == "text":
        text = content[-1]["text"].rstrip()
        if text:
            content[-1] = {**content[-1], "text": text}
        else:
            del content[-1]


def json_tool(req: ir.Request, ctx: ir.Context) -> str | None:
    """The forced tool a json_schema answer travels as, for a model that takes no ``output_config.format``
    (O2A-R23); None when it takes the schema itself (M26-07)."""
    if req.response_schema is None or (ctx.family or family_of(ctx.upstream_model)).json_schema:
        return None
    return JSON_TOOL_NAME


def tool_name_map(req: ir.Request) -> dict[str, str]:
    """Anthropic accepts every name an OpenAI client can send: nothing to rename."""
    return {}
