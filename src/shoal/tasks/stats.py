"""The task service's counters: tasks done and failed, and the rate they finish at.

Pure bookkeeping (the caller passes the clock), so it is tested without waiting.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0   # seconds the throughput is measured over


@dataclass
class Tally:
    """Tasks that ended with a value (``done``) or an error (``failed``)."""

    done: int = 0
    failed: int = 0

    def count(self, ok: bool, n: int = 1) -> None:
        if ok:
            self.done += n
        else:
            self.failed += n


@dataclass
class Throughput:
    """Tasks finished per second over the last :data:`WINDOW` seconds (or since ``start``)."""

    start: float
    _seconds: deque[list[int]] = field(default_factory=deque)   # [whole second, count]

    def add(self, now: float, n: int = 1) -> None:
        second = int(now)
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += n
        else:
            self._seconds.append([second, n])
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        span = min(WINDOW, now - self.start)
        if span <= 0:
            return 0.0
        return sum(n for _, n in self._seconds) / max(span, 1.0)

    def _trim(self, now: float) -> None:
        while self._seconds and self._seconds[0][0] <= now - WINDOW:
            self._seconds.popleft()
