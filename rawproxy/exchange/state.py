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

from ..errors import ClientError

__all__ = ["ResponseStore", "continue_conversation", "remember"]


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


def continue_conversation(store: ResponseStore, data: dict[str, Any]) -> None:
    """A Responses request's ``input`` as a list of items, after the conversation its
    ``previous_response_id`` names (the store's: 400 when it is off or does not know the id)."""
    given = data.get("input")
    items = [{"type": "message", "role": "user", "content": given}] if isinstance(given, str) else given
    previous = data.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or not previous:
            raise ClientError("previous_response_id: expected a response id")
        if store.size <= 0:
            raise ClientError(
                "previous_response_id: this proxy keeps no responses (start it with --responses-store N, "
                "or send the whole conversation as input)"
            )
        earlier = store.get(previous)
        if earlier is None:
            raise ClientError(f"previous_response_id: no response {previous!r} is known to this proxy")
        items = earlier + (items if isinstance(items, list) else [])
    if items is not None:
        data["input"] = items


def remember(store: ResponseStore, data: dict[str, Any], echo: dict[str, Any]) -> None:
    """A finished Responses answer, kept for a later ``previous_response_id`` (unless ``store:
    false``, or the store is off)."""
    output = echo.get("output")
    if output is None or not echo.get("store") or store.size <= 0:
        return
    given = data.get("input")
    store.put(str(echo["id"]), [*(given if isinstance(given, list) else []), *output])
