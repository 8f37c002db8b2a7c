"""jobhouse: a self-hosted Jobs API for long-running operations.

Register kinds of jobs with a `Registry`; their handlers receive a `JobContext`. Enqueue jobs
from your own code with a `Queue` over the store jobhouse uses (`open_store`).
"""

from __future__ import annotations

from jobhouse.context import JobContext
from jobhouse.errors import JobCancelled, JobhouseError
from jobhouse.job import Job, JobStatus
from jobhouse.queue import Queue
from jobhouse.registry import Registry
from jobhouse.store import open_store

__version__ = "0.1.0"
__all__ = [
    "Job",
    "JobCancelled",
    "JobContext",
    "JobStatus",
    "JobhouseError",
    "Queue",
    "Registry",
    "__version__",
    "open_store",
]
