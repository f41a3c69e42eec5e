"""The local cluster's event loop spins briefly before it sleeps.

Every task of a local executor makes a round trip executor -> local cluster -> worker
process and back, and the local cluster's process sits in the middle of it twice: once
for the task, once for its result.  A process asleep in ``epoll_wait`` that a socket
must wake takes tens of microseconds to run again (on a virtual machine an idle virtual
CPU is halted, and waking it goes through the hypervisor); measured on a 2-core VM, one
``submit(...).result()`` of a no-op took 0.34 ms with the cluster sleeping between
events and 0.24 ms with it spinning, against ``ProcessPoolExecutor``'s 0.25 ms.

So, as a rank waiting for a message does (:mod:`shoal.spmd.spinning`), the loop first
polls its sockets without waiting, for at most the adapted spin, and sleeps only when
nothing came; and only while a core is free for it: fewer worker processes hold tasks
than this process may run on, so a spinning cluster never takes a core a busy worker
needs (a ``map`` that keeps every worker busy never spins).  The spin adapts, as the
engine's does (:class:`~shoal.spmd.spinning.Spin`), to what spinning buys: a spin that
finds an event grows half again, and one that ended asleep but whose event came within
the most a spin lasts (a full spin would have found it) doubles, both up to the most;
any other that ends asleep halves, down to :data:`FLOOR`.  So a cluster whose events
come seldom (long tasks, an idle executor) soon sleeps at once, and an idle cluster
spins for at most one spin after its last event.  ``SHOAL_TASKS_SPIN_US`` sets the most
(default 200; 0: never spin).
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Mapping
from typing import Any

from shoal import tunables

DEFAULT_US = 200.0  # the most a spin lasts, where SHOAL_TASKS_SPIN_US does not say
FLOOR = 2e-6  # seconds: the shortest an adapted spin gets (it can grow back from it)
_clock = time.perf_counter


def configured(env: Mapping[str, str] | None = None) -> float:
    """The most a spin lasts, in seconds (``SHOAL_TASKS_SPIN_US``; a bad value raises
    :class:`~shoal.errors.ConfigurationError` in one line)."""
    return tunables.read("SHOAL_TASKS_SPIN_US", DEFAULT_US, env) / 1e6


class Spin:
    """How long the next spin lasts, adapted to what spinning found (pure: the selector
    reports, with the clock's readings)."""

    __slots__ = ("most", "seconds")

    def __init__(self, most: float) -> None:
        self.most = most
        self.seconds = most

    def found(self) -> None:
        """The spin found an event."""
        self.seconds = min(self.most, self.seconds * 1.5)

    def slept(self, waited: float) -> None:
        """The spin found nothing, and the event that ended the sleep came ``waited``
        seconds after the spin began."""
        if waited < self.most:
            self.seconds = min(self.most, self.seconds * 2)
        else:
            self.seconds = max(min(FLOOR, self.most), self.seconds / 2)


class SpinningSelector(selectors.DefaultSelector):
    """The platform's default selector, whose waits spin first (see the module docstring).

    ``allowed`` says whether a core is free for spinning now; ``most`` is the longest
    spin in seconds (0: the plain selector)."""

    def __init__(self, most: float, allowed: Callable[[], bool] = lambda: True) -> None:
        super().__init__()
        self.spin = Spin(most)
        self.allowed = allowed

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        spin = self.spin.seconds
        if not spin or (timeout is not None and timeout <= 0) or not self.allowed():
            return super().select(timeout)
        poll = super().select
        budget = spin if timeout is None else min(spin, timeout)
        start = _clock()
        while True:
            ready = poll(0)
            if ready:
                self.spin.found()
                return ready
            spent = _clock() - start
            if spent >= budget:
                break
        ready = poll(None if timeout is None else max(0.0, timeout - spent))
        if ready:  # (a timer that came due is neither the spin's failure nor a near miss)
            self.spin.slept(_clock() - start)
        return ready
