"""The refusals of Anthropic's Messages API for the models of 2026, as the fake upstream's strict mode.

A test passes only with a request the real API would take: the fake refuses what the API refuses, with
the API's own words (the 400 ``invalid_request_error`` messages quoted verbatim in
``tests/fixtures/research/anthropic_models_2026.md``, section b). Which model takes what comes from the
proxy's own registry (``rawproxy.models``), so the two cannot drift apart; the wordings are the API's.
Checked in the API's order where the research shows it (with thinking on, the thinking rule on
temperature wins over the "deprecated" one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...models import family_of

__all__ = ["refusal", "thinking_shown"]

ENABLED_REFUSED: Final = (
    '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
    '"output_config.effort" to control thinking behavior.'
)
DISABLED_REFUSED: Final = (
    '"thinking.type.disabled" is not supported for this model. Use "thinking.type.adaptive" and '
    '"output_config.effort" to control thinking behavior.'
)
ADAPTIVE_REFUSED: Final = "adaptive thinking is not supported on this model"
EFFORT_REFUSED: Final = "This model does not support the effort parameter."
FORCED_TOOL_REFUSED: Final = "Thinking may not be enabled when tool_choice forces tool use."
TEMPERATURE_WITH_THINKING: Final = (
    "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode. Please consult our "
    "documentation at https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
)
# Bedrock's words for a field a model does not take (models.dev#1765: output_config.format on Opus 4.7
# there; the research's B1: output_config.effort before 4.6); the direct API's own are not on record.
FORMAT_REFUSED: Final = "output_config.format: Extra inputs are not permitted"
SAMPLING_PAIR_REFUSED: Final = (  # BerriAI/litellm#15097 (full JSON, direct API), Vali-98/ChatterUI#564
    "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
)
BUDGET_OVER_MAX: Final = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)


UNTHOUGHT_TOOL_TURN = (
    "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When "
    "`thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the "
    "lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from "
    "previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


def _over_cap(asked: int, cap: int, model: str) -> str:
    """The API's words for a max_tokens over the model's output cap (anthropics/claude-code#24451:
    "max_tokens: 128001 > 64000, which is the maximum allowed number of output tokens for
    claude-opus-4-5-20251101"); the cap is the registry's."""
    return f"max_tokens: {asked} > {cap}, which is the maximum allowed number of output tokens for {model}"


def _deprecated(name: str) -> str:
    return f"`{name}` is deprecated for this model."


def _effort_not_supported(effort: str, values: tuple[str, ...]) -> str:
    """Recorded from api.anthropic.com (xhigh on claude-opus-4-6, pydantic-ai's cassette in
    tests/fixtures/transcripts): the levels are listed sorted."""
    return (
        f"This model does not support effort level '{effort}'. Supported levels: {', '.join(sorted(values))}."
    )


def _foreign_signature(body: dict[str, Any]) -> str | None:
    """A thinking block whose signature Anthropic did not make: refused whatever the model (the API's
    words: lbjlaq/Antigravity-Manager#498, anthropics/claude-code#10627; seen when clients switch between
    Anthropic and other upstreams, ding113/claude-code-hub#518). The fake cannot verify a real signature;
    it knows two that no Anthropic model wrote: an empty one and rawproxy's own envelope (rp1.)."""
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") == "thinking":
                signature = block.get("signature")
                if not signature or (isinstance(signature, str) and signature.startswith("rp1.")):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


def _final_turn_without_thinking(body: dict[str, Any]) -> str | None:
    """With budget thinking on, the assistant turn of the lastmost tool round must start with its
    thinking block (the API's words, seen on Anthropic, Bedrock and Vertex: OpenRouterTeam/
    ai-sdk-provider#162, anomalyco/opencode#3077, znlsl/Antigravity2Api#11). Checked for ``enabled``
    only: whether adaptive thinking, which may skip thinking on a turn, enforces it is not documented."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    last = messages[-1] if messages else None
    content = last.get("content") if last is not None else None
    if not isinstance(content, list) or not any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    ):
        return None
    index = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "assistant"), None
    )
    blocks = messages[index].get("content") if index is not None else None
    if index is None or not isinstance(blocks, list) or not blocks:
        return None
    first = blocks[0].get("type") if isinstance(blocks[0], dict) else None
    if first in ("thinking", "redacted_thinking"):
        return None
    return UNTHOUGHT_TOOL_TURN.format(index=index, found=first)


def refusal(body: dict[str, Any], behaves_like: Mapping[str, str] | None = None) -> str | None:
    """The API's 400 message for ``body`` sent to its model, or None when the model takes it.
    ``behaves_like`` plays a model no registry knows yet by the rules of a known one (the ladder's
    test: ``{"claude-opus-6-0": "claude-opus-4-8"}``)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.lower().startswith("claude-"):
        return None  # an Anthropic-compatible server's own model: its rules are not Anthropic's
    family = family_of((behaves_like or {}).get(model, model))
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and family.output_cap is not None and max_tokens > family.output_cap:
        return _over_cap(max_tokens, family.output_cap, model)
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled" and not family.budgets:
        return ENABLED_REFUSED
    if kind == "adaptive" and not family.adaptive:
        return ADAPTIVE_REFUSED
    if kind == "disabled" and not family.may_disable:
        return DISABLED_REFUSED
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort is not None:
        if not family.efforts:
            return EFFORT_REFUSED
        if effort not in family.efforts:
            return _effort_not_supported(str(effort), family.efforts)
    if isinstance(output_config, dict) and "format" in output_config and not family.json_schema:
        return FORMAT_REFUSED
    if (forged := _foreign_signature(body)) is not None:
        return forged
    if kind == "enabled" and (unthought := _final_turn_without_thinking(body)) is not None:
        return unthought
    thinks = kind in ("enabled", "adaptive") or (kind is None and family.thinks_unasked)
    if kind == "enabled" and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and budget >= int(body.get("max_tokens") or 0):
            return BUDGET_OVER_MAX
    temperature = body.get("temperature")
    if thinks:
        if temperature is not None and temperature != 1:
            return TEMPERATURE_WITH_THINKING
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            return FORCED_TOOL_REFUSED
    if not family.sampling:
        if temperature is not None and temperature != 1:
            return _deprecated("temperature")
        for name in ("top_p", "top_k"):
            if name in body:
                return _deprecated(name)
    elif not family.sampling_pair and temperature is not None and body.get("top_p") is not None:
        return SAMPLING_PAIR_REFUSED
    return None


def thinking_shown(body: dict[str, Any], behaves_like: Mapping[str, str] | None = None) -> bool:
    """Whether the model writes its thinking out: on the adaptive-only models the display defaults to
    "omitted" (the block comes back with a signature and no text) unless ``display: "summarized"`` is
    asked (M26-05; AAswordman/Operit#568, promptfoo/promptfoo#10830)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.lower().startswith("claude-"):
        return True
    thinking = body.get("thinking")
    display = thinking.get("display") if isinstance(thinking, dict) else None
    if display is not None:
        return bool(display != "omitted")
    return family_of((behaves_like or {}).get(model, model)).shows_thinking
