"""Per-upstream quirks as data (decision 5 of CONFORMANCE.md). Pure: no I/O.

An OpenAI-compatible upstream is not one API but a family: OpenAI wants ``max_completion_tokens`` and
no ``temperature`` for its reasoning models, OpenRouter takes a ``reasoning`` object, DeepSeek wants its
reasoning replayed on tool turns, Gemini rejects half of JSON Schema, vLLM and Ollama accept ``top_k``.
Each of those differences is one field here, and the dialect code reads fields, never provider names.

A profile is guessed from the upstream base URL (:func:`guess_profile`) and can be named explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["CLIENT_PROFILES", "PROFILES", "Profile", "guess_profile"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    # "max_completion_tokens" for OpenAI's reasoning models (o1/o3/o4/gpt-5), else "max_tokens" (A2O-R24).
    reasoning_models_use_max_completion_tokens: bool = False
    # OpenAI's reasoning models reject a non-default temperature (A2O-R25).
    drop_temperature_for_reasoning_models: bool = False
    allow_top_k: bool = False
    max_stop_sequences: int | None = None  # OpenAI accepts at most 4 (A2O-R26)
    # How the client's thinking request reaches the upstream (A2O-R27).
    reasoning_param: Literal["reasoning_effort", "reasoning", "none"] = "none"
    reasoning_effort_only_for_reasoning_models: bool = True
    # Replay thinking from history as ``reasoning_content`` (DeepSeek tool turns, A2O-R16).
    replay_reasoning: bool = False
    stream_usage: bool = True  # send stream_options.include_usage (A2O-R30)
    sanitize_schema: bool = False  # strip JSON Schema keywords Gemini-class upstreams reject (A2O-R21)
    empty_assistant_content: Literal["null", "empty"] = "null"  # A2O-R10
    merge_user_turns: bool = False  # strict "roles must alternate" upstreams (A2O-R33)
    forward_user: bool = False  # metadata.user_id -> user (A2O-R31)
    # Text-only content as one string: DeepSeek rejects part lists ("invalid type: sequence").
    string_content: bool = False
    documents: Literal["file", "text"] = "file"  # base64 PDFs as OpenAI file parts or placeholders (A2O-R08)
    buffer_tool_args: bool = False  # hold streamed tool arguments until complete, then repair (A2O-S22)
    split_think_tags: bool = False  # <think>...</think> in content becomes thinking (A2O-N09)
    # Top-level fields a thinking request carries besides, as JSON text (a frozen profile holds no dict):
    # the provider's own switch for thinking that is kept across tool turns (RS-06).
    thinking_fields: str | None = None
    # The same, on every request: for a provider whose models think whether asked or not (MiniMax M2.x).
    request_fields: str | None = None


PROFILES: dict[str, Profile] = {
    "openai": Profile(
        name="openai",
        reasoning_models_use_max_completion_tokens=True,
        drop_temperature_for_reasoning_models=True,
        max_stop_sequences=4,
        reasoning_param="reasoning_effort",
    ),
    "azure": Profile(
        name="azure",
        reasoning_models_use_max_completion_tokens=True,
        drop_temperature_for_reasoning_models=True,
        max_stop_sequences=4,
        reasoning_param="reasoning_effort",
    ),
    "openrouter": Profile(
        name="openrouter", reasoning_param="reasoning", reasoning_effort_only_for_reasoning_models=False
    ),
    "deepseek": Profile(name="deepseek", replay_reasoning=True, string_content=True),
    "gemini": Profile(name="gemini", sanitize_schema=True, max_stop_sequences=5),
    "generic": Profile(name="generic", allow_top_k=True),
    # RS-06, the request-side knobs of providers that think (tests/fixtures/research/reasoning_state_2026.md);
    # what they send back rides the carrier with any profile. Kimi K2: thinking is the model's, on by default.
    "kimi": Profile(name="kimi"),
    # GLM keeps its reasoning across tool turns only with clear_thinking off (docs.z.ai thinking-mode).
    "glm": Profile(name="glm", thinking_fields='{"thinking": {"type": "enabled", "clear_thinking": false}}'),
    # Qwen on DashScope: hybrid models think when asked; preserve_thinking keeps it across turns.
    "qwen": Profile(name="qwen", thinking_fields='{"enable_thinking": true, "preserve_thinking": true}'),
    # MiniMax writes <think> into content unless reasoning_split is on (platform.minimax.io), and M2.x
    # thinks even when asked not to (java.agentscope.io, MiniMax integration): split on every request, so
    # the reasoning comes as reasoning_details, which go back unchanged (RS-04).
    "minimax": Profile(name="minimax", split_think_tags=True, request_fields='{"reasoning_split": true}'),
}

_URL_HINTS = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure"),
    (".services.ai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    ("openrouter.ai", "openrouter"),
    ("deepseek.com", "deepseek"),
    ("generativelanguage.googleapis.com", "gemini"),
    ("api.moonshot.ai", "kimi"),
    ("api.moonshot.cn", "kimi"),
    ("open.bigmodel.cn", "glm"),
    ("api.z.ai", "glm"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
    ("api.minimax.io", "minimax"),
    ("api.minimaxi.com", "minimax"),
)


def guess_profile(base_url: str, name: str | None = None, **overrides: object) -> Profile:
    """The named profile, or the one the base URL suggests; ``generic`` for anything unknown."""
    if name is None:
        name = next((p for hint, p in _URL_HINTS if hint in base_url), "generic")
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown upstream profile {name!r} (known: {', '.join(PROFILES)})") from None
    return replace(profile, **overrides) if overrides else profile  # type: ignore[arg-type]


# ------------------------------------------------------------------------- client identity presets
#
# Decision 7: the headers rawproxy presents to an Anthropic upstream, on every call (messages,
# count_tokens, models). `--upstream-header` overrides any of them by name; `anthropic-beta` values are
# merged with the client's own (passthrough) without duplicates.
#
# - none: the stable API version and rawproxy's own user agent.
# - claude-code: codingplanproxy's exact set (lvysssss/codingplanproxy@8bf0c05 claudecode_headers.py).
#   Its anthropic-version 2026-04-14 is an invented date that api.anthropic.com rejects; it is meant for
#   the Anthropic-compatible "coding plan" endpoints that check for Claude Code.
# - claude-cli: the shape the real Claude Code CLI 2.1.330 sends on API calls (captured requests), with
#   the beta list it sends when experimental betas are off, and `?beta=true` on the path.

CLIENT_PROFILES: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (("anthropic-version", "2023-06-01"),),
    "claude-code": (
        ("anthropic-version", "2026-04-14"),
        ("anthropic-beta", "prompt-caching-2026-04-14,computer-use-2026-04-14"),
        ("user-agent", "claude-code/2.1.107 (node/25.8.0; darwin; amd64)"),
    ),
    "claude-cli": (
        ("user-agent", "claude-cli/2.1.330 (external, cli)"),
        ("x-app", "cli"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24"),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-stainless-lang", "js"),
        ("x-stainless-package-version", "0.128.0"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-arch", "x64"),
        ("x-stainless-runtime", "node"),
        ("x-stainless-runtime-version", "v26.12.1"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-timeout", "600"),
    ),
}
BETA_QUERY_PROFILES = frozenset({"claude-cli"})  # add ?beta=true to messages and count_tokens paths
SESSION_ID_PROFILES = frozenset({"claude-cli"})  # send X-Claude-Code-Session-Id (one per process)
