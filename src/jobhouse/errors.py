"""Every error jobhouse raises on purpose derives from `JobhouseError`.

The tree::

    JobhouseError
    ├── InvalidRequest            a request that can never succeed as sent
    │   ├── InvalidSelector       a search selector that breaks the rules
    │   └── UnknownKind           a job type nobody registered
    ├── NotAuthenticated          no key, or a key that is wrong or revoked
    ├── NotFound
    │   ├── JobNotFound           no such job in the caller's workspace
    │   └── SourceNotFound        no such candidate source
    ├── JobAlreadyFinished        cancel of a job that completed or failed
    ├── IdempotencyConflict       an Idempotency-Key reused with another body
    ├── QuotaExceeded             too many queued jobs in one workspace
    ├── PayloadTooLarge           a request body over the limit
    ├── StoreUnavailable          the store cannot be reached right now
    └── JobCancelled              raised inside a handler whose job was cancelled

The docstring of each class is its default message. The HTTP layer maps classes to status
codes in one place (`jobhouse.api.errors`); nothing here knows about HTTP.
"""

from __future__ import annotations


class JobhouseError(Exception):
    """Something went wrong in jobhouse."""

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.error_code).strip()
        super().__init__(self.message)


class InvalidRequest(JobhouseError):
    """Invalid request"""

    error_code = "INVALID_REQUEST"


class InvalidSelector(InvalidRequest):
    """Invalid selector"""

    error_code = "INVALID_SELECTOR"


class UnknownKind(InvalidRequest):
    """Unknown job type"""

    error_code = "UNKNOWN_JOB_TYPE"


class NotAuthenticated(JobhouseError):
    """A valid API key is required"""

    error_code = "UNAUTHORIZED"


class NotFound(JobhouseError):
    """Not found"""

    error_code = "NOT_FOUND"


class JobNotFound(NotFound):
    """No job exists with the requested identifier"""

    error_code = "JOB_NOT_FOUND"


class SourceNotFound(NotFound):
    """No source exists with the requested identifier"""

    error_code = "SOURCE_NOT_FOUND"


class JobAlreadyFinished(JobhouseError):
    """The job has already finished and can no longer be cancelled"""

    error_code = "JOB_ALREADY_FINISHED"


class IdempotencyConflict(JobhouseError):
    """This Idempotency-Key was already used with a different request body"""

    error_code = "IDEMPOTENCY_KEY_REUSED"


class QuotaExceeded(JobhouseError):
    """Too many queued jobs in this workspace"""

    error_code = "QUOTA_EXCEEDED"

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(JobhouseError):
    """Request body too large"""

    error_code = "PAYLOAD_TOO_LARGE"


class StoreUnavailable(JobhouseError):
    """Job queue unavailable"""

    error_code = "STORE_UNAVAILABLE"

    def __init__(self, message: str | None = None, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobCancelled(JobhouseError):
    """The job was cancelled"""

    error_code = "JOB_CANCELLED"
