"""What each model family accepts: the capability registry, as data, for both upstream protocols. Pure.

The request builders read it instead of branching on names: which ``thinking`` types a Claude family
takes and whether it thinks when not asked, its effort values (``output_config.effort`` for Claude,
``reasoning_effort`` for OpenAI), whether the sampling parameters (``temperature`` other than 1,
``top_p``, ``top_k``) are still accepted, how its thinking is shown by default, whether it takes a JSON
schema for its answer natively, and its output cap and context window where known. A name matches the
first family whose patterns match it (``fnmatch``, lower-cased, after a ``provider/`` prefix and a
Bedrock ``anthropic.`` prefix); a name no family knows gets ``UNKNOWN``: what every Claude model accepted
before 2026 (budgets, sampling), no native JSON schema, no known limits.

Sources (the public record, verified against the live API by the projects named; CONFORMANCE.md M26):
- adaptive thinking and ``output_config.effort`` from the 4.6 generation on; Opus 4.5 takes low/medium/
  high; Haiku 4.5 and Sonnet 4.5 and older refuse effort; the 4.6 models refuse ``xhigh``
  (askalf/dario#273's probe matrix, pensarai/apex#890, diegosouzapw/OmniRoute#4713);
- Opus 4.7, Opus 4.8 and the 5 generation (Sonnet 5, Opus 5, Fable, Mythos) refuse ``type: "enabled"``
  (tontinton/maki#331, docker/docker-agent#2563, Kilo-Org/kilocode#11906);
- Opus 4.7 and later removed the sampling parameters (Anthropic, "What's new in Claude 4.7";
  models.dev#1468, QuantumNous/new-api#4335);
- Fable and Mythos (and Opus 5.5) think by default and refuse ``disabled``; the other 5-generation
  models think by default; Opus 4.7/4.8 think only when asked (promptfoo/promptfoo#10631);
- Mythos Preview takes no ``xhigh``; the 5.1/5.5 models refuse a forced tool_choice even unasked;
- from Opus 4.1 to the 4.6 models, ``temperature`` and ``top_p`` together are refused ("`temperature`
  and `top_p` cannot both be specified for this model. Please use only one.": BerriAI/litellm#15097 on
  Sonnet 4.5, Vali-98/ChatterUI#564 on Sonnet 4.6, SalesforceAIResearch/MCP-Universe#49 on Opus 4.5);
The research behind each cell, with the verbatim refusals: tests/fixtures/research/anthropic_models_2026.md.
- on the adaptive-only models thinking is shown as "omitted" unless ``display: "summarized"`` is asked
  (AAswordman/Operit#568);
- structured outputs (``output_config.format``) are generally available from the 4.5 generation on
  (platform.claude.com structured-outputs; Opus 5 in its own example, ENTERPILOT/GoModel#963);
- context windows and output caps: platform.claude.com models overview and each model's page (Opus 4.6,
  Sonnet 4.6, Opus 4.8 and the 5 generation 1M/128K; the 4.5 generation 200K/64K);
- OpenAI ``reasoning_effort`` values per model: the OpenAI API reference as quoted in
  openai/openai-agents-python#2089 (gpt-5.1 refuses minimal), anomalyco/opencode#36141 (gpt-5.6 adds max).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final, Literal

__all__ = [
    "ANTHROPIC_EFFORTS",
    "FAMILIES",
    "OPENAI_EFFORTS",
    "UNKNOWN",
    "ModelFamily",
    "anthropic_effort",
    "family_of",
    "openai_effort",
]

ANTHROPIC_EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")  # output_config.effort, in order
OPENAI_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # reasoning_effort
_CLASSIC_EFFORTS: Final = ("low", "medium", "high")  # what any OpenAI-compatible reasoning model takes

_K: Final = 1000
_M: Final = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFamily:
    name: str
    patterns: tuple[str, ...]
    protocol: Literal["anthropic", "openai"] = "anthropic"
    budgets: bool = False  # takes thinking {"type": "enabled", "budget_tokens": n}
    adaptive: bool = False  # takes thinking {"type": "adaptive"}
    thinks_unasked: bool = False  # thinks when the request says nothing of thinking
    may_disable: bool = True  # takes thinking {"type": "disabled"}
    reasoning: bool = False  # an OpenAI reasoning model: max_completion_tokens, no temperature
    efforts: tuple[str, ...] = ()  # effort values it takes, on its protocol's scale; () refuses the field
    sampling: bool = True  # takes temperature other than 1, top_p and top_k
    sampling_pair: bool = True  # takes temperature and top_p in one request
    shows_thinking: bool = True  # False: thinking comes back "omitted" unless display is "summarized"
    json_schema: bool = False  # takes a JSON schema for its answer (output_config.format, response_format)
    output_cap: int | None = None  # the most output tokens it gives, where known
    context_window: int | None = None  # input plus output tokens, where known


_ALL_EFFORTS = ANTHROPIC_EFFORTS
_NO_XHIGH = ("low", "medium", "high", "max")


def _adaptive_only(
    name: str,
    patterns: tuple[str, ...],
    efforts: tuple[str, ...],
    *,
    thinks_unasked: bool = False,
    may_disable: bool = True,
) -> ModelFamily:
    """A Claude family of 2026: adaptive thinking only, no sampling parameters, thinking omitted unless
    asked to be summarized, structured outputs, 128K out of a 1M window; the rest is what differs."""
    return ModelFamily(
        name=name,
        patterns=patterns,
        adaptive=True,
        efforts=efforts,
        sampling=False,
        shows_thinking=False,
        json_schema=True,
        output_cap=128 * _K,
        context_window=1 * _M,
        thinks_unasked=thinks_unasked,
        may_disable=may_disable,
    )


# Claude, newest rules first: the first family whose patterns match wins.
_CLAUDE: Final[tuple[ModelFamily, ...]] = (
    # before "claude-mythos*": no xhigh (platform.claude.com effort docs)
    _adaptive_only(
        "mythos-preview", ("claude-mythos-preview*",), _NO_XHIGH, thinks_unasked=True, may_disable=False
    ),
    # Fable and Mythos 5.x, Opus 5.5: "disabled" refused
    _adaptive_only(
        "always-thinking",
        ("claude-fable*", "claude-mythos*", "claude-opus-5-5*"),
        _ALL_EFFORTS,
        thinks_unasked=True,
        may_disable=False,
    ),
    _adaptive_only(
        "claude-5",
        ("claude-sonnet-5*", "claude-opus-5*", "claude-haiku-5*"),
        _ALL_EFFORTS,
        thinks_unasked=True,
    ),
    _adaptive_only("opus-4.7+", ("claude-opus-4-7*", "claude-opus-4-8*"), _ALL_EFFORTS),
    ModelFamily(
        name="claude-4.6",
        patterns=("claude-opus-4-6*", "claude-sonnet-4-6*"),
        budgets=True,
        adaptive=True,
        efforts=_NO_XHIGH,
        sampling_pair=False,
        json_schema=True,
        output_cap=128 * _K,
        context_window=1 * _M,
    ),
    ModelFamily(
        name="opus-4.5",
        patterns=("claude-opus-4-5*",),
        budgets=True,
        efforts=("low", "medium", "high"),
        sampling_pair=False,
        json_schema=True,
        output_cap=64 * _K,
        context_window=200 * _K,
    ),
    ModelFamily(
        name="claude-4.5",  # Sonnet and Haiku 4.5: budgets, no effort at all
        patterns=("claude-sonnet-4-5*", "claude-haiku-4-5*"),
        budgets=True,
        sampling_pair=False,
        json_schema=True,
        output_cap=64 * _K,
        context_window=200 * _K,
    ),
    ModelFamily(
        name="opus-4.1",  # the first to refuse temperature and top_p together (MCP-Universe#49)
        patterns=("claude-opus-4-1*",),
        budgets=True,
        sampling_pair=False,
        output_cap=32 * _K,
        context_window=200 * _K,
    ),
)


def _openai(
    name: str, patterns: tuple[str, ...], efforts: tuple[str, ...], cap: int, window: int | None = None
) -> ModelFamily:
    """An OpenAI family: a reasoning model when it takes efforts; every one takes a JSON schema."""
    return ModelFamily(
        name=name,
        patterns=patterns,
        protocol="openai",
        reasoning=efforts != (),
        efforts=efforts,
        json_schema=True,
        output_cap=cap,
        context_window=window,
    )


_TO_HIGH = ("low", "medium", "high")
_NONE_TO_HIGH = ("none", *_TO_HIGH)
_NONE_TO_XHIGH = (*_NONE_TO_HIGH, "xhigh")

# OpenAI: the more specific names first (gpt-5.1-codex-max before gpt-5.1, gpt-5-pro before gpt-5).
_OPENAI: Final[tuple[ModelFamily, ...]] = (
    _openai("gpt-5.6", ("gpt-5.6*",), (*_NONE_TO_XHIGH, "max"), 128 * _K),
    _openai("gpt-5.4/5.5", ("gpt-5.4*", "gpt-5.5*"), _NONE_TO_XHIGH, 128 * _K),
    _openai("gpt-5.3-codex", ("gpt-5.3-codex*",), (*_TO_HIGH, "xhigh"), 128 * _K),
    _openai("gpt-5.2", ("gpt-5.2*", "gpt-5.3*"), _NONE_TO_XHIGH, 128 * _K),
    _openai("gpt-5.1-codex-max", ("gpt-5.1-codex-max*",), (*_TO_HIGH, "xhigh"), 128 * _K),
    _openai("gpt-5.1", ("gpt-5.1*",), _NONE_TO_HIGH, 128 * _K),
    _openai("gpt-5-pro", ("gpt-5-pro*",), ("high",), 128 * _K, 400 * _K),
    _openai("gpt-5", ("gpt-5*",), ("minimal", *_TO_HIGH), 128 * _K, 400 * _K),
    _openai("o-series", ("o[0-9]*",), _TO_HIGH, 100 * _K, 200 * _K),
    _openai("gpt-4.1", ("gpt-4.1*",), (), 32768, 1_047_576),
    _openai("gpt-4o", ("gpt-4o*", "chatgpt-4o*"), (), 16384, 128 * _K),
    _openai("gpt-4-turbo", ("gpt-4-turbo*",), (), 4096, 128 * _K),
    _openai("gpt-4", ("gpt-4*",), (), 8192),
    _openai("gpt-3.5", ("gpt-3.5*",), (), 4096),
    # DeepSeek's API docs: 8K output for chat, 64K for the reasoner; JSON mode, no schema.
    ModelFamily(name="deepseek-chat", patterns=("deepseek-chat*",), protocol="openai", output_cap=8192),
    ModelFamily(
        name="deepseek-reasoner", patterns=("deepseek-reasoner*",), protocol="openai", output_cap=64 * 1024
    ),
)

FAMILIES: Final[tuple[ModelFamily, ...]] = _CLAUDE + _OPENAI
UNKNOWN: Final = ModelFamily(name="unknown (the rules before 2026)", patterns=(), budgets=True)


def _bare(model: str) -> str:
    """The name without a router's ``provider/`` prefix or a Bedrock ``[region.]anthropic.`` one."""
    name = model.rsplit("/", 1)[-1].lower()
    at = name.find("anthropic.claude-")
    return name[at + len("anthropic.") :] if at >= 0 else name


