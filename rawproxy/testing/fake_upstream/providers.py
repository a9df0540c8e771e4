"""The fake upstream's provider modes (issue 16, CONFORMANCE.md RS): how each OpenAI-compatible provider
shapes the reasoning state it sends, what the fake remembers having sent, and what comes back.

A mode (``UpstreamState.provider``) reshapes a script's reasoning the way that provider sends it
(``shaped``); the fake then remembers, per first tool-call id of each answer, the state that provider
wants back on that assistant turn (``remember``), and on every later request compares what came back
(``compare``): each difference is written to ``UpstreamState.lost``, so that a test can say "the
upstream received exactly the state it sent". The refusals of the providers that refuse a turn without
its state, in their own words, are in :mod:`.openai_rules` (DeepSeek, Kimi, Gemini) and here
(OpenRouter in front of a Gemini model). Sources: ``tests/fixtures/research/reasoning_state_2026.md``.

- ``deepseek``, ``kimi``: ``reasoning_content`` back on the tool turn (the text exactly).
- ``gemini``: each call's ``extra_content`` back on that call.
- ``openrouter``: ``reasoning`` and ``reasoning_details`` (a ``reasoning.text`` entry with its
  signature, and with tool calls a ``reasoning.encrypted`` one, as for Gemini models) in the answer; the
  array back unchanged (openrouter.ai/docs, "Preserving reasoning blocks"). A Gemini model behind it
  refuses a tool turn without it, wrapped in ``metadata.raw`` (LibreChat-AI/agents#37).
- ``minimax``: with ``reasoning_split`` the reasoning as ``reasoning_details`` (back unchanged), without
  it inside ``<think>`` tags in the content (platform.minimax.io, OpenAI-compatible API). No refusal is
  known: MiniMax degrades silently, so only ``lost`` tells.
- ``vllm``: the reasoning in ``reasoning`` (vllm-project/vllm#27752), read back from ``reasoning``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from .script import Script

__all__ = ["MODES", "OPENROUTER_GEMINI_RAW", "compare", "openrouter_refusal", "remember", "shaped"]

MODES = ("deepseek", "kimi", "gemini", "openrouter", "minimax", "vllm")

# OpenRouter's answer when a Gemini model's reasoning details did not come back (LibreChat-AI/agents#37,
# massgen/MassGen#624): the provider's own 400 rides in metadata.raw.
OPENROUTER_GEMINI_RAW = (
    "Gemini models require OpenRouter reasoning details to be preserved in each request. Please refer to "
    "our docs: https://openrouter.ai/docs/guides/best-practices/reasoning-tokens#preserving-reasoning-blocks. "
    'Upstream error: {\n  "error": {\n    "code": 400,\n    "message": "Function call is missing a '
    'thought_signature in functionCall parts.",\n    "status": "INVALID_ARGUMENT"\n  }\n}\n'
)


def shaped(script: Script, provider: str | None, body: dict[str, Any]) -> Script:
    """``script`` with its reasoning in the fields ``provider`` sends it in."""
    if not script.reasoning or script.reasoning_details is not None:
        return script
    if provider == "openrouter":
        details: list[dict[str, Any]] = [
            {
                "type": "reasoning.text",
                "text": script.reasoning,
                "signature": "or-sig-" + str(len(script.reasoning)),
                "format": "anthropic-claude-v1",
                "index": 0,
            }
        ]
        if script.tool_calls:
            details.append(
                {
                    "type": "reasoning.encrypted",
                    "data": "ZmFrZS10aG91Z2h0",
                    "format": "google-gemini-v1",
                    "index": 1,
                }
            )
        return dataclasses.replace(script, reasoning_field="reasoning", reasoning_details=details)
    if provider == "minimax":
        if body.get("reasoning_split") is True:
            entry = {"type": "reasoning.text", "id": "reasoning-text-1", "format": "MiniMax-response-v1"}
            return dataclasses.replace(
                script, reasoning="", reasoning_details=[{**entry, "text": script.reasoning}]
            )
        return dataclasses.replace(
            script, reasoning="", text=f"<think>\n{script.reasoning}\n</think>\n\n{script.text}"
        )
    if provider == "vllm":
        return dataclasses.replace(script, reasoning_field="reasoning")
    return script


def wanted_back(script: Script, provider: str | None, ids: list[str]) -> dict[str, Any]:
    """What ``provider`` wants back on the assistant turn that answered ``script`` with calls ``ids``."""
    wanted: dict[str, Any] = {}
    if provider in ("deepseek", "kimi", "vllm") and script.reasoning:
        wanted[script.reasoning_field] = script.reasoning
    if provider in ("openrouter", "minimax") and script.reasoning_details:
        wanted["reasoning_details"] = script.reasoning_details
    signed = {
        i: call.extra_content for i, call in zip(ids, script.tool_calls, strict=True) if call.extra_content
    }
    if signed:  # by call id: each call's own extra_content
        wanted["tool_calls"] = signed
    return wanted


def remember(issued: dict[str, dict[str, Any]], script: Script, provider: str | None, ids: list[str]) -> None:
    """Keep what this answer's tool turn must bring back, under its first call's id."""
    if provider in MODES and ids:
        issued[ids[0]] = orjson.loads(orjson.dumps(wanted_back(script, provider, ids)))  # a deep copy


def compare(issued: dict[str, dict[str, Any]], body: dict[str, Any]) -> list[str]:
    """Every difference between what was issued and what came back, one line each: ``messages[2].
    reasoning_details: missing`` or ``... changed``."""
    lost: list[str] = []
    for index, message in enumerate(body.get("messages") or ()):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            continue
        wanted = issued.get(str((calls[0] or {}).get("id")))
        if wanted is None:
            continue
        by_id = {str(c.get("id")): c for c in calls if isinstance(c, dict)}
        pairs = [(f".{key}", value, message.get(key)) for key, value in wanted.items() if key != "tool_calls"]
        pairs += [
            (f".tool_calls[{call_id}].extra_content", extra, (by_id.get(call_id) or {}).get("extra_content"))
            for call_id, extra in wanted.get("tool_calls", {}).items()
        ]
        for where, value, came in pairs:
            if came != value:
                lost.append(f"messages[{index}]{where}: {'missing' if came is None else 'changed'}")
    return lost


def openrouter_refusal(body: dict[str, Any], lost: list[str]) -> dict[str, Any] | None:
    """OpenRouter's 400 for a Gemini model whose reasoning details did not come back, else None."""
    model = str(body.get("model") or "")
    if "gemini" not in model or not any(".reasoning_details" in line for line in lost):
        return None
    metadata = {"raw": OPENROUTER_GEMINI_RAW, "provider_name": "Google AI Studio"}
    return {"error": {"message": "Provider returned error", "code": 400, "metadata": metadata}}
