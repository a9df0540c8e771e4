"""Model lists in both APIs: reading an upstream's, answering a client's. Pure.

OpenAI's ``GET /v1/models`` is ``{"object": "list", "data": [{"id", "object", "created", "owned_by"}]}``
(platform.openai.com/docs/api-reference/models/list); Anthropic's is paginated, ``{"data": [{"type":
"model", "id", "display_name", "created_at"}], "has_more", "first_id", "last_id"}``, continued with
``after_id`` (docs.claude.com/en/api/models-list). An answer other than a 200 lists nothing (an upstream
without the endpoint). A 200 that is not such a list (not JSON, no ``data`` list, ``{"data": 5}``) raises
``UpstreamProtocolError`` naming what is wrong: the caller treats it as no list (issue 19). Entries
without a string ``id`` are skipped.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import UpstreamProtocolError

__all__ = [
    "anthropic_models_page",
    "build_model_list",
    "openai_model_entries",
    "reported_caps",
]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _listed(body: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A 200 list answer: the object, and its entries with a string ``id``; UpstreamProtocolError when it
    is not JSON, or not an object with a ``data`` list."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("the upstream's model list is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"the upstream's model list is {_json_type(data)}, not an object")
    listed = data.get("data")
    if not isinstance(listed, list):
        got = "missing" if "data" not in data else _json_type(listed)
        raise UpstreamProtocolError(
            f'the upstream\'s model list is of the wrong shape: "data" is {got}, not an array'
        )
    return data, [m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]


def openai_model_entries(status: int, body: bytes) -> list[dict[str, Any]]:
    """The entries of an OpenAI-compatible ``/models`` answer (none unless it is a 200)."""
    return _listed(body)[1] if status == 200 else []


def anthropic_models_page(status: int, body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """One page of Anthropic's model list: its entries, and the ``after_id`` of the next page (None at
    the last)."""
    if status != 200:
        return [], None
    data, entries = _listed(body)
    more = data.get("has_more") is True and isinstance(data.get("last_id"), str) and data["last_id"]
    return entries, data["last_id"] if more else None


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
