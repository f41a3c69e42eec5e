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

        @shoal.remote(json=True)
        def progress(self):                    # callable by clients while the system runs
            return len(self.found)

    total = executor.run_system(Primes(10**6))

The whole object is cloudpickled to the service, which runs it in a thread of
its own (:mod:`.runner`): ``init_system`` and ``generate_tasks`` once, then
``task_finished(task, result, error)`` for each task as it ends (``error`` is
the exception, with its remote traceback as ``__cause__``, or None), checks
``is_complete`` after each, and when it is complete (or no task is left) sends
``gather_result()`` back.  Tasks still queued or running then are cancelled,
which is how a search stops early.

A task is :class:`Task` (a function and its arguments) or any callable object
(Concurrent's ``__call__`` style).  Its lifecycle hooks, when it has them:
``clean_up()`` runs on the worker right after the call, even when the call
raised; ``finished(result, error)`` runs on the submitting side (the
executor's process for :meth:`Executor.submit`, the service for a system's
tasks) before the result is handed on.

Methods marked :func:`remote` are called by clients while the system runs
(``executor.call(system, "progress")``; those marked ``json=True`` also over the
master's REST API), one at a time in the system's thread, between results.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])
REMOTE_ATTR = "__shoal_remote__"


class Task:
    """``fn(*args, **kwargs)`` to run on a worker; ``tag`` is yours (anything picklable).

    Subclass it to add the lifecycle hooks: :meth:`clean_up` (on the worker,
    after the call, even when it raised) and :meth:`finished` (on the
    submitting side, with the result or the error).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.tag: Any = None

    def __call__(self) -> Any:
        return self.fn(*self.args, **self.kwargs)

    def clean_up(self) -> None:
        """Runs on the worker right after the call, even when the call raised."""

    def finished(self, result: Any, error: BaseException | None) -> None:
        """Runs on the submitting side with the result (``error`` None) or the error."""

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"Task({name}, {len(self.args)} args)"


def call_parts(task: Any) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """What travels for ``task``: (callable, args, kwargs).

    A plain :class:`Task` sends its function and arguments (the function goes
    once however many tasks use it); a Task subclass that adds a ``clean_up``
    or its own ``__call__``, and any other callable object, travels whole so
    that its methods run on the worker.
    """
    if isinstance(task, Task) and type(task).clean_up is Task.clean_up \
            and type(task).__call__ is Task.__call__:
        return task.fn, task.args, task.kwargs
    return task, (), {}


def finished_hook(task: Any) -> Callable[[Any, BaseException | None], Any] | None:
    """The task's ``finished(result, error)``, or None (the Task default counts as none)."""
    if isinstance(task, Task) and type(task).finished is Task.finished:
        return None
    hook = getattr(task, "finished", None)
    if hook is None or not callable(hook) or inspect.isclass(task):
        return None
    return hook


# -- remote methods -------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteMethod:
    """A method a task system lets clients call: its attribute, whether JSON may call it."""

    name: str
    attribute: str
    json: bool
    doc: str


@overload
def remote(fn: F, /) -> F: ...


@overload
def remote(*, name: str | None = None, json: bool = False) -> Callable[[F], F]: ...


def remote(fn: Any = None, /, *, name: str | None = None, json: bool = False) -> Any:
    """Mark a task-system method as callable by clients while the system runs.

    ``@remote``: authenticated executors call it (``executor.call(system,
    "name", ...)``) with any picklable arguments and result.  ``@remote(json=True)``:
    also listed and callable on the master's REST API (``POST
    /api/v1/tasks/methods/{system}/{name}``) with JSON arguments; its result
    must be JSON too.  ``name`` renames it for clients.  Concurrent's
    ``@tcpremote`` and ``@jsonremote``, on the task system itself.
    """

    def mark(method: F) -> F:
        if not callable(method):
            raise TypeError("@remote marks a method")
        setattr(method, REMOTE_ATTR, {"name": name or method.__name__, "json": bool(json)})
        return method

    return mark(fn) if fn is not None else mark


def remote_methods(system: Any) -> dict[str, RemoteMethod]:
    """The remote methods of ``system`` (an instance or a class), by the name clients use."""
    found: dict[str, RemoteMethod] = {}
    cls = system if isinstance(system, type) else type(system)
    for attribute in dir(cls):
        value = inspect.getattr_static(cls, attribute, None)
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        marked = getattr(value, REMOTE_ATTR, None)
        if isinstance(marked, dict):
            doc = inspect.getdoc(value) or ""
            found[marked["name"]] = RemoteMethod(marked["name"], attribute, marked["json"],
                                                 doc.split("\n\n")[0].strip())
    return found


# -- the system ------------------------------------------------------------------------


class TaskSystem:
    """Override :meth:`generate_tasks`, :meth:`task_finished`, :meth:`is_complete`,
    :meth:`gather_result` (see the module docstring).

    ``name``: what the service shows it as (``GET /api/v1/tasks``) and what
    clients call its remote methods by; the class name by default.  Two systems
    of one name on a service get ``-2``, ``-3``...
    """

    name: str | None = None
    _runner: Any = None

    def init_system(self) -> None:
        """Runs first, on the service (``__init__`` ran where the system was made)."""

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
        """Add a task (from ``generate_tasks``, ``task_finished`` or a remote method)."""
        if self._runner is None:
            raise RuntimeError("submit works while the system runs on the service")
        self._runner.add([task])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_runner", None)
        return state
