"""jobhouse: a self-hosted Jobs API for long-running operations.

Register kinds of jobs with a `Registry`; their handlers receive a `JobContext`.
"""

from __future__ import annotations

from jobhouse.context import JobContext
from jobhouse.errors import JobCancelled, JobhouseError
from jobhouse.job import Job, JobStatus
from jobhouse.registry import Registry

__version__ = "0.1.0"
__all__ = ["Job", "JobCancelled", "JobContext", "JobStatus", "JobhouseError", "Registry", "__version__"]
