"""The dialect contract and registry: each wire API is one subpackage that converts to and from the IR.

This package is the only owner of dialect knowledge. A dialect subpackage exposes the names of
:class:`ClientDialect` (and :class:`UpstreamDialect` when an upstream may speak it); :data:`REGISTRY` holds
one :class:`DialectSpec` line per wire API with what the rest of the proxy asks of it: the path it serves,
its protocol (same protocol on both sides is a passthrough), its passthrough path, the field an output cap
goes in, how its system prompt is compacted. Adding a dialect is one subpackage and one registry line; the
exchange, the server and the observers ask the registry and never name a wire path. mypy checks every
subpackage against the protocols where it is put into the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .. import ir
from ..sse import SSEEvent


class StreamDecoderP(Protocol):
    usage: ir.Usage | None

    def __init__(self, ctx: ir.Context) -> None: ...

    def feed(self, event: SSEEvent) -> list[ir.StreamEvent]: ...
    def close(self) -> list[ir.StreamEvent]: ...
    def eof(self) -> list[ir.StreamEvent]: ...


class StreamEncoderP(Protocol):
    def __init__(self, ctx: ir.Context) -> None: ...
    def start(self) -> bytes: ...
    def encode(self, ev: ir.StreamEvent) -> bytes: ...
    def close(self) -> bytes: ...
    def ping(self) -> bytes: ...


class ClientDialect(Protocol):
    """The side a client speaks: parse its requests, answer in its shape."""

    @property
    def NAME(self) -> str: ...
    @property
    def PATHS(self) -> tuple[str, ...]: ...

    def parse_request(self, body: bytes, *, count_tokens: bool = False) -> ir.Request: ...
    def parse_request_data(self, data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request: ...
    def build_response(self, resp: ir.Response, ctx: ir.Context) -> bytes: ...
    def build_error(self, err: ir.ErrorInfo) -> tuple[int, bytes]: ...
    @property
    def StreamEncoder(self) -> type[StreamEncoderP]: ...


class UpstreamDialect(Protocol):
    """The side an upstream speaks: build its requests, read its answers."""

    @property
    def NAME(self) -> str: ...

    def build_request(self, req: ir.Request, ctx: ir.Context) -> tuple[str, bytes]: ...
    def tool_name_map(self, req: ir.Request) -> dict[str, str]: ...
    def json_tool(self, req: ir.Request, ctx: ir.Context) -> str | None: ...
    def parse_response(self, body: bytes, ctx: ir.Context) -> ir.Response: ...
    def parse_error(self, status: int, body: bytes) -> ir.ErrorInfo: ...
    def event_usage(self, data: Any) -> ir.Usage | None: ...
    @property
    def StreamDecoder(self) -> type[StreamDecoderP]: ...


class Dialect(ClientDialect, UpstreamDialect, Protocol):
    """A dialect that plays both roles."""


from . import anthropic_messages, openai_chat, openai_responses  # noqa: E402  (needs the protocols above)
from ._common import load_json_object  # noqa: E402
from .body import all_blank, apply_overrides, request_model  # noqa: E402
from .model_lists import anthropic_models_page, build_model_list, openai_model_entries, reported_caps  # noqa: E402

__all__ = [
    "ANTHROPIC_COUNT_TOKENS_PATH",
    "ANTHROPIC_MODELS_PATH",
    "COUNT_TOKENS_PATH",
    "MODELS_PATH",
    "OPENAI_MODELS_PATH",
    "REGISTRY",
    "VERSION_PREFIX",
    "ClientDialect",
    "Dialect",
    "DialectSpec",
    "StreamDecoderP",
    "StreamEncoderP",
    "UpstreamDialect",
    "WireProtocol",
    "all_blank",
    "anthropic_messages",
    "anthropic_models_page",
    "apply_overrides",
    "build_model_list",
    "client_spec",
    "error_dialect",
    "load_json_object",
    "openai_chat",
    "openai_model_entries",
    "openai_responses",
    "protocol_of_path",
    "reported_caps",
    "request_model",
    "spec_named",
    "upstream_spec",
]

WireProtocol = Literal["anthropic", "openai", "openai_responses"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DialectSpec:
    """What the proxy needs to know of one wire API, beyond converting it."""

    name: str
    path: str  # the client path it serves
    protocol: WireProtocol  # the same on both sides: a passthrough
    client: ClientDialect
    upstream: Dialect | None  # None: no upstream of this API is known here (always translated)
    passthrough_path: str | None  # where a passthrough request goes, relative to the upstream's base
    max_tokens_field: str  # where a route's max_tokens override is written
    replaces: tuple[str, ...]  # fields a max_tokens override removes (the dialect's other name for it)
    compact: Callable[[dict[str, Any]], bool]  # shortens the system prompt of a raw request body
    messages_field: str | None  # the list every request must carry (None: an ``input`` the parser checks)
    chains_responses: bool  # ``previous_response_id`` names an earlier answer the proxy may keep


REGISTRY: tuple[DialectSpec, ...] = (
    DialectSpec(
        name="anthropic_messages",
        path="/v1/messages",
        protocol="anthropic",
        client=anthropic_messages,
        upstream=anthropic_messages,
        passthrough_path=anthropic_messages.UPSTREAM_PATH,
        max_tokens_field="max_tokens",
        replaces=(),
        compact=anthropic_messages.compact_body,
        messages_field="messages",
        chains_responses=False,
    ),
    DialectSpec(
        name="openai_chat",
        path="/v1/chat/completions",
        protocol="openai",
        client=openai_chat,
        upstream=openai_chat,
        passthrough_path=openai_chat.UPSTREAM_PATH,
        max_tokens_field="max_tokens",
        replaces=("max_completion_tokens",),
        compact=openai_chat.compact_body,
        messages_field="messages",
        chains_responses=False,
    ),
    DialectSpec(
        name="openai_responses",
        path="/v1/responses",
        protocol="openai_responses",
        client=openai_responses,
        upstream=None,
        passthrough_path=None,
        max_tokens_field="max_output_tokens",
        replaces=(),
        compact=openai_responses.compact_body,
        messages_field=None,
        chains_responses=True,
    ),
)
_BY_PATH = {spec.path: spec for spec in REGISTRY}
_BY_PROTOCOL: dict[str, DialectSpec] = {spec.protocol: spec for spec in REGISTRY}

_BY_NAME: dict[str, DialectSpec] = {spec.name: spec for spec in REGISTRY}

# The API version segment of a base URL: an OpenAI-compatible base includes it, an Anthropic one does not
# (a base given in the other form is tolerated).
VERSION_PREFIX = "/v1"
# The endpoints beside the completions that belong to a dialect's API (count_tokens, the model list).
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"
ANTHROPIC_MODELS_PATH = "/v1/models"  # relative to an Anthropic upstream's base
OPENAI_MODELS_PATH = "/models"  # relative to an OpenAI-compatible base that includes /v1
ANTHROPIC_COUNT_TOKENS_PATH = COUNT_TOKENS_PATH


def client_spec(path: str) -> DialectSpec | None:
    """The dialect a client speaks on ``path`` (a completions endpoint), None for any other path."""
    return _BY_PATH.get(path)


def spec_named(name: str) -> DialectSpec:
    """The registry line of the dialect called ``name`` ("anthropic_messages", ...)."""
    return _BY_NAME[name]


def upstream_spec(protocol: str) -> DialectSpec:
    """The dialect an upstream of ``protocol`` ("anthropic" or "openai") speaks."""
    return _BY_PROTOCOL[protocol]


def protocol_of_path(path: str) -> str:
    """The protocol of a request path, for metrics: "other" for what is not model traffic."""
    for spec in REGISTRY:
        if path.startswith(spec.path):
            return spec.protocol
    return "other"


def error_dialect(path: str, header: Callable[[bytes], str | None]) -> ClientDialect:
    """The error shape a client understands: Anthropic's for its paths and headers (``x-api-key``,
    ``anthropic-version``), else OpenAI's (which the Responses API shares)."""
    if path.startswith("/v1/messages") or header(b"anthropic-version") or header(b"x-api-key"):
        return anthropic_messages
    return openai_chat
