"""The OpenAI Responses API (``POST /v1/responses``) <-> IR, in the client role only.

Reference: platform.openai.com/docs/api-reference/responses, and the official ``openai`` SDK's
``responses.stream()`` accumulator, which checks that every output item is added before its deltas and
done before ``response.completed``. The Codex CLI speaks only this API: its requests carry the system
prompt as ``instructions`` and ``developer`` messages, ``namespace`` tools, the hosted ``web_search``
tool, ``store: false`` and ``include: ["reasoning.encrypted_content"]`` on every turn (a recorded
request is in ``tests/conformance/fixtures/``).

A Responses request is translated to either upstream, never passed through: an upstream of this API is
not one this proxy knows. ``previous_response_id`` is resolved by the proxy before parsing (the store is
state, and dialects are pure); this package only records what the answer must echo and what the store
keeps (``Context.echo``).

One module per job: ``client_request`` parses requests (and compacts a raw body's system text),
``client_response`` builds whole answers, ``client_stream`` the event stream. What Chat Completions
reads and writes the same way, the error shape among it, is in ``dialects._common``.
"""

from __future__ import annotations

from typing import Final

from .._common import JSON_OBJECT_INSTRUCTION, JSON_TOOL_NAME
from .._common import build_openai_error as build_error
from .client_request import EFFORTS, compact_body, parse_request, parse_request_data
from .client_response import build_response, output_items
from .client_stream import StreamEncoder

NAME: Final = "openai_responses"
PATHS: tuple[str, ...] = ("/v1/responses",)

__all__ = [
    "EFFORTS",
    "JSON_OBJECT_INSTRUCTION",
    "JSON_TOOL_NAME",
    "NAME",
    "PATHS",
    "StreamEncoder",
    "build_error",
    "build_response",
    "compact_body",
    "output_items",
    "parse_request",
    "parse_request_data",
]
