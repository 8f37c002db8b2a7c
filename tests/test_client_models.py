"""The SDK held to the server: its models to ``/openapi.json``, its errors to every code the server
sends, its imports to httpx and pydantic; its retry rules, event decoding and in-process use."""

from __future__ import annotations

import ast
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import jobhouse.client
from jobhouse import errors as server_errors
from jobhouse.api import create_app
from jobhouse.api import errors as api_errors
from jobhouse.client import _core as core
from jobhouse.client import _errors, _models
from jobhouse.client._sse import EventFeed, job_event
from jobhouse.keys import create_key
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from tests import kinds
from tests.faultproxy import FaultProxy, running_proxy
from tests.servers import REPO, ServerProcess, free_port

#: SDK model -> the server's schema component it mirrors.
COMPONENTS: dict[type[BaseModel], str] = {
    _models.Step: "Step",
    _models.ErrorInfo: "ErrorInfo",
    _models.AttemptError: "AttemptError",
    _models.Job: "WorkspaceJob",
    _models.RunJob: "RunJob",
    _models.Candidate: "Candidate",
    _models.Source: "Source",
    _models.JobResponse: "JobResponse",
    _models.CancelResponse: "CancelResponse",
    _models.JobPage: "JobPage",
    _models.SearchResponse: "SearchResponse",
    _models.SourceList: "SourceList",
    _models.JobChange: "WorkspaceJobEvent",
    _models.RunJobChange: "RunJobEvent",
    _models.KindStats: "KindStats",
    _models.JobStats: "JobStats",
}
RENAMED = {model.__name__: name for model, name in COMPONENTS.items()}


@pytest.fixture(scope="module")
def openapi(idle_server: ServerProcess) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(idle_server.url + "/openapi.json").json()
    return document


