"""The internal representation (IR) every dialect converts to and from: the hub of hub-and-spoke.

Theory of operation: the IR is shaped after the more structured of the two wire models, Anthropic's
content blocks and its block start/delta/stop stream events. An OpenAI chat completion is a special case
(text, reasoning and tool calls are blocks; ``finish_reason`` is a stop reason), so each dialect needs only
a parser to the IR and a builder from it, and a new dialect is one module, not N new pairs.

Rules:
- Pure data. No I/O, no JSON, no knowledge of any wire format beyond the names.
- Per-token stream events are ``slots`` dataclasses, not frozen ones: about 250 ns to build against
  about 490 ns for slots+frozen on 3.11 (DESIGN.md), and one is built per upstream token.
- Usage follows Anthropic's semantics: ``input_tokens`` excludes cached tokens, which are counted apart
  in ``cache_read_input_tokens`` and ``cache_creation_input_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from .carrier import Carrier
from .models import ModelFamily
from .profiles import PROFILES, Profile


class StopReason(StrEnum):
    """Why the model stopped, in Anthropic's vocabulary (platform docs, "Stop reasons")."""

    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    PAUSE_TURN = "pause_turn"
    REFUSAL = "refusal"
    MODEL_CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
    COMPACTION = "compaction"


class ErrorType(StrEnum):
    """Canonical error types: Anthropic's, the finer vocabulary of the two."""

    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    BILLING = "billing_error"
    PERMISSION = "permission_error"
    NOT_FOUND = "not_found_error"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit_error"
    API = "api_error"
    TIMEOUT = "timeout_error"
    OVERLOADED = "overloaded_error"


@dataclass(slots=True, kw_only=True)
class ErrorInfo:
    status: int
    type: ErrorType
    message: str
    retry_after: str | None = None
    allow: str | None = None  # a 405's Allow header (RFC 9110 15.5.6)


# --------------------------------------------------------------------------------------------- blocks


@dataclass(slots=True, kw_only=True)
class TextBlock:
    text: str
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class ImageBlock:
    """An image: either inline base64 ``data`` with its ``media_type``, or a ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@dataclass(slots=True, kw_only=True)
class DocumentBlock:
    """A document: base64 ``data`` (PDF), plain ``text``, or a ``url``; with an optional title."""

    media_type: str | None = None
    data: str | None = None
    text: str | None = None
    url: str | None = None
    title: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolUseBlock:
    id: str
    name: str
    input: Any = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ToolResultBlock:
    tool_use_id: str
    content: list[TextBlock | ImageBlock | DocumentBlock] = field(default_factory=list)
    is_error: bool = False


@dataclass(slots=True, kw_only=True)
class ThinkingBlock:
    thinking: str
    # None: the source had no signature (an OpenAI upstream's reasoning). Never invented (decision 1).
    signature: str | None = None


@dataclass(slots=True, kw_only=True)
class RedactedThinkingBlock:
    data: str


@dataclass(slots=True, kw_only=True)
class OtherBlock:
    """A block the IR has no concept for (server tool use, web search results...), kept as sent."""

    type: str
    raw: dict[str, Any]


Block = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | OtherBlock
)

Role = Literal["user", "assistant", "system"]


@dataclass(slots=True, kw_only=True)
class Message:
    role: Role
    content: list[Block]


# -------------------------------------------------------------------------------------------- request


@dataclass(slots=True, kw_only=True)
class Tool:
    """A tool the model may call. ``server_type`` is set for provider-run tools (web search...)."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    server_type: str | None = None
    raw: dict[str, Any] | None = None
    # The kind of tool the client declared when it was no plain function tool (the Responses API's
    # "custom", "shell", "local_shell", "tool_search"): every upstream sees a function tool, and the
    # client's dialect names the model's call back as this kind (CX-04, CX-05). None: a function tool.
    client_kind: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None
    disable_parallel: bool = False


@dataclass(slots=True, kw_only=True)
class ThinkingConfig:
    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None
    effort: str | None = None

    @property
    def enabled(self) -> bool:
        return self.type != "disabled"


@dataclass(slots=True, kw_only=True)
class ResponseSchema:
    """A JSON schema the answer must follow, with the name and strictness OpenAI's APIs carry."""

    schema: dict[str, Any]
    name: str = "response"
    strict: bool | None = None


