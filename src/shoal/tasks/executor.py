"""``shoal.Executor``: concurrent.futures over a task service.

::

    with shoal.Executor() as ex:                       # a local cluster, one worker per core
        print(list(ex.map(pow, range(10), range(10))))
    with shoal.Executor("shoal://master:7452") as ex:  # password: $SHOAL_PASSWORD
        future = ex.submit(fn, 1, 2)

Futures are real :class:`concurrent.futures.Future` objects (callbacks,
``as_completed`` and ``wait`` work).  A future stays *pending* until its
result arrives, so ``cancel()`` works on a queued task and on a running one
(its worker process is killed and replaced).  ``future.task_id`` names the
task, so another executor can :meth:`Executor.fetch` its result later.
asyncio code uses :meth:`asubmit`, :meth:`amap` and :meth:`arun_system`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import itertools
import threading
import time
import uuid
import warnings
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from shoal.errors import ConfigurationError, LaunchError, PeerLostError
from shoal.tasks import protocol, sources
from shoal.tasks.codecs import CloudpickleCodec, Codec
from shoal.tasks.codecs import codec as find_codec
from shoal.tasks.functions import FunctionCache
from shoal.tasks.results import failure, remote_exception
from shoal.tasks.systems import Task, call_parts, finished_hook
from shoal.tasks.worker import CALL, CHUNK

SUBMIT_BATCH = 10_000
_BY_VALUE = CloudpickleCodec()   # task systems and remote calls: the service loads them


class TaskFuture(concurrent.futures.Future[Any]):
    """A Future whose ``cancel()`` also cancels the task on the cluster."""

    def __init__(self, executor: Executor, key: Any, task_id: str) -> None:
        super().__init__()
        self._executor_ref = weakref.ref(executor)
        self._key = key
        self.task_id = task_id
        self.partial: list[Any] | None = None   # a chunk's results before the one that raised
        self.finished: Callable[[Any, BaseException | None], Any] | None = None  # its hook
        self.codec: Codec | None = None   # how its result is encoded, when not the executor's
        self.system = False                # the future of a task system (submit_system)

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()  # wakes as_completed and wait
        executor = self._executor_ref()
        if executor is not None:
            executor._cancel_key(self._key)
        return True


class Executor(concurrent.futures.Executor):
    """Run calls on a shoal task service (a local cluster when ``address`` is None).

    ``workers``: worker processes of the local cluster (default one per core).
    ``scheduler``: the policy of the local cluster ("pull", "least-loaded",
    "fastest-first" or a plugin's); with an address, the service's own policy
    is used and naming another one is an error.  ``retries``: how often a task
    lost with its worker runs again.  ``password`` (default: ``$SHOAL_PASSWORD``),
    or ``identity`` with ``host_keys``, logs in to a remote service.  ``codec``: how arguments and
    results are encoded (a name in ``shoal.tasks.codecs.CODECS`` or a
    ``shoal.codecs`` plugin).  ``modules``: modules whose code travels by value
    (not installed on the workers).
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 scheduler: str | None = None, retries: int = 3, password: str | None = None,
                 identity: Any = None, host_keys: Any = None, codec: str = "cloudpickle",
                 modules: Iterable[ModuleType | str] = (), name: str = "executor",
                 connect_timeout: float = 30.0, heartbeat_timeout: float = 10.0) -> None:
        from shoal.security import ClientConfig

        if retries < 0:
            raise ConfigurationError(f"retries must be 0 or more, not {retries}")
        self.codec: Codec = find_codec(codec)
        for module in modules:
            if not isinstance(self.codec, CloudpickleCodec):
                raise ConfigurationError("modules=... needs the cloudpickle codec")
            self.codec.register_by_value(module if isinstance(module, str) else module.__name__)
        self.session = uuid.uuid4().hex[:16]
        self._lock = threading.Lock()
        self._pending: dict[Any, TaskFuture] = {}
        self._functions: dict[bytes, int] = {}
        self._sent = FunctionCache()
        self._counter = itertools.count()
        self._shutdown = False
        self._broken: str | None = None
        self._status_reply: list[dict[str, Any]] = []
        self._status_event = threading.Event()
        self._local = None
        hello = {"role": "client", "session": self.session, "retries": retries,
                 "scheduler": None if address is None else scheduler, **protocol.versions()}
        from shoal.tasks.client import Connection, connect

        if address is None:
            from shoal.tasks.local import START_TIMEOUT, LocalCluster

            self._local = LocalCluster(workers or protocol.default_slots(), scheduler or "pull",
                                       heartbeat_timeout)
            channel: Any = self._local.channel
            connect_timeout = max(connect_timeout, START_TIMEOUT)
        else:
            if workers is not None:
                raise ConfigurationError("workers= sizes a local cluster; a remote service has "
                                         "the workers its agents bring")
            if password is None and identity is None:
                password, notice = protocol.env_password()
                if notice:
                    warnings.warn(notice, FutureWarning, stacklevel=2)
            host, port = protocol.parse_address(address)
            # The server's name is HOST:PORT, so `host_keys` may be a KnownHosts file.
            config = ClientConfig(password=password, identity=identity, host_keys=host_keys,
                                  name=name, server_name=f"{host}:{port}")
            channel = connect(host, port, config, timeout=connect_timeout)
        self.address = address or "local"
        self._connect_timeout = connect_timeout
        try:
            self._conn = Connection(channel, hello, self._on_message, self._on_lost,
                                    timeout=connect_timeout)
        except BaseException as exc:
            channel.close()
            self._stop_local(exc)
            raise
        if self._conn.welcome[0] != "welcome":
            self._conn.close()
            self._stop_local()
            raise ConfigurationError(f"the task service refused this executor: "
                                     f"{self._conn.welcome[1]}")
        self.scheduler = str(self._conn.welcome[1].get("scheduler"))
        self._conn.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- submitting -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self._broken is not None:
            raise PeerLostError(self._broken)

    def _function(self, fn: Callable[..., Any]) -> int:
        """The id of ``fn`` on the service; sent once per distinct pickle (call with the lock).

        A function already sent, unchanged, is not pickled again (:mod:`.functions`)."""
        fid = self._sent.get(fn)
        if fid is not None:
            return fid
        blob, by_value = self.codec.dumps_function(fn)
        fid = self._functions.get(blob)
        if fid is None:
            fid = self._functions[blob] = len(self._functions)
            self._conn.post(("fn", fid, blob, self.codec.name))
        self._sent.put(fn, fid, by_value)
        return fid

    def _new(self) -> tuple[int, TaskFuture]:
        n = next(self._counter)
        future = TaskFuture(self, n, f"{self.session}:{n}")
        self._pending[n] = future
        return n, future

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskFuture:
        """Run ``fn(*args, **kwargs)``; its future.

        ``fn`` may be a task object (a :class:`~shoal.tasks.systems.Task`, or any
        callable object): its ``clean_up()`` runs on the worker after the call,
        its ``finished(result, error)`` here, before the future is resolved.
        """
        if not callable(fn):
            raise TypeError(f"submit needs a callable, not {type(fn).__name__}")
        finished = finished_hook(fn)
        if isinstance(fn, Task):
            fn, more, extra = call_parts(fn)
            args, kwargs = more + args, {**extra, **kwargs}
        payload = self.codec.dumps((CALL, args, kwargs))
        with self._lock:
            self._check_open()
            fid = self._function(fn)
            n, future = self._new()
            future.finished = finished
            alone = len(self._pending) == 1
        if alone:  # nothing else in flight: latency matters more than batching, send now
            self._conn.post_now(("submit", [(n, fid, payload)]))
        else:
            self._conn.post(("submit", [(n, fid, payload)]))
        return future

    def _submit_many(self, fid: int, mode: int, items: Iterable[Any]) -> list[TaskFuture]:
        dumps = self.codec.dumps
        payloads = [dumps((mode, item, {}) if mode == CHUNK else (CALL, item, {}))
                    for item in items]
        futures = []
        tasks = []
        with self._lock:
            self._check_open()
            for payload in payloads:
                n, future = self._new()
                futures.append(future)
                tasks.append((n, fid, payload))
            # Messages of at most SUBMIT_BATCH tasks: the service takes a breath between them.
            self._conn.post_many([("submit", tasks[i:i + SUBMIT_BATCH])
                                  for i in range(0, len(tasks), SUBMIT_BATCH)])
        return futures

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1, buffersize: int | None = None,
            unordered: bool = False) -> Iterator[Any]:
        """Like :func:`concurrent.futures.Executor.map` (Python 3.14's, with ``buffersize``).

        ``chunksize`` calls go to a worker as one task; ``buffersize`` bounds the
        tasks submitted and not yet yielded (the iterables are read lazily then);
        ``unordered=True`` yields results as they finish.  The first exception
        (in the order results are yielded) is raised; the tasks not yet yielded
        are cancelled when the iterator is closed or fails.
        """
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        with self._lock:
            self._check_open()
            fid = self._function(fn)
        args: Iterator[Any] = zip(*iterables, strict=False)
        mode = CALL
        if chunksize > 1:
            args, mode = _batched(args, chunksize), CHUNK
        if buffersize is None:
            first = self._submit_many(fid, mode, args)
        else:
            first = self._submit_many(fid, mode, itertools.islice(args, buffersize))

        refill: _Refill | None = None
        if buffersize is not None:
            size = buffersize
            # Refilled in bursts (half the buffer at once), not a task per result: one
            # message per burst keeps a buffered map nearly as fast as an unbuffered one.
            low = size // 2 if size >= 4 else size - 1

            def refill(held: int) -> list[TaskFuture]:
                if held > low:
                    return []
                return self._submit_many(fid, mode, itertools.islice(args, size - held))

        if unordered:
            return _unordered(first, refill, end_time, mode == CHUNK)
        return _ordered(first, refill, end_time, mode == CHUNK)

    # -- task systems, fetching, status ---------------------------------------------------

    def submit_system(self, system: Any) -> TaskFuture:
        """Run a :class:`~shoal.tasks.systems.TaskSystem` on the service; its future."""
        with sources.collecting() as codes:
            blob = _BY_VALUE.dumps_by_value(system)
        where = sources.table(codes)  # so that tracebacks made on the service name files too
        with self._lock:
            self._check_open()
            n, future = self._new()
            future.codec, future.system = _BY_VALUE, True
            self._conn.post(("system", n, blob, where))
        return future

    def run_system(self, system: Any, timeout: float | None = None) -> Any:
        """Run a task system and return its ``gather_result()``."""
        return self.submit_system(system).result(timeout)

    def submit_call(self, system: str | TaskFuture, method: str, /, *args: Any,
                    **kwargs: Any) -> TaskFuture:
        """Call a remote method of a running task system; the future of its value.

        ``system`` is the future :meth:`submit_system` gave, or the system's
        name on the service (``TaskSystem.name``, see :meth:`methods`).  The
        call runs in the system's thread on the service, between results; its
        exception is raised here, with the remote traceback as ``__cause__``.
        """
        if isinstance(system, TaskFuture):
            if not system.system or system._executor_ref() is not self:
                raise TypeError("submit_call takes a task system's name, or the future this "
                                "executor's submit_system gave")
            ref: Any = system._key
        elif isinstance(system, str):
            ref = system
        else:
            raise TypeError(f"a task system is named by a str or its future, not "
                            f"{type(system).__name__}")
        blob = _BY_VALUE.dumps((args, kwargs))
        with self._lock:
            self._check_open()
            n, future = self._new()
            future.codec = _BY_VALUE
            self._conn.post(("call", n, ref, str(method), blob))
        return future

    def call(self, system: str | TaskFuture, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """``submit_call(...).result()``: call a task system's remote method (Concurrent's
        ``@tcpremote``), see :func:`shoal.remote`."""
        return self.submit_call(system, method, *args, **kwargs).result()

    def methods(self) -> list[dict[str, Any]]:
        """The remote methods of the systems running on the service: system, name, doc, json."""
        return list(self.status()["methods"])

    def fetch(self, task_ids: Iterable[str]) -> list[TaskFuture]:
        """Futures for tasks of an earlier executor (``future.task_id``), e.g. after a crash."""
        futures = []
        wanted: dict[str, list[int]] = {}
        with self._lock:
            self._check_open()
            for task_id in task_ids:
                label, _, n = str(task_id).rpartition(":")
                if not label or not n.isdigit():
                    raise ValueError(f"{task_id!r} is not a task id (SESSION:N)")
                key = (label, int(n))
                future = self._pending.get(key) or TaskFuture(self, key, str(task_id))
                self._pending[key] = future
                futures.append(future)
                wanted.setdefault(label, []).append(int(n))
            for label, ns in wanted.items():
                self._conn.post(("fetch", label, ns))
        return futures

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        """The service's view: scheduler, queued and pending tasks, agents and their pids."""
        with self._lock:
            self._check_open()
            self._status_event.clear()
            self._conn.post(("status",))
        if not self._status_event.wait(timeout):
            raise TimeoutError("the task service did not answer a status request")
        return self._status_reply[-1]

    # -- results ---------------------------------------------------------------------------

    def _on_message(self, message: protocol.Message) -> None:
        if message[0] == "results":
            pending = self._pending
            for key, status, blob, worker in message[1]:
                future = pending.pop(key, None)
                if future is not None and not future.done():
                    self._resolve(future, status, blob, worker)
        elif message[0] == "status":
            self._status_reply.append(message[1])
            self._status_event.set()

    def _resolve(self, future: TaskFuture, status: int, blob: bytes, worker: str) -> None:
        codec = future.codec or self.codec
        try:
            if status == protocol.CANCELLED:
                future.cancel()
                return
            value: Any = None
            error: BaseException | None = None
            if status == protocol.OK:
                try:
                    value = codec.loads(blob)
                except Exception as exc:
                    from shoal.errors import SerializationError

                    error = SerializationError(
                        f"the result of task {future.task_id} cannot be unpickled here: {exc}")
            elif status == protocol.RAISED:
                error, future.partial = remote_exception(blob, worker, codec)
            else:
                error = failure(blob, future.task_id)
            if future.finished is not None:
                try:
                    future.finished(value, error)
                except Exception as exc:  # the hook's own failure is the future's
                    error = exc
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile

    def _on_lost(self, why: str) -> None:
        self._broken = why
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            if not future.done():
                future.set_exception(PeerLostError(why))

    def _cancel_key(self, key: Any) -> None:
        if self._pending.pop(key, None) is not None and self._broken is None:
            self._conn.post(("cancel", [key]))

    # -- the end -----------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                already = True
            else:
                already, self._shutdown = False, True
            pending = list(self._pending.values())
        if cancel_futures:
            for future in pending:
                future.cancel()
        if already:
            return
        if wait:
            concurrent.futures.wait(pending)
            self._close()
        else:
            threading.Thread(target=self._close_when_done, args=(pending,),
                             name="shoal-executor-shutdown").start()

    def _close_when_done(self, pending: list[TaskFuture]) -> None:
        concurrent.futures.wait(pending)
        self._close()

    def _close(self) -> None:
        if self._broken is None:
            self._conn.post(("bye",))
        self._conn.close()
        self._stop_local()

    def _stop_local(self, failed: BaseException | None = None) -> None:
        """Stop the local cluster; when its start ``failed`` because it exited, say so."""
        local, self._local = self._local, None
        if local is None:
            return
        status = local.exit_status(0.5) if isinstance(failed, (EOFError, OSError)) else None
        local.stop()
        if status is not None:
            raise LaunchError(f"the local task cluster exited at start (status {status}); "
                              "its error is above") from None
        if isinstance(failed, TimeoutError):
            raise LaunchError("the local task cluster did not answer within "
                              f"{self._connect_timeout:g} s; it was stopped") from None

    # -- asyncio ---------------------------------------------------------------------------

    async def asubmit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``await ex.asubmit(fn, ...)``: the result, without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    async def amap(self, fn: Callable[..., Any], *iterables: Iterable[Any],
                   chunksize: int = 1, unordered: bool = False) -> AsyncIterator[Any]:
        """``async for result in ex.amap(fn, items)``: results in order (or as they finish)."""
        with self._lock:
            self._check_open()
            fid = self._function(fn)
        mode = CHUNK if chunksize > 1 else CALL
        items: Iterator[Any] = zip(*iterables, strict=False)
        futures = self._submit_many(fid, mode, _batched(items, chunksize) if chunksize > 1
                                    else items)
        wrapped = [asyncio.wrap_future(f) for f in futures]
        try:
            for next_done in (asyncio.as_completed(wrapped) if unordered else wrapped):
                value = await next_done
                if mode == CHUNK:
                    for item in value:
                        yield item
                else:
                    yield value
        finally:
            for future in futures:
                future.cancel()

    async def arun_system(self, system: Any) -> Any:
        return await asyncio.wrap_future(self.submit_system(system))


def _close_at_exit(ref: weakref.ref[Executor]) -> None:
    executor = ref()
    if executor is not None and executor._local is not None:
        # Never shut down: cancel what is left (futures are never "running", so this cancels
        # all) and stop the local cluster, rather than leave it to PR_SET_PDEATHSIG.
        executor.shutdown(wait=True, cancel_futures=True)


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _values(future: TaskFuture, end_time: float | None, chunked: bool) -> list[Any]:
    """The future's values (a chunk's, in order); raise its exception after a chunk's partial."""
    try:
        value = future.result() if end_time is None else future.result(end_time - time.monotonic())
    except BaseException:
        future.cancel()
        raise
    return value if chunked else [value]


_Refill = Callable[[int], list[TaskFuture]]   # (tasks held) -> the tasks submitted to refill


def _ordered(first: list[TaskFuture], refill: _Refill | None, end_time: float | None,
             chunked: bool) -> Iterator[Any]:
    futures = deque(first)
    try:
        while True:
            if refill is not None:
                futures.extend(refill(len(futures)))
            if not futures:
                break
            future = futures.popleft()
            try:
                values = _values(future, end_time, chunked)
            except Exception:
                if future.partial:
                    yield from future.partial
                raise
            yield from values
            del future
    finally:
        for future in futures:
            future.cancel()


def _unordered(first: list[TaskFuture], refill: _Refill | None, end_time: float | None,
               chunked: bool) -> Iterator[Any]:
    import queue

    done: queue.SimpleQueue[concurrent.futures.Future[Any]] = queue.SimpleQueue()
    outstanding = set(first)
    for future in first:
        future.add_done_callback(done.put)
    try:
        while outstanding:
            try:
                left = None if end_time is None else max(0.0, end_time - time.monotonic())
                finished = done.get(timeout=left)
            except queue.Empty:
                raise TimeoutError() from None
            outstanding.discard(finished)
            if refill is not None:
                for nxt in refill(len(outstanding)):
                    outstanding.add(nxt)
                    nxt.add_done_callback(done.put)
            assert isinstance(finished, TaskFuture)
            try:
                values = _values(finished, end_time, chunked)
            except Exception:
                if finished.partial:
                    yield from finished.partial
                raise
            yield from values
    finally:
        for future in outstanding:
            future.cancel()
