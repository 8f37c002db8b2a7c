"""The SDK's exceptions: one root, one class per error code the server sends.

Every failure a call can meet is an `ApiError`, so ``except ApiError`` is enough to catch them
all; the subclasses let a program act on the one it expects (``except JobNotFound``)::

    ApiError                     status, code, message, retry_after, response
    ├── ConnectionFailed         no answer: refused, reset, timed out (also a builtin ConnectionError)
    ├── InvalidRequest           400 INVALID_REQUEST, BAD_REQUEST, WEBHOOK_REFUSED; the server's refusals
    │                            to read a request: 408 REQUEST_TIMEOUT, 414 URL_TOO_LONG, 431 HEADERS_TOO_LARGE
    │   ├── InvalidSelector      400 INVALID_SELECTOR
    │   └── UnknownJobType       400 UNKNOWN_JOB_TYPE
    ├── Unauthorized             401 UNAUTHORIZED
    ├── Forbidden                403 FORBIDDEN
    ├── NotFound                 404 NOT_FOUND (no such route), WEBHOOK_NOT_FOUND
    │   ├── JobNotFound          404 JOB_NOT_FOUND
    │   └── SourceNotFound       404 SOURCE_NOT_FOUND
    ├── MethodNotAllowed         405 METHOD_NOT_ALLOWED
    ├── Conflict                 409
    │   ├── JobAlreadyFinished   409 JOB_ALREADY_FINISHED
    │   ├── JobNotRetryable      409 JOB_NOT_RETRYABLE
    │   └── JobNotFinished       409 JOB_NOT_FINISHED
    ├── PayloadTooLarge          413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaType     415 UNSUPPORTED_MEDIA_TYPE
    ├── Unprocessable            422 UNPROCESSABLE_ENTITY
    │   └── IdempotencyKeyReused 422 IDEMPOTENCY_KEY_REUSED
    ├── QuotaExceeded            429 QUOTA_EXCEEDED, RATE_LIMITED, TOO_MANY_WAITERS
    └── ServerError              5xx
        ├── InternalError        500 INTERNAL_ERROR
        └── QueueUnavailable     503 STORE_UNAVAILABLE, SERVER_BUSY, SCHEMA_MISMATCH

A code this SDK does not know yet becomes the class of its status (a 404 with a new code is a
`NotFound`), or `ApiError` itself, so a newer server never breaks an older client. The mapping is
written once, in `CODES` and `STATUSES`.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "CODES",
    "STATUSES",
    "ApiError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidRequest",
    "InvalidSelector",
    "JobAlreadyFinished",
    "JobNotFinished",
    "JobNotFound",
    "JobNotRetryable",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "QueueUnavailable",
    "QuotaExceeded",
    "ServerError",
    "SourceNotFound",
    "Unauthorized",
    "UnknownJobType",
    "Unprocessable",
    "UnsupportedMediaType",
    "error_from_response",
    "retry_after",
]


class ApiError(Exception):
    """The jobhouse server refused the call, or could not be reached."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.response = response
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} ({self.status} {self.code})"


class ConnectionFailed(ApiError, ConnectionError):
    """Could not reach the jobhouse server, or the connection was lost before it answered."""


class InvalidRequest(ApiError):
    """The server refused the request as malformed (400), or would not read it: a URL too long (414),
    headers too large (431), or too slow to arrive (408)."""


class InvalidSelector(InvalidRequest):
    """The search selector breaks a rule (400)."""


class UnknownJobType(InvalidRequest):
    """No kind is registered under that job type (400)."""


class Unauthorized(ApiError):
    """No API key, or one that is malformed, unknown or revoked (401)."""


class Forbidden(ApiError):
    """The key may not do this (403)."""


class NotFound(ApiError):
    """Nothing is at that address (404)."""


class JobNotFound(NotFound):
    """No job with that id in the key's workspace (404)."""


