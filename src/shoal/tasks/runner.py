"""The service's side of a task system: runs one system in a thread of its own.

The service (:mod:`.service`) starts a :class:`SystemRunner` for each system an
executor sends (:mod:`.systems` is the API the system is written against).  The
runner unpickles the system, encodes the tasks it makes, hands them to the
service in the loop's thread, and feeds each result back to the system, in the
runner's thread, one at a time.  Calls of the system's remote methods
(:class:`Call`) arrive in the same inbox, so they run in that thread too,
between results: a system never sees two things at once.  The runner knows
the service only as an :class:`~shoal.tasks.owners.Host`.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shoal.tasks import protocol
from shoal.tasks.codecs import CloudpickleCodec
from shoal.tasks.errors import UnknownMethodError
from shoal.tasks.owners import Host, Owner, Result
from shoal.tasks.results import decode_result
from shoal.tasks.stats import Tally
from shoal.tasks.systems import RemoteMethod, call_parts, finished_hook, remote_methods
from shoal.tasks.worker import CALL, describe_exception

log = logging.getLogger("shoal.tasks.runner")


@dataclass
class Call:
    """A call of a remote method: ``reply(ok, value or exception)`` runs in the runner's thread.

    ``blob`` (pickled ``(args, kwargs)`` from an executor) is loaded there too;
    calls from the REST API give ``args`` and ``kwargs`` as they are and
    ``json_only``, which allows only the methods marked ``json=True``.
    """

    method: str
    reply: Callable[[bool, Any], object]
    args: tuple[Any, ...] | list[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    blob: bytes | None = None
    json_only: bool = False


class SystemRunner:
    """Runs one task system for one executor session (on the service, in a thread)."""

    def __init__(self, service: Host, session: Owner, key: Any, blob: bytes) -> None:
        self.service = service
        self.session = session
        self.key = key
        self.blob = blob
        self.label = f"{session.label}/system-{key}"
        self.name = self.label                # the system's own name once it is loaded
        self.tally = Tally()
        self.retries = session.retries
        self.tasks: dict[Any, int] = {}       # the service's bookkeeping: our key -> tid
        self.codec = CloudpickleCodec()
        self.inbox: queue.SimpleQueue[list[Result] | Call] = queue.SimpleQueue()
        self.methods: dict[str, RemoteMethod] = {}
        self.closed = False                   # set in the loop's thread once it has ended
        self.objects: dict[int, Any] = {}     # our key -> the task object
        self.functions: dict[bytes, int] = {}
        self.next_key = 0
        self.outgoing: list[tuple[Any, Any, bytes]] = []
        self.new_functions: list[tuple[Any, bytes]] = []

    def start(self) -> None:
        self.session.tasks[self.key] = -1  # the system itself is pending for the session
        threading.Thread(target=self._run, name=self.label, daemon=True).start()

    # called in the service's loop

    def call(self, call: Call) -> None:
        """Queue a remote call for the system's thread (answered at once if it has ended)."""
        if self.closed:
            call.reply(False, UnknownMethodError(f"the task system {self.name!r} has finished"))
        else:
            self.inbox.put(call)
    def deliver(self, results: list[Result]) -> None:
        for result in results:
            self.tasks.pop(result[0], None)
            self.tally.count(result[1] == protocol.OK)
        self.inbox.put(results)

    def add(self, tasks: Iterable[Any]) -> None:
        """Encode tasks (in the runner's thread) for the next hand-over to the service."""
        for task in tasks:
            fn, args, kwargs = call_parts(task)
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
            self.closed = True
            self._refuse_calls()  # those queued after the thread's last look
            self.service.system_ended(self)
            self.service.cancel(self, list(self.tasks))
            self.service.forget_functions(self.label)
            self.session.deliver([(self.key, status, blob, self.label)])

        assert self.service.loop is not None
        self.service.loop.call_soon_threadsafe(deliver)

    def _run(self) -> None:
        try:
            system = pickle.loads(self.blob)
            system._runner = self
            self.name = str(getattr(system, "name", None) or type(system).__name__)
            self.methods = remote_methods(system)
            assert self.service.loop is not None
            self.service.loop.call_soon_threadsafe(self.service.system_started, self)
            init = getattr(system, "init_system", None)
            if callable(init):
                init()  # Concurrent's init_system, here on the master
            self.add(system.generate_tasks() or ())
            self._hand_over()
            while self.objects and not system.is_complete():
                item = self.inbox.get()
                if isinstance(item, Call):
                    self._answer(system, item)
                    self._hand_over()  # a remote method may have submitted tasks
                    continue
                for key, status, blob, worker in item:
                    task = self.objects.pop(key, None)
                    if task is None:
                        continue
                    try:
                        result, error = decode_result(status, blob, worker, self.codec), None
                    except Exception as exc:
                        result, error = None, exc
                    hook = finished_hook(task)
                    if hook is not None:
                        hook(result, error)  # Concurrent's Task.finished, on the master
                    more = system.task_finished(task, result, error)
                    if more:
                        self.add(more)
                    if system.is_complete():
                        break
                self._hand_over()
            status, blob = protocol.OK, self.codec.dumps(system.gather_result())
        except Exception as exc:
            log.info("task system %s raised %r", self.label, exc)
            status, blob = protocol.RAISED, describe_exception(exc, None, self.codec)
        self._refuse_calls()
        self._finish(status, blob)

    def _answer(self, system: Any, call: Call) -> None:
        """Run one remote call in this thread and reply with its value or its exception."""
        try:
            found = self.methods.get(call.method)
            if found is None or (call.json_only and not found.json):
                kind = "JSON " if call.json_only else ""
                known = sorted(m.name for m in self.methods.values()
                               if m.json or not call.json_only)
                raise UnknownMethodError(
                    f"the task system {self.name!r} has no {kind}remote method "
                    f"{call.method!r} (it has: {', '.join(known) or 'none'})")
            args, kwargs = (self.codec.loads(call.blob) if call.blob is not None
                            else (call.args, call.kwargs))
            value = getattr(system, found.attribute)(*args, **kwargs)
        except Exception as exc:
            call.reply(False, exc)
        else:
            call.reply(True, value)

    def _refuse_calls(self) -> None:
        """Answer the calls still queued: the system has ended (results are dropped)."""
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Call):
                item.reply(False, UnknownMethodError(
                    f"the task system {self.name!r} has finished"))
