"""The OpenAI Responses API (``POST /v1/responses``) <-> IR, in the client role only.

Reference: platform.openai.com/docs/api-reference/responses, and the official ``openai`` SDK's
``responses.stream()`` accumulator, which checks that every output item is added before its deltas and
done before ``response.completed``. The Codex CLI speaks only this API: its requests carry the system
prompt as ``developer`` messages, ``namespace`` tools, the hosted ``web_search`` tool, ``store: false``
and ``include: ["reasoning.encrypted_content"]`` on every turn (a recorded request is in
``tests/conformance/fixtures/``).

A Responses request is translated to either upstream, never passed through: an upstream of this API is
not one this proxy knows. ``previous_response_id`` is resolved by the proxy before parsing (the store is
state, and dialects are pure); this module only records what the answer must echo and what the store
keeps (``Context.echo``).
"""

from __future__ import annotations

from typing import Final

from ..openai_chat import build_error
from .client import StreamEncoder, build_response, output_items, parse_request, parse_request_data

NAME: Final = "openai_responses"
PATHS: tuple[str, ...] = ("/v1/responses",)

__all__ = [
    "NAME",
    "PATHS",
    "StreamEncoder",
    "build_error",
    "build_response",
    "output_items",
    "parse_request",
    "parse_request_data",
]
