"""Model lists in both APIs: reading an upstream's, answering a client's. Pure.

OpenAI's ``GET /v1/models`` is ``{"object": "list", "data": [{"id", "object", "created", "owned_by"}]}``
(platform.openai.com/docs/api-reference/models/list); Anthropic's is paginated, ``{"data": [{"type":
"model", "id", "display_name", "created_at"}], "has_more", "first_id", "last_id"}``, continued with
``after_id`` (docs.claude.com/en/api/models-list). Entries without a string ``id`` are skipped: a list of
another shape lists nothing rather than failing the request that asked for it.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "anthropic_models_page",
    "build_model_list",
    "openai_model_entries",
    "reported_caps",
]


def _entries(data: Any) -> list[dict[str, Any]]:
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        return []
    return [m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]


def openai_model_entries(status: int, body: bytes) -> list[dict[str, Any]]:
    """The entries of an OpenAI-compatible ``/models`` answer (none unless it is a 200)."""
    return _entries(orjson.loads(body)) if status == 200 else []


def anthropic_models_page(status: int, body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """One page of Anthropic's model list: its entries, and the ``after_id`` of the next page (None at
    the last)."""
    data = orjson.loads(body) if status == 200 else {}
    more = isinstance(data, dict) and data.get("has_more") and data.get("last_id")
    return _entries(data), str(data["last_id"]) if more else None


def reported_caps(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Output caps a ``/models`` list reports: ``max_completion_tokens`` (Groq, and OpenRouter's
    ``top_provider``), ``max_output_tokens`` (LiteLLM's ``model_info``), ``max_tokens`` (Anthropic's).
    Context windows (vLLM's ``max_model_len``, ``context_length``) are not output caps."""
    caps: dict[str, int] = {}
    for entry in entries:
        for holder in (entry, entry.get("top_provider"), entry.get("model_info")):
            if not isinstance(holder, dict):
                continue
            value = next(
                (
                    holder[k]
                    for k in ("max_completion_tokens", "max_output_tokens", "max_tokens")
                    if k in holder
                ),
                None,
            )
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                caps[entry["id"]] = value
                break
    return caps


def build_model_list(names: list[str], has_more: bool, *, anthropic: bool) -> bytes:
    """A client's ``GET /v1/models`` answer in its own API's shape."""
    if anthropic:
        created = "2025-01-01T00:00:00Z"
        data: dict[str, Any] = {
            "data": [{"type": "model", "id": n, "display_name": n, "created_at": created} for n in names],
            "has_more": has_more,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }
    else:
        data = {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rawproxy"} for n in names],
        }
    return orjson.dumps(data)
