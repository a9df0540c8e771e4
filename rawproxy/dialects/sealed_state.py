"""A passthrough after a model switch: what rawproxy sealed for another upstream leaves the body (RS-07).

A client that talked to a translated upstream and then switched to a model of its own protocol (Claude
Code's ``/model`` from a DeepSeek route to Claude) sends back what the translation gave it: thinking
blocks signed with rawproxy's envelope (``rp1.``), which Anthropic refuses as an invalid signature, and
tool-call ids that carry state (``toolu_rp1…``), longer than some providers take. A passthrough relays
bytes untouched and never searches them (a 100 KB body costs tens of microseconds to search), so these
are taken out only after the upstream refused the body with a 400 and the body holds the marker
(exchange/passthrough.py asks once more): envelope-signed thinking is dropped (no upstream of this
protocol can use it), sealed ids become the same short stand-in for the call and its result
(``carrier.foreign_call_id``).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from ..carrier import ID_PREFIX, foreign_call_id, is_sealed

__all__ = ["MARKER", "without_sealed_state"]

log = logging.getLogger("rawproxy")

MARKER: Final = b"rp1"  # in every envelope (rp1.) and every sealed id (toolu_rp1)


def _stand_in(value: Any) -> Any:
    return foreign_call_id(value) if isinstance(value, str) and value.startswith(ID_PREFIX) else value


def _anthropic(messages: list[Any]) -> tuple[bool, int | None]:
    """(anything changed, the index of the last turn that lost its thinking, if any)."""
    changed = False
    lost: int | None = None
    kept: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            kept.append(message)
            continue
        blocks = []
        for block in content:
            if not isinstance(block, dict):
                blocks.append(block)
                continue
            if block.get("type") == "thinking" and is_sealed(block.get("signature")):
                changed, lost = True, len(kept)
                continue
            for key in ("id", "tool_use_id"):
                if key in block and (new := _stand_in(block[key])) != block[key]:
                    block[key], changed = new, True
            blocks.append(block)
        if blocks or not content:
            kept.append({**message, "content": blocks})
        # a turn that held nothing but such thinking is left out: Anthropic refuses empty content
    messages[:] = kept
    return changed, lost


def _openai(messages: list[Any]) -> bool:
    changed = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        if (
            "tool_call_id" in message
            and (new := _stand_in(message["tool_call_id"])) != message["tool_call_id"]
        ):
            message["tool_call_id"], changed = new, True
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and "id" in call and (new := _stand_in(call["id"])) != call["id"]:
                call["id"], changed = new, True
    return changed


def without_sealed_state(data: dict[str, Any], dialect: str) -> bool:
    """Take rawproxy's sealed state out of a passthrough body, in place; True when anything changed."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return False
    if dialect != "anthropic_messages":
        return _openai(messages)
    changed, lost = _anthropic(messages)
    thinking = data.get("thinking")
    on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    if on and lost is not None and lost == _last_tool_round(messages):
        # That turn can no longer start with its thinking, which Anthropic requires of the last tool
        # round with thinking on; its own advice: "To avoid this requirement, disable `thinking`".
        del data["thinking"]
        log.info("the last tool round's thinking was another upstream's: this turn goes without thinking")
    return changed


def _last_tool_round(messages: list[Any]) -> int | None:
    """The index of the assistant turn the last message's tool results answer, if it ends so."""
    last = messages[-1] if messages else None
    content = last.get("content") if isinstance(last, dict) else None
    if not isinstance(content, list) or not any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    ):
        return None
    return next((i for i in range(len(messages) - 2, -1, -1) if messages[i].get("role") == "assistant"), None)
