"""How long a waiting rank spins before it sleeps: a pure state machine (no clock, no I/O).

Spinning costs a core; sleeping costs a wake-up (tens of microseconds, and a
trip through the scheduler).  :class:`Spin` holds the spin the engine uses now
and adapts it to what spinning buys, as adaptive mutexes do:

* a spin that finds what it waited for grows half again (never past the
  configured most, nor below what near misses grew it to);
* a spin that ended asleep halves (to :data:`FLOOR`, never to nothing): on a
  machine too busy for spinning to find anything, the rank soon sleeps at once;
* with no more ranks on the host than cores, a wait that ended within
  :data:`NEAR_MISS` spins of its start was a near miss (the peer was only
  descheduled by other programs, and a woken rank on a loaded machine waits
  long for a core, while a spinning one is already there): the spin doubles, up
  to :data:`NEAR_MISS_GROWTH` times the configured most;
* with more ranks than cores the spin gives way (``sched_yield``) at every
  round, since the rank waited for needs this core, and the one-step receive
  does not spin at all.

The engine reads :attr:`Spin.seconds`, :attr:`Spin.yield_mask`,
:attr:`Spin.yield_rounds` and :attr:`Spin.fast_ns` and reports what each wait
found (:meth:`Spin.spun`, :meth:`Spin.slept`); ``configured`` and
``yield_mask`` say where a spin starts.
"""

from __future__ import annotations

from shoal import tunables
from shoal.cores import usable_cores

DEFAULT_SECONDS = 0.002  # the configured most, where neither SHOAL_SPIN_US nor a transport says
FLOOR = 2e-6  # seconds: the shortest an adapted spin gets (it can grow back from it)
NEAR_MISS = 4  # a wait that ends within this many spins (from its start) was a near miss
NEAR_MISS_GROWTH = 10  # near misses grow the spin up to this many times the configured most
FAST_MOST_NS = 100_000  # the one-step receive spins at most this long for its message


def configured(transport_spin: float | None) -> float:
    """The most a wait spins, in seconds: ``SHOAL_SPIN_US`` if set, else what the
    transport says (None: :data:`DEFAULT_SECONDS`)."""
    value = tunables.read("SHOAL_SPIN_US", -1.0)  # (a set value is never negative)
    if value >= 0:
        return value / 1e6
    if transport_spin is not None:
        return max(0.0, transport_spin)
    return DEFAULT_SECONDS


def yield_mask(ranks_here: int) -> int:
    """Spin rounds between two ``sched_yield`` calls (a power of two, minus one), for a
    host running ``ranks_here`` of the job's ranks: 0 (every round) with more ranks than
    cores."""
    return 31 if ranks_here <= usable_cores() else 0


class Spin:
    """The spin of one engine (see the module docstring)."""

    __slots__ = ("seconds", "most", "yield_mask", "yield_rounds", "fast_ns")

    def __init__(self, most: float, yield_mask: int) -> None:
        self.most = most  # the configured most (seconds)
        self.yield_mask = yield_mask
        # Spin rounds between two sched_yield calls inside the transport: every round
        # when the host has more ranks than cores (the rank we wait for needs this core).
        self.yield_rounds = 1 if yield_mask == 0 else 0
        self.set(most)  # (seconds and fast_ns)

    def set(self, seconds: float) -> None:
        """The adapted spin, and the one-step receive's first spin with it (none with
        more ranks than cores)."""
        self.seconds = seconds
        self.fast_ns = min(FAST_MOST_NS, int(seconds * 1e9)) if self.yield_mask else 0

    def spun(self, found: bool) -> None:
        """A spin ended: it found what it waited for, or gave up and slept."""
        if found:  # (never below a spin that near misses grew: see slept)
            self.set(max(self.seconds, min(self.most, self.seconds * 1.5)))
        else:
            self.set(max(min(FLOOR, self.most), self.seconds / 2))

    def slept(self, waited: float) -> None:
        """A wait outlasted its spin and slept, ``waited`` seconds in all (from its start):
        a near miss grows the spin, any other such wait halves it."""
        if self.yield_mask and waited < NEAR_MISS * self.seconds:
            self.set(min(self.most * NEAR_MISS_GROWTH, self.seconds * 2))
        else:
            self.spun(False)
