"""``mpi4py.futures.aplus``: JavaScript-like (Promises/A+) chaining of futures."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from shoal.compat.mpi4py.futures._base import Future

__all__ = ["ThenableFuture", "then", "catch"]


class ThenableFuture(Future):
    """A ``Future`` with ``then`` and ``catch``."""

    def then(self, on_success: Callable[[Any], Any] | None = None,
             on_failure: Callable[[BaseException], Any] | None = None) -> Future:
        return then(self, on_success, on_failure)

    def catch(self, on_failure: Callable[[BaseException], Any] | None = None) -> Future:
        return catch(self, on_failure)


def then(future: Future, on_success: Callable[[Any], Any] | None = None,
         on_failure: Callable[[BaseException], Any] | None = None) -> Future:
    """A new future resolved from ``future``: by ``on_success(result)`` or
    ``on_failure(exception)`` (a Future they return is chained; an exception
    ``on_failure`` returns fails it), or by ``future`` itself when the handler is None."""
    chained: Future = type(future)()
    future.add_done_callback(lambda old: _resolve(chained, old, on_success, on_failure))
    return chained


def catch(future: Future, on_failure: Callable[[BaseException], Any] | None = None) -> Future:
    """``then(future, None, on_failure)``; without a handler a failure becomes None."""
    return then(future, None, on_failure if on_failure is not None else (lambda _: None))


_links_lock = threading.Lock()
_linked: weakref.WeakKeyDictionary[Future, weakref.WeakSet[Future]] = \
    weakref.WeakKeyDictionary()


def _check_cycle(chained: Future, future: Future) -> None:
    if chained is future:
        raise RuntimeError(f"chain cycle detected: Future {future} chained with itself")
    with _links_lock:
        seen = _linked.setdefault(chained, weakref.WeakSet())
        if future in seen:
            raise RuntimeError(f"chain cycle detected: Future {future} already in chain")
        seen.add(future)


def _follow(chained: Future, future: Future) -> None:
    _check_cycle(chained, future)
    future.add_done_callback(lambda old: _resolve(chained, old))


def _fail(chained: Future, reason: BaseException,
          on_failure: Callable[[BaseException], Any] | None) -> None:
    if on_failure is None:
        chained.set_exception(reason)
        return
    try:
        outcome = on_failure(reason)
        if isinstance(outcome, Future):
            _follow(chained, outcome)
        elif isinstance(outcome, BaseException):
            chained.set_exception(outcome)
        else:
            chained.set_result(outcome)
    except BaseException as exc:
        chained.set_exception(exc)


def _resolve(chained: Future, old: Future, on_success: Callable[[Any], Any] | None = None,
             on_failure: Callable[[BaseException], Any] | None = None) -> None:
    if old.cancelled() or chained.cancelled():
        chained.cancel()
        chained.set_running_or_notify_cancel()
        return
    if old.exception() is not None:
        _fail(chained, old.exception(), on_failure)  # type: ignore[arg-type]
        return
    try:
        result = old.result()
        if on_success is not None:
            result = on_success(result)
        if isinstance(result, Future):
            _follow(chained, result)
        else:
            chained.set_result(result)
    except BaseException as exc:
        _fail(chained, exc, on_failure)
