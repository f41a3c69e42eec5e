"""Scheduling policies: which worker a queued task goes to.

A policy sees the scheduler's view of the workers (:class:`WorkerView`) and
picks one for a task, or none (the task waits).  Policies hold no I/O and no
clock; they are registered by name in :data:`POLICIES`, and third-party
packages add theirs under the ``shoal.schedulers`` entry-point group::

    [project.entry-points."shoal.schedulers"]
    fair = "shoal_fair_scheduler:FairPolicy"

Built in:

* ``pull``: only workers that asked for work get it (each agent asks when its
  queue runs low), so a fast worker simply asks more often: best on a
  homogeneous cluster and the default.
* ``least-loaded``: pushes each task to the worker with the lowest rating
  running / cores (Concurrent's generic scheduler): heterogeneous clusters.
* ``fastest-first``: pushes to the worker expected to finish it first:
  (running + 1) / (cores * measured speed), speed from reported task times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol


class WorkerView(Protocol):
    """What a policy may read of a worker (see ``state.WorkerState``)."""

    name: str
    slots: int
    credit: int
    mean_duration: float | None

    @property
    def running(self) -> int: ...


class Policy(ABC):
    """Chooses a worker for each task; subclasses set ``name`` and implement :meth:`pick`."""

    name: ClassVar[str] = ""
    #: True: a worker only gets as many tasks as it asked for (its credit).
    #: False: the scheduler fills each worker up to its capacity.
    uses_credit: ClassVar[bool] = False

    @abstractmethod
    def pick(self, candidates: Sequence[WorkerView]) -> WorkerView | None:
        """One of ``candidates`` (every one has room for the task), or None to wait."""


class PullPolicy(Policy):
    """Idle workers ask: the one that asked for the most tasks gets the next."""

    name = "pull"
    uses_credit = True

    def pick(self, candidates: Sequence[WorkerView]) -> WorkerView | None:
        best: WorkerView | None = None
        for worker in candidates:
            if worker.credit > 0 and (best is None or worker.credit > best.credit):
                best = worker
        return best


class LeastLoadedPolicy(Policy):
    """The lowest rating running / cores wins (ties: the first joined)."""

    name = "least-loaded"

    def pick(self, candidates: Sequence[WorkerView]) -> WorkerView | None:
        best: WorkerView | None = None
        best_rating = 0.0
        for worker in candidates:
            rating = worker.running / worker.slots
            if best is None or rating < best_rating:
                best, best_rating = worker, rating
        return best


class FastestFirstPolicy(Policy):
    """The worker that would finish the task first, from its measured task times.

    A worker not measured yet counts as fast as the mean of the measured ones
    (or, with none measured, all are equal), so it gets work and is measured.
    """

    name = "fastest-first"

    def pick(self, candidates: Sequence[WorkerView]) -> WorkerView | None:
        known = [w.mean_duration for w in candidates if w.mean_duration]
        default = sum(known) / len(known) if known else 1.0
        best: WorkerView | None = None
        best_finish = 0.0
        for worker in candidates:
            duration = worker.mean_duration or default
            finish = (worker.running + 1) * duration / worker.slots
            if best is None or finish < best_finish:
                best, best_finish = worker, finish
        return best


POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (PullPolicy, LeastLoadedPolicy, FastestFirstPolicy)}


def policy_class(name: str) -> type[Policy]:
    """The policy registered under ``name``: built in, or from the ``shoal.schedulers`` group."""
    if name not in POLICIES:
        from shoal.tasks.plugins import load_entry_point

        found = load_entry_point("shoal.schedulers", name)
        if found is None:
            known = ", ".join(sorted(POLICIES))
            raise LookupError(f"no scheduler policy named {name!r}; known: {known} "
                              "(plugins register theirs under the shoal.schedulers entry point)")
        if not (isinstance(found, type) and issubclass(found, Policy)):
            raise LookupError(f"the shoal.schedulers entry point {name!r} is not a Policy class")
        POLICIES[name] = found
    return POLICIES[name]
