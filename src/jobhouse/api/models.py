"""Every body the HTTP API answers, as pydantic models: the JSON bodies and ``/openapi.json`` both come from
these classes (see `jobhouse.api.views` for how a job fills them and `jobhouse.api.openapi` for the document).

Response shapes are closed (``extra="forbid"``, so the document says ``additionalProperties: false``);
only free-form values (a job's ``metadata``, ``input`` and ``result``) are open JSON. A field that a body
may leave out (a run-surface job's ``result`` before it is done) defaults to `MISSING`: it is then absent
from the body and not required in the document. Every other field is always present, so it is required.

Bodies are built from trusted values with `Body.of` (no validation) and rendered to JSON bytes by orjson,
as their fields (`json_fields`, see `jobhouse.api.responses`): the same bytes as pydantic's own serializer
(a test holds them to it), at orjson's speed; pydantic-core takes twice as long over free-form JSON such as
a search job's result.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import MISSING, BaseModel, ConfigDict, Field

from jobhouse.registry import PRIORITY_MAX, PRIORITY_MIN
from jobhouse.schedule import DELAY_MAX_MS

__all__ = [
    "AttemptError",
    "Body",
    "CancelResponse",
    "Candidate",
    "Delivery",
    "DeliveryPage",
    "Error",
    "ErrorInfo",
    "JobPage",
    "JobResponse",
    "JobStats",
    "KindStats",
    "RunJob",
    "RunJobEvent",
    "SearchResponse",
    "Source",
    "SourceList",
    "Step",
    "SyncOptions",
    "Webhook",
    "WebhookCreated",
    "WebhookDeleted",
    "WebhookList",
    "WebhookResponse",
    "WebhookSecret",
    "WorkspaceJob",
    "WorkspaceJobEvent",
    "json_fields",
]

_new = object.__new__
_setattr = object.__setattr__
# What `model_construct` sets on a new instance, set here through BaseModel's own slots (the fastest way).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

#: A run-surface timestamp: UTC, to the second.
RunTime = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", json_schema_extra={"format": "date-time"})]
#: A workspace-surface timestamp: UTC, to the millisecond.
WorkspaceTime = Annotated[
    str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", json_schema_extra={"format": "date-time"})
]
JobId = Annotated[str, Field(description="The job's id (a UUID)", json_schema_extra={"format": "uuid"})]
Progress = Annotated[int, Field(ge=0, le=100, description="0-100")]
#: A JSON object given by the client (or returned by a handler), kept as is.
OpenObject = dict[str, Any]

StepStatus = Literal["pending", "running", "completed", "failed"]
RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]
WorkspaceStatus = Literal["queued", "running", "completed", "failed"]


class Body(BaseModel):
    """A closed JSON shape: exactly its fields, no others."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The names of every field: what `of` marks as set.
    _every_field: ClassVar[set[str]] = set()
    #: The fields a body may leave out: those that default to `MISSING`.
    _omissible: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._every_field = set(cls.__pydantic_fields__)
        cls._omissible = tuple(name for name, field in cls.__pydantic_fields__.items() if field.default is MISSING)

    @classmethod
    def of(cls, **values: Any) -> Self:
        """An instance of trusted `values`, which name every field (`MISSING` for one left out), unvalidated.

        This is `model_construct` without its loop over the fields (aliases, defaults), which would cost
        more than serializing the body: these models have no aliases, and no defaults but `MISSING`.
        """
        body = _new(cls)
        _setattr(body, "__dict__", values)
        _set_fields_set(body, cls._every_field)  # shared: a frozen model never adds to it
        _set_extra(body, None)
        _set_private(body, None)
        return body


def json_fields(value: Any) -> Any:
    """orjson's ``default`` hook: a body renders as its fields, without those left out; anything else is an
    error. Fields come out in the order they were given, as with pydantic's serializer (`jobhouse.api.views`
    gives them in the declared order)."""
    omissible = getattr(type(value), "_omissible", None)
    if omissible is None:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    fields: dict[str, Any] = value.__dict__
    if omissible:
        fields = fields.copy()
        for name in omissible:
            if fields[name] is MISSING:
                del fields[name]
    return fields


# -- jobs ---------------------------------------------------------------------------------------


class Step(Body):
    """One named step of a job, in the order the job's kind declares them."""

    id: str
    name: str
    status: StepStatus


class ErrorInfo(Body):
    """Why a job failed (or that it was cancelled)."""

    message: str
    type: str = Field(description="A short name: the exception's class, or `timeout`, `lost`, `cancelled`")
    traceback: str | MISSING = Field(
        default=MISSING, description="Where the handler raised; only for kinds that opt in (`expose_traceback`)"
    )


class AttemptError(Body):
    """The error of one failed or lost attempt."""

    attempt: int | None
    message: str
    type: str
    at: WorkspaceTime | None
    traceback: str | MISSING = Field(
        default=MISSING, description="Where the handler raised; only for kinds that opt in (`expose_traceback`)"
    )


