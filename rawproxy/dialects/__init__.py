"""The dialect contract and registry: each wire API is one module that converts to and from the IR.

A dialect module exposes the names of :class:`Dialect`. Adding a dialect means one module and one line
in :data:`DIALECTS`; ``translate.py``, ``proxy.py`` and ``server.py`` do not change. mypy checks every
module against the protocol when it is assigned into ``DIALECTS``.
"""

from __future__ import annotations

from typing import Any, Protocol

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
    def parse_response(self, body: bytes, ctx: ir.Context) -> ir.Response: ...
    def parse_error(self, status: int, body: bytes) -> ir.ErrorInfo: ...
    def event_usage(self, data: Any) -> ir.Usage | None: ...
    @property
    def StreamDecoder(self) -> type[StreamDecoderP]: ...


class Dialect(ClientDialect, UpstreamDialect, Protocol):
    """A dialect that plays both roles."""


from . import anthropic_messages, openai_chat, openai_responses  # noqa: E402  (needs the protocols above)

DIALECTS: dict[str, Dialect] = {"anthropic_messages": anthropic_messages, "openai_chat": openai_chat}
CLIENT_DIALECTS: dict[str, ClientDialect] = {**DIALECTS, "openai_responses": openai_responses}
UPSTREAM_DIALECTS: dict[str, UpstreamDialect] = dict(DIALECTS)
# The wire protocol each dialect is, for choosing between translation and passthrough: no upstream speaks
# the Responses API here, so its requests are always translated.
PROTOCOLS: dict[str, str] = {
    "anthropic_messages": "anthropic",
    "openai_chat": "openai",
    "openai_responses": "openai_responses",
}


def client_dialect_for_path(path: str) -> ClientDialect | None:
    for dialect in CLIENT_DIALECTS.values():
        if path in dialect.PATHS:
            return dialect
    return None
