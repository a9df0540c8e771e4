"""What both dialects share across requests: the script queue, the id sequence and what was recorded.

:class:`UpstreamState` is the part of :class:`~.server.FakeUpstream` that the dialect renderers see. It
holds no socket, so ``openai_chat`` and ``anthropic_messages`` depend on it and on :mod:`.wire` only, and
the server (which routes to them) stays the one module that knows both. One sequence number serves both
dialects' ids (``chatcmpl-fake000001``, ``msg_fake000002``, ``req_fake000003``...), in request order, as
the tests that assert on ids expect.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from .script import DEFAULT_MODELS, RecordedRequest, Script, pick

__all__ = ["UpstreamState"]


class UpstreamState:
    def __init__(
        self,
        default: Script | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        models_page_size: int | None = None,
        strict: bool = True,
    ) -> None:
        self.default = default or Script()
        self.models = list(models)  # what Anthropic's GET /v1/models lists
        self.models_page_size = models_page_size  # a page of that list at most, whatever limit is asked
        self.strict = strict  # refuse what Anthropic's API refuses for the model asked (anthropic_rules.py)
        self.behaves_like: dict[str, str] = {}  # a model name -> the known model whose rules it plays
        # An OpenAI-compatible provider whose own rules the Chat Completions side enforces besides
        # OpenAI's ("deepseek", "kimi": openai_rules.PROVIDERS; "gemini"); None: OpenAI's only.
        self.provider: str | None = None
        # In a provider mode (providers.py): the state each answer's tool turn must bring back, by its
        # first call's id, and every difference found in what came back ("messages[2].reasoning_details:
        # missing"): a test asserts it stays empty.
        self.issued: dict[str, dict[str, Any]] = {}
        self.lost: list[str] = []
        # What OpenAI's GET .../models lists: whole entries, so that a test can report output caps the
        # way providers do (``max_completion_tokens``, ``top_provider.max_completion_tokens``...).
        self.openai_models: list[dict[str, Any]] = [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
        ]
        self.requests: list[RecordedRequest] = []
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_cancelled = 0
        self.stream_closed = asyncio.Event()  # set whenever a stream ends early because the client left
        self.chunks_written = 0
        self.seq = 0  # the last id number handed out (see next_seq)
        self._queue: deque[Script] = deque()

    def enqueue(self, *scripts: Script) -> None:
        self._queue.extend(scripts)

    def choose(self, body: Any) -> Script:
        return pick(self._queue, self.default, body)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def raw_bodies(self) -> list[bytes]:
        return [r.raw_body for r in self.requests]

    @property
    def raw_headers(self) -> list[list[tuple[str, str]]]:
        return [list(r.raw_headers) for r in self.requests]

    def stream_left(self) -> None:
        """A stream ended because its client went away (or the handler was cancelled)."""
        self.streams_cancelled += 1
        self.stream_closed.set()