class RunJob(Body):
    """A job on the run surface (``/api/v1/run``): snake_case, timestamps to the second."""

    job_id: JobId
    kind: str
    status: RunStatus
    created_at: RunTime
    updated_at: RunTime
    progress: Progress
    current_step: str | None = Field(description="The running step's name; 'Cancelled' once cancelled")
    steps: tuple[Step, ...]
    attempt: int = Field(ge=0)
    result_type: str | MISSING | None = Field(default=MISSING, description="Present once the job is done")
    result: Any | MISSING = Field(default=MISSING, description="The job's JSON result; present once the job is done")
    error: ErrorInfo | MISSING = Field(default=MISSING, description="Present once the job failed or was cancelled")
    priority: int = Field(ge=-10, le=10, description="Claims take higher priorities first")
    scheduled_at: RunTime | MISSING = Field(
        default=MISSING, description="While queued for a later time (scheduled, or waiting to retry): when it may start"
    )


class WorkspaceJob(Body):
    """A job on the workspace surface (``/api/jobs``): camelCase, timestamps to the millisecond."""

    id: JobId
    workspaceId: str
    competitorId: str | None = Field(description="What the job is about; null when nothing")
    type: str
    displayTitle: str
    status: WorkspaceStatus = Field(description="A cancelled job reads failed, with currentStep 'Cancelled'")
    progress: Progress
    currentStep: str | None = Field(description="The running step's name; 'Cancelled' once cancelled")
    steps: tuple[Step, ...]
    startedAt: WorkspaceTime | None
    completedAt: WorkspaceTime | None
    metadata: OpenObject = Field(description="As given at creation, echoed back as is")
    createdAt: WorkspaceTime
    updatedAt: WorkspaceTime
    input: OpenObject = Field(description="The handler's input")
    result: Any = Field(description="The job's JSON result once completed, else null")
    resultType: str | None
    error: ErrorInfo | None
    attempt: int = Field(ge=0)
    maxAttempts: int = Field(ge=1)
    errors: list[AttemptError] = Field(description="The error of each failed or lost attempt, oldest first")
    priority: int = Field(ge=-10, le=10, description="Claims take higher priorities first")
    scheduledAt: WorkspaceTime | None = Field(
        description="While queued for a later time (scheduled, or waiting to retry): when it may start; else null"
    )


class JobResponse(Body):
    """One job of the workspace surface."""

    job: WorkspaceJob


class JobPage(Body):
    """A page of the workspace's jobs, newest first."""

    jobs: list[WorkspaceJob]
    nextCursor: str | None = Field(description="Pass it as `cursor` for the next page; null on the last page")


class CancelResponse(Body):
    """The job, cancelled (or as it already was, when it was cancelled before)."""

    success: Literal[True]
    job: WorkspaceJob


Count = Annotated[int, Field(ge=0)]


class KindStats(Body):
    """One job type's jobs in the workspace: queued and running now, and ended since the statistics' `since`."""

    type: str
    queued: Count = Field(description="Queued and due: ready to run now, waiting for a worker")
    scheduled: Count = Field(description="Queued for a later time (runAt/delayMs, or a retry's backoff)")
    running: Count
    failed: Count = Field(
        description="Ended failed since `since`, cancelled ones included (as `GET /api/jobs?status=failed` lists them)"
    )
    cancelled: Count = Field(description="Of `failed`, those that were cancelled")
    completed: Count = Field(description="Completed since `since`")
    oldestQueuedAt: WorkspaceTime | None = Field(
        description="When the queued job that has been due the longest became due; null when none is due"
    )


class JobStats(Body):
    """The workspace's jobs by type, counted exactly at `at`."""

    kinds: list[KindStats] = Field(description="Each type with any job counted, by name")
    since: WorkspaceTime = Field(description="Where the counts of ended jobs start (by the time each job ended)")
    at: WorkspaceTime = Field(description="The server's time of the counts; `queued` and `scheduled` are split at it")


# -- events -------------------------------------------------------------------------------------


class RunJobEvent(Body):
    """The data of one event of a run-surface job stream: the job's changing fields as they were right
    after the change. The terminal event adds what the job ended with, as `RunJob` has it."""

    job_id: JobId
    kind: str
    status: RunStatus
    progress: Progress
    current_step: str | None
    steps: tuple[Step, ...]
    attempt: int = Field(ge=0)
    updated_at: RunTime
    result_type: str | MISSING | None = Field(default=MISSING, description="On the terminal event of a done job")
    result: Any | MISSING = Field(default=MISSING, description="On the terminal event of a done job")
    error: ErrorInfo | MISSING = Field(
        default=MISSING, description="On the terminal event of a failed or cancelled job"
    )


