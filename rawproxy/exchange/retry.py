"""All retry and fallback policy: which failures another try may cure, how long to wait, where to go next,
and which upstream 400s are cured by sending the request again without a field.

Rules:
- Only a failure before the first byte reached the client moves on (connect error, timeout, 429, 5xx);
  after it, never. The official SDKs' retryable set, without 409, plus the translated statuses (503 ->
  529, 408 -> 504).
- The wait is the SDKs' schedule, ``min(base * 2^n, max)`` less up to 25 % jitter; a ``Retry-After`` the
  upstream sent wins when it is within the cap, and a longer one means: do not wait, move on.
- A try that fails in a retryable way raises :class:`Retry`, which carries the typed error and, for a
  passthrough, the upstream's answer, relayed untouched when no other try follows.
- "400 wording -> rewrite" rules (A2O-R16, A2O-S23) live in :func:`rewrite_for`: once, at once, on the same
  upstream, never counted as a retry.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import orjson

from .._types import Headers
from ..dialects import UpstreamDialect
from ..errors import ClientError, ProxyError, UpstreamStatus
from ..models import ANTHROPIC_EFFORTS, ModelFamily, family_of
from ..profiles import Profile
from ..routing import Upstream
from ..translate import Prepared
from .context import Exchange

__all__ = [
    "LADDER",
    "RETRYABLE",
    "Retry",
    "Rewrite",
    "backoff",
    "parse_retry_after",
    "retry_after",
    "rewrite_for",
    "upstream_status",
    "with_retries",
]

log = logging.getLogger("rawproxy")

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})


class Retry(Exception):
    """A try failed before anything reached the client, in a way another try may cure. ``answer`` is a
    passthrough's error response (status, headers, body), relayed as it came if no other try follows."""

    def __init__(self, error: ProxyError, answer: tuple[int, Headers, bytes] | None = None) -> None:
        super().__init__(error.info.message)
        self.error = error
        self.answer = answer


def retry_after(headers: dict[str, str]) -> str | None:
    """The upstream's wait, in seconds as text: ``retry-after-ms`` (OpenAI's) or ``retry-after``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return f"{float(ms) / 1000:g}"
        except ValueError:
            pass
    return headers.get("retry-after")


def upstream_status(
    dialect: UpstreamDialect, status: int, body: bytes, headers: dict[str, str]
) -> UpstreamStatus:
    """An upstream's error answer as the typed fault, with the wait it asked for (for the client's
    Retry-After, and for ``backoff``)."""
    info = dialect.parse_error(status, body)
    info.retry_after = retry_after(headers)
    return UpstreamStatus(info)


def parse_retry_after(value: str) -> float | None:
    """Seconds from ``Retry-After``: a number, or an HTTP date (RFC 9110 10.2.3); None if neither."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff(attempt: int, wait: str | None, *, base: float, cap: float) -> float | None:
    """How long to wait before try ``attempt + 1``; None: the upstream's wait is too long, move on."""
    if wait:
        seconds = parse_retry_after(wait)
        if seconds is not None:
            return seconds if seconds <= cap else None
    return min(base * (1 << min(attempt, 30)), cap) * (1 - 0.25 * random.random())


@dataclass(frozen=True, slots=True)
class Rewrite:
    """How to send a refused request once more: with another profile (a field dropped), or for what the
    model was found to take (``family``, with ``lesson`` saying what was learned)."""

    profile: Profile | None = None
    family: ModelFamily | None = None
    lesson: str = ""


def _adaptive_only(f: ModelFamily, _: re.Match[str]) -> ModelFamily:
    return replace(
        f, budgets=False, adaptive=True, efforts=f.efforts or ANTHROPIC_EFFORTS, shows_thinking=False
    )


def _levels(f: ModelFamily, m: re.Match[str]) -> ModelFamily:
    named = {v.strip() for v in m.group(1).split(",")}
    return replace(f, efforts=tuple(v for v in ANTHROPIC_EFFORTS if v in named))


