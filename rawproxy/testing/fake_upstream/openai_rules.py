"""The refusals of OpenAI's Chat Completions API that rawproxy's translation must never earn, as the fake
upstream's strict mode: a ``reasoning_effort`` the model does not take.

The wording is the API's (openai/openai-agents-python#2089, anomalyco/opencode#4451; also in
``tests/fixtures/research/anthropic_models_2026.md``): ``Unsupported value: 'minimal' is not supported
with the 'gpt-5.1' model. Supported values are: 'none', 'low', 'medium', and 'high'.``, type
``invalid_request_error``, code ``unsupported_value``. Which model takes which values comes from the
proxy's own registry (``rawproxy.models``); a model it does not know is not checked.
"""

from __future__ import annotations

from typing import Any

from ...models import family_of

__all__ = ["refusal"]


def _listed(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def refusal(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) of the API's 400 for ``body``, or None when the model takes it."""
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
