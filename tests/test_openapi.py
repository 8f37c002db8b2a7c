"""/openapi.json is a valid document that describes every route, its schemas come from the response
models, and real responses match it (every response of the API tests does: tests/openapi_check.py)."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate

from jobhouse.api import create_app, models, views
from jobhouse.api.openapi import REQUESTS, RESPONSES, document
from jobhouse.api.responses import JSONResponse
from jobhouse.catalog import SourceState
from jobhouse.job import Failure, Job, JobStatus, Step, StepStatus
from jobhouse.registry import Registry
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from jobhouse.sources.path import PathSource
from tests import sse
from tests.beacon import Beacon
from tests.helpers import api_client, create, wait_done
from tests.openapi_check import Document, ResponseCheck, response_check
from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def spec(server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_described_and_nothing_else(spec: dict[str, Any], tmp_path: object) -> None:
    app = create_app(Runtime(Settings(database=":memory:"), registry=Registry(), sources=[]))
    served = {
        (route.path, method.lower())  # type: ignore[attr-defined]
        for route in app.routes
        if route.path.startswith("/api")  # type: ignore[attr-defined]
        for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
    }
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert served == described


def test_the_schemas_are_the_models(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for model in (*RESPONSES, *REQUESTS):
        assert model.__name__ in schemas
    for name in ("RunJob", "WorkspaceJob", "Step", "ErrorInfo", "AttemptError", "Candidate", "Source", "Error"):
        assert schemas[name]["additionalProperties"] is False, name
    job = schemas["WorkspaceJob"]["properties"]
    for free in ("metadata", "input"):  # open JSON objects, kept as given
        assert job[free] == {**job[free], "type": "object", "additionalProperties": True}
    assert "type" not in job["result"]
    run_job = schemas["RunJob"]
    assert {"result_type", "result", "error"}.isdisjoint(run_job["required"])  # absent until the job ends


def test_the_document_names_the_kinds_and_sources_it_serves(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    kinds = set(schemas["CreateJob"]["properties"]["type"]["enum"])
    assert {"search-resolve", "source-sync", "collect", "echo"} <= kinds
    source = schemas["Selector"]["properties"]["source"]["anyOf"][0]
    assert "path" in source["enum"]

    made = document(["only-this"], ["only-here"])["components"]["schemas"]
    assert made["CreateJob"]["properties"]["type"]["enum"] == ["only-this"]
    assert made["Selector"]["properties"]["source"]["anyOf"][0]["enum"] == ["only-here"]


def test_the_status_names_are_the_models_names() -> None:
    assert set(typing.get_args(models.RunStatus)) == set(views.RUN_STATUS.values())
    assert set(typing.get_args(models.WorkspaceStatus)) == set(views.WORKSPACE_STATUS.values())
    assert set(typing.get_args(models.StepStatus)) == {status.value for status in StepStatus}


# -- the bodies, built in-process from jobs in every state -----------------------------------------

T0 = datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
STEPS = (Step("collect", "Collecting Intel", StepStatus.COMPLETED), Step("ingest", "Processing Intel"))


def a_job(status: JobStatus, **fields: Any) -> Job:
    base = Job(
        id="0193f3a4-1c2b-7d3e-8f4a-5b6c7d8e9f00",
        workspace="ws",
        kind="collect",
        title="Analyzing Competitor",
        status=status,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=1),
        run_at=T0,
        max_attempts=3,
        steps=STEPS,
        metadata={"competitorName": "Competitor Inc", "nested": {"deep": [1, 2.5, None, True]}},
        input={"k": "v"},
    )
    return dataclasses.replace(base, **fields)


JOBS = {
    "queued": a_job(JobStatus.QUEUED),
    "running": a_job(JobStatus.RUNNING, attempt=1, started_at=T0, current_step="Processing Intel", progress=50),
    "completed": a_job(
        JobStatus.COMPLETED,
        attempt=1,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=2),
        progress=100,
        result={"battlecard": "ok"},
        result_type="battlecard",
    ),
    "completed with no result": a_job(JobStatus.COMPLETED, attempt=1, progress=100, result=None, result_type=None),
    "failed": a_job(
        JobStatus.FAILED,
        attempt=2,
        error=Failure("boom", "RuntimeError"),
        errors=(Failure("lost", "lost", 1, T0), Failure("boom", "RuntimeError", 2, T0.replace(microsecond=0))),
    ),
    "cancelled": a_job(
        JobStatus.CANCELLED, current_step="Cancelled", error=Failure("Job was cancelled", "cancelled", None, T0)
    ),
}


@pytest.fixture(scope="module")
def made() -> Document:
    return Document(document(["collect"], ["path"]))


def render(body: models.Body) -> bytes:
    """What a route answers for `body`."""
    return JSONResponse(body).body


def bodies(job: Job) -> dict[str, models.Body]:
    candidate = {  # as jobhouse.search.candidate_view makes it
        "id": "linux:firefox",
        "app": "firefox",
        "name": "Firefox",
        "version": None,
        "os": "linux",
        "kind": "gui",
        "source": "desktop",
        "sources": ["desktop", "path"],
        "installed": True,
        "score": 97.25,
        "match": "exact",
        "launch": "/usr/bin/firefox",
        "install": None,
        "description": None,
        "package": "firefox-esr",
    }
    synced = SourceState("path", synced_at=T0, candidate_count=3, last_error="unreadable", last_error_at=T0)
    return {
        "RunJob": views.run_job(job, views.PLAIN),
        "JobResponse": views.job_response(job, views.PLAIN),
        "JobPage": views.job_page([job, job], "b64cursor", views.PLAIN),
        "CancelResponse": views.cancel_response(job, views.PLAIN),
        "SearchResponse": views.search_response([candidate, {**candidate, "id": "linux:firefox-esr"}]),
        "SourceList": views.source_list([(PathSource([]), synced), (PathSource([]), SourceState("path"))]),
    }


@pytest.mark.parametrize("state", JOBS)
def test_every_body_matches_the_document(made: Document, state: str) -> None:
    for name, body in bodies(JOBS[state]).items():
        rendered = render(body)
        assert made.problems({"$ref": f"#/components/schemas/{name}"}, orjson.loads(rendered)) == [], name
        # orjson renders a body as pydantic's own serializer does, byte for byte
        assert rendered == body.__pydantic_serializer__.to_json(body), name
        # it reads back as its model, strictly: the views fill exactly the model's fields ...
        parsed = type(body).model_validate_json(rendered, strict=True)
        assert parsed == body, name
        # ... in the order the model declares them
        assert render(parsed) == rendered, name


def test_only_response_models_render() -> None:
    with pytest.raises(TypeError):
        render(models.SyncOptions())  # type: ignore[arg-type]


def test_a_run_job_carries_result_only_once_done_and_error_only_once_failed() -> None:
    def run(state: str) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(render(views.run_job(JOBS[state], views.PLAIN)))
        return parsed

    assert run("queued") == {
        "job_id": "0193f3a4-1c2b-7d3e-8f4a-5b6c7d8e9f00",
        "kind": "collect",
        "status": "queued",
        "created_at": "2025-01-15T10:30:00Z",
        "updated_at": "2025-01-15T10:30:01Z",
        "progress": 0,
        "current_step": None,
        "steps": [
            {"id": "collect", "name": "Collecting Intel", "status": "completed"},
            {"id": "ingest", "name": "Processing Intel", "status": "pending"},
        ],
        "attempt": 0,
        "priority": 0,
    }
    assert run("completed")["result"] == {"battlecard": "ok"}
    assert run("completed")["result_type"] == "battlecard"
    assert {"result": None, "result_type": None}.items() <= run("completed with no result").items()
    assert "error" not in run("completed")
    assert run("failed")["error"] == {"message": "boom", "type": "RuntimeError"}
    assert {"result", "result_type"}.isdisjoint(run("failed"))
    assert run("cancelled")["status"] == "cancelled"
    assert run("cancelled")["error"] == {"message": "Job was cancelled", "type": "cancelled"}
    assert {"result", "result_type", "error"}.isdisjoint(run("running"))


def test_a_workspace_job_has_every_field_always() -> None:
    job = orjson.loads(render(views.workspace_job(JOBS["failed"], views.PLAIN)))
    assert job == {
        "id": "0193f3a4-1c2b-7d3e-8f4a-5b6c7d8e9f00",
        "workspaceId": "ws",
        "competitorId": None,
        "type": "collect",
        "displayTitle": "Analyzing Competitor",
        "status": "failed",
        "progress": 0,
        "currentStep": None,
        "steps": [
            {"id": "collect", "name": "Collecting Intel", "status": "completed"},
            {"id": "ingest", "name": "Processing Intel", "status": "pending"},
        ],
        "startedAt": None,
        "completedAt": None,
        "metadata": {"competitorName": "Competitor Inc", "nested": {"deep": [1, 2.5, None, True]}},
        "createdAt": "2025-01-15T10:30:00.123Z",
        "updatedAt": "2025-01-15T10:30:01.123Z",
        "input": {"k": "v"},
        "result": None,
        "resultType": None,
        "error": {"message": "boom", "type": "RuntimeError"},
        "attempt": 2,
        "maxAttempts": 3,
        "errors": [
            {"attempt": 1, "message": "lost", "type": "lost", "at": "2025-01-15T10:30:00.123Z"},
            {"attempt": 2, "message": "boom", "type": "RuntimeError", "at": "2025-01-15T10:30:00.000Z"},
        ],
        "priority": 0,
        "scheduledAt": None,
    }
    cancelled = views.workspace_job(JOBS["cancelled"], views.PLAIN)
    assert (cancelled.status, cancelled.currentStep) == ("failed", "Cancelled")


def test_a_body_made_without_validation_is_the_one_model_construct_makes() -> None:
    for state in JOBS:
        for body in (views.workspace_job(JOBS[state], views.PLAIN), views.run_job(JOBS[state], views.PLAIN)):
            assert body == type(body).model_construct(**dict(body))
            assert body.model_fields_set == set(type(body).model_fields)


# -- the response check itself -----------------------------------------------------------------


async def test_the_api_clients_check_every_response(client: httpx.AsyncClient, idle_client: httpx.AsyncClient) -> None:
    for http in (client, idle_client):
        before = len(response_check(http).checked)
        await http.get("/api/jobs")
        await http.get("/api/nothing-here")
        assert response_check(http).checked[before:] == [
            ("/api/jobs", "get", "200"),
            ("(not in the document)", "get", "404"),
        ]


async def test_the_check_fails_what_breaks_the_document(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "echo")
    origin = str(idle_client.base_url).rstrip("/")
    run_url = f"{origin}/api/v1/run/jobs/{job['id']}"
    run_job = (await idle_client.get(run_url)).json()
    check = ResponseCheck(origin)

    async def fails(body: Any, status: int = 200, url: str = run_url, method: str = "GET", **kw: Any) -> str:
        response = httpx.Response(status, json=body, request=httpx.Request(method, url), **kw)
        with pytest.raises(AssertionError) as failure:
            await check(response)
        return str(failure.value)

    await check(httpx.Response(200, json=run_job, request=httpx.Request("GET", run_url)))  # as served: fine
    assert "extra" in await fails({**run_job, "extra": 1})
    assert "'25' is not of type 'integer'" in await fails({**run_job, "progress": "25"})
    assert "'job_id' is a required property" in await fails({k: v for k, v in run_job.items() if k != "job_id"})
    assert "does not match" in await fails({**run_job, "created_at": "2025-01-15T10:30:00.000Z"})
    assert "is not a 'uuid'" in await fails({**run_job, "job_id": "not-a-uuid"})
    assert "status 418 is not documented" in await fails(run_job, 418)
    assert "not application/json" in await fails(None, content=b"{}", headers={"content-type": "text/plain"})
    envelope = {"error": "No job", "code": 404, "error_code": "JOB_NOT_FOUND"}
    await check(httpx.Response(404, json=envelope, request=httpx.Request("GET", run_url)))
    assert "extra" in await fails({**envelope, "extra": True}, 404)
    unknown = f"{origin}/api/nothing-here"
    assert "'code' is a required property" in await fails({"error": "Not found"}, 404, unknown)
    assert "does not have" in await fails({}, 200, unknown)
    assert "does not have" in await fails({}, 200, f"{origin}/api/jobs", "DELETE")
    assert len(check.problems) == 11
    with pytest.raises(AssertionError):
        check.assert_clean()

    elsewhere = ResponseCheck(origin)
    health = f"{origin}/healthz"
    await elsewhere(httpx.Response(200, json={"anything": 1}, request=httpx.Request("GET", health)))
    await elsewhere(httpx.Response(200, json={"x": 1}, request=httpx.Request("GET", "http://example.invalid/api/jobs")))
    assert elsewhere.checked == []
    elsewhere.assert_clean()


async def test_real_responses_match_the_document(
    spec: dict[str, Any], client: httpx.AsyncClient, beacon: Beacon
) -> None:
    """A tour of every operation and the statuses it answers; the check on `client` validates each."""
    response = await client.post("/api/v1/run/search/jobs", json={"app": "firefox"})
    job_id = response.json()["job_id"]
    await client.get(f"/api/v1/run/jobs/{job_id}?wait=done&timeout_ms=20000")
    await client.post("/api/v1/run/search/jobs", json={})
    await client.post("/api/v1/run/search", json={"app": "fire"})
    await client.post("/api/v1/run/search", content=b"{")
    await client.get("/api/v1/run/jobs/nope")
    await client.get(f"/api/v1/run/jobs/{job_id}?wait=never")
    await client.post(f"/api/v1/run/jobs/{job_id}/cancel")
    await client.get("/api/v1/run/sources")
    sync = await client.post("/api/v1/run/sources/sync")
    await wait_done(client, sync.json()["job_id"])
    await client.post("/api/v1/run/sources/path/sync")
    await client.post("/api/v1/run/sources/nope/sync")

    held = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {held['id']}")
    await client.get(f"/api/jobs/{held['id']}")
    await client.get(f"/api/v1/run/jobs/{held['id']}")
    await client.post(f"/api/jobs/{held['id']}/cancel")
    boom = await create(client, "boom", competitorId="c")
    await client.get(f"/api/jobs/{boom['id']}?wait=done&timeout_ms=20000")
    await client.get(f"/api/v1/run/jobs/{boom['id']}")
    await client.post(f"/api/jobs/{boom['id']}/cancel")
    await client.post("/api/jobs", json={"type": "echo"})
    await client.post("/api/jobs", json={"type": 1})
    await client.post("/api/jobs", content=b"x" * (2 * 1024 * 1024))
    await client.get("/api/jobs?limit=2")
    await client.get("/api/jobs?limit=0")
    await client.get("/api/jobs/nope")
    await client.put("/api/jobs")
    await client.get("/api/jobs/stats")  # held, boom and echo jobs, queued, running and ended
    await client.get("/api/jobs/stats?since=yesterday")
    ended = await sse.read(client, f"/api/jobs/{boom['id']}/events")
    await sse.read(client, f"/api/jobs/{boom['id']}/events", headers={"Last-Event-ID": ended.frames[-1].id or ""})
    await sse.read(client, f"/api/v1/run/jobs/{boom['id']}/events")
    await sse.read(client, "/api/jobs/events", headers={"Last-Event-ID": "0"}, until=lambda frame: True)
    await client.get("/api/jobs/events?status=nope")
    # webhooks (this server allows no hosts: a subscription is refused; tests/test_webhooks.py has the rest)
    await client.post("/api/webhooks", json={"url": "https://hooks.example.com/"})
    await client.get("/api/webhooks")
    await client.get("/api/webhooks/550e8400-e29b-41d4-a716-446655440000")
    await client.delete("/api/webhooks/550e8400-e29b-41d4-a716-446655440000")
    await client.get("/api/webhooks/secret")
    await client.post("/api/webhooks/secret")
    await client.get("/api/webhooks/deliveries?status=failed")
    await client.get(f"/api/jobs/{boom['id']}/deliveries")
    await client.post(f"/api/jobs/{held['id']}/retry")  # 202: cancelled, so it runs again (and holds)
    await client.post(f"/api/jobs/{held['id']}/retry")  # 409: queued or running
    await client.delete(f"/api/jobs/{held['id']}")  # 409: not finished
    await client.post(f"/api/jobs/{held['id']}/cancel")
    await client.delete(f"/api/jobs/{held['id']}")  # 204
    async with api_client(str(client.base_url), {}) as anonymous:
        await anonymous.get("/api/jobs")
        unauthorized = response_check(anonymous).checked

    checked = response_check(client).checked + unauthorized
    assert {status for _, _, status in checked} >= {"200", "202", "400", "401", "404", "405", "409", "413"}
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert described <= {(path, method) for path, method, _ in checked}
