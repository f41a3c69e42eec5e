"""A round-robin scheduling policy for shoal, published as a plugin.

Every worker gets the next task in turn, whatever its load or speed: the ZMQ
push/pull behaviour of Concurrent, fair on a cluster of identical machines.
Installed (``pip install examples/plugins/shoal-fair-scheduler``), it is
chosen by name: ``shoal.Executor(scheduler="fair")`` or
``shoal tasks serve --scheduler fair``.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.tasks.scheduler.policies import Policy, WorkerView

__all__ = ["FairPolicy"]


class FairPolicy(Policy):
    """Deal tasks to workers like cards: the one that got a task longest ago goes next."""

    name = "fair"

    def __init__(self) -> None:
        self._turn = 0  # increases with every pick
        self._last: dict[str, int] = {}

    def pick(self, candidates: Sequence[WorkerView]) -> WorkerView | None:
        if not candidates:
            return None
        chosen = min(candidates, key=lambda w: self._last.get(w.name, -1))
        self._turn += 1
        self._last[chosen.name] = self._turn
        return chosen
