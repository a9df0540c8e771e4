"""Every top-level field an OpenAI-compatible chat completions endpoint may receive from rawproxy.

Written out independently of the proxy's code, so the tests that use it can catch a field leaking
through (A2O-R28)."""

from __future__ import annotations

OPENAI_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "reasoning",
        "user",
        "stream",
        "stream_options",
    }
)
