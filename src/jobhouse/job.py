"""The job: one value object that both API surfaces project.

A job moves through one state machine (see ``docs/states.md``)::

    queued ──claim──▶ running ──return──▶ completed
      ▲                 │  │
      └──retry / lost───┘  └──error, timeout (no attempts left)──▶ failed
    queued | running ──cancel──▶ cancelled
    failed | cancelled ──retry (a client's)──▶ queued

A queued job whose `run_at` is ahead is *scheduled* (it shows `scheduled_at`) until it is due;
claims take only due ones (see `jobhouse.store.ready`).

`Job` is a frozen dataclass with no knowledge of storage; stores build it from their rows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from jobhouse.errors import JobAlreadyFinished, JobNotFound


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: A job in one of these states will not change again.
TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: A job in one of these states may still run; cancel applies to these only.
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class StepStatus(enum.StrEnum):
    """Where one named step of a job is."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


#: What `current_step` reads once a job has been cancelled.
CANCELLED_STEP = "Cancelled"


@dataclass(frozen=True, slots=True)
class Step:
    """One named step of a job, declared by its kind."""

    id: str
    name: str
    status: StepStatus = StepStatus.PENDING

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "status": self.status.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        return cls(id=str(data["id"]), name=str(data["name"]), status=StepStatus(data["status"]))


#: The failures jobhouse itself writes (a timeout, a lost or cancelled attempt, a result that is not
#: JSON, a handler that cancelled itself, an unknown error): their messages hold nothing of a handler's.
OWN_FAILURE_TYPES = frozenset({"timeout", "lost", "cancelled", "JobCancelled", "InvalidResult", "error"})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an attempt or a job failed: a message and a short type name, and where a handler raised,
    its traceback (for operators: the API shows it only for kinds that opt in)."""

    message: str
    type: str
    attempt: int | None = None
    at: datetime | None = None
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.attempt is not None:
            out["attempt"] = self.attempt
        if self.at is not None:
            out["at"] = self.at.isoformat()
        if self.traceback is not None:
            out["traceback"] = self.traceback
        return out

    @property
    def from_handler(self) -> bool:
        """Whether the message is a handler's (its exception's), which `redact_errors` hides from clients."""
        return self.traceback is not None or self.type not in OWN_FAILURE_TYPES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Failure:
        at = data.get("at")
        return cls(
            message=str(data.get("message", "")),
            type=str(data.get("type", "error")),
            attempt=data.get("attempt"),
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            traceback=data.get("traceback"),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored: everything both surfaces show, and what workers need to run it."""

    id: str
    workspace: str
    kind: str
    title: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    run_at: datetime
    max_attempts: int
    subject: str | None = None
    progress: int = 0
    steps: tuple[Step, ...] = ()
    current_step: str | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    result_type: str | None = None
    error: Failure | None = None
    errors: tuple[Failure, ...] = ()
    attempt: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    worker: str | None = None
    lease_expires_at: datetime | None = None
    #: Where the job's end is posted (see `jobhouse.webhooks`); None: nowhere.
    callback_url: str | None = None
    #: Claims take higher priorities first (see ``docs/job-control.md``).
    priority: int = 0
    #: What the job shares its kind's concurrency limit with ('' the whole kind); None: no limit.
    concurrency_key: str | None = None

    @property
    def scheduled_at(self) -> datetime | None:
        """When a queued job may start, if that is after it was created (scheduled, or waiting
        for a retry); None otherwise."""
        if self.status is JobStatus.QUEUED and self.run_at > self.created_at:
            return self.run_at
        return None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def ref(self) -> AttemptRef:
        return AttemptRef(self.id, self.attempt)


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """One attempt of one job: the fence every worker write carries.

    A claim starts a new attempt; a worker's write lands only while the job is still
    running that same attempt, so a worker that lost its lease can no longer change the job.
    """

    job_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class NewJob:
    """What it takes to enqueue a job; the store fills in the rest."""

    id: str
    workspace: str
    kind: str
    title: str
    max_attempts: int
    steps: Sequence[Step] = ()
    subject: str | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None
    callback_url: str | None = None
    priority: int = 0
    concurrency_key: str | None = None
    #: With `unique_for` (seconds): a create within that window of an earlier one with the same key
    #: (in the same workspace) gives back the earlier job (see `jobhouse.store.base.Store.create`).
    unique_key: str | None = None
    unique_for: float | None = None

    def queued(self, now: datetime) -> Job:
        """The job as the store keeps it once inserted at `now`."""
        return Job(
            id=self.id,
            workspace=self.workspace,
            kind=self.kind,
            subject=self.subject,
            title=self.title,
            status=JobStatus.QUEUED,
            steps=tuple(self.steps),
            input=dict(self.input),
            metadata=dict(self.metadata),
            max_attempts=self.max_attempts,
            run_at=self.run_at or now,
            created_at=now,
            updated_at=now,
            callback_url=self.callback_url,
            priority=self.priority,
            concurrency_key=self.concurrency_key,
        )


