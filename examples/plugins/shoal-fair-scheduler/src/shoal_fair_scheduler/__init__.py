"""A round-robin scheduling policy for shoal, published as a plugin.

Every worker gets the next task in turn, whatever its load or speed: the ZMQ
push/pull behaviour of Concurrent, fair on a cluster of identical machines.
Installed (``pip install examples/plugins/shoal-fair-scheduler``), it is
chosen by name: ``shoal.Executor(scheduler="fair")``,
``shoal tasks serve --scheduler fair``, or ``scheduler = "fair"`` in
tasks.toml.  The package also publishes task hooks, :class:`FairnessLog`
(``shoal tasks serve --hooks fair-log``, ``hooks = ["fair-log"]``): a plugin
package may carry several plugins.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from shoal.tasks.hooks import TaskHooks, TaskInfo
from shoal.tasks.scheduler.policies import Policy, WorkerView

__all__ = ["FairPolicy", "FairnessLog"]
log = logging.getLogger("shoal_fair_scheduler")


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


class FairnessLog(TaskHooks):
    """Task hooks that count the tasks each worker finished and log the spread every
    ``every`` tasks: how fair the dealing was."""

    every = 1000

    def __init__(self) -> None:
        self.finished: Counter[str] = Counter()

    def task_finished(self, task: TaskInfo, worker: str, raised: bool) -> None:
        agent = worker.rpartition("/")[0] or worker   # "agent/process" -> the agent
        self.finished[agent] += 1
        if sum(self.finished.values()) % self.every == 0:
            log.info("tasks finished per worker: %s", dict(self.finished.most_common()))
