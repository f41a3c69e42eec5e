"""The coordinator's bookkeeping, pure: which item is where, and what may be printed.

No sockets, no clocks, no input reading: the coordinator calls in when something
happened and acts on the answers, and the tests drive it directly.

Rules (those of Pando, without its weaknesses):

* Items get ids in input order, from 0, never reused.  The coordinator admits a value only
  when a volunteer has room for it, and at most ``window`` items are open at a time (lent,
  waiting to be lent again, or settled but waiting for an earlier one to be printed): this
  bounds memory on an endless input.
* Lending always takes the lowest waiting ids, so items taken back from a lost volunteer go
  out again before any newer item.
* A volunteer holds at most its capacity, and its results count only for items it holds:
  none can settle (or forge) another's.  A result that arrives twice is used once.  An item
  is held by one volunteer at a time.
* A result that is an error settles the item as failed at once: processors are expected
  to be deterministic, and Pando's endless re-lending of such items is what we avoid.
  An item whose volunteer was lost ``max_losses`` times is failed too (it probably kills
  its volunteers).  A lost volunteer's items all count the loss (which one killed it is
  not known), so an item lost once is lent again *alone*, to a volunteer that holds nothing
  else and gets nothing more until it answers: innocent neighbours of a killer item are lost
  once, then computed; the killer is lost alone until it fails.
* Ordered streams release outcomes by id; unordered ones as they settle.
* Stragglers (beyond Pando): an item lent longer ago than several times the stream's usual
  time from lending to result (``overdue``) may be lent *as well* to a volunteer that holds
  nothing (``lend_copy``): one slow or frozen volunteer then no longer holds up an ordered
  stream.  The first result settles the item, and the other holder's copy is taken back
  (its late result is a duplicate, used never).  An item has at most two holders; a holder
  lost while the other still computes the item costs it no loss.  Times come from the
  ledger's clock, injectable, so tests drive it without waiting.

Why runs: a fast stream spends its coordinator's time per item, so the common case works on
*runs* of consecutive ids as one unit (admitted together, lent as ``range(start, end)``,
settled by one ``results`` message, released as a list of values), with set and dict
operations that run in C.  Per-item state exists only where an item's story differs from its
neighbours': a failure (one :class:`Outcome`), a loss (a loss count, a re-lend heap).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Volunteer = object  # anything hashable that stands for one volunteer (the coordinator: its link)


@dataclass(slots=True)
class Outcome:
    """How one item ended: its result, or why it failed."""

    id: int
    ok: bool
    value: Any = None
    error: str = ""
    traceback: str = ""
    item: Any = None          # the input value, kept for failures (to say which item failed)


@dataclass(slots=True)
class Lent:
    """Items lent in one go: ``ids`` is a range when they are consecutive (the common case,
    sent as a start and a list of values), else a list."""

    ids: range | list[int]
    values: list[Any]

    def pairs(self) -> list[tuple[int, Any]]:
        return list(zip(self.ids, self.values, strict=True))

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class Run:
    """Results of consecutive items, released together (``values[k]`` is item ``start + k``)."""

    start: int
    values: list[Any]


Released = Run | Outcome   # an ok run, or one failed item

STRAGGLER_FACTOR = 4.0   # overdue: lent this many times the usual time ago ...
MIN_OVERDUE = 0.25       # ... and at least this many seconds
LATENCY_WEIGHT = 0.1     # of each new measure in the usual time's running average


class Ledger:
    def __init__(self, *, window: int, max_losses: int = 3, ordered: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.max_losses = max_losses
        self.ordered = ordered
        self._clock = clock
        self._lent_at: dict[int, float] = {}        # held ids, in the order they were lent
        self._copies: dict[int, tuple[Volunteer, Volunteer]] = {}   # id -> (first, second)
        self.latency = 0.0       # usual seconds from lending an item to its result (0: none)
        self.copies = 0          # items lent to a second volunteer as stragglers
        self.copies_won = 0      # ... whose second volunteer answered first
        self._values: dict[int, Any] = {}           # admitted and not yet settled
        self._fresh = 0                             # ids from here to `admitted` never lent
        self._skip: set[int] = set()                # fresh ids settled already (bad input)
        self._relend: list[int] = []                # heap of ids taken back from the lost
        self._losses: dict[int, int] = {}
        self._relends: dict[int, int] = {}          # times an id was lent again
        self._held: dict[Volunteer, set[int]] = {}
        self._capacity: dict[Volunteer, int] = {}
        self._alone: dict[Volunteer, int] = {}      # volunteer -> the lost-before item it holds
        self._settled: dict[int, Released] = {}     # ordered: settled, keyed by first id
        self._released_queue: deque[Released] = deque()
        self.admitted = 0        # == the next id
        self.released = 0
        self.next_release = 0    # ordered: the id whose outcome is printed next
        self.duplicates = 0
        self.unsolicited = 0
        self.relent = 0
        self.peak_open = 0
        self.input_done = False

    # -- volunteers -----------------------------------------------------------------------
    def join(self, volunteer: Volunteer, capacity: int) -> None:
        if volunteer in self._held:
            raise ValueError(f"volunteer {volunteer!r} joined twice")
        self._held[volunteer] = set()
        self._capacity[volunteer] = max(0, capacity)   # 0: a relay with no children yet

    def set_capacity(self, volunteer: Volunteer, capacity: int) -> None:
        """A relay's capacity follows its children; items above a lowered one stay lent."""
        if volunteer in self._capacity:
            self._capacity[volunteer] = max(0, capacity)

    def volunteers(self) -> list[Volunteer]:
        return list(self._held)

    def held(self, volunteer: Volunteer) -> frozenset[int]:
        return frozenset(self._held.get(volunteer, ()))

    def holding(self, volunteer: Volunteer) -> int:
        return len(self._held.get(volunteer, ()))

    def free_slots(self, volunteer: Volunteer) -> int:
        held = self._held.get(volunteer)
        return 0 if held is None else max(0, self._capacity[volunteer] - len(held))

    def lose(self, volunteer: Volunteer) -> list[int]:
        """The volunteer is gone: its items wait to be lent again (the ids returned), except
        those lost too often, which are failed."""
        held = self._held.pop(volunteer, set())
        self._capacity.pop(volunteer, None)
        self._alone.pop(volunteer, None)
        back = []
        for item_id in sorted(held):
            pair = self._copies.pop(item_id, None)
            if pair is not None and (pair[1] if pair[0] == volunteer else pair[0]) in self._held:
                continue   # the other holder still computes it: nothing is lost
            self._lent_at.pop(item_id, None)
            losses = self._losses.get(item_id, 0) + 1
            self._losses[item_id] = losses
            if losses >= self.max_losses:
                self._settle_failed(Outcome(
                    item_id, False, error=f"ItemLost: {losses} volunteers were lost "
                                          "while computing this item",
                    item=self._values[item_id]))
                continue
            heapq.heappush(self._relend, item_id)
            self.relent += 1
            back.append(item_id)
        return back

    # -- input ----------------------------------------------------------------------------
    @property
    def open_count(self) -> int:
        """Items admitted and not yet released: what the window bounds."""
        return self.admitted - self.released

    def room(self) -> int:
        """How many new values may be admitted now."""
        return 0 if self.input_done else max(0, self.window - self.open_count)

    def demand(self) -> int:
        """New values the volunteers could take now beyond what already waits (capped by room)."""
        slots = sum(max(0, self._capacity[v] - len(h)) for v, h in self._held.items())
        return max(0, min(slots - self.waiting_count, self.room()))

    def admit_many(self, values: Sequence[Any]) -> range:
        """Admit values in input order; their ids."""
        count = len(values)
        first = self.admitted
        open_now = first + count - self.released
        if self.input_done or open_now > self.window:
            raise ValueError("input already ended" if self.input_done else
                             "window full: admit only what room() allows")
        ids = range(first, first + count)
        self._values.update(zip(ids, values, strict=True))
        self.admitted = first + count
        if open_now > self.peak_open:
            self.peak_open = open_now
        return ids

    def admit(self, value: Any) -> int:
        return self.admit_many((value,))[0]

    def admit_failed(self, item: Any, error: str) -> int:
        """An input that is no value: it takes an id and its place in the order, as failed."""
        item_id = self.admit(item)
        self._skip.add(item_id)   # never to be lent
        self._settle_failed(Outcome(item_id, False, error=error, item=item))
        return item_id

    def end_input(self) -> None:
        self.input_done = True

    # -- lending --------------------------------------------------------------------------
    @property
    def waiting_count(self) -> int:
        return len(self._relend) + self.admitted - self._fresh - len(self._skip)

    def lend_batch(self, volunteer: Volunteer, limit: int | None = None) -> Lent:
        """Up to the volunteer's free slots (and ``limit``) of the lowest waiting ids."""
        held = self._held[volunteer]
        count = self._capacity[volunteer] - len(held)
        if limit is not None:
            count = min(count, limit)
        if count <= 0:
            return Lent(range(0), [])
        values = self._values
        if not self._relend and not self._skip and not self._alone:
            # The hot path: one run of fresh ids.
            start = self._fresh
            ids = range(start, min(self.admitted, start + count))
            self._fresh = ids.stop
            held.update(ids)
            self._lent_at.update(zip(ids, itertools.repeat(self._clock())))
            return Lent(ids, list(map(values.__getitem__, ids)))
        alone = self._alone.get(volunteer)
        if alone is not None:
            if alone in held:
                return Lent(range(0), [])   # computing a suspect: nothing else meanwhile
            del self._alone[volunteer]
        if self._relend:
            # Items come back only from lost volunteers, and one of them may be what killed
            # it: each goes out alone, to a volunteer with empty hands.
            if held:
                return Lent(range(0), [])
            item_id = heapq.heappop(self._relend)
            self._relends[item_id] = self._relends.get(item_id, 0) + 1
            self._alone[volunteer] = item_id
            held.add(item_id)
            self._lent_at[item_id] = self._clock()
            return Lent(range(item_id, item_id + 1), [values[item_id]])
        taken: list[int] = []
        while count > 0 and self._fresh < self.admitted:
            item_id = self._fresh
            self._fresh += 1
            if item_id in self._skip:
                self._skip.discard(item_id)
                continue
            taken.append(item_id)
            count -= 1
        held.update(taken)
        self._lent_at.update(zip(taken, itertools.repeat(self._clock())))
        lent_values = [values[i] for i in taken]
        if taken and taken[-1] - taken[0] == len(taken) - 1:
            return Lent(range(taken[0], taken[-1] + 1), lent_values)
        return Lent(taken, lent_values)

    def lend(self, volunteer: Volunteer, limit: int | None = None) -> list[tuple[int, Any]]:
        """:meth:`lend_batch` as (id, value) pairs."""
        return self.lend_batch(volunteer, limit).pairs()

    # -- settling -------------------------------------------------------------------------
    def settle_run(self, volunteer: Volunteer, start: int, results: list[Any]) -> int:
        """Ok results for items ``start, start + 1, ...``; how many were used (those the
        volunteer held: the others are duplicates or unsolicited, as for :meth:`settle`)."""
        held = self._held.get(volunteer)
        ids = range(start, start + len(results))
        if held is None or not ids or not held.issuperset(ids):
            return sum(self.settle(volunteer, Outcome(item_id, True, value=value))
                       for item_id, value in zip(ids, results, strict=True))
        held.difference_update(ids)
        deque(map(self._values.pop, ids), maxlen=0)   # forget their inputs (a loop in C)
        lent_at = self._lent_at
        if self._copies:
            self._drop_copies(volunteer, ids)
        elif start in lent_at:   # (a straggler's copy would say little of the usual time)
            self._measure(lent_at[start])
        deque(map(lent_at.pop, ids), maxlen=0)
        if self._losses:
            for item_id in ids:
                self._losses.pop(item_id, None)
                self._relends.pop(item_id, None)
        self._release_or_keep(Run(start, results))
        return len(ids)

    def settle(self, volunteer: Volunteer, outcome: Outcome) -> bool:
        """A volunteer's result for an item.  False when ignored: the item was already
        settled (a duplicate), or was never lent to this volunteer (a volunteer answers only
        for what it holds, so none can settle another's items)."""
        held = self._held.get(volunteer)
        if held is None or outcome.id not in held:
            if 0 <= outcome.id < self.admitted and outcome.id not in self._values:
                self.duplicates += 1    # settled already: used once
            else:
                self.unsolicited += 1
            return False
        held.remove(outcome.id)
        copied = bool(self._copies) and outcome.id in self._copies
        if copied:
            self._drop_copies(volunteer, (outcome.id,))
        lent = self._lent_at.pop(outcome.id, None)
        if lent is not None and not copied:
            self._measure(lent)
        if outcome.ok:
            del self._values[outcome.id]
            self._losses.pop(outcome.id, None)
            self._relends.pop(outcome.id, None)
            self._release_or_keep(Run(outcome.id, [outcome.value]))
            return True
        if outcome.item is None:
            outcome = Outcome(outcome.id, False, error=outcome.error,
                              traceback=outcome.traceback, item=self._values[outcome.id])
        self._settle_failed(outcome)
        return True

    # -- stragglers -----------------------------------------------------------------------
    def _measure(self, lent_at: float) -> None:
        sample = self._clock() - lent_at
        self.latency = (sample if self.latency <= 0
                        else (1 - LATENCY_WEIGHT) * self.latency + LATENCY_WEIGHT * sample)

    def overdue(self) -> list[int]:
        """Held items lent longer ago than several times the usual time from lending to
        result (and than MIN_OVERDUE), that have one holder: the oldest first."""
        if self.latency <= 0:
            return []   # nothing measured: nothing is late yet
        limit = self._clock() - max(MIN_OVERDUE, STRAGGLER_FACTOR * self.latency)
        out = []
        for item_id, lent_at in self._lent_at.items():   # in the order they were lent
            if lent_at > limit:
                break
            if item_id not in self._copies:
                out.append(item_id)
        return out

    def lend_copies(self, volunteer: Volunteer, item_ids: Sequence[int]) -> Lent:
        """Lend overdue items (the first of ``item_ids``, up to its free slots) to a second
        volunteer, one that holds nothing."""
        held = self._held.get(volunteer)
        if held is None or held:
            return Lent([], [])
        taken = [i for i in item_ids if i in self._lent_at and i not in self._copies]
        taken = taken[:self._capacity[volunteer]]
        for item_id in taken:
            first = next(v for v, items in self._held.items() if item_id in items)
            self._copies[item_id] = (first, volunteer)
        held.update(taken)
        self.copies += len(taken)
        return Lent(taken, [self._values[i] for i in taken])

    def _drop_copies(self, volunteer: Volunteer, ids: range | tuple[int, ...]) -> None:
        """Items settled by ``volunteer``: the other holder's copies are taken back."""
        for item_id in [i for i in self._copies if i in ids]:
            first, second = self._copies.pop(item_id)
            other = first if second == volunteer else second
            if second == volunteer:
                self.copies_won += 1
            self._held.get(other, set()).discard(item_id)

    def _settle_failed(self, outcome: Outcome) -> None:
        del self._values[outcome.id]
        self._losses.pop(outcome.id, None)
        self._relends.pop(outcome.id, None)
        self._release_or_keep(outcome)

    def _release_or_keep(self, entry: Released) -> None:
        if not self.ordered:
            self._released_queue.append(entry)
            return
        first = entry.start if isinstance(entry, Run) else entry.id
        if first != self.next_release:
            self._settled[first] = entry
            return
        queue, settled = self._released_queue, self._settled
        while True:
            queue.append(entry)
            self.next_release += len(entry.values) if isinstance(entry, Run) else 1
            next_entry = settled.pop(self.next_release, None)
            if next_entry is None:
                return
            entry = next_entry

    # -- releasing ------------------------------------------------------------------------
    def release_runs(self) -> list[Released]:
        """What may be printed now, in the order to print it: runs of ok results, and
        failed items one by one."""
        out = list(self._released_queue)
        self._released_queue.clear()
        self.released += sum(len(e.values) if isinstance(e, Run) else 1 for e in out)
        return out

    def release(self) -> list[Outcome]:
        """:meth:`release_runs` item by item."""
        out: list[Outcome] = []
        for entry in self.release_runs():
            if isinstance(entry, Run):
                out.extend(Outcome(entry.start + k, True, value=value)
                           for k, value in enumerate(entry.values))
            else:
                out.append(entry)
        return out

    # -- state ----------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Items lent and not settled."""
        return sum(len(held) for held in self._held.values())

    @property
    def buffered(self) -> int:
        """Outcomes settled but held back for order."""
        return sum(len(e.values) if isinstance(e, Run) else 1
                   for e in (*self._settled.values(), *self._released_queue))

    def attempts(self, item_id: int) -> int:
        """How many times an open item was lent."""
        if item_id not in self._values:
            return 0
        first = 1 if item_id < self._fresh and item_id not in self._skip else 0
        return first + self._relends.get(item_id, 0)

    def finished(self) -> bool:
        return self.input_done and self.released == self.admitted
