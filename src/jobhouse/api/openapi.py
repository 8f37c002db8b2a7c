"""The OpenAPI 3.1 document served at ``/openapi.json``.

Request bodies come from the same pydantic models that validate them; responses are described
here, next to nothing else, and a test checks real responses against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobhouse import __version__
from jobhouse.api.params import MAX_TIMEOUT_MS
from jobhouse.api.workspace import STATUS_FILTERS, CreateJob
from jobhouse.search import Selector

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_TIME = {"type": "string", "format": "date-time"}
_STEP: Schema = {
    "type": "object",
    "required": ["id", "name", "status"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "running", "completed", "failed"]},
    },
}
_ERROR_INFO: Schema = {
    "type": "object",
    "required": ["message", "type"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}},
}
_PROGRESS = {"type": "integer", "minimum": 0, "maximum": 100}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error", "code", "error_code"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, for people"},
            "code": {"type": "integer", "description": "The HTTP status"},
            "error_code": {"type": "string", "description": "What went wrong, for programs"},
        },
    },
    "Step": _STEP,
    "ErrorInfo": _ERROR_INFO,
    "RunJob": {
        "type": "object",
        "required": ["job_id", "kind", "status", "created_at", "updated_at"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
            "created_at": _TIME,
            "updated_at": _TIME,
            "progress": _PROGRESS,
            "current_step": _nullable({"type": "string"}),
            "steps": {"type": "array", "items": _ref("Step")},
            "attempt": {"type": "integer", "minimum": 0},
            "result_type": {"type": ["string", "null"], "description": "Present once the job is done"},
            "result": {"description": "The job's JSON result; present once the job is done"},
            "error": _ref("ErrorInfo"),
        },
    },
    "WorkspaceJob": {
        "type": "object",
        "required": [
            "id",
            "workspaceId",
            "competitorId",
            "type",
            "displayTitle",
            "status",
            "progress",
            "currentStep",
            "steps",
            "startedAt",
            "completedAt",
            "metadata",
        ],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "workspaceId": {"type": "string"},
            "competitorId": _nullable({"type": "string"}),
            "type": {"type": "string"},
            "displayTitle": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "completed", "failed"],
                "description": "A cancelled job reads failed, with currentStep 'Cancelled'",
            },
            "progress": _PROGRESS,
            "currentStep": _nullable({"type": "string"}),
            "steps": {"type": "array", "items": _ref("Step")},
            "startedAt": _nullable(_TIME),
            "completedAt": _nullable(_TIME),
            "metadata": {"type": "object"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "input": {"type": "object"},
            "result": {"description": "The job's JSON result once completed, else null"},
            "resultType": _nullable({"type": "string"}),
            "error": _nullable(_ref("ErrorInfo")),
            "attempt": {"type": "integer", "minimum": 0},
            "maxAttempts": {"type": "integer", "minimum": 1},
            "errors": {
                "type": "array",
                "description": "The error of each failed or lost attempt, oldest first",
                "items": {
                    "type": "object",
                    "required": ["attempt", "message", "type", "at"],
                    "properties": {
                        "attempt": _nullable({"type": "integer"}),
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "at": _nullable(_TIME),
                    },
                },
            },
        },
    },
    "Candidate": {
        "type": "object",
        "description": "One application on one OS, merged from every source that knows it",
        "required": [
            "id",
            "app",
            "name",
            "version",
            "os",
            "kind",
            "source",
            "sources",
            "installed",
            "score",
            "match",
            "launch",
            "install",
            "description",
            "package",
        ],
        "properties": {
            "id": {"type": "string", "description": "`<os>:<app>`, stable across syncs"},
            "app": {"type": "string"},
            "name": {"type": "string"},
            "version": _nullable({"type": "string"}),
            "os": {"type": "string", "enum": ["linux", "macos", "windows"]},
            "kind": {"type": "string", "enum": ["gui", "cli"]},
            "source": {"type": "string", "description": "The source that knows it best (first of `sources`)"},
            "sources": {"type": "array", "items": {"type": "string"}},
            "installed": {"type": "boolean"},
            "score": {"type": "number"},
            "match": {
                "type": "string",
                "enum": ["exact", "prefix", "word", "substring", "keyword", "fuzzy"],
                "description": "The tier that matched",
            },
            "launch": _nullable({"type": "string"}),
            "install": _nullable({"type": "string"}),
            "description": _nullable({"type": "string"}),
            "package": _nullable({"type": "string", "description": "The Debian package it comes from"}),
        },
    },
    "SearchResponse": {
        "type": "object",
        "required": ["candidates"],
        "properties": {"candidates": {"type": "array", "items": _ref("Candidate")}},
    },
    "Source": {
        "type": "object",
        "required": ["id", "title", "synced_at", "candidate_count", "last_error"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "synced_at": _nullable(_TIME),
            "candidate_count": {"type": "integer", "minimum": 0},
            "last_error": _nullable({"type": "string"}),
            "last_error_at": _nullable(_TIME),
        },
    },
}

_ERRORS = {
    400: "Invalid request: the message names the parameter or field",
    401: "Missing or invalid API key",
    404: "No such job (or it belongs to another workspace)",
    405: "Method not allowed",
    409: "The job already completed or failed",
    413: "Request body over the size limit",
    422: "This Idempotency-Key was already used with another request",
    429: "Too many queued jobs in this workspace; retry after Retry-After seconds",
    503: "Job queue unavailable; retry after Retry-After seconds",
}


def _errors(*codes: int) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref("Error")}}
    return {str(code): {"description": _ERRORS[code], "content": content} for code in codes}


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
_COMMON = (400, 401, 405, 503)
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


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def document(kinds: Sequence[str], sources: Sequence[str]) -> dict[str, Any]:
    """The document for an app that runs `kinds` and searches `sources`."""
    job_id = _path_param("job_id", "The job's id (a UUID)")
    ws_id = _path_param("id", "The job's id (a UUID)")
    run_job = _ref("RunJob")
    ws_job = {"type": "object", "required": ["job"], "properties": {"job": _ref("WorkspaceJob")}}
    paths: dict[str, Any] = {
        "/api/v1/run/search/jobs": {
            "post": _operation(
                "Start a search job",
                {**_ok(202, run_job, "The job, queued"), **_errors(*_CREATES, 413)},
                requestBody=_body("Selector"),
                parameters=[_IDEMPOTENCY],
            )
        },
        "/api/v1/run/search": {
            "post": _operation(
                "Search now, synchronously",
                {**_ok(200, _ref("SearchResponse"), "Ranked candidates"), **_errors(*_COMMON, 413)},
                requestBody=_body("Selector"),
            )
        },
        "/api/v1/run/jobs/{job_id}": {
            "get": _operation(
                "A job's status, optionally long-polling until it ends",
                {**_ok(200, run_job, "The job"), **_errors(*_COMMON, 404)},
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
        "/api/v1/run/sources": {
            "get": _operation(
                "The candidate sources and their last sync",
                _ok(
                    200,
                    {
                        "type": "object",
                        "required": ["sources"],
                        "properties": {"sources": {"type": "array", "items": _ref("Source")}},
                    },
                    "Sources",
                )
                | _errors(*_COMMON),
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
                {
                    **_ok(
                        200,
                        {
                            "type": "object",
                            "required": ["jobs", "nextCursor"],
                            "properties": {
                                "jobs": {"type": "array", "items": _ref("WorkspaceJob")},
                                "nextCursor": _nullable({"type": "string"}),
                            },
                        },
                        "A page of jobs",
                    ),
                    **_errors(*_COMMON),
                },
                parameters=[
                    {"name": "competitorId", "in": "query", "schema": _FILTER_TEXT},
                    {"name": "type", "in": "query", "schema": _FILTER_TEXT},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(STATUS_FILTERS)},
                    },
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
                {**_ok(202, ws_job, "The job, queued"), **_errors(*_CREATES, 413)},
                requestBody=_body("CreateJob"),
                parameters=[_IDEMPOTENCY],
            ),
        },
        "/api/jobs/{id}": {
            "get": _operation(
                "A job, optionally long-polling until it ends",
                {**_ok(200, ws_job, "The job"), **_errors(*_COMMON, 404)},
                parameters=[ws_id, *_WAIT_PARAMS],
            )
        },
        "/api/jobs/{id}/cancel": {
            "post": _operation(
                "Cancel a job",
                {
                    **_ok(
                        200,
                        {
                            "type": "object",
                            "required": ["success", "job"],
                            "properties": {"success": {"const": True}, "job": _ref("WorkspaceJob")},
                        },
                        "The job, cancelled",
                    ),
                    **_errors(*_COMMON, 404, 409),
                },
                parameters=[ws_id],
            )
        },
    }
    schemas = dict(SCHEMAS)
    selector = Selector.model_json_schema()
    selector["properties"]["source"] = _nullable({"type": "string", "enum": list(sources)})
    schemas["Selector"] = selector
    schemas["SyncOptions"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "force": {
                "type": "boolean",
                "default": False,
                "description": "Read the sources again even if their files did not change since the last sync",
            }
        },
    }
    create = CreateJob.model_json_schema()
    create["properties"]["type"] = {"type": "string", "enum": list(kinds), "description": "A registered job type"}
    schemas["CreateJob"] = create
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobhouse",
            "version": __version__,
            "description": "Start long-running work with one call, then poll, long-poll or list it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
