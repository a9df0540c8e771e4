"""A fast, local, script-aware estimate of input tokens (decision 9). Pure.

Used for ``/v1/messages/count_tokens`` when the upstream is not Anthropic, and for the ``input_tokens``
shown in ``message_start`` before the upstream reports the real figure. Claude Code sizes its context
and auto-compaction from these numbers, so the estimate errs on the high side rather than the low one.

Rules of thumb, measured on tokenizers of the families we front: CJK characters (Han, Kana, Hangul)
cost about one token each; other text about four characters a token; an image a fixed 1600 tokens
(Anthropic's cost for a ~1.15 megapixel image, the size Claude Code sends); a base64 PDF about one token
per 3 bytes of its decoded size is far too many, so pages are guessed from the size at ~50 KB a page and
charged 1500 tokens each.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from . import ir

__all__ = ["estimate_request_tokens", "estimate_text_tokens"]

IMAGE_TOKENS = 1600
PDF_PAGE_TOKENS = 1500
PDF_PAGE_BYTES = 50_000
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 10

_CJK = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff00-\uffef]")


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    if text.isascii():
        return (len(text) + 3) // 4
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def _block_tokens(block: ir.Block) -> int:
    if isinstance(block, ir.TextBlock):
        return estimate_text_tokens(block.text)
    if isinstance(block, ir.ImageBlock):
        return IMAGE_TOKENS
    if isinstance(block, ir.DocumentBlock):
        if block.text is not None:
            return estimate_text_tokens(block.text)
        if block.data is not None:
            pages = max(1, (len(block.data) * 3 // 4) // PDF_PAGE_BYTES)
            return pages * PDF_PAGE_TOKENS
        return IMAGE_TOKENS
    if isinstance(block, ir.ToolUseBlock):
        return estimate_text_tokens(block.name) + _json_tokens(block.input)
    if isinstance(block, ir.ToolResultBlock):
        return MESSAGE_OVERHEAD + sum(_block_tokens(b) for b in block.content)
    if isinstance(block, ir.ThinkingBlock):
        return estimate_text_tokens(block.thinking)
    if isinstance(block, ir.OtherBlock):
        return _json_tokens(block.raw)
    return 0


def _json_tokens(value: Any) -> int:
    return estimate_text_tokens(orjson.dumps(value).decode())


def estimate_request_tokens(req: ir.Request) -> int:
    """Estimated input tokens of a whole request: system, messages and tool definitions."""
    total = sum(estimate_text_tokens(b.text) for b in req.system)
    for message in req.messages:
        total += MESSAGE_OVERHEAD
        for block in message.content:
            total += _block_tokens(block)
    for tool in req.tools:
        total += TOOL_OVERHEAD + estimate_text_tokens(tool.name)
        total += estimate_text_tokens(tool.description or "")
        total += _json_tokens(tool.input_schema if tool.server_type is None else (tool.raw or {}))
    return total
