"""The shared part of opt-in prompt compaction for small local models (issue 5 item 7). Pure.

Claude Code sends a system prompt of about 16 000 characters (the ``system`` blocks plus a role
``"system"`` message inside ``messages``); the Codex CLI about 20 000 (its ``instructions`` and a
``developer`` message). A small local model pays for every one of them in prefill time and context, so a
route with ``compact = true`` shrinks them, in the spirit of the ``compact`` mode of empero's
claude-code-proxy, but deliberately more conservatively: that mode drops whole behavioural sections,
prepends a summary of its own and truncates to a budget. Here nothing is rewritten, summarised or
truncated, and no text is invented: every line of the result is a line of the input, at most with its
whitespace squeezed. Only system text is ever touched; user, assistant and tool messages and the tool
schemas are never looked at.

Where the system text of a request body is, is dialect knowledge: each dialect package has a
``compact_body(data) -> bool`` (``anthropic_messages``: ``system`` and system messages; ``openai_chat``:
system and developer messages; ``openai_responses``: ``instructions`` and system and developer input
items) built on the helpers below, which work on a list of role messages whatever their dialect.

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
from typing import Any, Final

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
#
# The pieces every dialect's compact_body is made of. ``content`` is a string or a list of parts; a part
# is text when its ``type`` is one of ``text_types`` (``text`` in both Messages and Chat Completions, and
# ``input_text`` too in the Responses API). Anything malformed is left as it is and counts as nothing.

TEXT: Final = ("text",)


def text_length(content: Any, text_types: tuple[str, ...] = TEXT) -> int:
    """How much of ``content`` :func:`compact_text` would see: what counts toward the threshold."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(block["text"])
            for block in content
            if isinstance(block, dict)
            and block.get("type") in text_types
            and isinstance(block.get("text"), str)
        )
    return 0


def compact_content(content: Any, text_types: tuple[str, ...] = TEXT) -> tuple[Any, bool]:
    """Compact a string, or the text parts of a list (other keys and parts kept); say if it changed."""
    if isinstance(content, str):
        new = compact_text(content)
        return new, new != content
    if not isinstance(content, list):
        return content, False
    changed = False
    blocks: list[Any] = []
    for block in content:
        text = block.get("text") if isinstance(block, dict) and block.get("type") in text_types else None
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


def compact_messages(
    messages: list[Any], roles: tuple[str, ...], text_types: tuple[str, ...] = TEXT
) -> tuple[list[Any], bool]:
    """Compact the content of the messages of ``roles`` (new dicts: the originals are not changed); a
    message left with nothing is dropped. Say if anything changed."""
    changed = False
    kept: list[Any] = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in roles:
            content, did = compact_content(message.get("content"), text_types)
            if did:
                changed = True
                if not content:
                    continue  # the message was nothing but boilerplate
                message = {**message, "content": content}
        kept.append(message)
    return kept, changed


def role_text_length(messages: Any, roles: tuple[str, ...], text_types: tuple[str, ...] = TEXT) -> int:
    """The text length of the messages of ``roles``, for the threshold."""
    if not isinstance(messages, list):
        return 0
    return sum(
        text_length(m.get("content"), text_types)
        for m in messages
        if isinstance(m, dict) and m.get("role") in roles
    )
