"""Task hooks: middleware the service calls as tasks and workers come and go.

Subclass :class:`TaskHooks` and override what you need; every hook does
nothing by default (dramatiq's middleware, the same idea).  Hooks run in the
service's event loop, so they must be quick: count, log, export metrics.
An exception in a hook is logged and never stops the service.  Install them
with ``TaskService(hooks=[MyHooks()])``, or publish them under the
``shoal.task_hooks`` entry-point group and start the service with
``plugin_hooks=True`` (``shoal tasks serve --plugin-hooks``: all of them) or
name them (``shoal tasks serve --hooks NAME``, ``hooks = [...]`` in tasks.toml).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task as hooks see it: the service's id and its owner's id for it (``session:n``)."""

    tid: int
    task_id: str


class TaskHooks:
    def task_submitted(self, task: TaskInfo) -> None:
        """A task entered the queue."""

    def task_assigned(self, task: TaskInfo, worker: str, attempt: int) -> None:
        """A task was sent to a worker (an agent)."""

    def task_retried(self, task: TaskInfo, reason: str) -> None:
        """A task's attempt was lost; it goes back to the queue."""

    def task_finished(self, task: TaskInfo, worker: str, raised: bool) -> None:
        """A task's result (a value, or the exception it raised) was accepted."""

    def task_failed(self, task: TaskInfo, message: str) -> None:
        """shoal gave up on a task (lost too often, or poison)."""

    def task_cancelled(self, task: TaskInfo) -> None:
        """A task was cancelled by its owner."""

    def worker_joined(self, worker: str, slots: int) -> None:
        """An agent logged in."""

    def worker_left(self, worker: str, reason: str) -> None:
        """An agent went away (or was dropped for missing heartbeats)."""


def named_hooks(names: list[str]) -> list[TaskHooks]:
    """One instance of each hook class published under ``shoal.task_hooks`` as ``names``."""
    from shoal.tasks.plugins import load_all

    published = load_all("shoal.task_hooks") if names else {}
    found = []
    for name in names:
        cls = published.get(name)
        if cls is None:
            known = ", ".join(sorted(published)) or "none is installed"
            raise LookupError(f"no task hook plugin named {name!r} (shoal.task_hooks entry "
                              f"points: {known})")
        if not (isinstance(cls, type) and issubclass(cls, TaskHooks)):
            raise TypeError(f"the shoal.task_hooks entry point {name!r} is not a TaskHooks class")
        found.append(cls())
    return found


def plugin_hooks() -> list[TaskHooks]:
    """One instance of every hook class published under ``shoal.task_hooks``."""
    from shoal.tasks.plugins import load_all

    found = []
    for name, cls in sorted(load_all("shoal.task_hooks").items()):
        if not (isinstance(cls, type) and issubclass(cls, TaskHooks)):
            raise TypeError(f"the shoal.task_hooks entry point {name!r} is not a TaskHooks class")
        found.append(cls())
    return found