class WorkspaceJobEvent(Body):
    """The data of one event of a workspace-surface stream: the job's changing fields as they were right
    after the change. The terminal event adds what the job ended with, as `WorkspaceJob` has it."""

    id: JobId
    type: str
    competitorId: str | None
    status: WorkspaceStatus
    progress: Progress
    currentStep: str | None
    steps: tuple[Step, ...]
    attempt: int = Field(ge=0)
    updatedAt: WorkspaceTime
    result: Any | MISSING = Field(default=MISSING, description="On the terminal event")
    resultType: str | MISSING | None = Field(default=MISSING, description="On the terminal event")
    error: ErrorInfo | MISSING | None = Field(default=MISSING, description="On the terminal event")
    completedAt: WorkspaceTime | MISSING | None = Field(default=MISSING, description="On the terminal event")


# -- search and sources -------------------------------------------------------------------------


class Candidate(Body):
    """One application on one OS, merged from every source that knows it."""

    id: str = Field(description="`<os>:<app>`, stable across syncs")
    app: str
    name: str
    version: str | None
    os: Literal["linux", "macos", "windows"]
    kind: Literal["gui", "cli"]
    source: str = Field(description="The source that knows it best (first of `sources`)")
    sources: list[str]
    installed: bool
    score: float
    match: Literal["exact", "prefix", "word", "substring", "keyword", "fuzzy"] = Field(
        description="The tier that matched"
    )
    launch: str | None
    install: str | None
    description: str | None
    package: str | None = Field(description="The Debian package it comes from")


class SearchResponse(Body):
    """Ranked candidates, best first."""

    candidates: list[Candidate]


class Source(Body):
    """A candidate source and its last sync."""

    id: str
    title: str
    synced_at: RunTime | None
    candidate_count: int = Field(ge=0)
    last_error: str | None
    last_error_at: RunTime | None


class SourceList(Body):
    """Every candidate source of the server."""

    sources: list[Source]


class SyncOptions(BaseModel):
    """The optional body of a sync."""

    model_config = ConfigDict(extra="forbid", title="SyncOptions")

    force: bool = Field(
        default=False, description="Read the sources again even if their files did not change since the last sync"
    )
    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="POST the job's end here, signed (see docs/webhooks.md); the host must be allowed",
    )
    run_at: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Start no earlier than this time (ISO 8601 with an offset); the job reads queued",
    )
    delay_ms: int | None = Field(
        default=None, ge=0, le=DELAY_MAX_MS, description="Start no earlier than this many milliseconds from now"
    )
    priority: int | None = Field(
        default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher runs first; the kind's default if absent"
    )


# -- webhooks -----------------------------------------------------------------------------------

WebhookEvent = Literal["job.completed", "job.failed", "job.cancelled"]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


class Webhook(Body):
    """A webhook subscription of the workspace: every matching job end is POSTed to `url`."""

    id: Uuid
    url: str
    events: list[WebhookEvent] | None = Field(description="The events it receives; null: every event")
    types: list[str] | None = Field(description="The job types it receives; null: every type")
    createdAt: WorkspaceTime


class WebhookResponse(Body):
    """One webhook subscription."""

    webhook: Webhook


class WebhookCreated(Body):
    """A new webhook subscription, and the secret that signs its deliveries (shown this once)."""

    webhook: Webhook
    secret: str = Field(description="`whsec_...`: verify each delivery's Jobhouse-Signature with it")


class WebhookList(Body):
    """The workspace's webhook subscriptions, oldest first."""

    webhooks: list[Webhook]


class WebhookDeleted(Body):
    """The subscription, deleted: its pending deliveries end failed."""

    success: Literal[True]
    webhook: Webhook


class WebhookSecret(Body):
    """The secret that signs the deliveries of the workspace's job callbacks (`callbackUrl`)."""

    secret: str = Field(description="`whsec_...`")


class Delivery(Body):
    """One POST owed for one job end, and how its attempts went."""

    id: Uuid = Field(description="Sent as the Jobhouse-Delivery header: the same on every attempt")
    jobId: JobId
    webhookId: Uuid | None = Field(description="The subscription it is for; null: the job's own callbackUrl")
    url: str
    event: WebhookEvent
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(ge=0, description="Attempts made so far")
    nextAttemptAt: WorkspaceTime | None = Field(description="When it is due again, while pending")
    lastAttemptAt: WorkspaceTime | None
    lastStatusCode: int | None = Field(description="What the receiver answered last; null: no answer")
    lastError: str | None = Field(description="Why the last attempt failed")
    createdAt: WorkspaceTime
    deliveredAt: WorkspaceTime | None


class DeliveryPage(Body):
    """A page of webhook deliveries, newest first."""

    deliveries: list[Delivery]
    nextCursor: str | None = Field(description="Pass it as `cursor` for the next page; null on the last page")


# -- errors -------------------------------------------------------------------------------------


class Error(Body):
    """Every error, on every route: ``{"error": "<message>", "code": <status>, "error_code": "<CODE>"}``."""

    error: str = Field(description="What went wrong, for people")
    code: int = Field(description="The HTTP status")
    error_code: str = Field(description="What went wrong, for programs")
