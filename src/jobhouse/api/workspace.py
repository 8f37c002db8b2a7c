"""The workspace surface, ``/api/jobs``: every job of the caller's workspace, in camelCase."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api import params
from jobhouse.api.responses import accepted, json_response
from jobhouse.api.views import cancel_response, job_page, job_response
from jobhouse.errors import InvalidRequest
from jobhouse.job import JobStatus
from jobhouse.store.base import JobQuery
from jobhouse.validation import validate

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
    page = await params.runtime(request).service.list(query)
    return json_response(job_page(page.jobs, params.encode_cursor(page.next)))


async def create_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    raw = await params.json_body(request)
    body = validate(CreateJob, raw, "Invalid request")
    key, fingerprint = params.idempotency(request, raw)
    job, created = await params.runtime(request).service.submit(
        workspace,
        body.type,
        input=body.input,
        metadata=body.metadata,
        subject=body.competitorId,
        title=body.displayTitle,
        idempotency_key=key,
        fingerprint=fingerprint,
    )
    return accepted(job_response(job), f"{PREFIX}/{job.id}", created)


async def get_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    timeout = params.wait_timeout(request)
    job = await params.runtime(request).service.wait(params.job_id(request, "id"), workspace, timeout)
    return json_response(job_response(job))


async def cancel_job(request: Request) -> Response:
    workspace = await params.workspace(request)
    job = await params.runtime(request).service.cancel(params.job_id(request, "id"), workspace)
    return json_response(cancel_response(job))


async def jobs(request: Request) -> Response:
    return await (create_job(request) if request.method == "POST" else list_jobs(request))


routes = [
    Route(PREFIX, jobs, methods=["GET", "POST"]),
    Route(f"{PREFIX}/{{id}}", get_job, methods=["GET"]),
    Route(f"{PREFIX}/{{id}}/cancel", cancel_job, methods=["POST"]),
]
