"""How a `Job` reads on each surface: the run surface (snake_case) and the workspace surface (camelCase).

Each function fills a model of `jobhouse.api.models` from trusted values (`Body.of`: no validation, no
per-field bookkeeping), so building a body costs about what building the equivalent dict did.

What a client sees of a failure is the server's `Disclosure` (`jobhouse.disclosure`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import MISSING

from jobhouse.api import models
from jobhouse.catalog import SourceState
from jobhouse.disclosure import OPERATOR, PLAIN, Disclosure

__all__ = ["OPERATOR", "PLAIN", "Disclosure"]  # and the projections below
from jobhouse.events import JobEvent
from jobhouse.job import Failure, Job, JobStatus, Step
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
    """``2025-01-15T10:30:00Z``: the run surface's timestamps (the clock's, which are UTC)."""
    return None if moment is None else moment.isoformat()[:19] + "Z"


def millis(moment: datetime | None) -> str | None:
    """``2024-01-01T00:00:00.000Z``: the workspace surface's timestamps (the clock's, which are UTC)."""
    if moment is None:
        return None
    text = moment.isoformat()  # ``YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM]``, the fastest way there
    return text[:23] + "Z" if moment.microsecond else text[:19] + ".000Z"


@functools.lru_cache(maxsize=4096)
def _steps(steps: tuple[Step, ...]) -> tuple[models.Step, ...]:
    """A job's steps as bodies, made once: a kind's few steps, in their few states, recur in every job of it
    (and bodies are frozen, so they can be shared)."""
    return tuple(models.Step.of(id=step.id, name=step.name, status=step.status.value) for step in steps)


def _error(shown: Disclosure, failure: Failure, kind: str) -> models.ErrorInfo:
    message, traceback = shown.shown(failure, kind)
    return models.ErrorInfo.of(
        message=message, type=failure.type, traceback=MISSING if traceback is None else traceback
    )


def _attempt_error(shown: Disclosure, failure: Failure, kind: str) -> models.AttemptError:
    message, traceback = shown.shown(failure, kind)
    return models.AttemptError.of(
        attempt=failure.attempt,
        message=message,
        type=failure.type,
        at=millis(failure.at),
        traceback=MISSING if traceback is None else traceback,
    )


def run_job(job: Job, shown: Disclosure) -> models.RunJob:
    """The run surface's job: `result_type` and `result` only once done, `error` only once failed or cancelled."""
    result_type: Any = MISSING
    result: Any = MISSING
    error: Any = MISSING
    if job.status is JobStatus.COMPLETED:
        result_type = job.result_type
        result = job.result
    elif job.error is not None and job.is_terminal:
        error = _error(shown, job.error, job.kind)
    return models.RunJob.of(
        job_id=job.id,
        kind=job.kind,
        status=RUN_STATUS[job.status],
        created_at=seconds(job.created_at),
        updated_at=seconds(job.updated_at),
        progress=job.progress,
        current_step=job.current_step,
        steps=_steps(job.steps),
        attempt=job.attempt,
        result_type=result_type,
        result=result,
        error=error,
        priority=job.priority,
        scheduled_at=MISSING if (due := job.scheduled_at) is None else seconds(due),
    )


def workspace_job(job: Job, shown: Disclosure) -> models.WorkspaceJob:
    return models.WorkspaceJob.of(
        id=job.id,
        workspaceId=job.workspace,
        competitorId=job.subject,
        type=job.kind,
        displayTitle=job.title,
        status=WORKSPACE_STATUS[job.status],
        progress=job.progress,
        currentStep=job.current_step,
        steps=_steps(job.steps),
        startedAt=millis(job.started_at),
        completedAt=millis(job.completed_at),
        metadata=job.metadata,
        createdAt=millis(job.created_at),
        updatedAt=millis(job.updated_at),
        input=job.input,
        result=job.result,
        resultType=job.result_type,
        error=None if job.error is None else _error(shown, job.error, job.kind),
        attempt=job.attempt,
        maxAttempts=job.max_attempts,
        errors=[_attempt_error(shown, e, job.kind) for e in job.errors],
        priority=job.priority,
        scheduledAt=millis(job.scheduled_at),
    )


def job_response(job: Job, shown: Disclosure) -> models.JobResponse:
    """``{"job": ...}``: one job of the workspace surface."""
    return models.JobResponse.of(job=workspace_job(job, shown))


def job_page(jobs: Sequence[Job], next_cursor: str | None, shown: Disclosure) -> models.JobPage:
    """``{"jobs": [...], "nextCursor": ...}``."""
    return models.JobPage.of(jobs=[workspace_job(job, shown) for job in jobs], nextCursor=next_cursor)


def cancel_response(job: Job, shown: Disclosure) -> models.CancelResponse:
    """``{"success": true, "job": ...}``."""
    return models.CancelResponse.of(success=True, job=workspace_job(job, shown))


def run_event(event: JobEvent, shown: Disclosure) -> models.RunJobEvent:
    """The data of a run-surface event; a terminal one adds the result or error of `event.job`."""
    result_type: Any = MISSING
    result: Any = MISSING
    error: Any = MISSING
    job = event.job
    if job is not None and event.is_terminal:
        if job.status is JobStatus.COMPLETED:
            result_type = job.result_type
            result = job.result
        elif job.error is not None:
            error = _error(shown, job.error, job.kind)
    return models.RunJobEvent.of(
        job_id=event.job_id,
        kind=event.kind,
        status=RUN_STATUS[event.status],
        progress=event.progress,
        current_step=event.current_step,
        steps=_steps(event.steps),
        attempt=event.attempt,
        updated_at=seconds(event.at),
        result_type=result_type,
        result=result,
        error=error,
    )


def workspace_event(event: JobEvent, shown: Disclosure) -> models.WorkspaceJobEvent:
    """The data of a workspace-surface event; a terminal one adds what `event.job` ended with."""
    ending: dict[str, Any] = dict.fromkeys(("result", "resultType", "error", "completedAt"), MISSING)
    job = event.job
    if job is not None and event.is_terminal:
        ending = {
            "result": job.result,
            "resultType": job.result_type,
            "error": None if job.error is None else _error(shown, job.error, job.kind),
            "completedAt": millis(job.completed_at),
        }
    return models.WorkspaceJobEvent.of(
        id=event.job_id,
        type=event.kind,
        competitorId=event.subject,
        status=WORKSPACE_STATUS[event.status],
        progress=event.progress,
        currentStep=event.current_step,
        steps=_steps(event.steps),
        attempt=event.attempt,
        updatedAt=millis(event.at),
        **ending,
    )


def source_view(source: Source, state: SourceState) -> models.Source:
    return models.Source.of(
        id=source.id,
        title=source.title,
        synced_at=seconds(state.synced_at),
        candidate_count=state.candidate_count,
        last_error=state.last_error,
        last_error_at=seconds(state.last_error_at),
    )


def source_list(states: Sequence[tuple[Source, SourceState]]) -> models.SourceList:
    """``{"sources": [...]}``."""
    return models.SourceList.of(sources=[source_view(source, state) for source, state in states])


def search_response(candidates: Sequence[dict[str, Any]]) -> models.SearchResponse:
    """``{"candidates": [...]}`` from the search's candidate views (`jobhouse.search.candidate_view`).

    They are validated, not trusted: they are built outside this package, and a key the model does
    not know fails here rather than drifting from the document. A search costs far more than this.
    """
    return models.SearchResponse.model_validate({"candidates": candidates})
