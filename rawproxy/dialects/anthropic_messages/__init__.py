"""Anthropic Messages (``POST /v1/messages``) <-> IR, in both roles.

Reference: docs.claude.com/en/api/messages and /en/api/messages-streaming.

One module per role and job. The client role serves Anthropic-API clients (Claude Code, the Anthropic
SDKs): ``client_request`` parses their requests (and compacts a raw body's system prompt),
``client_response`` builds their answers and errors, ``client_stream`` their stream events. The upstream
role talks to an Anthropic upstream: ``upstream_request`` builds its requests, ``upstream_response``
parses its answers and errors, ``upstream_stream`` its streams. What another dialect needs too is in
``dialects._common``. This package exposes it all under the names of the dialect contract
(``dialects.Dialect``).
"""

from __future__ import annotations

from typing import Final

from .._common import MISSING_RESULT_TEXT, error_type_for_status
from .client_request import compact_body, parse_request, parse_request_data
from .client_response import build_error, build_response, message_id
from .client_stream import StreamEncoder
from .upstream_request import UPSTREAM_PATH, build_request, json_tool, tool_name_map
from .upstream_response import event_usage, parse_error, parse_response, parse_usage
from .upstream_stream import StreamDecoder

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
    "compact_body",
    "error_type_for_status",
    "event_usage",
    "json_tool",
    "message_id",
    "parse_error",
    "parse_request",
    "parse_request_data",
    "parse_response",
    "parse_usage",
    "tool_name_map",
]
