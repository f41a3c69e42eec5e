"""The task face: distribute Python functions and whole task systems.

* :class:`Executor` (:mod:`.executor`): concurrent.futures over a task
  service; a local cluster when no address is given.
* :class:`TaskSystem` and :class:`Task` (:mod:`.systems`): logic that runs on
  the master, generates tasks and reacts to their results; :func:`remote`
  marks the methods clients may call while it runs.
* :class:`TaskService` (:mod:`.service`) and :class:`TaskAgent`
  (:mod:`.agent`): the master and worker sides, for ``shoal master`` /
  ``shoal worker`` or ``shoal tasks serve`` / ``shoal tasks agent``.
* :mod:`.scheduler`: the pure scheduler state machine and its policies.

Layers, imports pointing down: executor/client -> service/agent -> links ->
scheduler, protocol, codecs, worker -> errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.tasks.errors import (
    PoisonTaskError,
    RemoteMethodError,
    RemoteTraceback,
    TaskError,
    UnknownMethodError,
    WorkerLostError,
)

if TYPE_CHECKING:
    from shoal.tasks.agent import TaskAgent
    from shoal.tasks.executor import Executor, TaskFuture
    from shoal.tasks.hooks import TaskHooks
    from shoal.tasks.service import TaskService
    from shoal.tasks.systems import Task, TaskSystem, remote

_LAZY = {
    "Executor": "shoal.tasks.executor", "TaskFuture": "shoal.tasks.executor",
    "Task": "shoal.tasks.systems", "TaskSystem": "shoal.tasks.systems",
    "remote": "shoal.tasks.systems",
    "TaskService": "shoal.tasks.service", "TaskAgent": "shoal.tasks.agent",
    "TaskHooks": "shoal.tasks.hooks",
}


def __getattr__(name: str) -> Any:
    # The executor pulls in cryptography and the secure channel: only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shoal.tasks' has no attribute {name!r}")


__all__ = ["Executor", "PoisonTaskError", "RemoteMethodError", "RemoteTraceback", "Task",
           "TaskAgent", "TaskError", "TaskFuture", "TaskHooks", "TaskService", "TaskSystem",
           "UnknownMethodError", "WorkerLostError", "remote"]
