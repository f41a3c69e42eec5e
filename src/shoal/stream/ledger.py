"""The coordinator's bookkeeping, pure: which item is where, and what may be printed.

No sockets, no clocks, no input reading: the coordinator calls in when something
happened and acts on the answers, and the tests drive it directly.

Rules (those of Pando, without its weaknesses):

* Items get ids in input order, from 0, never reused.  The coordinator admits a value only
  when a volunteer has room for it, and at most ``window`` items are open at a time (lent,
  waiting to be lent again, or settled but waiting for an earlier one to be printed): this
  bounds memory on an endless input.
* Lending always takes the lowest waiting id, so items taken back from a lost volunteer go
  out again before any newer item.
* A volunteer holds at most its capacity, and its results count only for items it holds:
  none can settle (or forge) another's.  A result that arrives twice is used once.  Should
  an item ever be held by two volunteers, the first result settles it and the other keeps
  its slot until it answers or leaves.
* A result that is an error settles the item as failed at once: processors are expected
  to be deterministic, and Pando's endless re-lending of such items is what we avoid.
  An item whose volunteer was lost ``max_losses`` times is failed too (it probably kills
  its volunteers).
* Ordered streams release outcomes by id; unordered ones as they settle.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
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
class _Open:
    value: Any
    holders: set[Volunteer] = field(default_factory=set)
    lends: int = 0
    losses: int = 0


class Ledger:
    def __init__(self, *, window: int, max_losses: int = 3, ordered: bool = True) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.max_losses = max_losses
        self.ordered = ordered
        self._open: dict[int, _Open] = {}           # admitted and not yet settled
        self._waiting: list[int] = []               # heap of ids to lend (re-lent first)
        self._held: dict[Volunteer, set[int]] = {}
        self._capacity: dict[Volunteer, int] = {}
        self._settled: dict[int, Outcome] = {}      # ordered: settled, not yet released
        self._released_queue: deque[Outcome] = deque()
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

    def free_slots(self, volunteer: Volunteer) -> int:
        held = self._held.get(volunteer)
        return 0 if held is None else max(0, self._capacity[volunteer] - len(held))

    def lose(self, volunteer: Volunteer) -> list[int]:
        """The volunteer is gone: its items wait to be lent again (the ids returned), except
        those lost too often, which are failed."""
        held = self._held.pop(volunteer, set())
        self._capacity.pop(volunteer, None)
        back = []
        for item_id in sorted(held):
            entry = self._open.get(item_id)
            if entry is None:
                continue  # settled by someone else meanwhile
            entry.holders.discard(volunteer)
            entry.losses += 1
            if entry.holders:
                continue  # another volunteer still works on it
            if entry.losses >= self.max_losses:
                self._settle(Outcome(item_id, False,
                                     error=f"ItemLost: {entry.losses} volunteers were lost "
                                           "while computing this item",
                                     item=entry.value))
                continue
            heapq.heappush(self._waiting, item_id)
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
        return max(0, min(slots - len(self._waiting), self.room()))

    def admit(self, value: Any) -> int:
        item_id = self.admitted
        open_now = item_id + 1 - self.released
        if open_now > self.window or self.input_done:
            raise ValueError("input already ended" if self.input_done else
                             "window full: admit only what room() allows")
        self.admitted = item_id + 1
        self._open[item_id] = _Open(value)
        heapq.heappush(self._waiting, item_id)
        if open_now > self.peak_open:
            self.peak_open = open_now
        return item_id

    def admit_failed(self, item: Any, error: str) -> int:
        """An input that is no value: it takes an id and its place in the order, as failed."""
        item_id = self.admit(item)
        self._waiting.remove(item_id)   # never to be lent; bad lines are rare enough for
        heapq.heapify(self._waiting)    # a linear search and a heapify
        self._settle(Outcome(item_id, False, error=error, item=item))
        return item_id

    def end_input(self) -> None:
        self.input_done = True

    # -- lending and settling -------------------------------------------------------------
    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def lend(self, volunteer: Volunteer, limit: int | None = None) -> list[tuple[int, Any]]:
        """Up to the volunteer's free slots (and ``limit``) of the lowest waiting ids."""
        held = self._held[volunteer]
        count = self._capacity[volunteer] - len(held)
        if limit is not None:
            count = min(count, limit)
        lent = []
        while count > 0 and self._waiting:
            item_id = heapq.heappop(self._waiting)
            entry = self._open.get(item_id)
            if entry is None or entry.holders:
                continue  # settled, or taken back and given out again already
            entry.holders.add(volunteer)
            entry.lends += 1
            held.add(item_id)
            lent.append((item_id, entry.value))
            count -= 1
        return lent

    def settle(self, volunteer: Volunteer, outcome: Outcome) -> bool:
        """A volunteer's result for an item.  False when ignored: the item was already
        settled (a duplicate), or was never lent to this volunteer (a volunteer answers only
        for what it holds, so none can settle another's items)."""
        held = self._held.get(volunteer)
        if held is None or outcome.id not in held:
            if 0 <= outcome.id < self.admitted and outcome.id not in self._open:
                self.duplicates += 1    # settled already: used once
            else:
                self.unsolicited += 1
            return False
        held.remove(outcome.id)
        entry = self._open.get(outcome.id)
        if entry is None:
            self.duplicates += 1
            return False
        if not outcome.ok and outcome.item is None:
            outcome = Outcome(outcome.id, False, error=outcome.error,
                              traceback=outcome.traceback, item=entry.value)
        self._settle(outcome)
        return True

    def _settle(self, outcome: Outcome) -> None:
        # Other holders keep the item in their slots until they answer or leave: they still
        # have it in hand, and a volunteer must never hold more than its capacity.
        self._open.pop(outcome.id)
        if self.ordered:
            self._settled[outcome.id] = outcome
            while self.next_release in self._settled:
                self._released_queue.append(self._settled.pop(self.next_release))
                self.next_release += 1
        else:
            self._released_queue.append(outcome)

    def release(self) -> list[Outcome]:
        """Outcomes that may be printed now, in the order to print them."""
        out = list(self._released_queue)
        self._released_queue.clear()
        self.released += len(out)
        return out

    # -- state ----------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Items lent and not settled."""
        return sum(1 for entry in self._open.values() if entry.holders)

    @property
    def buffered(self) -> int:
        """Outcomes settled but held back for order."""
        return len(self._settled) + len(self._released_queue)

    def attempts(self, item_id: int) -> int:
        entry = self._open.get(item_id)
        return 0 if entry is None else entry.lends

    def finished(self) -> bool:
        return self.input_done and self.released == self.admitted
