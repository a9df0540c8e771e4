"""OpenAI Chat Completions (``POST /v1/chat/completions``) <-> IR, in both roles.

Reference: platform.openai.com/docs/api-reference/chat. "OpenAI-compatible" is a family, not an API: the
differences between OpenAI, OpenRouter, DeepSeek, Gemini, vLLM and Ollama are fields of
``profiles.Profile``, read here, never provider names.

``upstream.py`` talks to an OpenAI-compatible upstream (builds its requests, parses its answers, errors and
chunk streams); ``client.py`` serves OpenAI clients (parses their requests, builds their answers and
chunks). This package exposes both under the names of the dialect contract (``dialects.Dialect``).
"""

from __future__ import annotations

from typing import Final

from .client import (
    StreamEncoder,
    build_error,
    build_response,
    parse_request,
    parse_request_data,
)
from .upstream import (
    MISSING_RESULT_TEXT,
    UPSTREAM_PATH,
    StreamDecoder,
    build_request,
    content_parts,
    event_usage,
    map_status,
    parse_error,
    parse_response,
    parse_usage,
    sanitize_schema,
    tool_name_map,
)

NAME: Final = "openai_chat"
PATHS: tuple[str, ...] = ("/v1/chat/completions",)

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
    "content_parts",
    "event_usage",
    "map_status",
    "parse_error",
    "parse_request",
    "parse_request_data",
    "parse_response",
    "parse_usage",
    "sanitize_schema",
    "tool_name_map",
]
