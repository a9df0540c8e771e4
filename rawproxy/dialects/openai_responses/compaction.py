"""Codex's remote compaction, on any upstream (CX-02, issue 17).

Codex 0.171 with the built-in provider compacts a long session remotely: a streamed ``POST /responses``
whose last input item is ``{"type": "compaction_trigger"}`` (its ``x-codex-turn-metadata`` says
``request_kind: "compaction"``), answered with exactly one output item ``{"type": "compaction",
"encrypted_content": ...}`` (any other item fails the turn: "expected exactly one compaction output
item"); later inputs carry that item back verbatim, after the messages Codex kept. There is no
``/responses/compact`` in 0.171 (tests/fixtures/research/codex_2026.md, observed with 0.171.0;
openai/codex#22809).

rawproxy answers it with the upstream model itself: the conversation plus one instruction of ours to
summarise it (no tool call, thinking off, at most :data:`SUMMARY_MAX_TOKENS`), and the summary goes back
in the item's ``encrypted_content`` as ``rpcompact1.<base64url of zlib'd JSON>``. When the item returns,
it becomes a user message with the summary. The content is not HMAC-sealed like the reasoning state
(carrier.py): it holds nothing but conversation text the client could send as a message itself, and it
must outlive a restart of the proxy and a change of key (a session is resumed days later). An item that
does not decode is a 400 naming it, never a silent drop.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any, Final

import orjson

from ... import ir
from ...errors import ClientError
from ...ids import random_hex

__all__ = [
    "COMPACT_ENDPOINT_MARK",
    "CONTENT_PREFIX",
    "SUMMARY_MAX_TOKENS",
    "compaction_item",
    "for_compaction",
    "summary_message",
]

CONTENT_PREFIX: Final = "rpcompact1."
# Set by the endpoint ``POST /v1/responses/compact`` in the body it hands on: the answer is then a
# ``response.compaction`` object (the API reference's BetaCompactedResponse), not a ``response``.
COMPACT_ENDPOINT_MARK: Final = "_rawproxy_compact_endpoint"
SUMMARY_MAX_TOKENS: Final = 8192  # the summary's cap: a compaction must shrink the conversation
_MAX_SUMMARY_BYTES: Final = 1024 * 1024  # what an item may expand to (a zip bomb is a 400)

INSTRUCTION: Final = (
    "The conversation above is about to be compacted: everything before this message will be replaced by "
    "what you write now. Write a summary that lets you continue the work without the earlier messages: "
    "the user's goal and constraints, what has been done (files read or changed, commands run and what "
    "they showed), decisions made and why, what is left to do and the next step, and any exact names, "
    "paths, values or errors that will matter. Write only the summary, in plain text; call no tool."
)
SUMMARY_FRAME: Final = "Summary of the earlier part of this conversation, written when it was compacted:\n\n"


def for_compaction(req: ir.Request) -> None:
    """Turn a request whose input ended in ``compaction_trigger`` into the summary request: the
    instruction as the last user turn, no tool call, no thinking, the summary's cap."""
    req.messages.append(ir.Message(role="user", content=[ir.TextBlock(text=INSTRUCTION)]))
    if req.tools:  # kept declared (a history of tool calls needs them), but none is to be called
        req.tool_choice = ir.ToolChoice(type="none")
    req.thinking = None
    req.response_schema = None
    req.max_tokens = min(req.max_tokens or SUMMARY_MAX_TOKENS, SUMMARY_MAX_TOKENS)
    req.echo["compaction"] = True


def compaction_item(summary: str) -> dict[str, Any]:
    """The one output item of a compaction: the summary, carried in ``encrypted_content``."""
    packed = zlib.compress(orjson.dumps({"summary": summary}))
    content = CONTENT_PREFIX + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")
    return {"id": "cmp_" + random_hex(48), "type": "compaction", "encrypted_content": content}


def summary_message(item: dict[str, Any], where: str) -> ir.Message:
    """A ``compaction`` input item -> the user message that stands for the turns it replaced."""
    content = item.get("encrypted_content")
    if not isinstance(content, str) or not content.startswith(CONTENT_PREFIX):
        raise ClientError(
            f"{where}: a compaction item this proxy did not write (its content is not rawproxy's)"
        )
    encoded = content[len(CONTENT_PREFIX) :]
    try:
        unzip = zlib.decompressobj()
        raw = unzip.decompress(
            base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)), _MAX_SUMMARY_BYTES
        )
        data = orjson.loads(raw) if not unzip.unconsumed_tail else None
    except (binascii.Error, ValueError, zlib.error, orjson.JSONDecodeError):
        data = None
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, str):
        raise ClientError(
            f"{where}.encrypted_content: a compaction item that does not decode (altered or cut)"
        )
    return ir.Message(role="user", content=[ir.TextBlock(text=SUMMARY_FRAME + summary)])
