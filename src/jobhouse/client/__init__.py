"""The Python SDK of the jobhouse HTTP API, blocking (`Client`) and asyncio (`AsyncClient`).

    from jobhouse.client import Client

    with Client("http://127.0.0.1:8000", "jh_...") as jobhouse:
        job = jobhouse.jobs.create("thumbnails", input={"images": ["a.pgm"], "out_dir": "out"})
        done = jobhouse.jobs.wait(job.id)

It needs only httpx and pydantic, and never imports the server. See docs/python-client.md.
"""

from __future__ import annotations

from jobhouse.client._async import AsyncClient
from jobhouse.client._errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    IdempotencyKeyReused,
    InternalError,
    InvalidRequest,
    InvalidSelector,
    JobAlreadyFinished,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QueueUnavailable,
    QuotaExceeded,
    ServerError,
    SourceNotFound,
    Unauthorized,
    UnknownJobType,
    Unprocessable,
    UnsupportedMediaType,
)
from jobhouse.client._models import (
    AttemptError,
    Candidate,
    ErrorInfo,
    Job,
    JobChange,
    JobEvent,
    JobStats,
    KindStats,
    RunJob,
    RunJobChange,
    RunJobEvent,
    Source,
    Step,
)
from jobhouse.client._sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AttemptError",
    "Candidate",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ErrorInfo",
    "Forbidden",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidRequest",
    "InvalidSelector",
    "Job",
    "JobAlreadyFinished",
    "JobChange",
    "JobEvent",
    "JobNotFinished",
    "JobNotFound",
    "JobNotRetryable",
    "JobStats",
    "KindStats",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "QueueUnavailable",
    "QuotaExceeded",
    "RunJob",
    "RunJobChange",
    "RunJobEvent",
    "ServerError",
    "Source",
    "SourceNotFound",
    "Step",
    "Unauthorized",
    "UnknownJobType",
    "Unprocessable",
    "UnsupportedMediaType",
]
