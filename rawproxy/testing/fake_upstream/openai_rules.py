"""The refusals of OpenAI's Chat Completions API that rawproxy's translation must never earn, as the fake
upstream's strict mode: a ``reasoning_effort`` the model does not take; and, in a provider mode, that
provider's own rules for the reasoning it wants back (issue 16, CONFORMANCE.md RS;
``tests/fixtures/research/reasoning_state_2026.md``).

The wording is the API's (openai/openai-agents-python#2089, anomalyco/opencode#4451; also in
``tests/fixtures/research/anthropic_models_2026.md``): ``Unsupported value: 'minimal' is not supported
with the 'gpt-5.1' model. Supported values are: 'none', 'low', 'medium', and 'high'.``, type
``invalid_request_error``, code ``unsupported_value``. Which model takes which values comes from the
proxy's own registry (``rawproxy.models``); a model it does not know is not checked.
"""

from __future__ import annotations

from typing import Any

from ...models import family_of

__all__ = ["GEMINI_MISSING_SIGNATURE", "PROVIDERS", "gemini_refusal", "refusal"]

# Thinking on by default in both; an assistant turn with tool calls must carry its reasoning_content back.
# DeepSeek V4 (JohnnyZ93/oai-compatible-copilot#215, earendil-works/pi#3636); Kimi K2 (the index counts
# the request's messages from 0: unverified).
PROVIDERS = {
    "deepseek": "The `reasoning_content` in the thinking mode must be passed back to the API.",
    "kimi": "thinking is enabled but reasoning_content is missing in assistant tool call message at index {index}",
}


# Gemini's OpenAI-compatible endpoint (docs: ai.google.dev/gemini-api/docs/thought-signatures; the 400
# seen live in noho/dayu-agent#45), answered as a list: [{"error": {..., "status": "INVALID_ARGUMENT"}}].
GEMINI_MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def gemini_refusal(body: dict[str, Any]) -> str | None:
    """The first call of each assistant tool turn must come back with its thought signature (RS-03)."""
    for position, message in enumerate(body.get("messages") or ()):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            continue
        first = calls[0] if isinstance(calls[0], dict) else {}
        extra = first.get("extra_content")
        google = extra.get("google") if isinstance(extra, dict) else None
        if not (isinstance(google, dict) and isinstance(google.get("thought_signature"), str)):
            name = (first.get("function") or {}).get("name", "")
            return GEMINI_MISSING_SIGNATURE.format(name=name, position=position)
    return None


def _missing_reasoning(body: dict[str, Any], provider: str) -> str | None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "disabled":
        return None
    for index, message in enumerate(body.get("messages") or ()):
        if (
            not isinstance(message, dict)
            or message.get("role") != "assistant"
            or not message.get("tool_calls")
        ):
            continue
        if not isinstance(message.get("reasoning_content"), str):
            return PROVIDERS[provider].format(index=index)
    return None


def _listed(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def refusal(body: dict[str, Any], provider: str | None = None) -> tuple[str, str | None] | None:
    """(message, param) of the API's 400 for ``body``, or None when the model takes it."""
    if provider in PROVIDERS:
        missing = _missing_reasoning(body, provider)
        if missing is not None:
            return missing, None
    model = body.get("model")
    effort = body.get("reasoning_effort")
    if not isinstance(model, str) or effort is None:
        return None
    family = family_of(model)
    if family.protocol != "openai" or not family.efforts or effort in family.efforts:
        return None
    message = (
        f"Unsupported value: '{effort}' is not supported with the '{model}' model. "
        f"Supported values are: {_listed(family.efforts)}."
    )
    return message, "reasoning_effort"
