"""OpenAI Chat Completions (``POST /v1/chat/completions``) <-> IR, in both roles.

Reference: platform.openai.com/docs/api-reference/chat. "OpenAI-compatible" is a family, not an API: the
differences between OpenAI, OpenRouter, DeepSeek, Gemini, vLLM and Ollama are fields of
``profiles.Profile``, read here, never provider names.

One module per role and job. The upstream role talks to an OpenAI-compatible upstream:
``upstream_request`` builds its requests (schema sanitising, the tool name map), ``upstream_response``
parses its answers, errors and usage, ``upstream_stream`` its chunk streams. The client role serves
OpenAI clients: ``client_request`` parses their requests (and compacts a raw body's system prompt),
``client_response`` builds their answers, ``client_stream`` their chunks. What the Responses API (or
the Anthropic dialect) needs too is in ``dialects._common``. This package exposes it all under the names
of the dialect contract (``dialects.Dialect``).
"""

from __future__ import annotations

from typing import Final

from .._common import JSON_OBJECT_INSTRUCTION, JSON_TOOL_NAME, MISSING_RESULT_TEXT
from .._common import build_openai_error as build_error
from .client_request import compact_body, parse_request, parse_request_data
from .client_response import build_response
from .client_stream import StreamEncoder
from .upstream_request import UPSTREAM_PATH, build_request, json_tool, sanitize_schema, tool_name_map
from .upstream_response import (
    content_parts,
    event_usage,
    map_status,
    parse_error,
    parse_response,
    parse_usage,
)
from .upstream_stream import StreamDecoder

NAME: Final = "openai_chat"
PATHS: tuple[str, ...] = ("/v1/chat/completions",)

__all__ = [
    "JSON_OBJECT_INSTRUCTION",
    "JSON_TOOL_NAME",
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
    "content_parts",
    "event_usage",
    "json_tool",
    "map_status",
    "parse_error",
    "parse_request",
    "parse_request_data",
    "parse_response",
    "parse_usage",
    "sanitize_schema",
    "tool_name_map",
]
