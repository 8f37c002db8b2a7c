"""The shapes the server answers, as typed, immutable pydantic models.

Each model mirrors one schema component of the server's ``/openapi.json`` (named in its
docstring); a test holds every field's name, type and required-ness to the document of a real
server, so the two cannot drift apart. Attributes are snake_case on both surfaces: the workspace
surface's camelCase names (``competitorId``) are the models' aliases. Timestamps are aware
`datetime` objects in UTC.

Fields the server adds later are ignored rather than refused, so an older SDK keeps working
against a newer server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

__all__ = [
    "AttemptError",
    "CancelResponse",
    "Candidate",
    "ErrorInfo",
    "Job",
    "JobChange",
    "JobEvent",
    "JobPage",
    "JobResponse",
    "JobStats",
    "KindStats",
    "RunJob",
    "RunJobChange",
    "RunJobEvent",
    "SearchResponse",
    "Source",
    "SourceList",
    "Step",
]


def _stamp(timespec: str) -> PlainSerializer:
    """Timestamps go back to JSON as the server wrote them: UTC, ``Z``, to the second or the millisecond."""

    def render(value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")

    return PlainSerializer(render, return_type=str, when_used="json")


#: A run-surface timestamp (to the second).
RunTime = Annotated[datetime, _stamp("seconds")]
#: A workspace-surface timestamp (to the millisecond).
WorkspaceTime = Annotated[datetime, _stamp("milliseconds")]
StepStatus = Literal["pending", "running", "completed", "failed"]
WorkspaceStatus = Literal["queued", "running", "completed", "failed"]
RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]
RUN_TERMINAL = frozenset({"done", "failed", "cancelled"})
WORKSPACE_TERMINAL = frozenset({"completed", "failed"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Camel(BaseModel):
    """A workspace-surface shape: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)


class Step(_Model):
    """One named step of a job (component ``Step``)."""

    id: str
    name: str
    status: StepStatus


def _absent(value: object) -> bool:
    """A field the server leaves out when it has nothing (so it is written back left out)."""
    return value is None


class ErrorInfo(_Model):
    """Why a job failed, or that it was cancelled (``type == "cancelled"``) (component ``ErrorInfo``)."""

    message: str
    type: str
    #: Where the handler raised: only for kinds that opt in (``expose_traceback``), else None.
    traceback: str | None = Field(default=None, exclude_if=_absent)


class AttemptError(_Model):
    """The error of one failed or lost attempt (component ``AttemptError``)."""

    attempt: int | None
    message: str
    type: str
    at: WorkspaceTime | None
    #: Where the handler raised: only for kinds that opt in (``expose_traceback``), else None.
    traceback: str | None = Field(default=None, exclude_if=_absent)


class _Outcome:
    """How a job ended, read the same way on both surfaces (a mixin of the job models)."""

    if TYPE_CHECKING:
        status: str
        current_step: str | None
        error: ErrorInfo | None

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled (the workspace surface reads a cancelled job as failed)."""
        return (
            self.status == "cancelled"
            or self.current_step == "Cancelled"
            or (self.error is not None and self.error.type == "cancelled")
        )

    @property
    def outcome(self) -> Literal["completed", "failed", "cancelled"] | None:
        """How the job ended, the same word on both surfaces; None while it has not."""
        if self.status not in RUN_TERMINAL | WORKSPACE_TERMINAL:
            return None
        if self.cancelled:
            return "cancelled"
        return "failed" if self.status == "failed" else "completed"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (completed, failed or cancelled): it will not change again."""
        return self.outcome is not None


class Job(_Outcome, _Camel):
    """A job on the workspace surface, ``/api/jobs`` (component ``WorkspaceJob``)."""

    id: str
    workspace_id: str
    competitor_id: str | None
    type: str
    display_title: str
    status: WorkspaceStatus
    progress: int
    current_step: str | None
    steps: list[Step]
    started_at: WorkspaceTime | None
    completed_at: WorkspaceTime | None
    metadata: dict[str, Any]
    created_at: WorkspaceTime
    updated_at: WorkspaceTime
    input: dict[str, Any]
    result: Any
    result_type: str | None
    error: ErrorInfo | None
    attempt: int
    max_attempts: int
    errors: list[AttemptError]
    #: -10 to 10; claims take higher priorities first (the kind's default unless the create gave one).
    priority: int
    #: While the job is queued for a later time (created with `run_at`/`delay`, or waiting to retry):
    #: when it may start; else None.
    scheduled_at: WorkspaceTime | None


