"""Every error leaves the HTTP API in one envelope, and this module is the only place that maps
exceptions to status codes::

    {"error": "<message>", "code": <status>, "error_code": "<MACHINE_CODE>"}
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from jobhouse.api.models import Error
from jobhouse.api.responses import json_response
from jobhouse.errors import (
    HeadersTooLarge,
    IdempotencyConflict,
    InvalidRequest,
    JobAlreadyFinished,
    JobhouseError,
    JobNotFinished,
    JobNotRetryable,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    SchemaMismatch,
    ServerBusy,
    StoreUnavailable,
    TooManyWaiters,
    UrlTooLong,
)

log = logging.getLogger(__name__)

#: Exception class → HTTP status. The first matching class (by MRO) wins.
STATUS: dict[type[JobhouseError], int] = {
    InvalidRequest: 400,
    NotAuthenticated: 401,
    NotFound: 404,
    JobAlreadyFinished: 409,
    JobNotRetryable: 409,
    JobNotFinished: 409,
    PayloadTooLarge: 413,
    IdempotencyConflict: 422,
    QuotaExceeded: 429,
    StoreUnavailable: 503,
    SchemaMismatch: 503,  # -- metrics and readiness
    # -- HTTP hardening
    RequestTimeout: 408,
    UrlTooLong: 414,
    HeadersTooLarge: 431,
    RateLimited: 429,
    TooManyWaiters: 429,
    ServerBusy: 503,
}
#: Refusals that say when to come back (their `retry_after`, in ``Retry-After``).
_RETRY_LATER = (QuotaExceeded, RateLimited, TooManyWaiters, ServerBusy)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_ERROR",
}
_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 500: "Internal server error"}


def envelope(status: int, message: str, error_code: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(Error.of(error=message, code=status, error_code=error_code), status, headers)


def status_of(exc: JobhouseError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def jobhouse_error(exc: JobhouseError) -> Response:
    status = status_of(exc)
    headers: dict[str, str] = {}
    message = exc.message
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="jobhouse"'
    elif isinstance(exc, StoreUnavailable):
        log.warning("store unavailable: %s", exc.message)
        message = "Job queue unavailable"
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, _RETRY_LATER):
        headers["Retry-After"] = str(exc.retry_after)
    return envelope(status, message, exc.error_code, headers)


async def handle_jobhouse_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobhouseError)
    return jobhouse_error(exc)


def http_error(exc: HTTPException) -> Response:
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status) or exc.detail or "Error"
    return envelope(status, message, _HTTP_CODES.get(status, f"HTTP_{status}"), dict(exc.headers or {}))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error(exc)


def client_gone(method: str, path: str) -> None:
    """A client hung up before its request was read whole (mid-body): nothing is wrong here and
    nobody is left to answer, so one DEBUG line and no traceback (a log flood costs a client nothing)."""
    log.debug("client went away during %s %s", method, path)


async def handle_disconnect(request: Request, exc: Exception) -> Response:
    client_gone(request.method, request.url.path)
    return envelope(400, "Client disconnected", "BAD_REQUEST")  # sent nowhere: uvicorn drops it


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(500, "Internal server error", "INTERNAL_ERROR")


EXCEPTION_HANDLERS = {
    JobhouseError: handle_jobhouse_error,
    HTTPException: handle_http_exception,
    ClientDisconnect: handle_disconnect,
    Exception: handle_unexpected,
}