@functools.lru_cache(maxsize=1024)
def family_of(model: str) -> ModelFamily:
    """The family ``model`` belongs to (``UNKNOWN`` when none matches); cached: names recur."""
    name = _bare(model)
    return next((f for f in FAMILIES if any(fnmatchcase(name, p) for p in f.patterns)), UNKNOWN)


def _nearest(wanted: str, scale: tuple[str, ...], takes: tuple[str, ...]) -> str:
    """``wanted`` if taken, else the nearest lower value taken, else the lowest value taken."""
    for value in reversed(scale[: scale.index(wanted) + 1]):
        if value in takes:
            return value
    return takes[0]


def anthropic_effort(asked: str | None, family: ModelFamily) -> str | None:
    """An OpenAI client's reasoning effort on the family's ``output_config.effort`` scale: the same word
    where it exists (minimal is low), else the nearest lower value the family takes; None when it takes
    none."""
    if not family.efforts or asked is None:
        return None
    wanted = "low" if asked == "minimal" else asked
    if wanted not in ANTHROPIC_EFFORTS:
        return None
    return _nearest(wanted, ANTHROPIC_EFFORTS, family.efforts)


def openai_effort(asked: str, family: ModelFamily) -> str:
    """An Anthropic effort (low..max) on the OpenAI model's ``reasoning_effort`` scale, clamped the same
    way: the same word where the model takes it, else the nearest lower one (max on gpt-5.2 is xhigh,
    on gpt-5.1 high); low, medium or high for a model the registry does not know."""
    takes = family.efforts if family.protocol == "openai" and family.efforts else _CLASSIC_EFFORTS
    wanted = asked if asked in OPENAI_EFFORTS else "medium"
    return _nearest(wanted, OPENAI_EFFORTS, takes)
