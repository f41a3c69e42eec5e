"""The workers behind ``MPIPoolExecutor``: pools, their managers and the workers' loop.

An executor owns a :class:`Pool`: a queue of ``(future, task)`` and a *manager* thread
that hands tasks to idle workers and completes futures with what comes back.  The
workers are, by mode (mpi4py's, see ``docs`` of :mod:`shoal.compat.mpi4py.futures`):

* spawned: ``MPIPoolExecutor()`` starts ``max_workers`` new processes, a ``shoal run``
  job of their own (their ``COMM_WORLD``), linked to the manager over sockets;
* shared: under ``shoal run -n N -m mpi4py.futures prog.py`` ranks 1..N-1 serve every
  executor that rank 0 makes, over a private duplicate of ``COMM_WORLD``;
* a communicator's: ``MPICommExecutor(comm, root)``, the other ranks of ``comm``;
* threads: ``ThreadPoolExecutor``, and any of the above on a one-process world.

Messages, manager to worker: ``("sync", data)`` (import the main module as
``__worker__``, set ``sys.path``, folder, environment, globals), ``("init", fn, args,
kwargs)``, ``("task", fn, args, kwargs)``, ``None`` (stop).  Worker to manager:
``(result, None)`` or ``(None, exception)``; ``init`` answers ``True`` or ``False``.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
import warnings
import weakref
from typing import Any

from shoal.compat.mpi4py.futures import _links
from shoal.compat.mpi4py.futures._base import BrokenExecutor, Future
from shoal.compat.mpi4py.futures._worker import (
    MAIN_RUN_NAME,
    RemoteTraceback,
    del_comm_server,
    get_comm_server,
    initialize,
    serve,
    set_comm_server,
    sync_data,
)
from shoal.spmd import mpi as _mpi

MPI: Any = _mpi
BACKOFF = 0.001

__all__ = ["MAIN_RUN_NAME", "RemoteTraceback", "get_comm_server", "set_comm_server",
           "del_comm_server", "SharedPool", "serialized", "setup_mpi_threads", "comm_split"]


def os_environ_get(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"MPI4PY_FUTURES_{name}", default)


def _backoff(options: dict[str, Any]) -> float:
    value: Any = options.get("backoff")
    if value is None:
        value = os_environ_get("BACKOFF", str(BACKOFF))
    return float(value)


# -- MPI from several threads ------------------------------------------------------

class _Serialized:
    """mpi4py's ``serialized``: its ``lock`` serializes the futures' MPI calls."""

    @property
    def lock(self) -> threading.Lock | None:
        return _links.serialized_lock.lock

    @lock.setter
    def lock(self, value: threading.Lock | None) -> None:
        _links.serialized_lock.lock = value


serialized = _Serialized()
_setup_lock = threading.Lock()
_thread_level: list[int] = []


def setup_mpi_threads() -> None:
    """Serialize the futures' MPI calls unless MPI provides THREAD_MULTIPLE."""
    with _setup_lock:
        if not _thread_level:
            _thread_level.append(MPI.Query_thread())
            if _thread_level[0] < MPI.THREAD_MULTIPLE:
                serialized.lock = threading.Lock()
    if _thread_level[0] < MPI.THREAD_SERIALIZED:
        warnings.warn("the level of thread support in MPI should be at least "
                      "MPI_THREAD_SERIALIZED", RuntimeWarning, stacklevel=2)


# -- the pool: a queue and a manager thread -------------------------------------------

_MANAGERS: weakref.WeakKeyDictionary[threading.Thread, Pool] = weakref.WeakKeyDictionary()


def join_managers(pools: Any = None) -> None:
    """At interpreter exit: tell every manager to stop, and wait for them."""
    items = list((pools if pools is not None else _MANAGERS).items())
    for _, pool in items:
        pool.done()
    for thread, _ in items:
        thread.join()


if hasattr(threading, "_register_atexit"):
    threading._register_atexit(join_managers)
