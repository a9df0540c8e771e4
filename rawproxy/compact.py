"""Opt-in prompt compression for small local models (issue 5 item 7). Pure.

Claude Code sends a system prompt of about 16 000 characters (the ``system`` blocks plus a role
``"system"`` message inside ``messages``). A small local model pays for every one of them in prefill time
and context, so this module can shrink it, in the spirit of the ``compact`` mode of empero's
claude-code-proxy, but deliberately more conservatively: that mode drops whole behavioural sections,
prepends a summary of its own and truncates to a budget. Here nothing is rewritten, summarised or
truncated, and no text is invented: every line of the result is a line of the input, at most with its
whitespace squeezed. Only system text is ever touched; user, assistant and tool messages and the tool
schemas are never looked at.

What :func:`compact_text` does, outside fenced code blocks (which are kept byte for byte, because the
indentation and blank lines of an example are part of what it shows):

* runs of spaces and tabs inside a line become one space (leading indentation, which nests Markdown
  lists, and the inside of inline `code` spans are kept); trailing whitespace is stripped;
* runs of blank lines become one blank line; blank lines at the start and the end go;
* whole lines of known Claude Code boilerplate are dropped (see ``_DROP_LINE_PREFIXES`` and the help and
  feedback rule below), and a Markdown heading whose section held nothing but dropped boilerplate goes too.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_THRESHOLD", "compact_anthropic_body", "compact_openai_body", "compact_text"]

DEFAULT_THRESHOLD = 8000  # characters of system text below which nothing is changed

# Boilerplate, matched as the start of a whole line once its indentation and list bullet are removed.
# Kept short on purpose: each one was seen in the recorded Claude Code 2.1.330 requests and none of
# them says anything about how to do the user's task or how to use a tool.
_DROP_LINE_PREFIXES: tuple[str, ...] = (
    # The attribution/billing line (its own first ``system`` block). Anthropic reads it server side; its
    # version suffix changes between builds and requests (cc_version=2.1.330.a8c, .572, ...), so keeping
    # it only defeats the prompt-prefix cache of llama.cpp or vLLM.
    "x-anthropic-billing-header:",
    # The three "# Environment" bullets of the main prompt: Anthropic's catalogue of model IDs, the
    # platforms Claude Code ships on, and the Anthropic-hosted fast mode behind ``/fast``.
    "The most recent Claude models are the Claude ",
    "Claude Code is available as a CLI in the terminal",
    "Fast mode for Claude Code ",
    # "You are powered by the model named Opus 5.5. ... knowledge cutoff is ...": behind this proxy the
    # model is not that one, so the line is false rather than merely long.
    "You are powered by the model ",
)

# Older Claude Code prompts (and their imitators) carry a help/feedback paragraph: a lead line, on its
# own or as a bullet, followed by "/help: ..." and "To give feedback, ... <GitHub issues URL>" items.
# It tells the model where Anthropic wants bug reports, not how to work; lead and items are dropped
# together, the items only right after the lead.
_HELP_LEAD = "If the user asks for help or wants to give feedback"
_HELP_ITEMS: tuple[str, ...] = ("/help:", "To give feedback,")

_FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})")
_HEADING = re.compile(r"(#{1,6})[ \t]")
_BULLET = re.compile(r"[-*+][ \t]+")
_INLINE_CODE = re.compile(r"(`[^`\n]*`)")  # split() keeps the spans at the odd indices
_BLANKS = re.compile(r"[ \t]+")


def _is_fence_close(line: str, fence: str) -> bool:
    # CommonMark: the same character, at least as many of them, and nothing else on the line.
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _squeeze(line: str) -> str:
    line = line.rstrip()
    body = line.lstrip(" \t")
    if "  " not in body and "\t" not in body:
        return line
    indent = line[: len(line) - len(body)]
    parts = _INLINE_CODE.split(body)
    parts[::2] = [_BLANKS.sub(" ", part) for part in parts[::2]]
    return indent + "".join(parts)


def _is_boilerplate(body: str) -> bool:
    return body.startswith(_DROP_LINE_PREFIXES)


def _drop_emptied_headings(lines: list[str | None], prose: list[bool]) -> None:
    # A dropped line is a hole (None). A heading whose section, up to the next heading of the same or a
    # higher level, holds only blank lines and at least one hole is now an empty title: it becomes a hole
    # as well. Bottom-up, so that a parent left empty by its dropped subsections goes in the same pass
    # (which keeps compact_text idempotent); a heading that was empty in the input is left alone.
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        match = _HEADING.match(line) if line is not None and prose[i] else None
        if match is None:
            continue
        level = len(match.group(1))
        had_hole = False
        empty = True
        for j in range(i + 1, len(lines)):
            other = lines[j]
            if other is None:
                had_hole = True
                continue
            if not prose[j] or other:
                sub = _HEADING.match(other) if prose[j] else None
                if sub is None or len(sub.group(1)) > level:
                    empty = False
                break
        if empty and had_hole:
            lines[i] = None


def compact_text(text: str) -> str:
    """Return ``text`` with whitespace squeezed and known Claude Code boilerplate lines dropped.

    Idempotent, and the identity on text that has nothing to squeeze or drop.
    """
    lines: list[str | None] = []
    prose: list[bool] = []  # False for fenced lines (fences included), which are never changed
    fence: str | None = None
    after_help_lead = False
    for line in text.split("\n"):
        if fence is not None:
            if _is_fence_close(line, fence):
                fence = None
            lines.append(line)
            prose.append(False)
            continue
        opening = _FENCE_OPEN.match(line)
        if opening is not None:
            fence = opening.group(1)
            after_help_lead = False
            lines.append(line)
            prose.append(False)
            continue
        stripped = line.lstrip(" \t")
        body = _BULLET.sub("", stripped, count=1)
        if after_help_lead and body.startswith(_HELP_ITEMS):
            lines.append(None)
        elif body.startswith(_HELP_LEAD):
            after_help_lead = True
            lines.append(None)
        else:
            after_help_lead = False
            lines.append(None if _is_boilerplate(body) else _squeeze(line))
        prose.append(True)

    _drop_emptied_headings(lines, prose)

    out: list[str] = []
    out_prose: list[bool] = []
    for kept, is_prose in zip(lines, prose, strict=True):
        if kept is None:
            continue
        if is_prose and not kept and (not out or (out_prose[-1] and not out[-1])):
            continue  # a second blank line in a row, or a blank line at the start
        out.append(kept)
        out_prose.append(is_prose)
    while out and out_prose[-1] and not out[-1]:
        out.pop()
        out_prose.pop()
    return "\n".join(out)


# ------------------------------------------------------------------------------------ request bodies


def _text_length(content: Any) -> int:
    # Only what compact_text would see counts toward the threshold; anything malformed counts as 0.
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(block["text"])
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    return 0


def _compact_content(content: Any) -> tuple[Any, bool]:
    """Compact a string, or the text blocks of a list (other keys and blocks kept); say if it changed."""
    if isinstance(content, str):
        new = compact_text(content)
        return new, new != content
    if not isinstance(content, list):
        return content, False
    changed = False
    blocks: list[Any] = []
    for block in content:
        text = block.get("text") if isinstance(block, dict) and block.get("type") == "text" else None
        if not isinstance(text, str):
            blocks.append(block)
            continue
        new = compact_text(text)
        if new == text:
            blocks.append(block)
            continue
        changed = True
        if new:  # an upstream rejects an empty text block, and an empty one says nothing anyway
            blocks.append({**block, "text": new})
    return blocks, changed


def _compact_messages(messages: list[Any], roles: tuple[str, ...]) -> tuple[list[Any], bool]:
    changed = False
    kept: list[Any] = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in roles:
            content, did = _compact_content(message.get("content"))
            if did:
                changed = True
                if not content:
                    continue  # the message was nothing but boilerplate
                message = {**message, "content": content}
        kept.append(message)
    return kept, changed


def _role_text_length(messages: Any, roles: tuple[str, ...]) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(
        _text_length(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in roles
    )


def compact_anthropic_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the system text of an Anthropic Messages request in place; True when anything changed.

    The threshold is compared with the total length of ``system`` (a string or text blocks) plus the
    role ``"system"`` messages Claude Code puts inside ``messages``: counting ``system`` alone, Claude
    Code's real prompt (about 7 200 characters there, 9 200 more in the message) would never qualify.
    Text blocks keep their other keys (``cache_control``); one left empty is dropped, and so is a system
    message or the ``system`` key left with nothing. User and assistant messages and ``tools`` are never
    touched, and anything malformed is left as it is.
    """
    if not isinstance(data, dict):
        return False
    messages = data.get("messages")
    roles = ("system",)
    total = _text_length(data.get("system")) + _role_text_length(messages, roles)
    if total == 0 or total < threshold:
        return False
    changed = False
    if "system" in data:
        system, did = _compact_content(data["system"])
        if did:
            changed = True
            if system:
                data["system"] = system
            else:
                del data["system"]
    if isinstance(messages, list):
        kept, did = _compact_messages(messages, roles)
        if did:
            changed = True
            data["messages"] = kept
    return changed


def compact_openai_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the ``system`` and ``developer`` messages of a Chat Completions request in place.

    Same rules as :func:`compact_anthropic_body`: the threshold is compared with their total text
    length; content is a string or a list of ``{"type": "text", "text": ...}`` parts; user, assistant
    and tool messages and ``tools`` are never touched. True when anything changed.
    """
    if not isinstance(data, dict):
        return False
    messages = data.get("messages")
    roles = ("system", "developer")
    total = _role_text_length(messages, roles)
    if total == 0 or total < threshold or not isinstance(messages, list):
        return False
    kept, changed = _compact_messages(messages, roles)
    if changed:
        data["messages"] = kept
    return changed
