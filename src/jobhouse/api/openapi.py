"""The OpenAPI 3.1 document served at ``/openapi.json``.

Every schema in it comes from a pydantic model: responses from `jobhouse.api.models` (the classes the
routes render their bodies with), request bodies from the models that validate them. This module lists
only the paths, their parameters and the statuses each operation answers; tests check every response of
the API suite against the document (``tests/openapi_check.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from jobhouse import __version__
from jobhouse.api import models
from jobhouse.api.params import MAX_TIMEOUT_MS
from jobhouse.api.webhooks import STATUSES as DELIVERY_STATUSES
from jobhouse.api.webhooks import CreateWebhook
from jobhouse.api.workspace import STATUS_FILTERS, CreateJob
from jobhouse.events import Change
from jobhouse.search import Selector

Schema = dict[str, Any]

#: The models of the document: what the API answers (their serialization schemas) ...
RESPONSES: tuple[type[BaseModel], ...] = (
    models.RunJob,
    models.JobResponse,
    models.JobPage,
    models.CancelResponse,
    models.JobStats,
    models.SearchResponse,
    models.SourceList,
    models.Error,
    models.RunJobEvent,
    models.WorkspaceJobEvent,
    models.WebhookResponse,
    models.WebhookCreated,
    models.WebhookList,
    models.WebhookDeleted,
    models.WebhookSecret,
    models.DeliveryPage,
)
#: ... and what it reads (their validation schemas). Each is a component named after its class.
REQUESTS: tuple[type[BaseModel], ...] = (Selector, CreateJob, models.SyncOptions, CreateWebhook)


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema, without a title on every property (the property's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def schemas(kinds: Sequence[str], sources: Sequence[str]) -> dict[str, Schema]:
    """``components.schemas``: every model, with the job types and sources this app serves."""
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "serialization") for model in RESPONSES),
        *((model, "validation") for model in REQUESTS),
    ]
    _, top = models_json_schema(modes, ref_template="#/components/schemas/{model}", schema_generator=_Schemas)
    found: dict[str, Schema] = top["$defs"]
    found["Selector"]["properties"]["source"] = _nullable({"type": "string", "enum": list(sources)})
    # A search job's body: the selector, and where to POST the job's end.
    search_job = copy.deepcopy(found["Selector"])
    search_job["title"] = "SearchJob"
    for name in ("callback_url", "run_at", "delay_ms", "priority"):
        search_job["properties"][name] = copy.deepcopy(found["SyncOptions"]["properties"][name])
    found["SearchJob"] = search_job
    found["CreateJob"]["properties"]["type"] = {
        "type": "string",
        "enum": list(kinds),
        "description": "A registered job type",
    }
    return found


_ERRORS = {
    400: "Invalid request: the message names the parameter or field",
    401: "Missing or invalid API key",
    404: "No such job or webhook (or it belongs to another workspace)",
    405: "Method not allowed",
    409: "The job already completed or failed",
    413: "Request body over the size limit",
    422: "This Idempotency-Key was already used with another request",
    408: "The request's headers did not arrive within the server's header timeout",
    414: "Request URL over the server's limit",
    429: "Too many queued jobs in this workspace, too many syncs, or too many long-polls and event streams "
    "open; retry after Retry-After seconds",
    431: "Request headers over the server's size or count limit",
    503: "Job queue unavailable; retry after Retry-After seconds",
}


def _errors(*codes: int) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref("Error")}}
    return {str(code): {"description": _ERRORS[code], "content": content} for code in codes}


def _conflict(description: str) -> dict[str, Any]:
    """A 409 of an operation that needs the job in some states, saying which."""
    return {"409": {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}}


def _ok(status: int, schema: Schema, description: str) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(schema_name: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _path_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_WAIT_PARAMS = [
    {
        "name": "wait",
        "in": "query",
        "schema": {"type": "string", "enum": ["done"]},
        "description": "done: long-poll until the job ends or timeout_ms passes",
    },
    {
        "name": "timeout_ms",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_TIMEOUT_MS, "default": 0},
        "description": "How long to long-poll, in milliseconds",
    },
]
#: Every operation may answer these; 413 too, since every route refuses a body over the limit, even one
#: that reads none; and the server's own refusals (408, 414, 431; 503 past `limit_concurrency`).
_COMMON = (400, 401, 405, 408, 413, 414, 431, 503)
#: Routes that create a job also answer these.
_CREATES = (*_COMMON, 422, 429)
_FILTER_TEXT = {"type": "string", "maxLength": 200, "pattern": "^[^\\x00]*$"}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    "description": "Retrying with the same key and request returns the job the first request made "
    "(with Idempotent-Replayed: true), for 24 hours; the same key with another request is a 422",
}


_LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"},
    "description": "The id of the last event the client saw: the stream resumes right after it",
}
_FILTERS = [
    {"name": "competitorId", "in": "query", "schema": _FILTER_TEXT},
    {"name": "type", "in": "query", "schema": _FILTER_TEXT},
    {
        "name": "status",
        "in": "query",
        "schema": {"type": "string", "enum": ["", *STATUS_FILTERS]},
        "description": "Only jobs in this status; empty, like absent, means any status",
    },
]


def _stream(data: str, description: str) -> dict[str, Any]:
    """A 200 that is a stream of server-sent events whose data are `data` (see docs/events.md). Before
    OpenAPI 3.2 (`itemSchema`), a ``text/event-stream`` schema describes one event."""
    event = {
        "type": "object",
        "description": "One event; `: ping` comments come between events while nothing happens",
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Increasing; send back as Last-Event-ID"},
            "event": {"type": "string", "enum": [change.value for change in Change], "description": "What changed"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(data)},
            "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting (first frame)"},
        },
    }
    return {"200": {"description": description, "content": {"text/event-stream": {"schema": event}}}}


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


_PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "nextCursor of the previous page"},
]
_DELIVERY_FILTERS = [
    {
        "name": "status",
        "in": "query",
        "schema": {"type": "string", "enum": ["", *DELIVERY_STATUSES]},
        "description": "Only deliveries in this status; empty, like absent, means any",
    },
    {
        "name": "webhookId",
        "in": "query",
        "schema": _FILTER_TEXT,
        "description": "Only the deliveries of this webhook (a UUID)",
    },
]


def _webhook_paths(job_id: Schema) -> dict[str, Any]:
    """Webhook subscriptions, the callback secret and the delivery log (see docs/webhooks.md)."""
    webhook_id = _path_param("id", "The webhook's id (a UUID)")
    deliveries = _ok(200, _ref("DeliveryPage"), "A page of deliveries, newest first")
    secret = _ok(200, _ref("WebhookSecret"), "The secret")
    return {
        "/api/webhooks": {
            "get": _operation(
                "The workspace's webhook subscriptions",
                {**_ok(200, _ref("WebhookList"), "Every subscription, oldest first"), **_errors(*_COMMON)},
            ),
            "post": _operation(
                "Subscribe a URL to the workspace's job ends",
                {
                    **_ok(201, _ref("WebhookCreated"), "The subscription, and its secret (shown once)"),
                    **_errors(*_COMMON),
                },
                requestBody=_body("CreateWebhook"),
            ),
        },
        "/api/webhooks/{id}": {
            "get": _operation(
                "A webhook subscription",
                {**_ok(200, _ref("WebhookResponse"), "The subscription"), **_errors(*_COMMON, 404)},
                parameters=[webhook_id],
            ),
            "delete": _operation(
                "Delete a webhook subscription (its pending deliveries end failed)",
                {**_ok(200, _ref("WebhookDeleted"), "The subscription, deleted"), **_errors(*_COMMON, 404)},
                parameters=[webhook_id],
            ),
        },
        "/api/webhooks/secret": {
            "get": _operation(
                "The secret that signs the workspace's job callbacks (made on first use)",
                {**secret, **_errors(*_COMMON)},
            ),
            "post": _operation(
                "Replace the secret that signs the workspace's job callbacks",
                {**_ok(200, _ref("WebhookSecret"), "The new secret"), **_errors(*_COMMON)},
            ),
        },
        "/api/webhooks/deliveries": {
            "get": _operation(
                "The workspace's webhook deliveries, newest first",
                {**deliveries, **_errors(*_COMMON)},
                parameters=[
                    {"name": "jobId", "in": "query", "schema": _FILTER_TEXT, "description": "Only this job's"},
                    *_DELIVERY_FILTERS,
                    *_PAGE_PARAMS,
                ],
            )
        },
        "/api/jobs/{id}/deliveries": {
            "get": _operation(
                "A job's webhook deliveries, newest first",
                {**deliveries, **_errors(*_COMMON, 404)},
                parameters=[job_id, *_DELIVERY_FILTERS, *_PAGE_PARAMS],
            )
        },
    }


def document(kinds: Sequence[str], sources: Sequence[str]) -> dict[str, Any]:
    """The document for an app that runs `kinds` and searches `sources`."""
    job_id = _path_param("job_id", "The job's id (a UUID)")
    ws_id = _path_param("id", "The job's id (a UUID)")
    run_job = _ref("RunJob")
    ws_job = _ref("JobResponse")
    stream_errors = {
        "204": {"description": "The job has ended and nothing follows Last-Event-ID"},
        **_errors(*_COMMON, 404, 429),
    }
    paths: dict[str, Any] = {
        "/api/v1/run/search/jobs": {
            "post": _operation(
                "Start a search job",
                {**_ok(202, run_job, "The job, queued"), **_errors(*_CREATES)},
                requestBody=_body("SearchJob"),
                parameters=[_IDEMPOTENCY],
            )
        },
        "/api/v1/run/search": {
            "post": _operation(
                "Search now, synchronously",
                {**_ok(200, _ref("SearchResponse"), "Ranked candidates"), **_errors(*_COMMON)},
                requestBody=_body("Selector"),
            )
        },
        "/api/v1/run/jobs/{job_id}": {
            "get": _operation(
                "A job's status, optionally long-polling until it ends",
                {**_ok(200, run_job, "The job"), **_errors(*_COMMON, 404, 429)},
                parameters=[job_id, *_WAIT_PARAMS],
            )
        },
        "/api/v1/run/jobs/{job_id}/cancel": {
            "post": _operation(
                "Cancel a job",
                {**_ok(200, run_job, "The job, cancelled"), **_errors(*_COMMON, 404, 409)},
                parameters=[job_id],
            )
        },
        "/api/v1/run/jobs/{job_id}/events": {
            "get": _operation(
                "A job's events: its history, then live until it ends (resumable with Last-Event-ID)",
                {**_stream("RunJobEvent", "The stream; it ends after the job's terminal event"), **stream_errors},
                parameters=[job_id, _LAST_EVENT_ID],
            )
        },
        "/api/v1/run/sources": {
            "get": _operation(
                "The candidate sources and their last sync",
                {**_ok(200, _ref("SourceList"), "Sources"), **_errors(*_COMMON)},
            )
        },
        "/api/v1/run/sources/sync": {
            "post": _operation(
                "Sync every source (one job)",
                {**_ok(202, run_job, "The job"), **_errors(*_CREATES)},
                parameters=[_IDEMPOTENCY],
                requestBody=_body("SyncOptions", required=False),
            )
        },
        "/api/v1/run/sources/{source_id}/sync": {
            "post": _operation(
                "Sync one source",
                {**_ok(202, run_job, "The job"), **_errors(*_CREATES, 404)},
                parameters=[_path_param("source_id", "The source's id"), _IDEMPOTENCY],
                requestBody=_body("SyncOptions", required=False),
            )
        },
        "/api/jobs": {
            "get": _operation(
                "The workspace's jobs, newest first",
                {**_ok(200, _ref("JobPage"), "A page of jobs"), **_errors(*_COMMON)},
                parameters=[
                    *_FILTERS,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "nextCursor of the previous page",
                    },
                ],
            ),
            "post": _operation(
                "Create a job",
                {**_ok(202, ws_job, "The job, queued"), **_errors(*_CREATES)},
                requestBody=_body("CreateJob"),
                parameters=[_IDEMPOTENCY],
            ),
        },
        "/api/jobs/stats": {
            "get": _operation(
                "The workspace's jobs by type: queued, scheduled and running now, and ended since a time",
                {**_ok(200, _ref("JobStats"), "The counts"), **_errors(*_COMMON)},
                parameters=[
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                        "description": "Count the jobs that ended at or after this time (ISO 8601 with an offset); "
                        "by default, 24 hours before now",
                    }
                ],
            )
        },
        "/api/jobs/{id}": {
            "get": _operation(
                "A job, optionally long-polling until it ends",
                {**_ok(200, ws_job, "The job"), **_errors(*_COMMON, 404, 429)},
                parameters=[ws_id, *_WAIT_PARAMS],
            ),
            "delete": _operation(
                "Delete a finished job, with its events and webhook deliveries",
                {
                    "204": {"description": "Deleted: the job is gone"},
                    **_errors(*_COMMON, 404),
                    **_conflict("JOB_NOT_FINISHED: the job is queued or running (cancel it first)"),
                },
                parameters=[ws_id],
            ),
        },
        "/api/jobs/events": {
            "get": _operation(
                "The workspace's job events, live (resumable with Last-Event-ID)",
                {**_stream("WorkspaceJobEvent", "The stream; it never ends by itself"), **_errors(*_COMMON, 429)},
                parameters=[*_FILTERS, _LAST_EVENT_ID],
            )
        },
        "/api/jobs/{id}/events": {
            "get": _operation(
                "A job's events: its history, then live until it ends (resumable with Last-Event-ID)",
                {**_stream("WorkspaceJobEvent", "The stream; it ends after the job's terminal event"), **stream_errors},
                parameters=[ws_id, _LAST_EVENT_ID],
            )
        },
        "/api/jobs/{id}/cancel": {
            "post": _operation(
                "Cancel a job",
                {**_ok(200, _ref("CancelResponse"), "The job, cancelled"), **_errors(*_COMMON, 404, 409)},
                parameters=[ws_id],
            )
        },
        "/api/jobs/{id}/retry": {
            "post": _operation(
                "Queue a failed or cancelled job again, as its next attempt (its history kept)",
                {
                    **_ok(202, ws_job, "The job, queued again"),
                    **_errors(*_COMMON, 404),
                    **_conflict("JOB_NOT_RETRYABLE: the job is queued, running or completed"),
                },
                parameters=[ws_id],
            )
        },
    }
    paths.update(_webhook_paths(ws_id))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobhouse",
            "version": __version__,
            "description": "Start long-running work with one call, then poll, long-poll or list it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(kinds, sources),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
