"""How far ahead a local process is lent: pure (the coordinator passes the clock's readings).

A local process cannot vanish unnoticed (its pipe's end says when it dies) and costs the
coordinator a round trip per message, so it is lent ahead: the items it computes in about
``AHEAD`` seconds, at least two batches (what it computes, and the next one queued), at most
``most`` items (the coordinator's share of the window for it).  The time an item takes is
measured from its results: the time since the previous results, over the items answered.
That counts the round trip too (a process that answers all it holds waits for more), so it
errs long, and the depth it gives is short of what would do: with a deeper queue the
round trip is shared by more items, the measure comes closer to the item's own time, and
the depth grows, in a few steps.  An average follows changes (``WEIGHT``).

Quick items (a microsecond) are then lent in runs of hundreds, one message each way per run,
as ``multiprocessing.Pool.imap`` queues its chunks ahead; slow items (10 ms and more) are lent
two batches at a time as before, so that no process holds much more than it is computing
when the stream nears its end.
"""

from __future__ import annotations

from dataclasses import dataclass

AHEAD = 0.010    # seconds of work a local process is lent ahead
WEIGHT = 0.3     # of each new measure in the running average


@dataclass
class LendAhead:
    least: int                 # items: two batches
    item_time: float = 0.0     # seconds per item, measured (0: not yet)
    _last: float | None = None

    def depth(self, most: int) -> int:
        """Items to lend the process at most, now."""
        if self.item_time <= 0:
            return self.least
        return max(self.least, min(most, int(AHEAD / self.item_time)))

    def results(self, now: float, count: int) -> None:
        """``count`` results came at ``now``."""
        if count > 0 and self._last is not None:
            sample = max(now - self._last, 1e-9) / count
            self.item_time = (sample if self.item_time <= 0
                              else (1 - WEIGHT) * self.item_time + WEIGHT * sample)
        self._last = now
