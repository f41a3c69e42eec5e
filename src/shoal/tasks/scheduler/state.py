"""The task scheduler as a pure state machine: events in, actions out, no I/O.

The service feeds it what happened (:class:`Event` subclasses) through
:meth:`Scheduler.handle` and carries out the :class:`Action` objects it
returns: send tasks to a worker, tell a worker to kill a running task, hand a
result to its owner, fail a task.  It never reads a clock or a socket, so
every rule below is tested by feeding events (tests/tasks/test_task_scheduler.py).

Rules
-----
* A task is queued, then assigned to a worker as attempt 1, 2, ...
* The first result of a task that is still live is delivered (``Deliver``);
  any later result of it (another attempt, a duplicate) is dropped, so each
  result is delivered exactly once.  A result is a result even when the task
  raised: a task's own exception is not retried.
* When a worker leaves or misses its heartbeats, each task it held is retried
  (``Retry``, at the front of the queue, never on that worker again while
  another worker exists) until it was lost ``retries + 1`` times: then
  ``Fail`` with :class:`~shoal.tasks.errors.WorkerLostError`.
* When a worker process died while running a task (``TasksLost``), the task
  is retried the same way, but a task that killed ``retries + 1`` processes
  is poison: ``Fail`` with :class:`~shoal.tasks.errors.PoisonTaskError`.
* ``Cancel`` removes a queued task, or tells its worker to kill it.
* Which worker gets a task is the policy's choice (:mod:`.policies`); the
  scheduler fills a worker up to its *capacity*: its credit (tasks it asked
  for) under a pull policy, else cores * depth, where the depth grows for
  short tasks (enough queued work per core to cover ``queue_seconds``) so
  that fast tasks stream without a round trip each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.tasks.scheduler.policies import Policy

TaskId = int
Attempt = int
MAX_DEPTH = 256          # tasks queued per core at most under push policies
QUEUE_SECONDS = 0.02     # work queued per core that push policies aim for
_EWMA = 0.3              # weight of a new batch in a worker's mean task time


# -- events -----------------------------------------------------------------------


class Event:
    """Something that happened; see the subclasses."""

    __slots__ = ()


@dataclass(slots=True)
class TasksSubmitted(Event):
    tasks: list[tuple[TaskId, int]]     # (task, retries)


@dataclass(slots=True)
class WorkerJoined(Event):
    worker: str
    slots: int


@dataclass(slots=True)
class WorkerLeft(Event):
    worker: str
    reason: str = "disconnected"


@dataclass(slots=True)
class HeartbeatMissed(Event):
    worker: str


@dataclass(slots=True)
class WorkerReady(Event):
    """A worker asks for ``credit`` more tasks (pull)."""

    worker: str
    credit: int


@dataclass(slots=True)
class TasksFinished(Event):
    """Results arrived, each ``(task, attempt, seconds it ran)``."""

    worker: str
    results: list[tuple[TaskId, Attempt, float]]


@dataclass(slots=True)
class TasksLost(Event):
    """A worker process died while running these tasks, each ``(task, attempt, why)``."""

    worker: str
    tasks: list[tuple[TaskId, Attempt, str]]


@dataclass(slots=True)
class CancelRequested(Event):
    tasks: list[TaskId]


# -- actions ----------------------------------------------------------------------


class Action:
    """Something the service must do; see the subclasses."""

    __slots__ = ()


@dataclass(slots=True)
class Assign(Action):
    worker: str
    tasks: list[tuple[TaskId, Attempt]]


@dataclass(slots=True)
class KillRunning(Action):
    worker: str
    tasks: list[tuple[TaskId, Attempt]]


@dataclass(slots=True)
class Deliver(Action):
    """These results are the first of their tasks: hand them to their owners."""

    tasks: list[TaskId]


@dataclass(slots=True)
class Retry(Action):
    task: TaskId
    attempt: Attempt       # the attempt that was lost
    reason: str


@dataclass(slots=True)
class Fail(Action):
    task: TaskId
    kind: str              # "lost" or "poison"
    message: str


@dataclass(slots=True)
class Cancelled(Action):
    tasks: list[TaskId]


@dataclass(slots=True)
class Disconnect(Action):
    """Drop this worker: it was declared lost; anything it still sends is void."""

    worker: str


# -- state ------------------------------------------------------------------------


@dataclass(slots=True)
class TaskState:
    task: TaskId
    retries: int
    attempt: Attempt = 0
    worker: str | None = None          # where the current attempt runs
    lost: int = 0                      # attempts lost with their worker
    crashed: int = 0                   # attempts that killed their process
    excluded: set[str] | None = None   # workers it must avoid


@dataclass(slots=True)
class WorkerState:
    name: str
    slots: int
    credit: int = 0
    mean_duration: float | None = None
    tasks: dict[TaskId, Attempt] = field(default_factory=dict)

    @property
    def running(self) -> int:
        return len(self.tasks)


class Scheduler:
    """Queued tasks, workers and who runs what; :meth:`handle` is the only way in."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.tasks: dict[TaskId, TaskState] = {}
        self.queue: deque[TaskId] = deque()
        self.workers: dict[str, WorkerState] = {}

    # -- the one entry point ---------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        actions: list[Action] = []
        if isinstance(event, TasksFinished):
            self._finished(event, actions)
        elif isinstance(event, TasksSubmitted):
            for task, retries in event.tasks:
                if task not in self.tasks:
                    self.tasks[task] = TaskState(task, retries)
                    self.queue.append(task)
        elif isinstance(event, WorkerReady):
            worker = self.workers.get(event.worker)
            if worker is not None:
                worker.credit += event.credit
        elif isinstance(event, WorkerJoined):
            if event.worker not in self.workers:
                self.workers[event.worker] = WorkerState(event.worker, max(1, event.slots))
        elif isinstance(event, WorkerLeft):
            self._worker_gone(event.worker, event.reason, actions)
        elif isinstance(event, HeartbeatMissed):
            if event.worker in self.workers:
                actions.append(Disconnect(event.worker))
                self._worker_gone(event.worker, "it stopped sending heartbeats", actions)
        elif isinstance(event, TasksLost):
            self._lost(event, actions)
        elif isinstance(event, CancelRequested):
            self._cancel(event.tasks, actions)
        else:
            raise TypeError(f"not a scheduler event: {event!r}")
        self._dispatch(actions)
        return actions

    # -- queries -----------------------------------------------------------------

    def capacity(self, worker: WorkerState) -> int:
        """How many tasks ``worker`` may hold at once."""
        if self.policy.uses_credit:
            return worker.running + worker.credit
        if worker.mean_duration is None:
            return worker.slots * 2  # not measured yet: the first results will say more
        depth = math.ceil(QUEUE_SECONDS / max(worker.mean_duration, 1e-6))
        return worker.slots * max(2, min(MAX_DEPTH, depth))

    def pending(self) -> int:
        """Tasks not finished yet (queued or running)."""
        return len(self.tasks)

    # -- rules -------------------------------------------------------------------

    def _finished(self, event: TasksFinished, actions: list[Action]) -> None:
        worker = self.workers.get(event.worker)
        delivered: list[TaskId] = []
        total = 0.0
        for task, attempt, seconds in event.results:
            total += seconds
            state = self.tasks.get(task)
            if state is None or attempt > state.attempt or attempt <= 0:
                continue  # already delivered, cancelled, or never assigned: a duplicate
            del self.tasks[task]
            delivered.append(task)
            if state.worker is not None:
                holder = self.workers.get(state.worker)
                if holder is not None:
                    holder.tasks.pop(task, None)
                    if holder is not worker:  # another attempt still runs elsewhere
                        actions.append(KillRunning(holder.name, [(task, state.attempt)]))
        if worker is not None and event.results:
            mean = total / len(event.results)
            worker.mean_duration = mean if worker.mean_duration is None else (
                (1 - _EWMA) * worker.mean_duration + _EWMA * mean)
        if delivered:
            actions.append(Deliver(delivered))

    def _requeue(self, state: TaskState, worker: str, reason: str, actions: list[Action]) -> None:
        actions.append(Retry(state.task, state.attempt, reason))
        if state.excluded is None:
            state.excluded = set()
        state.excluded.add(worker)
        state.worker = None
        self.queue.appendleft(state.task)

    def _worker_gone(self, name: str, reason: str, actions: list[Action]) -> None:
        worker = self.workers.pop(name, None)
        if worker is None:
            return
        # Retried in their original order: appendleft reverses, so walk backwards.
        for task, attempt in reversed(list(worker.tasks.items())):
            state = self.tasks.get(task)
            if state is None or state.attempt != attempt:
                continue
            state.lost += 1
            why = f"worker {name} was lost: {reason}"
            if state.lost + state.crashed > state.retries:
                del self.tasks[task]
                actions.append(Fail(task, "lost", f"the task was lost with its worker "
                                    f"{state.lost + state.crashed} times (retries="
                                    f"{state.retries}); last: {why}"))
            else:
                self._requeue(state, name, why, actions)

    def _lost(self, event: TasksLost, actions: list[Action]) -> None:
        worker = self.workers.get(event.worker)
        for task, attempt, why in reversed(event.tasks):
            state = self.tasks.get(task)
            if state is None or state.attempt != attempt or state.worker != event.worker:
                continue
            if worker is not None:
                worker.tasks.pop(task, None)
            state.crashed += 1
            if state.crashed > state.retries:
                del self.tasks[task]
                actions.append(Fail(task, "poison", f"the task killed the worker process "
                                    f"running it {state.crashed} times (retries="
                                    f"{state.retries}), so it is not retried; last: {why}"))
            else:
                self._requeue(state, event.worker, why, actions)

    def _cancel(self, tasks: Iterable[TaskId], actions: list[Action]) -> None:
        cancelled: list[TaskId] = []
        kill: dict[str, list[tuple[TaskId, Attempt]]] = {}
        for task in tasks:
            state = self.tasks.pop(task, None)
            if state is None:
                continue
            cancelled.append(task)
            if state.worker is not None:
                worker = self.workers.get(state.worker)
                if worker is not None:
                    worker.tasks.pop(task, None)
                    kill.setdefault(worker.name, []).append((task, state.attempt))
            # A queued one stays in the deque and is skipped by _dispatch.
        for name, running in kill.items():
            actions.append(KillRunning(name, running))
        if cancelled:
            actions.append(Cancelled(cancelled))

    def _dispatch(self, actions: list[Action]) -> None:
        if not self.queue or not self.workers:
            return
        room = {w.name: self.capacity(w) - w.running for w in self.workers.values()}
        open_workers = [w for w in self.workers.values() if room[w.name] > 0]
        assigned: dict[str, list[tuple[TaskId, Attempt]]] = {}
        uses_credit = self.policy.uses_credit
        pick = self.policy.pick
        skipped: list[TaskId] = []
        while self.queue and open_workers:
            task = self.queue.popleft()
            state = self.tasks.get(task)
            if state is None or state.worker is not None:
                continue  # cancelled or finished while queued
            candidates = open_workers
            if state.excluded:
                allowed = [w for w in self.workers if w not in state.excluded]
                if allowed:  # avoid the workers it was lost on, while others exist
                    candidates = [w for w in open_workers if w.name not in state.excluded]
            picked = pick(candidates) if candidates else None
            chosen = self.workers.get(picked.name) if picked is not None else None
            if chosen is None:
                skipped.append(task)
                if candidates is open_workers:
                    break  # the policy lets everything wait
                continue
            state.attempt += 1
            state.worker = chosen.name
            chosen.tasks[task] = state.attempt
            if uses_credit:
                chosen.credit -= 1
            assigned.setdefault(chosen.name, []).append((task, state.attempt))
            room[chosen.name] -= 1
            if room[chosen.name] <= 0:
                open_workers = [w for w in open_workers if w is not chosen]
        self.queue.extendleft(reversed(skipped))
        for name, batch in assigned.items():
            actions.append(Assign(name, batch))
