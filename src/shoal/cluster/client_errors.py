"""Errors the cluster client raises, one class per kind of failure.

The master answers every error as ``{"error": {"code": ..., "message": ...}}``
(docs/contracts/cluster-rest.md); :func:`error_from_response` turns that into
one of these, keeping the master's message (which says what to do) and its
machine code, so the CLI prints one clear line and programs can branch on the
class or on :attr:`ClusterRequestError.code`.
"""

from __future__ import annotations

from typing import Any

from shoal.errors import ConfigurationError, ShoalError


class ClusterClientError(ShoalError):
    """Base class of what the cluster client raises."""


class ClientConfigurationError(ClusterClientError, ConfigurationError):
    """No master URL or token, or an unreadable client.toml: the message says what to set."""


class MasterUnreachableError(ClusterClientError):
    """The master could not be reached (refused, no route, timed out, TLS failure)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the shoal master at {url} ({reason}): is `shoal master` running "
            "there? Give its URL with --master, SHOAL_MASTER or client.toml")
        self.url = url
        self.reason = reason


class MasterProtocolError(ClusterClientError):
    """The master's answer was not what the REST contract promises."""


class ClusterRequestError(ClusterClientError):
    """The master refused a request; ``status`` and ``code`` are the master's."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthenticationError(ClusterRequestError):
    """401: no token or one the master does not know."""


class PermissionDeniedError(ClusterRequestError):
    """403: the token's scope is too small (read < submit < admin)."""


class NotFoundError(ClusterRequestError):
    """404: no such pool, job or worker."""


class ConflictError(ClusterRequestError):
    """409: the request cannot be done now, e.g. ``no_workers`` online."""


class InvalidRequestError(ClusterRequestError):
    """400/422: the master rejected the input, e.g. ``unknown_worker``."""


class MasterFailureError(ClusterRequestError):
    """5xx: the master failed; its log says why."""


_BY_STATUS: dict[int, type[ClusterRequestError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
}

_HINTS: dict[type[ClusterRequestError], str] = {
    AuthenticationError: " (check the token: --token, SHOAL_TOKEN or client.toml; "
                         "create one on the master with `shoal master token create`)",
    PermissionDeniedError: " (this needs a token with a larger scope: read < submit < admin)",
}


def error_from_response(status: int, body: Any) -> ClusterRequestError:
    """The exception for an error answer ``status`` with the decoded JSON ``body``.

    A body that is not the contract's error object (a proxy's HTML page, say)
    still gives a clear error naming the status.
    """
    code, message = "http_" + str(status), ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or "")
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]  # FastAPI's default shape, should a route slip through
    kind = _BY_STATUS.get(status, MasterFailureError if status >= 500 else ClusterRequestError)
    if not message:
        message = f"the master answered HTTP {status}"
    return kind(message + _HINTS.get(kind, ""), status=status, code=code)
