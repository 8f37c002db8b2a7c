"""Every error jobhouse raises on purpose, in one tree::

    JobhouseError                   the root: `except JobhouseError` catches all of jobhouse's errors
    ├── InvalidRequest              a request that can never succeed as sent (400)
    │   ├── InvalidSelector         a search selector that breaks the rules
    │   ├── UnknownKind             a job type nobody registered
    │   ├── MalformedRequest        bytes that are not an HTTP request jobhouse reads (400)
    │   └── WebhookRefused          a webhook URL whose host is not allowed (`webhook_hosts`)
    ├── NotAuthenticated            no key, or a key that is wrong or revoked (401)
    ├── NotFound                    (404)
    │   ├── JobNotFound             no such job in the caller's workspace
    │   ├── SourceNotFound          no such candidate source
    │   └── WebhookNotFound         no such webhook subscription in the caller's workspace
    ├── JobAlreadyFinished          cancel of a job that completed or failed (409)
    ├── JobNotRetryable             retry of a job that is not failed or cancelled (409)
    ├── JobNotFinished              delete of a job that is still queued or running (409)
    ├── PayloadTooLarge             a request body over the limit (413)
    ├── IdempotencyConflict         an Idempotency-Key reused with another request (422)
    ├── QuotaExceeded               too many queued jobs in one workspace (429, `retry_after`)
    ├── RateLimited                 too many jobs of a rate-limited kind, e.g. syncs (429, `retry_after`)
    ├── TooManyWaiters              too many long-polls and event streams open (429, `retry_after`)
    ├── RequestTimeout              a request's headers not complete in time (408)
    ├── UrlTooLong                  a request target over the limit (414)
    ├── HeadersTooLarge             request headers over the size or count limit (431)
    ├── ServerBusy                  the server holds as many requests as it may (503, `retry_after`)
    ├── StoreUnavailable            the store cannot be reached right now (503, `retry_after`)
    ├── SchemaMismatch              the store's schema is not this build's: behind or ahead (503)
    ├── SourceError                 a candidate source could not be read
    ├── BackupFailed                a backup that could not be made, or whose copy failed its check
    └── ConfigurationError          settings, kinds or sources that cannot work; raised at start-up

    JobCancelled (a BaseException)  raised inside a handler whose job was cancelled

Each class's `message` is its default message (what a client reads when nothing more specific is
said) and `error_code` the machine-readable code; both are plain attributes, so they survive
``python -OO``. `JobCancelled` derives from `BaseException`, like `asyncio.CancelledError`, so an
``except Exception:`` in a handler does not swallow the stop. The HTTP layer maps classes to
status codes in one place (`jobhouse.api.errors`); nothing here knows about HTTP.
"""

from __future__ import annotations


class JobhouseError(Exception):
    """The root of jobhouse's errors."""

    message = "Something went wrong in jobhouse"
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or type(self).message
        super().__init__(self.message)


class InvalidRequest(JobhouseError):
    message = "Invalid request"
    error_code = "INVALID_REQUEST"


class InvalidSelector(InvalidRequest):
    message = "Invalid selector"
    error_code = "INVALID_SELECTOR"


class UnknownKind(InvalidRequest):
    message = "Unknown job type"
    error_code = "UNKNOWN_JOB_TYPE"


class MalformedRequest(InvalidRequest):
    message = "Invalid HTTP request"
    error_code = "BAD_REQUEST"


class WebhookRefused(InvalidRequest):
    message = "Webhooks may only call the hosts the server allows"
    error_code = "WEBHOOK_REFUSED"


class NotAuthenticated(JobhouseError):
    message = "A valid API key is required"
    error_code = "UNAUTHORIZED"


class NotFound(JobhouseError):
    message = "Not found"
    error_code = "NOT_FOUND"


class JobNotFound(NotFound):
    message = "No job exists with the requested identifier"
    error_code = "JOB_NOT_FOUND"


class SourceNotFound(NotFound):
    message = "No source exists with the requested identifier"
    error_code = "SOURCE_NOT_FOUND"


class WebhookNotFound(NotFound):
    message = "No webhook exists with the requested identifier"
    error_code = "WEBHOOK_NOT_FOUND"


class JobAlreadyFinished(JobhouseError):
    message = "The job has already finished and can no longer be cancelled"
    error_code = "JOB_ALREADY_FINISHED"


class JobNotRetryable(JobhouseError):
    message = "Only a failed or cancelled job can be retried"
    error_code = "JOB_NOT_RETRYABLE"


class JobNotFinished(JobhouseError):
    message = "The job has not finished; cancel it first"
    error_code = "JOB_NOT_FINISHED"


class PayloadTooLarge(JobhouseError):
    message = "Request body too large"
    error_code = "PAYLOAD_TOO_LARGE"


class IdempotencyConflict(JobhouseError):
    message = "This Idempotency-Key was already used with a different request body"
    error_code = "IDEMPOTENCY_KEY_REUSED"


class QuotaExceeded(JobhouseError):
    message = "Too many queued jobs in this workspace"
    error_code = "QUOTA_EXCEEDED"

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(JobhouseError):
    message = "Too many requests of this kind; try again later"
    error_code = "RATE_LIMITED"

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyWaiters(JobhouseError):
    message = "Too many long-polls and event streams are open"
    error_code = "TOO_MANY_WAITERS"

    def __init__(self, message: str | None = None, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeout(JobhouseError):
    message = "The request's headers did not arrive in time"
    error_code = "REQUEST_TIMEOUT"


class UrlTooLong(JobhouseError):
    message = "Request URL too long"
    error_code = "URL_TOO_LONG"


class HeadersTooLarge(JobhouseError):
    message = "Request headers too large"
    error_code = "HEADERS_TOO_LARGE"


class ServerBusy(JobhouseError):
    message = "The server is busy; try again later"
    error_code = "SERVER_BUSY"

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(JobhouseError):
    message = "Job queue unavailable"
    error_code = "STORE_UNAVAILABLE"

    def __init__(self, message: str | None = None, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SchemaMismatch(JobhouseError):
    message = "The store's schema is not the one this build of jobhouse uses"
    error_code = "SCHEMA_MISMATCH"


class SourceError(JobhouseError):
    message = "A candidate source could not be read"
    error_code = "SOURCE_FAILED"


class BackupFailed(JobhouseError):
    message = "The backup failed"
    error_code = "BACKUP_FAILED"


class ConfigurationError(JobhouseError):
    message = "Invalid configuration"
    error_code = "INVALID_CONFIGURATION"


class JobCancelled(BaseException):
    """Raised inside a handler whose job was cancelled (or whose attempt was stopped)."""

    message = "The job was cancelled"
    error_code = "JOB_CANCELLED"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or type(self).message
        super().__init__(self.message)
