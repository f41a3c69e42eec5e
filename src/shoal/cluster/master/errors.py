"""Every error the API returns, turned into the contract's JSON in this one place.

``{"error": {"code": "<machine_code>", "message": "<what to do>"}}``: a
:class:`~shoal.cluster.errors.ClusterError` keeps its status and code; a request
that fails validation, or whose body cannot be read as JSON at all, is 422
``invalid_request`` with the first problem spelled out; an unknown path is 404;
a request body over ``limits.MAX_BODY`` is 413 ``body_too_large`` and a master
too busy is 503 (:mod:`.admission` decides, this module words them); anything
unexpected is logged and is a 500 ``internal`` (never the traceback).
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shoal.cluster.errors import AuthenticationRequired, ClusterError, TooManyAttempts
from shoal.cluster.limits import size_text

log = logging.getLogger("shoal.master")
PCCI_PREFIX = "/pcci"  # the PCCI compatibility routes (routes/pcci.py) answer PCCI's way too

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "body_too_large",
               429: "too_many_attempts",
               422: "invalid_request", 503: "unavailable"}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None, *, pcci: bool = False) -> JSONResponse:
    """The contract's error answer; on the PCCI routes also PCCI's own ``{"message"}``."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    body: dict[str, object] = dict(error_body(code, message))
    if pcci:
        body["message"] = message
    return JSONResponse(body, status_code=status, headers=headers)


def _pcci(request: Request) -> bool:
    return request.url.path.startswith(PCCI_PREFIX + "/")


def too_large_message(limit: int) -> str:
    return (f"the request body is over the master's limit of {size_text(limit)}; a pool's "
            "command, environment and folder must be smaller")


class BodyTooLarge(StarletteHTTPException):
    """Raised while a chunked body is read (FastAPI lets HTTP exceptions through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def install(app: FastAPI) -> None:
    @app.exception_handler(ClusterError)
    async def cluster_error(request: Request, exc: ClusterError) -> JSONResponse:
        status = AuthenticationRequired.status if isinstance(exc, AuthenticationRequired) \
            else exc.status
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))} \
            if isinstance(exc, TooManyAttempts) else None
        return error_response(status, exc.code, str(exc), headers, pcci=_pcci(request))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        # PCCI answered 400 to a bad body; shoal's own API says 422.
        return error_response(400 if _pcci(request) else 422, "invalid_request",
                              "; ".join(problems) or "invalid request", pcci=_pcci(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body at all ("There was an error parsing the
            # body": bytes that are no UTF-8, say); a bad body is a validation failure.
            return error_response(
                400 if _pcci(request) else 422, "invalid_request",
                f"the request body could not be read as JSON ({exc.__cause__}); send UTF-8 "
                "JSON as the API's schema says", pcci=_pcci(request))
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), pcci=_pcci(request))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "the master failed; see its log")
