"""Anthropic Messages (``POST /v1/messages``) <-> IR, in both roles.

Reference: docs.claude.com/en/api/messages and /en/api/messages-streaming.

``client.py`` serves Anthropic-API clients (Claude Code, the Anthropic SDKs): it parses their requests
and builds their answers and stream events. ``upstream.py`` talks to an Anthropic upstream: it builds its
requests and parses its answers, errors and streams. This package exposes both under the names of the
dialect contract (``dialects.Dialect``).
"""

from __future__ import annotations

from typing import Final

from .client import (
    StreamEncoder,
    build_error,
    build_response,
    error_type_for_status,
    message_id,
    parse_request,
    parse_request_data,
)
from .upstream import (
    MISSING_RESULT_TEXT,
    UPSTREAM_PATH,
    StreamDecoder,
    build_request,
    event_usage,
    parse_error,
    parse_response,
    parse_usage,
    tool_name_map,
)

NAME: Final = "anthropic_messages"
PATHS: tuple[str, ...] = ("/v1/messages",)

__all__ = [
    "MISSING_RESULT_TEXT",
    "NAME",
    "PATHS",
    "UPSTREAM_PATH",
    "StreamDecoder",
    "StreamEncoder",
    "build_error",
    "build_request",
    "build_response",
    "error_type_for_status",
    "event_usage",
    "message_id",
    "parse_error",
    "parse_request",
    "parse_request_data",
    "parse_response",
    "parse_usage",
    "tool_name_map",
]
