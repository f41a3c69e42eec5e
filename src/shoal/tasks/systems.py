"""Task systems: an application's logic that runs on the master and spreads its work.

::

    class Primes(shoal.TaskSystem):
        def __init__(self, n):
            self.n, self.found = n, []
        def generate_tasks(self):
            return [shoal.Task(count_primes, lo, lo + 1000) for lo in range(0, self.n, 1000)]
        def task_finished(self, task, result, error):
            self.found.append(result)          # may return (or self.submit) more tasks
        def is_complete(self):
            return len(self.found) == self.n // 1000
        def gather_result(self):
            return sum(self.found)

    total = executor.run_system(Primes(10**6))

The whole object is cloudpickled to the service, which runs it in a thread of
its own (:mod:`.runner`): ``generate_tasks`` once, then ``task_finished(task,
result, error)`` for each task as it ends (``error`` is the exception, with its
remote traceback as ``__cause__``, or None), checks ``is_complete`` after
each, and when it is complete (or no task is left) sends ``gather_result()``
back.  Tasks still queued or running then are cancelled, which is how a search
stops early.

A task is :class:`Task` (a function and its arguments) or any callable object
(Concurrent's ``__call__`` style).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Task:
    """``fn(*args, **kwargs)`` to run on a worker; ``tag`` is yours (anything picklable)."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.tag: Any = None

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"Task({name}, {len(self.args)} args)"


# -- the system ------------------------------------------------------------------------


class TaskSystem:
    """Override :meth:`generate_tasks`, :meth:`task_finished`, :meth:`is_complete`,
    :meth:`gather_result` (see the module docstring).
    """

    _runner: Any = None

    def generate_tasks(self) -> Iterable[Any]:
        """The first tasks."""
        return ()

    def task_finished(self, task: Any, result: Any, error: BaseException | None
                      ) -> Iterable[Any] | None:
        """A task ended; return (or :meth:`submit`) further tasks, if any."""
        return None

    def is_complete(self) -> bool:
        """True once the result is known (checked after every task)."""
        return False

    def gather_result(self) -> Any:
        """What the caller of ``run_system`` gets."""
        return None

    def submit(self, task: Any) -> None:
        """Add a task (from ``generate_tasks`` or ``task_finished``)."""
        if self._runner is None:
            raise RuntimeError("submit works while the system runs on the service")
        self._runner.add([task])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_runner", None)
        return state