@dataclass(frozen=True, slots=True)
class Report:
    """A running attempt's latest progress and steps, as its handler reported them."""

    ref: AttemptRef
    progress: int
    steps: tuple[Step, ...]
    current_step: str | None


class Verdict(enum.StrEnum):
    """How an attempt ended, from the worker's point of view."""

    COMPLETED = "completed"
    FAILED = "failed"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one attempt, written once under the attempt's fence."""

    ref: AttemptRef
    verdict: Verdict
    progress: int
    steps: tuple[Step, ...]
    result: bytes | None = None  # the result, encoded once as JSON (`jobhouse.codec.encode`)
    result_type: str | None = None
    failure: Failure | None = None
    retry_at: datetime | None = None


def derived_progress(steps: Sequence[Step]) -> int:
    """Progress implied by steps alone: the share of finished steps, rounded."""
    if not steps:
        return 0
    done = sum(1 for step in steps if step.status is StepStatus.COMPLETED)
    return round(100 * done / len(steps))


def reset_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """The steps as a fresh attempt sees them: all pending."""
    return tuple(replace(step, status=StepStatus.PENDING) for step in steps)


def settle_steps(steps: Sequence[Step], status: StepStatus) -> tuple[Step, ...]:
    """Close the running step(s) with `status` (completed on success, failed otherwise)."""
    return tuple(replace(s, status=status) if s.status is StepStatus.RUNNING else s for s in steps)


def cancelled(job: Job | None, workspace: str | None, now: datetime) -> tuple[Job, Failure | None]:
    """The job once cancelled at `now` and the error that records it; ``(job, None)`` when it already
    was cancelled (cancel is idempotent) and nothing is to be written.

    Raises `JobNotFound` for no job or another workspace's job, and `JobAlreadyFinished` for a job
    that completed or failed: the rules every store applies inside its cancel transaction.
    """
    if job is None or (workspace is not None and job.workspace != workspace):
        raise JobNotFound()
    if job.status is JobStatus.CANCELLED:
        return job, None
    if job.status not in ACTIVE_STATUSES:
        raise JobAlreadyFinished(f"Job {job.id} already {job.status.value}; it can no longer be cancelled")
    error = Failure("Job was cancelled", "cancelled", job.attempt or None, now)
    ended = replace(
        job,
        status=JobStatus.CANCELLED,
        steps=settle_steps(job.steps, StepStatus.FAILED),
        current_step=CANCELLED_STEP,
        error=error,
        lease_expires_at=None,
        updated_at=now,
        completed_at=now,
    )
    return ended, error


def lost(job: Job, now: datetime) -> Outcome:
    """The end of an attempt whose worker stopped heartbeating: again at once, or failed if it was the last."""
    failure = Failure(
        f"Worker {job.worker} stopped heartbeating; attempt {job.attempt} was lost", "lost", job.attempt, now
    )
    verdict = Verdict.RETRY if job.attempt < job.max_attempts else Verdict.FAILED
    return Outcome(job.ref, verdict, job.progress, job.steps, failure=failure, retry_at=now)
