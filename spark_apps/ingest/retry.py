"""Exponential backoff for the live sources' reconnects."""

from __future__ import annotations

import random


class Backoff:
    """Waits of ``initial``, ``2 x initial``, ... up to ``maximum`` seconds, with up to 10% jitter; :meth:`reset`
    after a success. ``floor`` raises one wait (a rate limit's minimum or its reset time)."""

    def __init__(self, initial: float = 1.0, maximum: float = 320.0, *, jitter: float = 0.1):
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.jitter = jitter
        self._next = initial
        self.failures = 0

    def reset(self) -> None:
        self._next = self.initial
        self.failures = 0

    def next(self, floor: float = 0.0) -> float:
        """The wait before the next attempt (and double the one after it)."""
        self.failures += 1
        wait = max(self._next, floor)
        self._next = min(max(self._next, floor) * 2, max(self.maximum, floor))
        return wait * (1 + random.uniform(0, self.jitter))
