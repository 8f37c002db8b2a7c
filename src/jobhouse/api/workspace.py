"""The workspace surface, ``/api/jobs``: every job of the caller's workspace, in camelCase."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api import models, params
from jobhouse.api.models import json_fields
from jobhouse.api.responses import RenderedJSON, accepted, json_response
from jobhouse.api.views import cancel_response, job_response, millis, workspace_job
from jobhouse.disclosure import Disclosure
from jobhouse.egress import URL_MAX
from jobhouse.errors import InvalidRequest
from jobhouse.job import JobStatus
from jobhouse.registry import PRIORITY_MAX, PRIORITY_MIN
from jobhouse.schedule import DELAY_MAX_MS, parse_time, start_at
from jobhouse.store.base import Cursor, JobQuery, KindStats
from jobhouse.validation import validate

if TYPE_CHECKING:
    from jobhouse.runtime import Runtime

PREFIX = "/api/jobs"
#: `status` filter values; "failed" includes cancelled jobs, which read as failed here.
STATUS_FILTERS = {
    "queued": frozenset({JobStatus.QUEUED}),
    "running": frozenset({JobStatus.RUNNING}),
    "completed": frozenset({JobStatus.COMPLETED}),
    "failed": frozenset({JobStatus.FAILED, JobStatus.CANCELLED}),
    "cancelled": frozenset({JobStatus.CANCELLED}),
}


class CreateJob(BaseModel):
    """Body of ``POST /api/jobs``."""

    model_config = ConfigDict(extra="forbid", title="CreateJob")

    type: str = Field(min_length=1, max_length=100, description="A registered job type")
    competitorId: str | None = Field(default=None, min_length=1, max_length=200)
    displayTitle: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = Field(default=None, description="Echoed back as is")
    input: dict[str, Any] | None = Field(default=None, description="The handler's input")
    callbackUrl: str | None = Field(
        default=None,
        min_length=1,
        max_length=URL_MAX,
        description="POST the job's end here, signed (see docs/webhooks.md); the host must be allowed",
    )
    runAt: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Start no earlier than this time (ISO 8601 with an offset); the job reads queued",
    )
    delayMs: int | None = Field(
        default=None, ge=0, le=DELAY_MAX_MS, description="Start no earlier than this many milliseconds from now"
    )
    priority: int | None = Field(
        default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher runs first; the type's default if absent"
    )


def filters(request: Request) -> tuple[str | None, str | None, frozenset[JobStatus] | None]:
    """The listing filters of a request: `competitorId`, `type` and `status` (None: any)."""
    status = params.text(request, "status")
    if status is not None and status not in STATUS_FILTERS:
        raise InvalidRequest(f"Invalid status: must be one of {', '.join(STATUS_FILTERS)}")
    subject = params.text(request, "competitorId")
    kind = params.text(request, "type")
    return subject, kind, STATUS_FILTERS[status] if status else None


async def list_jobs(request: Request) -> Response:
    workspace = await params.workspace(request)
    subject, kind, statuses = filters(request)
    query = JobQuery(
        workspace=workspace,
        subject=subject,
        kind=kind,
        statuses=statuses,
        limit=params.integer(request, "limit", 50, 1, 500),
        after=params.decode_cursor(request),
    )
    rt = params.runtime(request)
    parts, after = await capped_page(rt, query, rt.disclosure)
    pieces = [b'{"jobs":[']
    for index, part in enumerate(parts):
        pieces += (b",", part) if index else (part,)
    pieces += (b'],"nextCursor":', orjson.dumps(params.encode_cursor(after)), b"}")
    return RenderedJSON(b"".join(pieces))  # the one copy of the jobs' bytes


#: Jobs read by a listing's first query; later ones read as many as the bytes left can take.
FIRST_READ = 4
#: What a page's body holds besides its jobs, at most: ``{"jobs":[],"nextCursor":"<cursor>"}``.
_FRAME = 128


async def capped_page(rt: Runtime, query: JobQuery, shown: Disclosure) -> tuple[list[bytes], Cursor | None]:
    """A page of `query` as rendered jobs, cut before the job that would take it past
    `max_list_bytes` (one job at least), and where the next page starts (None: at the end).

    The store is read a few jobs at a time, and each job rendered as it comes and let go, so a page
    of large jobs never holds more than its bytes plus one read's jobs (`docs/security.md`).
    """
    budget = rt.settings.max_list_bytes
    parts: list[bytes] = []
    size, largest = _FRAME, 1
    want = min(query.limit, FIRST_READ)
    after = query.after
    while True:
        page = await rt.service.list(dataclasses.replace(query, limit=want, after=after))
        for job in page.jobs:
            part = orjson.dumps(workspace_job(job, shown), default=json_fields)
            if parts and size + len(part) > budget:
                return parts, after  # cut: the next page starts after the last job of this one
            parts.append(part)
            size += len(part) + 1
            largest = max(largest, len(part))
            after = Cursor(job.created_at, job.id)
        if page.next is None or len(parts) >= query.limit:
            return parts, page.next
        want = min(query.limit - len(parts), max(1, (budget - size) // largest))


async def create_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    raw = await params.json_body(request)
    body = validate(CreateJob, raw, "Invalid request")
    key, fingerprint = params.idempotency(request, raw)
    rt = params.runtime(request)
    callback_url = None if body.callbackUrl is None else rt.webhooks.check(body.callbackUrl)
    run_at = None if body.runAt is None else parse_time(body.runAt, "runAt")
    new = rt.queue.new_job(
        body.type,
        workspace=workspace,
        input=body.input,
        metadata=body.metadata,
        subject=body.competitorId,
        title=body.displayTitle,
        callback_url=callback_url,
        priority=body.priority,
        run_at=start_at(rt.store.clock.now(), run_at, body.delayMs, names=("runAt", "delayMs")),
    )
    job, created = await rt.service.submit(new, idempotency_key=key, fingerprint=fingerprint)
    return accepted(job_response(job, rt.disclosure), f"{PREFIX}/{job.id}", created)


async def get_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    timeout = params.wait_timeout(request)
    rt = params.runtime(request)
    job = await rt.service.wait(params.job_id(request, "id"), workspace, timeout, params.owner(request))
    return json_response(job_response(job, rt.disclosure))


async def cancel_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    rt = params.runtime(request)
    job = await rt.service.cancel(params.job_id(request, "id"), workspace)
    return json_response(cancel_response(job, rt.disclosure))


async def retry_job(request: Request) -> Response:
    """Queue a failed or cancelled job again: 202 with the job, as `GET` shows it."""
    workspace = await params.workspace(request)
    rt = params.runtime(request)
    job = await rt.service.retry(params.job_id(request, "id"), workspace)
    return accepted(job_response(job, rt.disclosure), f"{PREFIX}/{job.id}")


async def delete_job(request: Request) -> Response:
    """Delete a finished job: 204, no body."""
    workspace = await params.workspace(request)
    await params.runtime(request).service.delete(params.job_id(request, "id"), workspace)
    return Response(status_code=204)


#: The window of ended jobs a statistics request counts when it gives no `since`.
STATS_WINDOW = timedelta(hours=24)


def stats_since(request: Request, now: datetime) -> datetime:
    """The `since` of a statistics request: an ISO 8601 time with an offset (absent: `STATS_WINDOW`
    before `now`), in UTC, to the millisecond (as it is shown, so it is exactly the bound used)."""
    text = request.query_params.get("since")
    since = now - STATS_WINDOW if text is None else parse_time(text, "since")
    if since.tzinfo is None:
        raise InvalidRequest("Invalid request: since needs a UTC offset, e.g. 2030-01-01T09:00:00Z")
    try:
        since = since.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest("Invalid request: since is out of range") from None
    return since.replace(microsecond=since.microsecond // 1000 * 1000)


def kind_stats(kind: KindStats) -> models.KindStats:
    """One kind's figures as the workspace surface shows them: a cancelled job reads failed."""
    return models.KindStats.of(
        type=kind.kind,
        queued=kind.ready,
        scheduled=kind.scheduled,
        running=kind.running,
        failed=kind.failed + kind.cancelled,
        cancelled=kind.cancelled,
        completed=kind.completed,
        oldestQueuedAt=millis(kind.oldest_ready),
    )


async def job_stats(request: Request) -> Response:
    """The workspace's jobs by type: queued, scheduled and running now, and ended since `since`."""
    workspace = await params.workspace(request)
    rt = params.runtime(request)
    now = rt.store.clock.now()
    since = stats_since(request, now)
    kinds = await rt.queue.metrics.timed("stats", rt.store.stats(workspace, since, now))
    body = models.JobStats.of(kinds=[kind_stats(kind) for kind in kinds], since=millis(since), at=millis(now))
    return json_response(body)


async def job_item(request: Request) -> Response:
    return await (delete_job(request) if request.method == "DELETE" else get_job(request))


async def jobs(request: Request) -> Response:
    return await (create_job(request) if request.method == "POST" else list_jobs(request))


routes = [
    Route(PREFIX, jobs, methods=["GET", "POST"]),
    Route(f"{PREFIX}/stats", job_stats, methods=["GET"]),  # before "{id}": "stats" is not a job id
    Route(f"{PREFIX}/{{id}}", job_item, methods=["GET", "DELETE"]),
    Route(f"{PREFIX}/{{id}}/cancel", cancel_job, methods=["POST"]),
    Route(f"{PREFIX}/{{id}}/retry", retry_job, methods=["POST"]),
]
