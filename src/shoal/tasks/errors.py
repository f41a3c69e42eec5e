"""The errors of the task face, all under :class:`shoal.errors.ShoalError`.

::

    TaskError               a task could not run to the end for a reason of shoal's
    +-- WorkerLostError     its worker died or went silent more often than ``retries`` allows
    +-- PoisonTaskError     it killed the worker process that ran it, again and again
    +-- UnknownMethodError  no running task system of that name, or no remote method of it
    +-- RemoteMethodError   a remote method raised (for callers that get text, not the object)
    RemoteTraceback         the ``__cause__`` of an exception raised by a task on a worker:
                            the worker's name (``where``) and its traceback as text
"""

from __future__ import annotations

from shoal.errors import ShoalError


class TaskError(ShoalError):
    """A task did not produce a result, for a reason that is not its own exception."""


class WorkerLostError(TaskError):
    """The task's workers were lost (died, disconnected, stopped heartbeating) too often."""


class PoisonTaskError(TaskError):
    """The task killed the worker process running it on every attempt: it is not retried."""


class RemoteTraceback(ShoalError):
    """Attached as ``__cause__`` to an exception a task raised on a worker."""

    def __str__(self) -> str:
        return f"raised on worker {self.where}:\n{self.remote_traceback}"


class UnknownMethodError(TaskError, LookupError):
    """No running task system of that name, or no remote method of that name in it."""


class RemoteMethodError(TaskError):
    """A task system's remote method raised: the exception's type, text and traceback."""

    def __init__(self, kind: str, text: str, traceback: str, where: str = "") -> None:
        super().__init__(f"{kind}: {text}", remote_traceback=traceback)
        self.kind = kind
        self.text = text
        self.system = where