else:  # pragma: no cover
    import atexit

    atexit.register(join_managers)


def _run_manager(manager: Any, pool: Pool, *args: Any) -> None:
    """Run a pool's manager; should it fail, the executor is broken (its futures fail
    with the reason rather than wait forever) and the thread's traceback is printed."""
    try:
        manager(pool, *args)
    except BaseException as exc:
        pool.broken(f"the executor's manager thread failed: {type(exc).__name__}: {exc}")
        raise


class Pool:
    """The executor's queue of ``(future, task)`` (``None`` ends it) and its manager."""

    def __init__(self, executor: Any, manager: Any, *args: Any) -> None:
        self.size: int | None = None
        self.event = threading.Event()
        self.queue: collections.deque[Any] = collections.deque()
        self.wakeup = threading.Condition()
        queue, wake = self.queue, self.wakeup

        def forgotten(_: Any) -> None:  # the executor was garbage collected: stop
            queue.append(None)
            with wake:
                wake.notify_all()

        self.exref = weakref.ref(executor, forgotten)
        self.thread = threading.Thread(target=_run_manager,
                                       args=(manager, self, executor._options, *args),
                                       name="mpi4py.futures manager")
        setup_mpi_threads()
        self.thread.daemon = not hasattr(threading, "_register_atexit")
        self.thread.start()
        _MANAGERS[self.thread] = self

    def wait(self) -> None:
        self.event.wait()

    def push(self, item: Any) -> None:
        self.queue.append(item)
        with self.wakeup:
            self.wakeup.notify_all()

    def done(self) -> None:
        self.push(None)

    def join(self) -> None:
        self.thread.join()

    def setup(self, size: int) -> collections.deque[Any]:
        self.size = size
        self.event.set()
        return self.queue

    def idle(self, timeout: float) -> None:
        """Wait until something is pushed (or ``timeout`` seconds)."""
        with self.wakeup:
            if not self.queue:
                self.wakeup.wait(timeout)

    def cancel(self, handler: Any = None) -> None:
        """Cancel every queued future (or pass it to ``handler``); keep the end marker."""
        while True:
            try:
                item = self.queue.popleft()
            except IndexError:
                break
            if item is None:
                self.queue.append(None)
                break
            future, _ = item
            if handler is not None:
                handler(future)
            else:
                future.cancel()
                future.set_running_or_notify_cancel()

    def broken(self, message: str) -> None:
        executor = self.exref()
        lock = None
        if executor is not None:
            executor._broken = message
            if not executor._shutdown:
                lock = executor._lock

        def fail(future: Future) -> None:
            if future.set_running_or_notify_cancel():
                future.set_exception(BrokenExecutor(message))

        self.event.set()
        if lock is not None:
            lock.acquire()
        try:
            self.cancel(fail)
        finally:
            if lock is not None:
                lock.release()


# -- running tasks through a link ---------------------------------------------------

def _complete(future: Future, reply: Any) -> None:
    result, exception = reply
    if exception is None:
        future.set_result(result)
    else:
        future.set_exception(exception)


def client_exec(pool: Pool, link: Any, options: dict[str, Any], workers: Any) -> None:
    """Hand queued tasks to idle ``workers`` (maybe shared with other executors) and
    complete their futures, until the end marker and every task in flight is back."""
    pending: dict[int, Future] = {}
    try:
        _exec(pool, link, options, workers, pending)
    except BaseException as exc:  # the tasks in flight fail with it, as the queued ones
        for future in pending.values():
            if not future.done():
                future.set_exception(BrokenExecutor(f"the executor's manager thread "
                                                    f"failed: {type(exc).__name__}: {exc}"))
        raise


