"""``MPIPoolExecutor``, ``MPICommExecutor`` and friends, with mpi4py's documented API."""

from __future__ import annotations

import collections
import functools
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shoal.compat.mpi4py.futures import _core
from shoal.compat.mpi4py.futures._base import Executor, as_completed
from shoal.compat.mpi4py.futures._base import Future as _Future
from shoal.compat.mpi4py.futures._worker import get_comm_server

__all__ = ["MPIPoolExecutor", "MPICommExecutor", "ThreadPoolExecutor",
           "ProcessPoolExecutor", "get_comm_workers"]


class MPIPoolExecutor(Executor):
    """An executor whose calls run in worker processes (see :mod:`._core` for which)."""

    Future = _Future
    _make_pool: Callable[[Any], _core.Pool] = staticmethod(_core.WorkerPool)

    def __init__(self, max_workers: int | None = None, initializer: Callable[..., Any] | None
                 = None, initargs: Iterable[Any] = (), **kwargs: Any) -> None:
        """``max_workers`` (default: ``MPI4PY_FUTURES_MAX_WORKERS``, else 1), an
        ``initializer`` run in each worker, and mpi4py's keywords: ``python_exe``,
        ``python_args``, ``mpi_info``, ``globals``, ``main``, ``path``, ``wdir``, ``env``,
        ``use_pkl5``, ``backoff``."""
        if max_workers is not None:
            max_workers = int(max_workers)
            if max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
            kwargs["max_workers"] = max_workers
        if initializer is not None:
            if not callable(initializer):
                raise TypeError("initializer must be a callable")
            kwargs["initializer"] = initializer
            kwargs["initargs"] = tuple(initargs)
        if kwargs.get("service") is not None:
            raise NotImplementedError(
                "MPIPoolExecutor(service=...) reaches its workers through MPI ports "
                "(Open_port/Connect), which shoal does not have: start the workers with "
                "shoal run -n N -m mpi4py.futures, or let MPIPoolExecutor spawn them")
        _check_use_pkl5(kwargs)
        self._options = kwargs
        self._shutdown = False
        self._broken: str | None = None
        self._lock = threading.Lock()
        self._pool: _core.Pool | None = None

    def _bootstrap(self) -> None:
        if self._pool is None:
            self._pool = type(self)._make_pool(self)

    @property
    def _max_workers(self) -> int:
        return self.num_workers

    @property
    def num_workers(self) -> int:
        """How many workers there are (0 once shut down or broken)."""
        with self._lock:
            if self._broken or self._shutdown:
                return 0
            self._bootstrap()
            assert self._pool is not None
            self._pool.wait()
            return int(self._pool.size or 0)

    def bootup(self, wait: bool = True) -> MPIPoolExecutor:
        """Start the workers now (and, with ``wait``, until they are ready)."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot bootup after shutdown")
            self._bootstrap()
            assert self._pool is not None
            if wait:
                self._pool.wait()
            return self

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> _Future:
        with self._lock:
            if self._broken:
                raise _core.BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._bootstrap()
            assert self._pool is not None
            future: _Future = self.Future()
            self._pool.push((future, (fn, args, kwargs)))
            return future

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None
            = None, chunksize: int = 1, buffersize: int | None = None,
            unordered: bool = False) -> Iterator[Any]:
        return self.starmap(fn, zip(*iterables, strict=False), timeout, chunksize, buffersize,
                            unordered)

    def starmap(self, fn: Callable[..., Any], iterable: Iterable[Any], timeout: float | None
                = None, chunksize: int = 1, buffersize: int | None = None,
                unordered: bool = False) -> Iterator[Any]:
        """``itertools.starmap(fn, iterable)``, computed by the workers ``chunksize`` at a
        time, at most ``buffersize`` submitted ahead, in order unless ``unordered``."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None:
            if not isinstance(buffersize, int):
                raise TypeError("buffersize must be an integer or None")
            if buffersize < 1:
                raise ValueError("buffersize must be None or > 0")
            if unordered:
                raise ValueError("buffersize must be None if unordered")
        if chunksize == 1:
            return _results(self, fn, iter(iterable), timeout, buffersize, unordered)
        chunks = ((tuple(chunk),) for chunk in _chunks(iterable, chunksize))
        lists = _results(self, functools.partial(_apply_chunk, fn), chunks, timeout,
                         buffersize, unordered)
        return itertools.chain.from_iterable(lists)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; with ``wait``, return when the workers are gone."""
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                if self._pool is not None:
                    self._pool.done()
            if cancel_futures and self._pool is not None:
                self._pool.cancel()
            pool = None
            if wait:
                pool, self._pool = self._pool, None
        if pool is not None:
            pool.join()


def _check_use_pkl5(options: dict[str, Any]) -> None:
    """mpi4py's ``use_pkl5`` (and ``MPI4PY_FUTURES_USE_PKL5``): accepted; shoal's task
    messages already travel as protocol 5 pickles with buffers out of band."""
    if options.get("use_pkl5") is not None:
        return
    value = _core.os_environ_get("USE_PKL5")
    if value is None or value.lower() in ("false", "no", "off", "n", "0", "true", "yes",
                                          "on", "y", "1"):
        return
    import warnings

    warnings.warn(f"environment variable MPI4PY_FUTURES_USE_PKL5: unexpected value {value!r}",
                  RuntimeWarning, stacklevel=3)


def _chunks(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _apply_chunk(fn: Callable[..., Any], chunk: tuple[Any, ...]) -> list[Any]:
    return list(itertools.starmap(fn, chunk))


def _results(executor: MPIPoolExecutor, fn: Callable[..., Any], iterator: Iterator[Any],
             timeout: float | None, buffersize: int | None,
             unordered: bool) -> Iterator[Any]:
    """Submit now (``buffersize`` at a time), yield results lazily; cancel the rest if
    the caller stops early or a result raises."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if buffersize is not None:
        futures = collections.deque(executor.submit(fn, *args)
                                    for args in itertools.islice(iterator, buffersize))
    else:
        futures = collections.deque(executor.submit(fn, *args) for args in iterator)
    owner = weakref.ref(executor)
    del executor

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    def take(future: _Future, wait: float | None) -> Any:
        try:
            return future.result(wait)
        finally:
            future.cancel()

    def generate() -> Iterator[Any]:
        try:
            if unordered:
                waiting = set(futures)
                futures.clear()
                for future in as_completed(waiting, left()):
                    waiting.discard(future)
                    yield take(future, None)
                return
            while futures:
                result = take(futures.popleft(), left())
                if buffersize is not None and (executor := owner()) is not None:
                    nxt = next(iterator, None)
                    if nxt is not None:
                        futures.append(executor.submit(fn, *nxt))
                    del executor
                yield result
        finally:
            while futures:
                futures.pop().cancel()

    return generate()


