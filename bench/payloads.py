"""Request bodies for the bench, in both dialects: a small one and a Claude-Code-sized one.

The last user message carries the bench upstream's marker, ``bench:<kind>:<delay ms>`` (see
``canned_upstream.py``), so the same answer comes back whichever way the request travels. The large request is
the size of a Claude Code turn: a 48 KB system prompt (as text blocks with ``cache_control``) and 40 tools
with realistic JSON schemas, about 60 KB in all.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

ANTHROPIC_HEADERS = [("anthropic-version", "2023-06-01")]
SYSTEM_BYTES = 48 * 1024
N_TOOLS = 40

_PROSE = (
    "the assistant must read file before editing it and keep changes minimal use absolute paths when "
    "calling tools prefer the dedicated search tool over shell commands never commit unless asked run the "
    "tests after a change report what was done in one or two sentences respect the repository conventions "
    "check types lint format handle errors explicitly avoid guessing ask when the request is ambiguous "
    "security never expose secrets or credentials in output follow the style of surrounding code"
)
_WORDS = _PROSE.split()


def system_prompt(size: int = SYSTEM_BYTES, seed: int = 7) -> str:
    """Deterministic instruction-like prose of exactly ``size`` ASCII bytes (no bench marker in it)."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 24))).capitalize() + ". "
        if rng.random() < 0.15:
            sentence += "\n\n# " + " ".join(rng.choice(_WORDS) for _ in range(3)).title() + "\n"
        parts.append(sentence)
        total += len(sentence)
    return "".join(parts)[:size]


def _schema(rng: random.Random, i: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for j in range(rng.randint(1, 3)):
        name = f"{rng.choice(_WORDS)}_{j}"
        kind = rng.choice(["string", "string", "integer", "boolean", "array", "enum", "object"])
        desc = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4))).capitalize() + "."
        if kind == "enum":
            props[name] = {"type": "string", "enum": ["auto", "always", "never"], "description": desc}
        elif kind == "array":
            props[name] = {"type": "array", "items": {"type": "string"}, "description": desc}
        elif kind == "object":
            props[name] = {
                "type": "object",
                "properties": {"path": {"type": "string"}, "line": {"type": "integer", "minimum": 1}},
                "required": ["path"],
                "additionalProperties": False,
                "description": desc,
            }
        else:
            props[name] = {"type": kind, "description": desc}
    return {
        "type": "object",
        "properties": props,
        "required": list(props)[:2],
        "additionalProperties": False,
    }


def tools(n: int = N_TOOLS, seed: int = 11) -> list[dict[str, Any]]:
    """Anthropic-shaped tool definitions, Claude Code's names first, then MCP-style ones."""
    rng = random.Random(seed)
    names = ["Task", "Bash", "Glob", "Grep", "LS", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit"]
    names += ["WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "ExitPlanMode"]
    names += [f"mcp__server{k // 6}__tool_{k}" for k in range(n - len(names))]
    out = []
    for i, name in enumerate(names[:n]):
        desc = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 8))).capitalize() + "."
        out.append({"name": name, "description": desc, "input_schema": _schema(rng, i)})
    return out


def anthropic_body(model: str, marker: str, *, stream: bool, big: bool = False) -> bytes:
    body: dict[str, Any] = {"model": model, "max_tokens": 1024, "stream": stream}
    if big:
        body["system"] = [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": system_prompt(), "cache_control": {"type": "ephemeral"}},
        ]
        body["tools"] = tools()
        body["messages"] = [
            {"role": "user", "content": [{"type": "text", "text": "List the Python files."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "There are 14 Python files."}]},
            {"role": "user", "content": [{"type": "text", "text": f"Now count the coroutines. {marker}"}]},
        ]
    else:
        body["messages"] = [{"role": "user", "content": f"Say hello. {marker}"}]
    return orjson.dumps(body)


def openai_body(model: str, marker: str, *, stream: bool, big: bool = False) -> bytes:
    body: dict[str, Any] = {"model": model, "max_tokens": 1024, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if big:
        body["messages"] = [
            {
                "role": "system",
                "content": "You are Claude Code, Anthropic's official CLI for Claude.\n\n" + system_prompt(),
            },
            {"role": "user", "content": "List the Python files."},
            {"role": "assistant", "content": "There are 14 Python files."},
            {"role": "user", "content": f"Now count the coroutines. {marker}"},
        ]
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in tools()
        ]
    else:
        body["messages"] = [{"role": "user", "content": f"Say hello. {marker}"}]
    return orjson.dumps(body)


if __name__ == "__main__":
    for big in (False, True):
        a = anthropic_body("claude-sonnet-4-6", "bench:short:0", stream=True, big=big)
        o = openai_body("gpt-bench", "bench:short:0", stream=True, big=big)
        print(f"big={big}: anthropic {len(a)} bytes, openai {len(o)} bytes")