def _exec(pool: Pool, link: Any, options: dict[str, Any], workers: Any,
          pending: dict[int, Future]) -> None:
    backoff = _links.Backoff(_backoff(options))
    queue = pool.queue
    stop = False
    while True:
        progressed = False
        while not stop and queue:
            # Take the worker first, in one step: under ``-m mpi4py.futures`` other
            # executors' managers take from the same ``workers`` at the same time, and a
            # check then a pop could lose the last one to them (and this manager its
            # task); the main thread may empty ``queue`` too (shutdown's cancel).
            try:
                worker = workers.popleft()
            except IndexError:
                break
            try:
                item = queue.popleft()
            except IndexError:
                workers.appendleft(worker)
                break
            if item is None:
                workers.appendleft(worker)
                stop = True
                break
            future, task = item
            if not future.set_running_or_notify_cancel():
                workers.appendleft(worker)
                continue
            try:
                link.send(worker, ("task", *task))
            except _links.WorkersLost as exc:
                workers.append(worker)
                _lost(pool, [future, *pending.values()], exc)
                return
            except BaseException as exc:  # the task could not be pickled: its own failure
                workers.append(worker)
                future.set_exception(exc)
                continue
            pending[worker] = future
            progressed = True
        if stop and not pending:
            return
        if pending:
            try:
                replies = link.poll(0 if progressed else backoff.next())
            except _links.WorkersLost as exc:
                _lost(pool, list(pending.values()), exc)
                return
            for worker, reply in replies:
                workers.append(worker)
                _complete(pending.pop(worker), reply)
            progressed = progressed or bool(replies)
        elif queue and not stop:  # tasks, but every shared worker is busy elsewhere
            time.sleep(backoff.next())
        elif not progressed:
            pool.idle(1.0)  # nothing queued, nothing in flight: sleep until a push
        if progressed:
            backoff.reset()


