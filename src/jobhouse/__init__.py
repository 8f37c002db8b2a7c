"""jobhouse: a self-hosted Jobs API for long-running operations.

Register kinds of jobs with a `Registry`; their handlers receive a `JobContext`. Enqueue jobs
from your own code with a `Queue` over the store jobhouse uses (`open_store`). Call a jobhouse
server over HTTP with `jobhouse.client`.

The names below are imported when first used, so that ``import jobhouse.client`` (which needs
only httpx and pydantic) does not load the server's modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "Job": "jobhouse.job",
    "JobCancelled": "jobhouse.errors",
    "JobContext": "jobhouse.context",
    "JobStatus": "jobhouse.job",
    "JobhouseError": "jobhouse.errors",
    "Queue": "jobhouse.queue",
    "Registry": "jobhouse.registry",
    "open_store": "jobhouse.store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'jobhouse' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
