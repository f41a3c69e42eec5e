"""``mpi4py.futures.util``: ``collect`` (many futures as one) and ``compose`` (a future
whose value is a function of another's)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from shoal.compat.mpi4py.futures._base import Future

__all__ = ["collect", "compose"]


def collect(fs: Iterable[Future]) -> Future:
    """A future of the list of the results of ``fs`` (in order; duplicates allowed).

    It fails with the first exception among ``fs``, is cancelled when one of them is,
    and cancelling it cancels those still pending.
    """
    items = list(fs)
    if not items:
        done: Future = Future()
        done.set_result([])
        return done
    gathered: Future = type(items[0])()
    results: list[Any] = [None] * len(items)
    where: dict[Future, list[int]] = {}
    for index, item in enumerate(items):
        where.setdefault(item, []).append(index)
    lock = threading.RLock()

    def item_done(item: Future) -> None:
        with lock:
            if gathered.done() or item not in where:
                return
            if item.cancelled():
                gathered.cancel()  # (gathered_done notifies its waiters)
                return
            exception = item.exception()
            if exception is not None:
                if gathered.set_running_or_notify_cancel():
                    gathered.set_exception(exception)
                return
            for index in where.pop(item):
                results[index] = item.result()
            if not where and gathered.set_running_or_notify_cancel():
                gathered.set_result(results)

    def gathered_done(future: Future) -> None:
        with lock:
            for item in list(where):
                item.cancel()
        if future.cancelled():
            future.set_running_or_notify_cancel()

    gathered.add_done_callback(gathered_done)
    for item in list(where):
        item.add_done_callback(item_done)
    return gathered


def compose(future: Future, resulthook: Callable[[Any], Any] | None = None,
            excepthook: Callable[[BaseException], Any] | None = None) -> Future:
    """A future completed from ``future``: with ``resulthook(result)`` on success (or the
    result), with ``excepthook(exception)`` on failure (an exception it returns fails the
    new future, anything else is its result); cancelling either cancels the other."""
    composed: Future = type(future)()

    def cancelled(new: Future) -> None:
        if new.cancelled():
            new.set_running_or_notify_cancel()
            future.cancel()

    def complete(old: Future) -> None:
        try:
            if old.cancelled():
                composed.cancel()
            elif old.exception() is not None:
                reason: Any = old.exception()
                if excepthook is not None:
                    reason = excepthook(reason)
                if isinstance(reason, BaseException):
                    composed.set_exception(reason)
                else:
                    composed.set_result(reason)
            else:
                result = old.result()
                composed.set_result(resulthook(result) if resulthook is not None else result)
        except BaseException as exc:
            composed.set_exception(exc)

    composed.add_done_callback(cancelled)
    future.add_done_callback(complete)
    return composed