class RunJob(_Outcome, _Model):
    """A job on the run surface, ``/api/v1/run`` (component ``RunJob``).

    ``result`` and ``result_type`` are set once the job is done, ``error`` once it failed or
    was cancelled, ``scheduled_at`` while it waits for a later time; the server leaves them out
    otherwise, and they read None here.
    """

    job_id: str
    kind: str
    status: RunStatus
    created_at: RunTime
    updated_at: RunTime
    progress: int
    current_step: str | None
    steps: list[Step]
    attempt: int
    result_type: str | None = None
    result: Any = None
    error: ErrorInfo | None = None
    #: -10 to 10; claims take higher priorities first.
    priority: int
    #: While the job is queued for a later time: when it may start (to the second); else None.
    scheduled_at: RunTime | None = None


class Candidate(_Model):
    """One application on one OS, as a search ranks it (component ``Candidate``)."""

    id: str
    app: str
    name: str
    version: str | None
    os: Literal["linux", "macos", "windows"]
    kind: Literal["gui", "cli"]
    source: str
    sources: list[str]
    installed: bool
    score: float
    match: Literal["exact", "prefix", "word", "substring", "keyword", "fuzzy"]
    launch: str | None
    install: str | None
    description: str | None
    package: str | None


class Source(_Model):
    """A candidate source and what the server remembers of its syncs (component ``Source``)."""

    id: str
    title: str
    synced_at: RunTime | None
    candidate_count: int
    last_error: str | None
    last_error_at: RunTime | None


class KindStats(_Camel):
    """One job type's jobs in the workspace (component ``KindStats``): queued and running now, and
    ended since the statistics' `since`. A cancelled job counts in `failed` (the workspace surface
    reads it failed) and in `cancelled`."""

    type: str
    #: Queued and due: ready to run now, waiting for a worker.
    queued: int
    #: Queued for a later time (`run_at`/`delay`, or a retry's backoff).
    scheduled: int
    running: int
    #: Ended failed since `since`, cancelled ones included.
    failed: int
    #: Of `failed`, those that were cancelled.
    cancelled: int
    #: Completed since `since`.
    completed: int
    #: When the queued job that has been due the longest became due; None when none is due.
    oldest_queued_at: WorkspaceTime | None


class JobStats(_Camel):
    """The workspace's jobs by type, counted exactly at `at` (component ``JobStats``)."""

    #: Each type with any job counted, by name.
    kinds: list[KindStats]
    #: Where the counts of ended jobs start (by the time each job ended).
    since: WorkspaceTime
    #: The server's time of the counts.
    at: WorkspaceTime


# -- envelopes: what a response wraps its value in ---------------------------------------------


class JobResponse(_Camel):
    job: Job


class CancelResponse(_Camel):
    success: Literal[True]
    job: Job


class JobPage(_Camel):
    jobs: list[Job]
    next_cursor: str | None


class SearchResponse(_Model):
    candidates: list[Candidate]


class SourceList(_Model):
    sources: list[Source]


# -- live events (docs/events.md) -------------------------------------------------------------


class JobChange(_Outcome, _Camel):
    """A workspace-surface job as it was at one change: its changing fields, and on the terminal
    event what it ended with (component ``WorkspaceJobEvent``)."""

    id: str
    type: str
    competitor_id: str | None
    status: WorkspaceStatus
    progress: int
    current_step: str | None
    steps: list[Step]
    attempt: int
    updated_at: WorkspaceTime
    result: Any = None
    result_type: str | None = None
    error: ErrorInfo | None = None
    completed_at: WorkspaceTime | None = None


class RunJobChange(_Outcome, _Model):
    """A run-surface job as it was at one change (see `JobChange`) (component ``RunJobEvent``)."""

    job_id: str
    kind: str
    status: RunStatus
    progress: int
    current_step: str | None
    steps: list[Step]
    attempt: int
    updated_at: RunTime
    result_type: str | None = None
    result: Any = None
    error: ErrorInfo | None = None


class JobEvent(_Model):
    """One event of a workspace-surface stream: ``event`` says what changed (``created``,
    ``status``, ``attempt``, ``step`` or ``progress``), ``job`` how the job was then."""

    id: int = Field(description="Increasing within a stream; resume after it with last_event_id")
    event: str
    job: JobChange

    @property
    def terminal(self) -> bool:
        """Whether this event ended the job (its stream ends after it)."""
        return self.job.terminal


class RunJobEvent(_Model):
    """One event of a run-surface stream (see `JobEvent`)."""

    id: int
    event: str
    job: RunJobChange

    @property
    def terminal(self) -> bool:
        """Whether this event ended the job (its stream ends after it)."""
        return self.job.terminal
