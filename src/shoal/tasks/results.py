"""Turning a task's result blob back into a value, or into the exception to raise."""

from __future__ import annotations

import pickle
from typing import Any

from shoal.errors import SerializationError
from shoal.tasks import protocol, sources
from shoal.tasks.codecs import Codec
from shoal.tasks.errors import PoisonTaskError, RemoteTraceback, TaskError, WorkerLostError

_FAILURES: dict[str, type[TaskError]] = {"poison": PoisonTaskError, "lost": WorkerLostError}


def remote_exception(blob: bytes, worker: str, coder: Codec) -> tuple[BaseException, Any]:
    """The exception a task raised (with a :class:`RemoteTraceback` cause), and its partial."""
    try:
        exc, kind, text, trace, partial = coder.loads(blob)
    except Exception as error:
        return SerializationError(f"the exception a task raised on {worker} cannot be "
                                  f"unpickled here: {error}"), None
    if not isinstance(exc, BaseException):
        exc = TaskError(f"{kind}: {text} (the exception itself could not be pickled)")
    trace = sources.resolve(trace)
    exc.__cause__ = RemoteTraceback(f"raised on {worker}", where=worker, remote_traceback=trace)
    return exc, partial


def failure(blob: bytes, task_id: str) -> TaskError:
    kind, message = pickle.loads(blob)
    return _FAILURES.get(kind, TaskError)(f"task {task_id}: {message}")


def decode_result(status: int, blob: bytes, worker: str, coder: Codec) -> Any:
    """The value, or raise what the task raised (or why shoal gave up on it)."""
    if status == protocol.OK:
        return coder.loads(blob)
    if status == protocol.RAISED:
        raise remote_exception(blob, worker, coder)[0]
    raise failure(blob, worker)
