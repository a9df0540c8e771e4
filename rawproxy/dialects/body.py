"""What the exchange reads and writes in a client's raw request body before (or instead of) parsing it:
the checks both APIs make of every request, a passthrough's included, and a route's parameter overrides.
"""

from __future__ import annotations

from typing import Any

from ..errors import ClientError

__all__ = ["all_blank", "apply_overrides", "request_model"]


def request_model(data: dict[str, Any], default: str | None) -> tuple[str, str | None]:
    """(the model to route, the model the client sent): ``default`` when it sent none (O2A-R27)."""
    sent = data.get("model")
    if sent is not None and not isinstance(sent, str):  # not the default for a false 0
        raise ClientError(f"model: expected a string, got {type(sent).__name__}")
    model = sent or default
    if not isinstance(model, str) or not model:
        raise ClientError("model: field required (a string)")
    return model, sent


def _blank(message: Any, anthropic: bool) -> bool:
    """A turn translation drops whole (A2O-R03, O2A-R06): no tool call, no text but spaces."""
    if not isinstance(message, dict) or message.get("role") in ("system", "developer"):
        return isinstance(message, dict)  # what is not an object is the parser's to name
    if message.get("role") not in ("user", "assistant") or message.get("tool_calls"):
        return False
    if "content" not in message and anthropic:
        return False  # required: the parser says so
    content = message.get("content")
    if content is None or isinstance(content, str):
        return not (content or "").strip()
    return isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") in ("text", "input_text") and not str(p.get("text")).strip()
        for p in content
    )


def all_blank(messages: list[Any], *, anthropic: bool) -> bool:
    """Whether nothing would be left of ``messages`` once translated: the upstream would get no message,
    which it refuses."""
    return all(_blank(m, anthropic) for m in messages)


def apply_overrides(
    data: dict[str, Any],
    overrides: tuple[tuple[str, float], ...],
    *,
    max_tokens_field: str,
    replaces: tuple[str, ...],
) -> None:
    """A route's parameter overrides, written into the client's request in its own dialect."""
    for name, value in overrides:
        if name == "max_tokens":
            for other in replaces:
                data.pop(other, None)
            name = max_tokens_field
        data[name] = value
