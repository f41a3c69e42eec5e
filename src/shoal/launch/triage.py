"""Which of several failure reports names the job's cause: a pure state machine.

When one rank dies or reads a tampered frame, its peers soon fail too: their links
to it end (``PeerLostError``, a ``TruncationError`` when the link ended without an
authenticated close).  Those are consequences.  The cause (the rank's own
exception, its exit without finalizing, an integrity error) often reaches the
launcher a moment *after* a consequence: it comes from another host, through
another beacon, or the dead rank's exit is seen after its peer's report.

The launchers (:mod:`shoal.launch.local`, :mod:`shoal.launch.remote`) therefore
hold a rank's report that says it lost a peer (the ``lost_peer`` field of the
``error`` event, set by the bootstrap) for up to :data:`GRACE` seconds.  A cause
arriving in that time is reported as the job's failure, with the held reports as
one-line "also failed" notes after it; when none arrives, the first held report is
the job's failure (a link cut by the network has no other cause to wait for).
Nothing here does I/O or reads a clock of its own: the caller passes ``now``.
"""

from __future__ import annotations

from typing import NamedTuple

GRACE = 1.5  # seconds a lost-peer report waits for the report of its cause

# A NamedTuple and a plain class, not dataclasses: the launcher imports this module
# before it starts a rank, and importing dataclasses costs it some 7 ms.


class Held(NamedTuple):
    """One rank's error report that is probably a consequence."""

    rank: int
    where: str            # the rank's host ("" on one machine)
    status: int           # the exit status the rank asked for
    traceback: str        # the whole report, for when it turns out to be the cause
    summary: str          # one line, for when something else is
    since: float


class Triage:
    """Lost-peer reports waiting for their cause; ``grace`` seconds each at most."""

    __slots__ = ("grace", "held")

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self.held: list[Held] = []

    def hold(self, report: Held) -> None:
        self.held.append(report)

    def holds(self, rank: int) -> bool:
        """Whether ``rank`` already reported, held here (its exit is then no cause)."""
        return any(h.rank == rank for h in self.held)

    def due(self, now: float) -> Held | None:
        """The report that becomes the job's failure now: the oldest, once its grace is
        over (None while every held report may still be explained)."""
        if self.held and now - self.held[0].since >= self.grace:
            return self.held[0]
        return None

    def deadline(self) -> float | None:
        """When :meth:`due` will next have something (None when nothing is held)."""
        return self.held[0].since + self.grace if self.held else None

    def release(self) -> list[Held]:
        """Every held report, oldest first, and forget them (a cause was found, or the
        first of them became the failure)."""
        held, self.held = self.held, []
        return held


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from or during) says that a peer's
    link ended: the report is then probably a consequence of another rank's failure."""
    from shoal.errors import PeerLostError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PeerLostError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
