"""What upstream models were found to take (CONFORMANCE.md M26-08, the ladder's memory).

``retry.rewrite_for`` reads a refusal and says what it teaches; a ``Lessons`` keeps it per upstream and
model, so the next request is right the first time. Bounded (the oldest forgotten first) and expiring (a
model's rules may change again); each lesson is logged once, at info, when learned.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from ..models import ModelFamily

__all__ = ["Lessons"]

log = logging.getLogger("rawproxy")


class Lessons:
    """What upstream models were found to take (M26-08), per upstream and model: bounded (the oldest
    forgotten first) and expiring (a model's rules may change again)."""

    def __init__(self, size: int = 256, seconds: float = 3600.0) -> None:
        self.size = size
        self.seconds = seconds
        self._learned: OrderedDict[tuple[str, str], tuple[float, ModelFamily]] = OrderedDict()

    def get(self, upstream: str, model: str) -> ModelFamily | None:
        found = self._learned.get((upstream, model))
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._learned[(upstream, model)]
            return None
        return found[1]

    def learn(self, upstream: str, model: str, family: ModelFamily, lesson: str) -> None:
        self._learned[(upstream, model)] = (time.monotonic() + self.seconds, family)
        self._learned.move_to_end((upstream, model))
        while len(self._learned) > self.size:
            self._learned.popitem(last=False)
        log.info("learned from upstream %s that %s takes %s; retrying once", upstream, model, lesson)
