"""Bounding the work in flight: a full queue answers at once with 503 and ``Retry-After`` instead of making the
caller wait (and BentoML log a traceback) until the batching timeout.

One :class:`Admission` per worker process counts the texts its requests carry from the moment they are admitted
until their answer is sent, and measures the worker's throughput while it is busy (texts answered per busy
second, smoothed). A request is admitted when the worker is idle, or when the texts in flight, its own included,
stay within the limit: ``max_queue_s`` seconds of work at the measured throughput, never more than
``max_queue_texts`` nor fewer than ``min_texts`` (one full model batch). So a fast model queues more texts than a
slow one, and no admitted text waits much longer than ``max_queue_s``.
"""

from __future__ import annotations

import math
import time


class Admission:
    """Admit or refuse requests by the texts in flight in this worker (not thread-safe: one event loop)."""

    def __init__(self, *, max_queue_texts: int, max_queue_s: float, min_texts: int, smoothing: float = 0.2) -> None:
        self.max_queue_texts = max_queue_texts
        self.max_queue_s = max_queue_s
        self.min_texts = min(min_texts, max_queue_texts)
        self.smoothing = smoothing
        self.texts = 0
        self.rate: float | None = None  # texts answered per busy second
        self._last = 0.0

    def limit(self) -> int:
        """Most texts in flight now."""
        if self.rate is None:
            return self.max_queue_texts
        return int(max(self.min_texts, min(self.max_queue_texts, self.rate * self.max_queue_s)))

    def retry_after(self) -> int:
        """Whole seconds until the queue has drained at the measured rate (1 to 30)."""
        seconds = self.texts / self.rate if self.rate else 1.0
        return int(min(30, max(1, math.ceil(seconds))))

    def try_admit(self, n: int, now: float | None = None) -> bool:
        """Count ``n`` texts in flight and return True, or return False when they do not fit."""
        if self.texts and self.texts + n > self.limit():
            return False
        if not self.texts:
            self._last = time.monotonic() if now is None else now
        self.texts += n
        return True

    def release(self, n: int, now: float | None = None) -> None:
        """``n`` texts were answered (or their request ended): update the count and the throughput."""
        now = time.monotonic() if now is None else now
        busy = now - self._last
        self._last = now
        self.texts = max(0, self.texts - n)
        if busy > 0 and n > 0:
            sample = n / busy
            self.rate = sample if self.rate is None else self.rate + self.smoothing * (sample - self.rate)
