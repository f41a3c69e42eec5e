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
its own: ``generate_tasks`` once, then ``task_finished(task, result, error)``
for each task as it ends (``error`` is the exception, with its remote
traceback as ``__cause__``, or None), checks ``is_complete`` after each, and
when it is complete (or no task is left) sends ``gather_result()`` back.
Tasks still queued or running then are cancelled, which is how a search
stops early.  A task is :class:`Task` (a function and its arguments) or any
callable object (Concurrent's ``__call__`` style).
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shoal.tasks import protocol
from shoal.tasks.codecs import CloudpickleCodec
from shoal.tasks.results import decode_result
from shoal.tasks.worker import CALL, describe_exception

if TYPE_CHECKING:
    from shoal.tasks.service import TaskService, _Session

log = logging.getLogger("shoal.tasks.systems")


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


class TaskSystem:
    """Override :meth:`generate_tasks`, :meth:`task_finished`, :meth:`is_complete`,
    :meth:`gather_result` (see the module docstring)."""

    _runner: SystemRunner | None = None

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


class SystemRunner:
    """Runs one task system for one executor session (on the service, in a thread)."""

    def __init__(self, service: TaskService, session: _Session, key: Any, blob: bytes) -> None:
        self.service = service
        self.session = session
        self.key = key
        self.blob = blob
        self.label = f"{session.label}/system-{key}"
        self.retries = session.retries
        self.tasks: dict[Any, int] = {}       # the service's bookkeeping: our key -> tid
        self.codec = CloudpickleCodec()
        self.inbox: queue.SimpleQueue[list[tuple[Any, int, bytes, str]]] = queue.SimpleQueue()
        self.objects: dict[int, Any] = {}     # our key -> the task object
        self.functions: dict[bytes, int] = {}
        self.next_key = 0
        self.outgoing: list[tuple[Any, Any, bytes]] = []
        self.new_functions: list[tuple[Any, bytes]] = []

    def start(self) -> None:
        self.session.tasks[self.key] = -1  # the system itself is pending for the session
        threading.Thread(target=self._run, name=self.label, daemon=True).start()

    # called in the service's loop
    def deliver(self, results: list[tuple[Any, int, bytes, str]]) -> None:
        for result in results:
            self.tasks.pop(result[0], None)
        self.inbox.put(results)

    def add(self, tasks: Iterable[Any]) -> None:
        """Encode tasks (in the runner's thread) for the next hand-over to the service."""
        for task in tasks:
            fn, args, kwargs = ((task.fn, task.args, task.kwargs) if isinstance(task, Task)
                                else (task, (), {}))
            blob = self.codec.dumps_by_value(fn)
            fid = self.functions.get(blob)
            if fid is None:
                fid = self.functions[blob] = len(self.functions)
                self.new_functions.append(((self.label, fid), blob))
            key = self.next_key
            self.next_key += 1
            self.objects[key] = task
            self.outgoing.append((key, (self.label, fid), self.codec.dumps((CALL, args, kwargs))))

    def _hand_over(self) -> None:
        if not self.outgoing:
            return
        tasks, self.outgoing = self.outgoing, []
        functions, self.new_functions = self.new_functions, []

        def submit() -> None:
            for fkey, blob in functions:
                self.service.functions[fkey] = (blob, "cloudpickle")
            self.service.submit(self, tasks)

        assert self.service.loop is not None
        self.service.loop.call_soon_threadsafe(submit)

    def _finish(self, status: int, blob: bytes) -> None:
        def deliver() -> None:
            self.service.cancel(self, list(self.tasks))
            self.service.forget_functions(self.label)
            self.session.deliver([(self.key, status, blob, self.label)])

        assert self.service.loop is not None
        self.service.loop.call_soon_threadsafe(deliver)

    def _run(self) -> None:
        try:
            system = pickle.loads(self.blob)
            system._runner = self
            self.add(system.generate_tasks() or ())
            self._hand_over()
            while self.objects and not system.is_complete():
                for key, status, blob, worker in self.inbox.get():
                    task = self.objects.pop(key, None)
                    if task is None:
                        continue
                    try:
                        result, error = decode_result(status, blob, worker, self.codec), None
                    except Exception as exc:
                        result, error = None, exc
                    more = system.task_finished(task, result, error)
                    if more:
                        self.add(more)
                    if system.is_complete():
                        break
                self._hand_over()
            self._finish(protocol.OK, self.codec.dumps(system.gather_result()))
        except Exception as exc:
            log.info("task system %s raised %r", self.label, exc)
            self._finish(protocol.RAISED, describe_exception(exc, None, self.codec))
