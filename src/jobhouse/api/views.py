"""How a `Job` reads on each surface: the run surface (snake_case) and the workspace surface (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobhouse.catalog import SourceState
from jobhouse.job import Failure, Job, JobStatus
from jobhouse.sources import Source

#: Statuses as the run surface names them.
RUN_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETED: "done",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
#: Statuses as the workspace surface names them: a cancelled job reads as failed.
WORKSPACE_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


def seconds(moment: datetime | None) -> str | None:
    """``2025-01-15T10:30:00Z``: the run surface's timestamps."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def millis(moment: datetime | None) -> str | None:
    """``2024-01-01T00:00:00.000Z``: the workspace surface's timestamps."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def run_job(job: Job) -> dict[str, Any]:
    view: dict[str, Any] = {
        "job_id": job.id,
        "kind": job.kind,
        "status": RUN_STATUS[job.status],
        "created_at": seconds(job.created_at),
        "updated_at": seconds(job.updated_at),
        "progress": job.progress,
        "current_step": job.current_step,
        "steps": [step.to_dict() for step in job.steps],
        "attempt": job.attempt,
    }
    if job.status is JobStatus.COMPLETED:
        view["result_type"] = job.result_type
        view["result"] = job.result
    elif job.error is not None and job.is_terminal:
        view["error"] = {"message": job.error.message, "type": job.error.type}
    return view


def workspace_job(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "workspaceId": job.workspace,
        "competitorId": job.subject,
        "type": job.kind,
        "displayTitle": job.title,
        "status": WORKSPACE_STATUS[job.status],
        "progress": job.progress,
        "currentStep": job.current_step,
        "steps": [step.to_dict() for step in job.steps],
        "startedAt": millis(job.started_at),
        "completedAt": millis(job.completed_at),
        "metadata": job.metadata,
        "createdAt": millis(job.created_at),
        "updatedAt": millis(job.updated_at),
        "input": job.input,
        "result": job.result,
        "resultType": job.result_type,
        "error": None if job.error is None else {"message": job.error.message, "type": job.error.type},
        "attempt": job.attempt,
        "maxAttempts": job.max_attempts,
        "errors": [_attempt_error(e) for e in job.errors],
    }


def _attempt_error(failure: Failure) -> dict[str, Any]:
    return {
        "attempt": failure.attempt,
        "message": failure.message,
        "type": failure.type,
        "at": millis(failure.at),
    }


def source_view(source: Source, state: SourceState) -> dict[str, Any]:
    return {
        "id": source.id,
        "title": source.title,
        "synced_at": seconds(state.synced_at),
        "candidate_count": state.candidate_count,
        "last_error": state.last_error,
        "last_error_at": seconds(state.last_error_at),
    }
