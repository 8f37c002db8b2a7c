"""Retry and delete, as every store applies them: which jobs each takes, and what a retried job
looks like. The stores read the job under their write lock, ask here, then write (conditionally on
the status as well), so two racing requests cannot both act on one job."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from jobhouse.errors import JobNotFinished, JobNotFound, JobNotRetryable
from jobhouse.job import TERMINAL_STATUSES, Job, JobStatus, reset_steps

#: A job in one of these states may be retried.
RETRYABLE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


def _sql(statuses: frozenset[JobStatus]) -> str:
    return "(" + ", ".join(f"'{status.value}'" for status in sorted(statuses)) + ")"


#: The SQL lists of the states a job may be retried in, and of those it may be deleted in.
RETRYABLE_SQL = _sql(RETRYABLE_STATUSES)
DELETABLE_SQL = _sql(TERMINAL_STATUSES)


def _mine(job: Job | None, workspace: str | None) -> Job:
    if job is None or (workspace is not None and job.workspace != workspace):
        raise JobNotFound()
    return job


def retried(job: Job | None, workspace: str | None, granted: int, now: datetime) -> Job:
    """`job` queued again at `now` with `granted` more attempts; raises `JobNotFound` (none, or
    another workspace's) or `JobNotRetryable` (not failed or cancelled)."""
    job = _mine(job, workspace)
    if job.status not in RETRYABLE_STATUSES:
        state = "completed" if job.status is JobStatus.COMPLETED else f"is {job.status.value}"
        raise JobNotRetryable(f"Job {job.id} {state}: only a failed or cancelled job can be retried")
    return replace(
        job,
        status=JobStatus.QUEUED,
        max_attempts=job.attempt + max(1, granted),
        error=None,
        result=None,
        result_type=None,
        progress=0,
        steps=reset_steps(job.steps),
        current_step=None,
        completed_at=None,
        run_at=now,
        worker=None,
        lease_expires_at=None,
        updated_at=now,
    )


def deletable(job: Job | None, workspace: str | None) -> Job:
    """`job`, if it may be deleted; raises `JobNotFound` or `JobNotFinished` (queued or running)."""
    job = _mine(job, workspace)
    if not job.is_terminal:
        raise JobNotFinished(f"Job {job.id} is {job.status.value}: only a finished job can be deleted; cancel it first")
    return job
