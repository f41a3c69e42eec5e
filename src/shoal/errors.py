"""The one exception tree of shoal.

Every error shoal raises derives from :class:`ShoalError`.  Errors that come
from another process (a rank, a worker, a volunteer) carry the remote
traceback as text in :attr:`ShoalError.remote_traceback` and say where they
happened in :attr:`ShoalError.where`, so the caller sees the real cause.
"""

from __future__ import annotations


class ShoalError(Exception):
    """Base class of every shoal error."""

    def __init__(self, message: str = "", *, where: str | None = None,
                 remote_traceback: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.where:
            text = f"{text} (at {self.where})"
        if self.remote_traceback:
            text = f"{text}\n\nRemote traceback:\n{self.remote_traceback}"
        return text


class ConfigurationError(ShoalError):
    """Bad settings or arguments: the message says what to change."""


class LaunchError(ShoalError):
    """A job could not be started or was stopped abnormally."""


class SerializationError(ShoalError):
    """A value could not be encoded (pickled) or decoded."""


class TransportError(ShoalError):
    """A transport failed: a peer vanished or a channel broke."""


class PeerLostError(TransportError):
    """The process on the other end of a channel is gone."""


class CommunicationError(ShoalError):
    """Misuse of the message-passing API (bad rank, truncation, ...).

    ``shoal.MPI.Exception`` is a subclass that carries an MPI error class.
    """