# M26-08, the ladder: Anthropic's refusals (verbatim in tests/fixtures/research/anthropic_models_2026.md)
# and what each teaches about the model that answered it. An error no rule matches is relayed unmodified.
LADDER: tuple[tuple[re.Pattern[str], Callable[[ModelFamily, re.Match[str]], ModelFamily], str], ...] = (
    (
        re.compile(r'"thinking\.type\.enabled" is not supported for this model'),
        _adaptive_only,
        "adaptive thinking only",
    ),
    (
        re.compile(r"^adaptive thinking is not supported on this model"),
        lambda f, _: replace(f, adaptive=False, budgets=True, efforts=()),
        "no adaptive thinking: budgets",
    ),
    (
        re.compile(
            r"does not support the effort parameter|^output_config\.effort: Extra inputs are not permitted"
        ),
        lambda f, _: replace(f, efforts=()),
        "no effort",
    ),
    (
        re.compile(r"^output_config\.format: Extra inputs are not permitted"),  # Bedrock (models.dev#1765)
        lambda f, _: replace(f, json_schema=False),
        "no JSON schema: a forced answer tool",
    ),
    (
        re.compile(r"does not support effort level '\w+'\. Supported levels: ([a-z, ]+)\."),
        _levels,
        "its effort levels",
    ),
    (
        re.compile(r"^`?(?:temperature|top_p|top_k)`? is deprecated for this model"),
        lambda f, _: replace(f, sampling=False),
        "no temperature, top_p or top_k",
    ),
    (
        re.compile(r"^`?temperature`? and `?top_p`? cannot both be specified for this model"),
        lambda f, _: replace(f, sampling_pair=False),
        "temperature or top_p, not both",
    ),
    (
        re.compile(r"^Thinking may not be enabled when tool_choice forces tool use"),
        lambda f, _: replace(f, thinks_unasked=True),
        "no forced tool (it thinks)",
    ),
)


def _message(error_body: bytes) -> str:
    try:
        data = orjson.loads(error_body)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def rewrite_for(prepared: Prepared, status: int, error_body: bytes) -> Rewrite | None:
    """How to send a request the upstream refused with a 400 once more, when another try can cure it:
    without a field we sent that it refused (A2O-R16, A2O-S23), or for what the model was found to take
    (the ladder, M26-08); None when sending it again would not help."""
    if status != 400:
        return None
    ctx = prepared.ctx
    profile = ctx.profile
    if (
        profile.replay_reasoning
        and b"reasoning_content" in error_body
        and b'"reasoning_content"' in prepared.body
    ):
        log.warning("upstream rejected a field; retrying once without it")
        return Rewrite(profile=replace(profile, replay_reasoning=False))
    if profile.stream_usage and b"stream_options" in error_body and b'"stream_options"' in prepared.body:
        log.warning("upstream rejected a field; retrying once without it")
        return Rewrite(profile=replace(profile, stream_usage=False))
    message = _message(error_body)
    if not message:
        return None
    family = ctx.family or family_of(ctx.upstream_model)
    for pattern, learn, lesson in LADDER:
        found = pattern.search(message)
        if found is not None:
            learned = learn(family, found)
            return Rewrite(family=learned, lesson=lesson) if learned != family else None
    return None


Try = Callable[[Exchange, Upstream, str, bool], Awaitable[None]]  # (exchange, upstream, model, last try?)


async def with_retries(
    ex: Exchange, tries: Sequence[tuple[Upstream, str]], attempt: Try
) -> tuple[int, Headers, bytes] | None:
    """The route's upstream, then its fallbacks; each tried again up to its ``retries``. Returns a
    passthrough's last error answer to relay untouched (when its tries ended early), else None once a try
    succeeded; raises the last failure otherwise. Nothing is tried again once the client has bytes."""
    config, sink, on_failure = ex.shared.config, ex.sink, ex.shared.metrics.upstream_error
    base, cap = config.retry_backoff, config.retry_backoff_max
    failure: Retry | None = None
    for number, (up, target) in enumerate(tries):
        for count in range(up.retries + 1):
            final = number == len(tries) - 1 and count == up.retries
            try:
                await attempt(ex, up, target, final)
                return None
            except Retry as exc:
                failure = exc
                on_failure(up, exc.error)
            except ProxyError as exc:
                if not isinstance(exc, ClientError):
                    on_failure(up, exc)
                if final or exc.info.status not in RETRYABLE or (sink.started and not sink.discard()):
                    raise
                failure = Retry(exc)
            if count == up.retries:
                break
            delay = backoff(count, failure.error.info.retry_after, base=base, cap=cap)
            if delay is None:
                log.warning("upstream %s: %s; Retry-After is too long to wait", up.name, failure)
                break
            log.warning("upstream %s: %s; retrying in %.2fs", up.name, failure, delay)
            await asyncio.sleep(delay)
        if number + 1 < len(tries):
            assert failure is not None
            log.warning("upstream %s: %s; falling back to %s", up.name, failure, tries[number + 1][0].name)
    assert failure is not None
    if failure.answer is not None:  # a passthrough whose tries ended early (a Retry-After too long)
        return failure.answer
    raise failure.error
