"""What each model family accepts: the capability registry, as data. Pure.

The request builders read it instead of branching on names: which ``thinking`` types a family takes and
whether it thinks when not asked, its ``output_config.effort`` values, whether the sampling parameters
(``temperature`` other than 1, ``top_p``, ``top_k``) are still accepted, and how its thinking is shown
by default. A name matches the first family whose patterns match it (``fnmatch``, lower-cased); a name
no family knows gets ``UNKNOWN``: what every Claude model accepted before 2026 (budgets, sampling).

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
- Mythos Preview takes no ``xhigh``; the 5.1/5.5 models refuse a forced tool_choice even unasked.
The research behind each cell, with the verbatim refusals: tests/fixtures/research/anthropic_models_2026.md.
- on the adaptive-only models thinking is shown as "omitted" unless ``display: "summarized"`` is asked
  (AAswordman/Operit#568).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

__all__ = ["ANTHROPIC_EFFORTS", "FAMILIES", "UNKNOWN", "ModelFamily", "anthropic_effort", "family_of"]

ANTHROPIC_EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")  # output_config.effort, in order


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFamily:
    name: str
    patterns: tuple[str, ...]
    budgets: bool  # takes thinking {"type": "enabled", "budget_tokens": n}
    adaptive: bool  # takes thinking {"type": "adaptive"}
    thinks_unasked: bool = False  # thinks when the request says nothing of thinking
    may_disable: bool = True  # takes thinking {"type": "disabled"}
    efforts: tuple[str, ...] = ()  # output_config.effort values it takes; () refuses the field
    sampling: bool = True  # takes temperature other than 1, top_p and top_k
    shows_thinking: bool = True  # False: thinking comes back "omitted" unless display is "summarized"


_ALL_EFFORTS = ANTHROPIC_EFFORTS
_NO_XHIGH = ("low", "medium", "high", "max")

FAMILIES: Final[tuple[ModelFamily, ...]] = (
    ModelFamily(
        name="mythos-preview",  # before "claude-mythos*": no xhigh (platform.claude.com effort docs)
        patterns=("claude-mythos-preview*",),
        budgets=False,
        adaptive=True,
        thinks_unasked=True,
        may_disable=False,
        efforts=_NO_XHIGH,
        sampling=False,
        shows_thinking=False,
    ),
    ModelFamily(
        name="always-thinking",  # Fable and Mythos 5.x, Opus 5.5: adaptive only, "disabled" refused
        patterns=("claude-fable*", "claude-mythos*", "claude-opus-5-5*"),
        budgets=False,
        adaptive=True,
        thinks_unasked=True,
        may_disable=False,
        efforts=_ALL_EFFORTS,
        sampling=False,
        shows_thinking=False,
    ),
    ModelFamily(
        name="claude-5",
        patterns=("claude-sonnet-5*", "claude-opus-5*", "claude-haiku-5*"),
        budgets=False,
        adaptive=True,
        thinks_unasked=True,
        efforts=_ALL_EFFORTS,
        sampling=False,
        shows_thinking=False,
    ),
    ModelFamily(
        name="opus-4.7+",
        patterns=("claude-opus-4-7*", "claude-opus-4-8*"),
        budgets=False,
        adaptive=True,
        efforts=_ALL_EFFORTS,
        sampling=False,
        shows_thinking=False,
    ),
    ModelFamily(
        name="claude-4.6",
        patterns=("claude-opus-4-6*", "claude-sonnet-4-6*"),
        budgets=True,
        adaptive=True,
        efforts=_NO_XHIGH,
    ),
    ModelFamily(
        name="opus-4.5",
        patterns=("claude-opus-4-5*",),
        budgets=True,
        adaptive=False,
        efforts=("low", "medium", "high"),
    ),
)
UNKNOWN: Final = ModelFamily(name="claude (before 2026)", patterns=(), budgets=True, adaptive=False)


@functools.lru_cache(maxsize=1024)
def family_of(model: str) -> ModelFamily:
    """The family ``model`` belongs to (``UNKNOWN`` when none matches); cached: names recur."""
    name = model.lower()
    return next((f for f in FAMILIES if any(fnmatchcase(name, p) for p in f.patterns)), UNKNOWN)


def anthropic_effort(asked: str | None, family: ModelFamily) -> str | None:
    """An OpenAI client's reasoning effort on the family's ``output_config.effort`` scale: the same word
    where it exists (minimal is low), else the nearest lower value the family takes; None when it takes
    none."""
    if not family.efforts or asked is None:
        return None
    wanted = "low" if asked == "minimal" else asked
    if wanted not in ANTHROPIC_EFFORTS:
        return None
    for value in reversed(ANTHROPIC_EFFORTS[: ANTHROPIC_EFFORTS.index(wanted) + 1]):
        if value in family.efforts:
            return value
    return family.efforts[0]