@dataclass(slots=True, kw_only=True)
class Request:
    model: str
    messages: list[Message]
    system: list[TextBlock] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    thinking: ThinkingConfig | None = None
    user_id: str | None = None
    # OpenAI clients: usage in the last stream chunk (stream_options.include_usage).
    include_usage: bool = False
    # The client asked for its answer as JSON of this schema (response_format / text.format /
    # output_config.format json_schema); the upstream dialect says how it travels (Context.json_tool).
    response_schema: ResponseSchema | None = None
    # What the client dialect keeps of its request for its answer (the Responses API echoes its
    # parameters and names namespaced tools back); other dialects leave it empty.
    echo: dict[str, Any] = field(default_factory=dict)

    @property
    def thinking_enabled(self) -> bool:
        return self.thinking is not None and self.thinking.enabled


# ------------------------------------------------------------------------------------------- response


@dataclass(slots=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0  # of output_tokens, when the upstream says (OpenAI's completion details)

    def merge(self, update: Usage) -> None:
        """Fold in a later report: each latest non-zero figure wins. Anthropic reports input and cache
        counts in message_start and the cumulative output in message_delta (newer versions repeat the
        input counts there), so no report is complete on its own (O2A-S08)."""
        self.input_tokens = update.input_tokens or self.input_tokens
        self.output_tokens = update.output_tokens or self.output_tokens
        self.cache_read_input_tokens = update.cache_read_input_tokens or self.cache_read_input_tokens
        self.cache_creation_input_tokens = (
            update.cache_creation_input_tokens or self.cache_creation_input_tokens
        )
        self.reasoning_tokens = update.reasoning_tokens or self.reasoning_tokens


@dataclass(slots=True, kw_only=True)
class Response:
    id: str
    model: str
    content: list[Block]
    stop_reason: StopReason
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


# ------------------------------------------------------------------------------------- stream events


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage


@dataclass(slots=True)
class BlockStart:
    index: int
    block: TextBlock | ThinkingBlock | ToolUseBlock | RedactedThinkingBlock | OtherBlock


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    thinking: str


@dataclass(slots=True)
class SignatureDelta:
    index: int
    signature: str


@dataclass(slots=True)
class InputJsonDelta:
    """A fragment of a tool call's arguments, forwarded byte for byte (never re-serialised: X-07)."""

    index: int
    partial_json: str


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage


@dataclass(slots=True)
class MessageStop:
    pass


@dataclass(slots=True)
class Ping:
    pass


@dataclass(slots=True)
class StreamError:
    info: ErrorInfo


StreamEvent = (
    MessageStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | InputJsonDelta
    | BlockStop
    | MessageDelta
    | MessageStop
    | Ping
    | StreamError
)


# ----------------------------------------------------------------------------------- exchange context


@dataclass(slots=True, kw_only=True)
class Context:
    """What the dialects need to know about one exchange beyond the message itself.

    Built once per request by ``translate.py`` and handed to every parse/build call and to the stream
    decoder and encoder, so that none of them reads configuration.
    """

    client_model: str  # echoed back to the client (A2O-N13)
    upstream_model: str
    thinking: bool = False  # the client enabled thinking: upstream reasoning becomes thinking blocks
    stop: list[str] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # upstream wire name -> client name
    input_tokens: int = 0  # estimate, shown in message_start until the real figure arrives
    max_output_tokens: int | None = None
    profile: Profile = field(default_factory=lambda: PROFILES["generic"])
    include_usage: bool = False  # the OpenAI client asked for a usage chunk
    # An upstream that takes no JSON schema gets the answer asked as a forced tool of this name; its
    # input is the answer, shown to the client as message content again (O2A-R23). None: native.
    json_tool: str | None = None
    auto_cache: bool = False  # add prompt-caching breakpoints for an Anthropic upstream (decision 8)
    echo: dict[str, Any] = field(default_factory=dict)  # see Request.echo; the same dict
    family: ModelFamily | None = None  # what the upstream model takes, when learned (else models.family_of)
    # Seals the upstream's state into what the client sends back, and opens it (carrier.py, RS-07).
    carrier: Carrier | None = None
