"""What the content rules look at in a request: :class:`RequestFacts`, read lazily from the client's body.

Each fact (thinking asked for, a web search tool, an image, the estimated input tokens) is computed only
when a configured rule asks for it, so a proxy without rules never reads the body. Token counts follow
tokens.py's rules of thumb; base64 data counts as one image, never as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from .. import tokens

__all__ = ["RequestFacts"]


class RequestFacts:
    """What the content rules look at, read from the client's request body (either dialect), each
    computed only when a configured rule asks for it: a proxy with no rules pays nothing."""

    __slots__ = ("_data", "_headers", "_image", "_tokens", "dialect")

    def __init__(
        self,
        data: Mapping[str, Any],
        dialect: Literal["anthropic", "openai"],
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self._data = data
        self._headers = headers  # the client's, names lower-cased
        self.dialect = dialect
        self._tokens: int | None = None
        self._image: bool | None = None

    @property
    def thinking(self) -> bool:
        """Thinking asked for on purpose. Claude Code sends ``adaptive`` thinking at medium effort on
        every turn, so that alone is not a thinking turn: ``enabled`` (a budget) is, and so is
        ``adaptive`` at high or max effort; for OpenAI clients any reasoning effort above minimal."""
        data = self._data
        if self.dialect == "anthropic":
            thinking = data.get("thinking")
            if not isinstance(thinking, dict):
                return False
            if thinking.get("type") == "enabled":
                return True
            config = data.get("output_config")
            effort = config.get("effort") if isinstance(config, dict) else None
            return thinking.get("type") == "adaptive" and effort in ("high", "max")
        effort = data.get("reasoning_effort")
        reasoning = data.get("reasoning")
        if isinstance(reasoning, dict):
            effort = effort or reasoning.get("effort") or ("medium" if reasoning.get("enabled") else None)
        return isinstance(effort, str) and effort not in ("none", "minimal")

    def _header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self._headers if key == name), None)

    @property
    def subagent(self) -> bool:
        """Claude Code (2.1.33x) marks a subagent's requests with ``x-claude-code-agent-id`` (M26-09)."""
        return self._header(b"x-claude-code-agent-id") is not None

    @property
    def background(self) -> bool:
        """Claude Code's background work says ``x-app: cli-bg`` (M26-09)."""
        return (self._header(b"x-app") or b"").strip().lower() == b"cli-bg"

    @property
    def web_search(self) -> bool:
        data = self._data
        if self.dialect == "openai" and isinstance(data.get("web_search_options"), dict):
            return True
        tools = data.get("tools")
        return isinstance(tools, list) and any(
            isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools
        )

    @property
    def image(self) -> bool:
        if self._image is None:
            self._walk()
        return bool(self._image)

    @property
    def tokens(self) -> int:
        """Estimated input tokens: the text of the system prompt, messages and tools (tokens.py's rules
        of thumb), images at a fixed cost; base64 data is never counted as text."""
        if self._tokens is None:
            self._walk()
        return self._tokens or 0

    def _walk(self) -> None:
        data = self._data
        counter = _Counter()
        counter.add(data.get("system"))
        counter.add(data.get("messages"))
        counter.add(data.get("instructions"))  # the Responses API's
        counter.add(data.get("input"))
        tools = data.get("tools")
        if isinstance(tools, list):
            counter.total += tokens.estimate_text_tokens(orjson.dumps(tools).decode())
        self._tokens, self._image = counter.total, counter.image


_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})


class _Counter:
    __slots__ = ("image", "total")

    def __init__(self) -> None:
        self.total = 0
        self.image = False

    def add(self, value: Any, depth: int = 0) -> None:
        if depth > 32:
            return
        if isinstance(value, str):
            self.total += tokens.estimate_text_tokens(value)
        elif isinstance(value, list):
            for item in value:
                self.add(item, depth + 1)
        elif isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str) and kind in _IMAGE_TYPES:  # a client's list or object: no TypeError
                self.image = True
                self.total += tokens.IMAGE_TOKENS
                return
            for key in (
                "text",
                "content",
                "thinking",
                "input",
                "arguments",
                "tool_calls",
                "function",
                "output",
            ):
                if key in value:
                    item = value[key]
                    self.add(item if not isinstance(item, dict) else orjson.dumps(item).decode(), depth + 1)
            self.total += tokens.MESSAGE_OVERHEAD if "role" in value else 0
