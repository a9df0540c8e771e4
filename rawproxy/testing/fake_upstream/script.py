"""The scenario model both dialects answer from: :class:`Script`, its tool calls, the ``MOCK:`` keywords.

A :class:`Script` says what to answer (text, reasoning, tool calls, usage, a finish reason) and how (TTFT,
token interval, a stall, an error or a cut after N content events, a scripted error status, raw bytes,
a broken wire). It names no dialect: ``openai_chat`` and ``anthropic_messages`` each render the same
script in their own wire format, and count "content events" alike (OpenAI content chunks, Anthropic
``content_block_delta`` events), so one script serves a test in either direction.

:func:`pick` chooses the script for a request: a queued one, else a ``MOCK:`` keyword in the last user
message (for clients a test cannot script, such as Claude Code), else the default. The text helpers at
the end (:func:`tokens`, :func:`split`, :func:`arguments_json`, :func:`arguments_input`) are shared by
both renderers, so that both cut a script into the same pieces.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "DEFAULT_MODELS",
    "KEYWORDS",
    "RecordedRequest",
    "Script",
    "ToolCall",
    "arguments_input",
    "arguments_json",
    "pick",
    "split",
    "tokens",
]


@dataclass(slots=True, kw_only=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    # what the call carries beside it on the Chat Completions side, as sent (Gemini's
    # {"google": {"thought_signature": ...}}): on the call in a whole answer, on its head in a stream
    extra_content: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class Script:
    text: str = "Hello from the fake upstream."
    reasoning: str = ""
    reasoning_field: str = "reasoning_content"
    # OpenRouter's and MiniMax's array, as a whole answer carries it; streamed, a text entry goes out in
    # word-sized pieces (its signature on the last), any other entry whole, just before the tool calls
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    arg_fragments: int = 1  # split each call's arguments into this many chunks
    interleave: bool = False  # alternate the fragments of parallel calls
    ttft: float = 0.0  # seconds before the first chunk
    token_interval: float = 0.0  # seconds between chunks
    stall: float = 0.0  # seconds of silence after the first content chunk (with raw: its first piece)
    usage: bool | None = None  # None: as the request's stream_options.include_usage says
    finish_reason: str | None = None
    status: int = 200  # >= 400: an error before the first byte, with error_body
    error_body: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    error_after: int | None = None  # after N content chunks, an in-band error chunk, then [DONE]
    cut_after: int | None = None  # after N content chunks, drop the connection
    raw: bytes | None = None  # send exactly these bytes as the body (recorded transcripts)
    content_type: str | None = None
    chunk_size: int | None = None  # with raw: write it in pieces of this size (ttft, stall and
    # token_interval pace the pieces as they pace content chunks)
    prompt_tokens: int = 12
    cached_tokens: int = 0  # Anthropic: cache_read_input_tokens (input_tokens is the rest)
    signature: str = "sig-fake-0001"  # Anthropic: the thinking block's signature
    ping: bool = True  # Anthropic: an ``event: ping`` after the first content_block_start
    head_delay: float = 0.0  # seconds of silence before anything of the answer (the head included)
    reset: bool = False  # after head_delay, drop the connection with a TCP reset: no answer at all
    wire: bytes | None = None  # after head_delay, write exactly these bytes (head and framing too), close


def _bash(command: str, description: str) -> ToolCall:
    return ToolCall(name="Bash", arguments={"command": command, "description": description})


_RATE_LIMITED = Script(
    status=429,
    error_body=b'{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}',
    headers=[("retry-after", "0")],
)

# keyword -> (first answer, answer after the tool results came back)
KEYWORDS: dict[str, tuple[Script, Script]] = {
    "MOCK:text": (Script(text="rawproxy-e2e-ok"), Script(text="rawproxy-e2e-ok")),
    "MOCK:bash": (
        Script(
            text="I'll run the command.",
            tool_calls=[_bash("echo rawproxy-ok > out.txt", "Write out.txt")],
            arg_fragments=6,
        ),
        Script(text="The file out.txt was written."),
    ),
    "MOCK:parallel": (
        Script(
            text="",
            tool_calls=[_bash("echo one > a.txt", "Write a.txt"), _bash("echo two > b.txt", "Write b.txt")],
            arg_fragments=4,
        ),
        Script(text="Both files were written."),
    ),
    "MOCK:think": (
        Script(
            text="",
            reasoning="The user wants a file. I will use Bash.",
            tool_calls=[_bash("echo thought > think.txt", "Write think.txt")],
            arg_fragments=3,
        ),
        Script(text="Done thinking and writing."),
    ),
    "MOCK:429": (_RATE_LIMITED, _RATE_LIMITED),
    # A stream that fails after its first token. Claude Code then retries the turn without streaming,
    # and a non-streamed request never fails here, so its answer is the same text, complete.
    "MOCK:midstream": (Script(text="answer after a failed stream", error_after=1),) * 2,
}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased; of a repeated header, the last
    body: Any
    query: str = ""
    raw_body: bytes = b""  # as it came, for a test that a passthrough does not re-serialise
    raw_headers: tuple[tuple[str, str], ...] = ()  # every header line in order, repeats kept


DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-opus-4-8", "claude-haiku-4-5-20251001")


def pick(queue: deque[Script], default: Script, body: Any) -> Script:
    """The script for a request: the next queued one, else a keyword's, else ``default``."""
    if queue:
        return queue.popleft()
    messages = body.get("messages") if isinstance(body, dict) else None
    text, after_tools = _last_user_text(messages or [])
    for keyword, (first, final) in KEYWORDS.items():
        if keyword in text:
            return final if after_tools else first
    return default


def _has_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in content
    )


def _last_user_text(messages: list[Any]) -> tuple[str, bool]:
    """The last user message's text, and whether tool results came after it.

    Tool results are OpenAI ``tool`` messages or Anthropic user messages holding ``tool_result`` blocks.
    """
    tool_after = False
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if message.get("role") == "tool" or (message.get("role") == "user" and _has_tool_result(content)):
            tool_after = True
        elif message.get("role") == "user":
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or ""), tool_after
    return "", tool_after


def split(text: str, pieces: int) -> list[str]:
    """``text`` in at most ``pieces`` pieces of equal size (a tool call's argument fragments)."""
    if pieces <= 1 or len(text) < 2:
        return [text]
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def tokens(text: str) -> list[str]:
    """Word-sized pieces, spaces kept, so the text reassembles exactly."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch == " " and i > start:
            out.append(text[start:i])
            start = i
    if start < len(text):
        out.append(text[start:])
    return out


def arguments_json(call: ToolCall) -> str:
    """The call's arguments as a JSON string (a string is sent as given, valid JSON or not)."""
    return call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()


def arguments_input(call: ToolCall) -> Any:
    """The call's arguments as an object (Anthropic's ``input``); ``{}`` for a string that is not JSON."""
    if not isinstance(call.arguments, str):
        return call.arguments
    try:
        return orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        return {}
