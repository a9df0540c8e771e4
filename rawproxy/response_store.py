"""The Responses API's ``previous_response_id``: recent answers kept in memory, bounded, oldest out first.

The proxy keeps no state by default (``--responses-store 0``): a client that chains responses must
either send the whole conversation (as the Codex CLI does, with ``store: false``) or start the proxy with
a store. Each entry is the conversation as input items, this request's input and the answer's output
items, so the next request's input continues it. Nothing is written to disk; a request with
``store: false`` is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["ResponseStore"]


class ResponseStore:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, response_id: str) -> list[dict[str, Any]] | None:
        items = self._entries.get(response_id)
        if items is not None:
            self._entries.move_to_end(response_id)  # in use: the last to go
        return items

    def put(self, response_id: str, items: list[dict[str, Any]]) -> None:
        if self.size <= 0:
            return
        self._entries[response_id] = items
        self._entries.move_to_end(response_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def resize(self, size: int) -> None:
        """A reload changed the size: the oldest entries beyond it go."""
        self.size = size
        while len(self._entries) > max(size, 0):
            self._entries.popitem(last=False)