def signature(schema: dict[str, Any], rename: dict[str, str]) -> Any:
    """What a property schema says about the JSON value's type, ignoring descriptions and bounds."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return ("ref", rename.get(name, name))
    if "anyOf" in schema:
        return ("anyOf", frozenset(signature(option, rename) for option in schema["anyOf"]))
    if "enum" in schema or "const" in schema:
        return ("enum", frozenset(schema.get("enum", [schema.get("const")])))
    kind = schema.get("type")
    if kind is None:
        return ("any",)
    if kind == "array":
        return ("array", signature(schema.get("items", {}), rename))
    if kind == "string" and schema.get("format") == "date-time":
        return ("date-time",)
    return (kind,)


def without_null(value: Any) -> Any:
    """An optional field reads None when left out: its null option says nothing about the wire."""
    if value[0] == "anyOf":
        rest = value[1] - {("null",)}
        return next(iter(rest)) if len(rest) == 1 else ("anyOf", rest)
    return value


@pytest.mark.parametrize("model", list(COMPONENTS), ids=lambda model: model.__name__)
def test_each_model_mirrors_its_schema_component(model: type[BaseModel], openapi: dict[str, Any]) -> None:
    server = openapi["components"]["schemas"][COMPONENTS[model]]
    mine = model.model_json_schema(by_alias=True, mode="validation")

    assert list(mine["properties"]) == list(server["properties"]), "the same fields, in the same order"
    assert set(mine.get("required", [])) == set(server.get("required", [])), "the same required fields"
    for name, field in server["properties"].items():
        theirs, ours = signature(field, {}), signature(mine["properties"][name], RENAMED)
        if name not in server.get("required", []):
            theirs, ours = without_null(theirs), without_null(ours)
        assert ours == theirs, f"{model.__name__}.{name}"


def test_models_read_a_real_job_and_write_it_back_as_the_server_did(openapi: dict[str, Any]) -> None:
    body = {
        "id": "019cada1-ff97-7d02-b6c9-0a1e2f3d4c5b",
        "workspaceId": "w",
        "competitorId": None,
        "type": "collect",
        "displayTitle": "Analyzing",
        "status": "failed",
        "progress": 50,
        "currentStep": "Cancelled",
        "steps": [{"id": "a", "name": "A", "status": "failed"}],
        "startedAt": "2026-03-02T08:20:01.112Z",
        "completedAt": "2026-03-02T08:20:02.386Z",
        "metadata": {"k": [1]},
        "createdAt": "2026-03-02T08:20:01.047Z",
        "updatedAt": "2026-03-02T08:20:02.386Z",
        "input": {},
        "result": None,
        "resultType": None,
        "error": {"message": "Job was cancelled", "type": "cancelled"},
        "attempt": 1,
        "maxAttempts": 2,
        "errors": [],
        "priority": -3,
        "scheduledAt": None,
        "aFieldFromANewerServer": True,
    }
    job = _models.Job.model_validate(body)
    assert (job.outcome, job.terminal, job.cancelled, job.started_at.microsecond) == ("cancelled", True, True, 112000)
    assert (job.priority, job.scheduled_at) == (-3, None)
    del body["aFieldFromANewerServer"]
    assert job.model_dump(mode="json", by_alias=True) == body

    scheduled = _models.Job.model_validate({**body, "status": "queued", "scheduledAt": "2030-01-01T09:00:00.250Z"})
    assert scheduled.scheduled_at == datetime(2030, 1, 1, 9, 0, 0, 250000, tzinfo=UTC)
    assert scheduled.model_dump(mode="json", by_alias=True)["scheduledAt"] == "2030-01-01T09:00:00.250Z"


def test_a_schedule_goes_on_the_wire_as_the_server_reads_it() -> None:
    at = datetime(2030, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    create = core.jobs_create(
        "echo",
        input=None,
        metadata=None,
        competitor_id=None,
        display_title=None,
        idempotency_key=None,
        control=core.Control.of(at, None, 4),
    )
    assert create.body == {"type": "echo", "runAt": "2030-01-01T09:00:00+02:00", "priority": 4}
    # a delay in seconds, or a timedelta, as whole milliseconds: rounded up, never earlier than asked
    assert core.Control.of(None, 0.7, None).run() == {"delay_ms": 700}
    assert core.Control.of(None, timedelta(microseconds=1500), None).run() == {"delay_ms": 2}
    assert core.Control.of(None, 0, 0).run() == {"delay_ms": 0, "priority": 0}
    search = core.run_create_search({"app": "gimp"}, None, core.Control.of(None, 30, -2))
    assert search.body == {"app": "gimp", "delay_ms": 30000, "priority": -2}
    assert core.sources_sync(None, False, None).body is None
    assert core.sources_sync("path", True, None, core.Control.of(None, None, 1)).body == {"force": True, "priority": 1}
    with pytest.raises(ValueError, match="has no time zone"):
        core.Control.of(datetime(2030, 1, 1, 9, 0), None, None)


# -- errors ------------------------------------------------------------------------------------------


def server_codes() -> dict[str, int]:
    """Every error code the server can put in a response, with its status."""
    codes = {}
    for cls in vars(server_errors).values():
        if isinstance(cls, type) and issubclass(cls, server_errors.JobhouseError):
            status = api_errors.status_of(cls.__new__(cls))
            if status != 500:  # never a response's code (JOB_CANCELLED, SOURCE_FAILED, ...)
                codes[cls.error_code] = status
    return codes | {code: status for status, code in api_errors._HTTP_CODES.items()}


@pytest.mark.parametrize(("code", "status"), sorted(server_codes().items()))
def test_every_code_the_server_sends_has_its_class(code: str, status: int) -> None:
    response = httpx.Response(
        status, json={"error": "Something", "code": status, "error_code": code}, headers={"Retry-After": "2"}
    )
    error = _errors.error_from_response(response)

    assert type(error) is _errors.CODES[code]
    assert (error.status, error.code, error.message, error.retry_after) == (status, code, "Something", 2)
    assert error.response is response
    assert isinstance(error, jobhouse.client.ApiError)
    assert str(error) == f"Something ({status} {code})"


def test_the_error_classes_match_the_documented_statuses() -> None:
    expected = {
        "JOB_NOT_FOUND": (jobhouse.client.JobNotFound, 404),
        "UNAUTHORIZED": (jobhouse.client.Unauthorized, 401),
        "INVALID_REQUEST": (jobhouse.client.InvalidRequest, 400),
        "JOB_ALREADY_FINISHED": (jobhouse.client.JobAlreadyFinished, 409),
        "IDEMPOTENCY_KEY_REUSED": (jobhouse.client.IdempotencyKeyReused, 422),
        "QUOTA_EXCEEDED": (jobhouse.client.QuotaExceeded, 429),
        "STORE_UNAVAILABLE": (jobhouse.client.QueueUnavailable, 503),
    }
    codes = server_codes()
    for code, (cls, status) in expected.items():
        assert _errors.CODES[code] is cls
        assert codes[code] == status
    for code, cls in _errors.CODES.items():  # each class sits under its status's class
        assert issubclass(cls, _errors.STATUSES.get(codes[code], _errors.ApiError)) or codes[code] == 500


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (404, {"error": "Gone", "code": 404, "error_code": "SOMETHING_NEW"}, jobhouse.client.NotFound, "SOMETHING_NEW"),
        (418, {"error": "Teapot", "code": 418, "error_code": "TEAPOT"}, jobhouse.client.ApiError, "TEAPOT"),
        (502, "<html>Bad gateway</html>", jobhouse.client.ServerError, "HTTP_502"),
        (503, "", jobhouse.client.QueueUnavailable, "HTTP_503"),
    ],
)
def test_unknown_codes_and_foreign_bodies_fall_back_by_status(status: int, body: Any, cls: type, code: str) -> None:
    response = httpx.Response(status, json=body) if isinstance(body, dict) else httpx.Response(status, text=body)
    error = _errors.error_from_response(response)
    assert type(error) is cls
    assert (error.status, error.code) == (status, code)
    assert error.message


def test_an_unreachable_server_is_a_connection_error_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = jobhouse.client.Client(url, "k", retries=2, max_retry_wait=0.01)
    with client, pytest.raises(jobhouse.client.ConnectionFailed) as raised:
        client.jobs.get(str(uuid.uuid4()))
    assert isinstance(raised.value, ConnectionError)
    assert isinstance(raised.value, jobhouse.client.ApiError)
    assert raised.value.status is None
    assert url in str(raised.value)


# -- retries -------------------------------------------------------------------------------------------


def test_backoff_without_retry_after_is_jittered_doubling_and_bounded() -> None:
    options = core.Options.resolve("http://x", None, timeout=5, retries=6, max_retry_wait=3.0)
    retrying = core.Retrying(options, idempotent=True)
    delays = [retrying.after_error(httpx.ReadError("lost")) for _ in range(7)]
    assert delays[-1] is None  # six retries, then no more
    for n, delay in enumerate(delays[:-1]):
        assert delay is not None
        assert min(3.0, 0.5 * 2**n) / 2 <= delay <= min(3.0, 0.5 * 2**n)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    options = core.Options.resolve("http://x", None, timeout=5, retries=3, max_retry_wait=10.0)
    retrying = core.Retrying(options, idempotent=True)
    assert retrying.after_response(httpx.Response(503, headers={"Retry-After": "2"})) == 2
    assert retrying.after_response(httpx.Response(429, headers={"Retry-After": "60"})) == 10
    assert retrying.after_response(httpx.Response(500)) is None  # a bug is not retried
    assert retrying.after_response(httpx.Response(400)) is None


def test_a_call_that_is_not_idempotent_is_retried_only_when_nothing_was_done() -> None:
    options = core.Options.resolve("http://x", None, timeout=5, retries=3, max_retry_wait=10.0)
    retrying = core.Retrying(options, idempotent=False)
    assert retrying.after_error(httpx.ReadError("the answer was lost")) is None
    assert retrying.after_response(httpx.Response(503)) is None
    assert retrying.after_error(httpx.ConnectError("refused")) is not None  # never sent
    assert retrying.after_response(httpx.Response(429, headers={"Retry-After": "1"})) == 1  # refused, made nothing


async def test_a_non_idempotent_call_whose_answer_was_lost_is_not_sent_again(server: ServerProcess, key: str) -> None:
    async with FaultProxy(server.url) as proxy, jobhouse.client.AsyncClient(proxy.url, key) as client:
        proxy.add(method="POST", path="/api/jobs", action="drop-response")
        call = core.Call(
            "POST", "/api/jobs", _models.JobResponse.model_validate, body={"type": "echo"}, idempotent=False
        )
        with pytest.raises(jobhouse.client.ConnectionFailed):
            await client._send(call)
        assert proxy.hits["POST /api/jobs"] == 1
        assert len([job async for job in client.jobs.list()]) == 1  # the server did make it


def test_create_reuses_one_idempotency_key_across_its_retries(server: ServerProcess) -> None:
    key = asyncio.run(server.new_key())
    with running_proxy(server.url) as proxy, jobhouse.client.Client(proxy.url, key) as client:
        proxy.add(method="POST", path="/api/jobs", action="drop-response", times=2)
        job = client.jobs.create("echo", idempotency_key="my-key-1")
        assert proxy.hits["POST /api/jobs"] == 3
        assert [listed.id for listed in client.jobs.list()] == [job.id]
        again = client.jobs.create("echo", idempotency_key="my-key-1")  # a replay: the same job
        assert again.id == job.id
        with pytest.raises(jobhouse.client.IdempotencyKeyReused):
            client.jobs.create("boom", idempotency_key="my-key-1")


# -- event frames --------------------------------------------------------------------------------------


def change(id: str, status: str = "running") -> str:
    return (
        f'{{"id": "{id}", "type": "t", "competitorId": null, "status": "{status}", "progress": 0, '
        f'"currentStep": null, "steps": [], "attempt": 1, "updatedAt": "2026-03-02T08:20:01.047Z"}}'
    )


def test_the_event_decoder_follows_the_sse_rules() -> None:
    options = core.Options.resolve("http://x", None, timeout=5, retries=3, max_retry_wait=10.0)
    feed = EventFeed(options, "/api/jobs/j/events", job_event)
    lines = ["retry: 2500", "", ": ping", "id: 7", "event: status", "data: " + change("j"), ""]
    lines += ["id: 8", "data: " + change("j")[:40], "data: " + change("j")[40:], ""]  # split over two data lines
    lines += ["id: 9", "", "id: 10", "event: status", "data:" + change("j", "completed"), ""]
    events = [event for line in lines if (event := feed.line(line)) is not None]

    assert [(event.id, event.event, event.job.status) for event in events] == [
        (7, "status", "running"),
        (8, "message", "running"),
        (10, "status", "completed"),
    ]
    assert feed.reconnect_delay == 2.5
    assert not feed.finished  # a retried job's history goes on past an end: over when the server closes
    feed.closed()
    assert feed.finished  # closed after the terminal event
    assert feed.last_event_id == "10"
    assert feed.call() is None
    feed = EventFeed(options, "/api/jobs/j/events", job_event)
    lines = ["id: 3", "event: status", "data:" + change("j", "failed"), "", "id: 4", "data: " + change("j"), ""]
    events = [event for line in lines if (event := feed.line(line)) is not None]
    assert [event.id for event in events] == [3, 4]
    feed.closed()
    assert not feed.finished  # closed after an event that is not an end: resumed


# -- in-process, and the package's boundaries --------------------------------------------------------


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(database=f"sqlite:///{tmp_path}/db.sqlite", heartbeat=0.2, poll_interval=0.1)
    runtime = Runtime(settings, registry=kinds.jobs, sources=[])
    await runtime.open()
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, workers=True))
    try:
        yield runtime
    finally:
        stop.set()
        await task
        await runtime.close()


async def test_an_async_client_runs_in_process_through_an_asgi_transport(runtime: Runtime) -> None:
    key, _ = await create_key(runtime.store, "in-process")
    transport = httpx.ASGITransport(create_app(runtime))
    async with jobhouse.client.AsyncClient("http://jobhouse.test", key, transport=transport) as client:
        job = await client.jobs.create("collect", competitor_id="acme")
        done = await client.jobs.wait(job.id, timeout=20)
        assert done.status == "completed"
        assert [listed.id async for listed in client.jobs.list()] == [job.id]
        events = [event async for event in client.jobs.events(job.id)]
        assert events[-1].terminal
        with pytest.raises(jobhouse.client.JobNotFound):
            await client.jobs.get(str(uuid.uuid4()))


def test_the_public_names() -> None:
    assert sorted(jobhouse.client.__all__) == sorted(
        name for name in dir(jobhouse.client) if not name.startswith("_") and name[0].isupper()
    )
    for name in jobhouse.client.__all__:
        assert getattr(jobhouse.client, name) is not None
    assert "client" not in jobhouse.__all__  # `import jobhouse` does not load the SDK


def test_the_sdk_imports_only_httpx_pydantic_and_the_standard_library() -> None:
    package = REPO / "src" / "jobhouse" / "client"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert (
                    top in {"__future__", "httpx", "pydantic"}
                    or name == "jobhouse.client"
                    or name.startswith("jobhouse.client.")
                    or top in sys.stdlib_module_names
                ), f"{path.name} imports {name}"