def _lost(pool: Pool, futures: list[Future], exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(BrokenExecutor(str(exc)))
    pool.broken(str(exc))


def client_init(link: Any, options: dict[str, Any], workers: list[int]) -> bool:
    """Run the initializer on every worker; True when it succeeded everywhere."""
    initializer = options.get("initializer")
    if initializer is None:
        return True
    message = ("init", initializer, tuple(options.get("initargs", ())),
               dict(options.get("initkwargs", {})))
    for worker in workers:
        link.send(worker, message)
    answers: dict[int, Any] = {}
    while len(answers) < len(workers):
        for worker, answer in link.poll(0.01):
            answers[worker] = answer
    return all(answer is True for answer in answers.values())


def client_stop(link: Any, workers: list[int]) -> None:
    for worker in workers:
        try:
            link.send(worker, None)
        except _links.WorkersLost:
            pass
    link.close()


# -- managers, one per mode -------------------------------------------------------

def _manager_thread(pool: Pool, options: dict[str, Any]) -> None:
    size = int(options.pop("max_workers", 1))
    queue = pool.setup(size)
    if not initialize(options):
        pool.broken("initializer failed")
        return
    backoff = _links.Backoff(_backoff(options))
    threads: list[threading.Thread] = []

    def work() -> None:
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                pool.idle(backoff.tmax or 0.001)
                continue
            if item is None:
                queue.append(None)
                return
            future, (fn, args, kwargs) = item
            if future.set_running_or_notify_cancel():
                if queue and len(threads) < size - 1:
                    thread = threading.Thread(target=work, name="mpi4py.futures worker")
                    threads.append(thread)
                    thread.start()
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del item, future

    work()
    for thread in threads:
        thread.join()
    queue.popleft()


def _python_flags(python_args: Any) -> dict[str, str]:
    """Interpreter flags for the workers, as environment variables (this one's included)."""
    from shoal.compat.mpi4py.futures._flags import flags_to_environment

    return flags_to_environment(list(python_args or ()))


def _manager_spawn(pool: Pool, options: dict[str, Any]) -> None:
    from shoal.compat.mpi4py.futures._worker import check_recursive_spawn

    check_recursive_spawn()
    count = options.pop("max_workers", None) or get_max_workers()
    python_exe = options.pop("python_exe", None)
    options.pop("mpi_info", None)
    try:
        env = dict(os.environ)
        env.update(_python_flags(options.pop("python_args", None)))
        link = _links.spawn_job(int(count), python_exe, env,
                                is_cancelled=lambda: pool.exref() is None)
    except BaseException as exc:
        pool.broken(f"cannot start the workers: {exc}")
        return
    workers = collections.deque(range(int(count)))
    try:
        data = sync_data(options, main=options.pop("main", True))
        for worker in workers:
            link.send(worker, ("sync", data))
        if not client_init(link, options, list(workers)):
            pool.broken("initializer failed")
            return
        pool.setup(int(count))
        client_exec(pool, link, options, workers)
    except _links.WorkersLost as exc:
        pool.broken(str(exc))
    finally:
        client_stop(link, list(range(int(count))))


def get_max_workers() -> int:
    configured = os_environ_get("MAX_WORKERS")
    if configured is not None:
        return int(configured)
    universe = MPI.COMM_WORLD.Get_attr(MPI.UNIVERSE_SIZE)
    if universe is not None:
        return max(int(universe) - MPI.COMM_WORLD.Get_size(), 1)
    return 1


def SpawnPool(executor: Any) -> Pool:
    return Pool(executor, _manager_spawn)


def ThreadPool(executor: Any) -> Pool:
    return Pool(executor, _manager_thread)


def WorkerPool(executor: Any) -> Pool:
    if SharedPool is not None:
        return SharedPool(executor)
    return SpawnPool(executor)


# -- pools over a communicator ------------------------------------------------------

def _private_split(comm: Any, root: int) -> tuple[Any, Any]:
    """(a private duplicate of ``comm``: root and workers, the workers' own
    communicator): how the pools here reach their workers by ``comm``'s ranks."""
    private = comm.Dup()
    color = MPI.UNDEFINED if comm.Get_rank() == root else 0
    workers = comm.Split(color, 0)
    return private, workers


def comm_split(comm: Any, root: int) -> tuple[Any, Any]:
    """mpi4py's helper: (an intercommunicator between ``root`` and the other ranks of
    ``comm``, the others' intracommunicator, ``COMM_NULL`` at the root)."""
    if comm.Is_inter():
        comm = comm.Merge()
    rank = comm.Get_rank()
    everyone = comm.Get_group()
    group = everyone.Incl([root]) if rank == root else everyone.Excl([root])
    everyone.Free()
    intracomm = comm.Create(group)
    group.Free()
    # the other side's leader, a rank of comm: the root, or the lowest rank besides it
    remote_leader = (1 if root == 0 else 0) if rank == root else root
    intercomm = intracomm.Create_intercomm(0, comm, remote_leader, tag=0)
    if rank == root:
        intracomm.Free()
        intracomm = MPI.COMM_NULL
    return intercomm, intracomm


class _CommWorkers:
    """The link and worker set of executors that share a communicator's ranks."""

    def __init__(self, comm: Any, root: int) -> None:
        self.comm = comm
        self.root = root
        self.ranks = [r for r in range(comm.Get_size()) if r != root]
        self.idle: collections.deque[int] = collections.deque(self.ranks)
        self.lock = threading.Lock()
        self.counter = itertools.count(1)  # tag 0 carries the first sync and the stop
        self.synced = False

    def link(self, tag: int) -> _links.MpiClient:
        return _links.MpiClient(self.comm, self.ranks, tag)


    def start(self, options: dict[str, Any], sync: bool) -> tuple[_links.MpiClient, bool]:
        """A link with a tag of its own, the workers synced once and initialized."""
        with self.lock:
            link = self.link(next(self.counter))
            if sync and not self.synced:  # the first executor of a shared pool
                self.synced = True
                data = sync_data(options, main=options.pop("main", True))
                for worker in self.ranks:
                    link.send(worker, ("sync", data))
            ok = client_init(link, options, self.ranks)
        return link, ok

    def stop(self) -> None:
        """Every executor's manager has ended: tell the workers to stop.  A reply left
        by a manager that failed is dropped meanwhile, so that its worker gets there."""
        link = self.link(0)
        for worker in self.ranks:
            link.send(worker, None)
        link.finish(drop_replies=True)


def _manager_comm(pool: Pool, options: dict[str, Any], shared: _CommWorkers,
                  sync: bool) -> None:
    link, ok = shared.start(options, sync)
    if not ok:
        pool.broken("initializer failed")
        return
    pool.setup(len(shared.ranks))
    client_exec(pool, link, options, shared.idle)
    link.finish()


def worker_loop(comm: Any, root: int) -> None:
    """A worker rank of a communicator serves until the root's stop message."""
    server = _links.MpiServer(comm, root)
    serve(server)


class SharedPoolCtx:
    """``shoal run -n N -m mpi4py.futures``: rank 0 runs the program, the rest serve."""

    def __init__(self) -> None:
        self.shared: _CommWorkers | None = None
        self.comm: Any = None
        self.workers_comm: Any = None
        self.on_root = False
        self.pools: weakref.WeakKeyDictionary[threading.Thread, Pool] = \
            weakref.WeakKeyDictionary()

    def __reduce__(self) -> str:
        return "SharedPool"

    def __call__(self, executor: Any) -> Pool:
        if self.shared is None:  # a one-process world: a thread serves
            options = executor._options
            options["max_workers"] = 1
            pool = Pool(executor, _manager_self)
        else:
            pool = Pool(executor, _manager_comm, self.shared, True)
        del _MANAGERS[pool.thread]
        self.pools[pool.thread] = pool
        return pool

    def __enter__(self) -> SharedPoolCtx | None:
        global SharedPool
        world = MPI.COMM_WORLD
        self.on_root = world.Get_rank() == 0
        if world.Get_size() > 1:
            self.comm, self.workers_comm = _private_split(world, 0)
            if self.on_root:
                self.shared = _CommWorkers(self.comm, 0)
        SharedPool = self
        return self if self.on_root else None

    def __exit__(self, *exc: object) -> None:
        global SharedPool
        if self.on_root:
            join_managers(self.pools)
            if self.shared is not None:
                self.shared.stop()
        elif self.comm is not None:
            set_comm_server(self.workers_comm)
            try:
                worker_loop(self.comm, 0)
            finally:
                del_comm_server()
        SharedPool = None
        for comm in (self.workers_comm, self.comm):
            if comm is not None and comm != MPI.COMM_NULL:
                comm.Free()
        self.comm = self.workers_comm = self.shared = None


def _manager_self(pool: Pool, options: dict[str, Any]) -> None:
    set_comm_server(MPI.COMM_SELF)
    try:
        _manager_thread(pool, options)
    finally:
        del_comm_server()


SharedPool: SharedPoolCtx | None = None


def comm_executor_pool(executor: Any, comm: Any, root: int) -> Pool | None:
    """``MPICommExecutor.__enter__``: the root's pool, or serve here until the root stops."""
    if comm.Get_size() == 1:
        if executor is None:
            return None
        executor._options["max_workers"] = 1
        return Pool(executor, _manager_self)
    private, workers_comm = _private_split(comm, root)
    if comm.Get_rank() != root:
        set_comm_server(workers_comm)
        try:
            worker_loop(private, root)
        finally:
            del_comm_server()
            workers_comm.Free()
            private.Free()
        return None
    shared = _CommWorkers(private, root)
    return Pool(executor, _manager_comm_owned, shared)


def _manager_comm_owned(pool: Pool, options: dict[str, Any], shared: _CommWorkers) -> None:
    try:
        _manager_comm(pool, options, shared, False)
    finally:
        shared.stop()
        shared.comm.Free()