class MPICommExecutor:
    """``with MPICommExecutor(comm, root) as executor:``: an executor at ``root`` whose
    workers are the other ranks of ``comm``; ``None`` on those ranks, which serve until
    the root's executor shuts down (mpi4py's context manager)."""

    def __init__(self, comm: Any = None, root: int = 0, **kwargs: Any) -> None:
        if comm is None:
            comm = _core.MPI.COMM_WORLD
        if comm.Is_inter():
            raise ValueError("expecting an intracommunicator")
        if root < 0 or root >= comm.Get_size():
            raise ValueError("expecting root in range(comm.size)")
        if _core.SharedPool is not None:  # under -m mpi4py.futures: the shared workers
            comm = _core.MPI.COMM_WORLD
            root = comm.Get_rank()
        self._comm = comm
        self._root = root
        self._options = kwargs
        self._executor: MPIPoolExecutor | None = None

    def __enter__(self) -> MPIPoolExecutor | None:
        if self._executor is not None:
            raise RuntimeError("__enter__")
        executor = None
        if self._comm.Get_rank() == self._root:
            executor = MPIPoolExecutor(**self._options)
        if _core.SharedPool is not None:
            if executor is not None:
                executor._pool = _core.SharedPool(executor)
        else:
            pool = _core.comm_executor_pool(executor, self._comm, self._root)
            if executor is not None:
                executor._pool = pool
        self._executor = executor
        return executor

    def __exit__(self, *exc: object) -> bool:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
            return False
        return True


class ThreadPoolExecutor(MPIPoolExecutor):
    """``MPIPoolExecutor`` whose workers are threads of this process."""

    _make_pool = staticmethod(_core.ThreadPool)


class ProcessPoolExecutor(MPIPoolExecutor):
    """``MPIPoolExecutor`` whose workers are always spawned processes."""

    _make_pool = staticmethod(_core.SpawnPool)


def get_comm_workers() -> Any:
    """In a worker: the intracommunicator of all the workers (RuntimeError elsewhere)."""
    return get_comm_server()

