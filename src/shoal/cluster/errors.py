"""Errors of the cluster, each carrying the HTTP status and machine code of the REST API.

The master turns every :class:`ClusterError` into the contract's JSON body
``{"error": {"code": ..., "message": ...}}`` in one place
(:mod:`shoal.cluster.master.errors`); the CLI prints it as one line.
"""

from __future__ import annotations

from shoal.errors import ShoalError


class ClusterError(ShoalError):
    """A request the cluster refuses; ``status`` and ``code`` say how to report it."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFoundError(ClusterError):
    status = 404
    code = "not_found"


class ConflictError(ClusterError):
    status = 409
    code = "conflict"


class AuthenticationRequired(ClusterError):
    """No token, or one the master does not know (401)."""

    status = 401
    code = "unauthorized"


class TooManyAttempts(ClusterError):
    """An address that sent too many unknown tokens, refused for a while (429)."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScopeError(ClusterError):
    """A known token whose scope is too small for the request (403)."""

    status = 403
    code = "forbidden"


class TooLargeError(ClusterError):
    """A request or a part of it over the cluster's limits (413); the message names the limit."""

    status = 413
    code = "too_large"


class UnavailableError(ClusterError):
    """The master is at a limit of what it serves at once (503); try again later."""

    status = 503
    code = "unavailable"


class LinkError(ShoalError):
    """A worker or the master broke the link protocol; the connection is dropped."""


class WorkerRefused(ShoalError):
    """The master refused this worker for good (its id or name is online elsewhere, another
    link protocol): the worker stops with the master's reason rather than retry."""