class SourceNotFound(NotFound):
    """No candidate source with that id (404)."""


class MethodNotAllowed(ApiError):
    """The route does not take that method (405)."""


class Conflict(ApiError):
    """The request conflicts with the resource's state (409)."""


class JobAlreadyFinished(Conflict):
    """The job already completed or failed, so it cannot be cancelled (409)."""


class JobNotRetryable(Conflict):
    """Only a failed or cancelled job can be retried; this one is queued, running or completed (409)."""


class JobNotFinished(Conflict):
    """Only a finished job can be deleted; this one is queued or running: cancel it first (409)."""


class PayloadTooLarge(ApiError):
    """The request body is over the server's limit (413)."""


class UnsupportedMediaType(ApiError):
    """The server does not take that content type (415)."""


class Unprocessable(ApiError):
    """The server understood the request but will not act on it (422)."""


class IdempotencyKeyReused(Unprocessable):
    """That Idempotency-Key was already used, within its 24 hours, with another request (422)."""


class QuotaExceeded(ApiError):
    """Too many for now: queued jobs in the workspace, source syncs, or open long-polls and event
    streams (the `code` says which); try again after `retry_after` (429)."""


class ServerError(ApiError):
    """The server failed (5xx)."""


class InternalError(ServerError):
    """A bug in the server; it logged the traceback (500)."""


class QueueUnavailable(ServerError):
    """The server cannot reach its job store right now, or holds as many connections as it may;
    try again after `retry_after` (503)."""


#: The server's ``error_code`` → exception class.
CODES: dict[str, type[ApiError]] = {
    "INVALID_REQUEST": InvalidRequest,
    "BAD_REQUEST": InvalidRequest,
    "INVALID_SELECTOR": InvalidSelector,
    "UNKNOWN_JOB_TYPE": UnknownJobType,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "NOT_FOUND": NotFound,
    "JOB_NOT_FOUND": JobNotFound,
    "SOURCE_NOT_FOUND": SourceNotFound,
    "WEBHOOK_NOT_FOUND": NotFound,
    "WEBHOOK_REFUSED": InvalidRequest,
    "METHOD_NOT_ALLOWED": MethodNotAllowed,
    "JOB_ALREADY_FINISHED": JobAlreadyFinished,
    "JOB_NOT_RETRYABLE": JobNotRetryable,
    "JOB_NOT_FINISHED": JobNotFinished,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    "UNPROCESSABLE_ENTITY": Unprocessable,
    "IDEMPOTENCY_KEY_REUSED": IdempotencyKeyReused,
    "QUOTA_EXCEEDED": QuotaExceeded,
    "INTERNAL_ERROR": InternalError,
    "STORE_UNAVAILABLE": QueueUnavailable,
    # -- the server's limits (docs/security.md)
    "REQUEST_TIMEOUT": InvalidRequest,
    "URL_TOO_LONG": InvalidRequest,
    "HEADERS_TOO_LARGE": InvalidRequest,
    "RATE_LIMITED": QuotaExceeded,
    "TOO_MANY_WAITERS": QuotaExceeded,
    "SERVER_BUSY": QueueUnavailable,
    "SCHEMA_MISMATCH": QueueUnavailable,
}
#: The HTTP status → exception class, for a code `CODES` does not know.
STATUSES: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: InvalidRequest,
    409: Conflict,
    413: PayloadTooLarge,
    414: InvalidRequest,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: QuotaExceeded,
    431: InvalidRequest,
    500: InternalError,
    503: QueueUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (only the delay form; jobhouse never sends a date)."""
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response: the server's envelope, or whatever a proxy sent."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    status = response.status_code
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message, code = body["error"], str(body.get("error_code") or f"HTTP_{status}")
    else:
        message, code = response.text[:200].strip() or response.reason_phrase, f"HTTP_{status}"
    cls = CODES.get(code) or STATUSES.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(message, status=status, code=code, retry_after=retry_after(response), response=response)
