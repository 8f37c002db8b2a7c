"""Logs, tracebacks, and what error messages reveal.

Real `jobhouse serve` processes whose stderr the tests read: one logging text at debug level with an
access log and ``redact_errors`` on, one logging JSON lines. A failed attempt is logged once, with
its traceback and its job; requests carry an id into the log; no key ever reaches it. The API never
sends a traceback unless the kind opts in, and with ``redact_errors`` not the handler's message
either, while ``jobhouse jobs get ID --traceback`` shows operators both, from the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse import logs
from jobhouse.api import views
from jobhouse.api.models import json_fields
from jobhouse.attempt import TRACEBACK_MAX, traceback_of
from jobhouse.clock import ManualClock
from jobhouse.disclosure import OPERATOR, PLAIN, Disclosure
from jobhouse.job import Failure, Job, JobStatus, Outcome, Verdict
from jobhouse.maintenance import Rescuer
from jobhouse.queue import Queue
from jobhouse.registry import Registry
from jobhouse.store.base import Store
from tests import sse
from tests.helpers import api_client, create, wait_done
from tests.servers import REPO, Machine, ServerProcess, running_server

#: Where a text record starts: ``2026-01-15 10:30:00,123 ``.
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.M)
BOOM_LINE = 'raise ValueError("boom: the handler failed")'
SHOWN_LINE = 'raise ValueError("boom: shown to clients")'
LEAK_LINE = "raise PermissionError("


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """Text logs at debug level, an access log, and error messages redacted for clients."""
    env = {"JOBHOUSE_LOG_LEVEL": "debug", "JOBHOUSE_ACCESS_LOG": "true", "JOBHOUSE_REDACT_ERRORS": "true"}
    with running_server(tmp_path_factory.mktemp("text-logs") / "jobhouse.db", machine, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """JSON lines at info level, with an access log; error messages as handlers wrote them."""
    env = {"JOBHOUSE_LOG_FORMAT": "json", "JOBHOUSE_LOG_LEVEL": "info", "JOBHOUSE_ACCESS_LOG": "true"}
    with running_server(tmp_path_factory.mktemp("json-logs") / "jobhouse.db", machine, env=env) as server:
        yield server


@pytest.fixture
async def text_client(text_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(text_server.url, {"Authorization": f"Bearer {await text_server.new_key()}"}) as http:
        yield http


@pytest.fixture
async def json_client(json_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(json_server.url, {"Authorization": f"Bearer {await json_server.new_key()}"}) as http:
        yield http


def records(server: ServerProcess) -> list[str]:
    """The text records the server logged so far, each with the traceback lines that follow it."""
    text = "".join(server.stderr)
    starts = [match.start() for match in RECORD_START.finditer(text)]
    return [text[start:end].rstrip("\n") for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server logged so far, each parsed as JSON (one that does not parse fails)."""
    parsed = []
    for line in list(server.stderr):
        value = json.loads(line)
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


async def logged(read: Callable[[], list[Any]], match: Callable[[Any], bool], count: int = 1) -> list[Any]:
    """The entries `read` gives that `match`, once there are `count` of them (the server's stderr is
    read by a thread, so a line may come a moment after the response that followed it)."""
    deadline = time.monotonic() + 10
    while True:
        found = [entry for entry in read() if match(entry)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobhouse",
        *args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def tracebacks_in(value: Any) -> list[str]:
    """Every `traceback` field anywhere in a JSON value."""
    if isinstance(value, dict):
        found = [value["traceback"]] if "traceback" in value else []
        return found + [t for item in value.values() for t in tracebacks_in(item)]
    if isinstance(value, list):
        return [t for item in value for t in tracebacks_in(item)]
    return []


async def every_view(client: httpx.AsyncClient, job_id: str, kind: str) -> dict[str, Any]:
    """The ended job as every route shows it: both surfaces, plain, long-polled, listed, streamed."""
    views_of: dict[str, Any] = {}
    for name, path, params in [
        ("workspace", f"/api/jobs/{job_id}", {}),
        ("workspace long-poll", f"/api/jobs/{job_id}", {"wait": "done", "timeout_ms": "20000"}),
        ("workspace list", "/api/jobs", {"type": kind}),
        ("run", f"/api/v1/run/jobs/{job_id}", {}),
        ("run long-poll", f"/api/v1/run/jobs/{job_id}", {"wait": "done", "timeout_ms": "20000"}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        views_of[name] = response.json()
    for name, path in [
        ("workspace events", f"/api/jobs/{job_id}/events"),
        ("run events", f"/api/v1/run/jobs/{job_id}/events"),
    ]:
        stream = await sse.read(client, path)
        assert stream.ended, name
        assert stream.frames, name
        views_of[name] = [frame.data for frame in stream.frames]
    stream = await sse.read(
        client,
        "/api/jobs/events",
        headers={"Last-Event-ID": "0"},
        until=lambda f: f.data["id"] == job_id and f.data["status"] == "failed",
    )
    views_of["workspace stream"] = [frame.data for frame in stream.frames if frame.data["id"] == job_id]
    return views_of


def errors_of(views_of: dict[str, Any]) -> list[dict[str, Any]]:
    """Every error object (a job's `error`, each of `errors`) in the views."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name == "error" and isinstance(item, dict):
                    found.append(item)
                elif name == "errors":
                    found.extend(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(views_of)
    return found


# -- the log -----------------------------------------------------------------------------------------


async def test_a_failed_attempt_is_logged_once_with_its_traceback_and_its_job(
    text_server: ServerProcess, text_client: httpx.AsyncClient
) -> None:
    job = await create(text_client, "boom")
    workspace = job["workspaceId"]
    assert (await wait_done(text_client, job["id"]))["status"] == "failed"

    (failed,) = await logged(lambda: records(text_server), lambda r: f"job={job['id']}" in r and " failed " in r)
    head, _, traceback = failed.partition("\n")
    assert re.match(
        r"^\S+ \S+ ERROR jobhouse\.attempt: attempt 1 of 1 failed \(ValueError: boom: the handler failed\); "
        rf"the job failed job={job['id']} kind=boom workspace={workspace} attempt=1$",
        head,
    ), head
    assert traceback.startswith("Traceback (most recent call last):"), traceback
    assert BOOM_LINE in traceback
    assert "tests/kinds.py" in traceback
    assert traceback.rstrip().endswith("ValueError: boom: the handler failed")
    assert sum(BOOM_LINE in r and job["id"] in r for r in records(text_server)) == 1


async def test_each_attempt_is_logged_a_retry_as_a_warning_the_last_as_an_error(
    text_server: ServerProcess, text_client: httpx.AsyncClient
) -> None:
    job = await create(text_client, "leak", input={"password": "hunter2"})
    assert (await wait_done(text_client, job["id"]))["status"] == "failed"

    def about_it(record: str) -> bool:
        return f"job={job['id']}" in record

    found = await logged(lambda: records(text_server), lambda r: about_it(r) and " failed " in r, count=2)
    first, last = found
    assert (
        " WARNING jobhouse.attempt: attempt 1 of 2 failed (PermissionError: login refused for password=hunter2)"
        in first
    )
    assert "; the job will run again job=" in first
    assert first.split("\n")[0].endswith("attempt=1")
    assert " ERROR jobhouse.attempt: attempt 2 of 2 failed (PermissionError: login refused" in last
    assert "; the job failed job=" in last
    assert last.split("\n")[0].endswith("attempt=2")
    for record in found:
        assert "Traceback (most recent call last):" in record
        assert LEAK_LINE in record
    # The handler's own line, logged in its thread, names the attempt too.
    own = [r for r in records(text_server) if about_it(r) and "tests.kinds: leak: trying to log in" in r]
    assert [r.rsplit(" ", 1)[-1] for r in own] == ["attempt=1", "attempt=2"]


async def test_lines_are_json_with_the_job_and_the_request_in_json_mode(
    json_server: ServerProcess, json_client: httpx.AsyncClient
) -> None:
    response = await json_client.post("/api/jobs", json={"type": "boom"}, headers={"X-Request-ID": "req-json-1"})
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "req-json-1"
    job = response.json()["job"]
    body = await wait_done(json_client, job["id"])
    assert body["error"] == {"message": "boom: the handler failed", "type": "ValueError"}  # not redacted here

    (failed,) = await logged(lambda: json_lines(json_server), lambda r: r.get("job_id") == job["id"])
    assert failed["level"] == "ERROR"
    assert failed["logger"] == "jobhouse.attempt"
    assert failed["message"] == "attempt 1 of 1 failed (ValueError: boom: the handler failed); the job failed"
    assert (failed["kind"], failed["workspace"], failed["attempt"]) == ("boom", job["workspaceId"], 1)
    assert BOOM_LINE in failed["traceback"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", failed["time"])
    (access,) = await logged(lambda: json_lines(json_server), lambda r: r.get("request_id") == "req-json-1")
    assert access["logger"] == "uvicorn.access"
    assert "POST /api/jobs" in access["message"]
    assert "job_id" not in access
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in json_lines(json_server))


async def test_a_request_id_is_echoed_and_tags_the_requests_log_lines(
    text_server: ServerProcess, text_client: httpx.AsyncClient
) -> None:
    response = await text_client.get("/api/jobs", headers={"X-Request-ID": "req-text-1"})
    assert response.headers["x-request-id"] == "req-text-1"
    (access,) = await logged(lambda: records(text_server), lambda r: r.endswith(" request=req-text-1"))
    assert " INFO uvicorn.access: " in access
    assert "GET /api/jobs" in access

    made = (await text_client.get("/api/jobs")).headers["x-request-id"]
    refused = await text_client.get("/api/jobs", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{16,}", refused.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16,}", made)
    assert made != refused.headers["x-request-id"]
    for insane in ("two words", "x" * 129, "jh_abcdefabcdef_" + "A" * 43, "-starts-with-a-dash"):
        given = (await text_client.get("/api/jobs", headers={"X-Request-ID": insane})).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16,}", given), insane


async def test_no_key_ever_reaches_the_log(text_server: ServerProcess) -> None:
    key = await text_server.new_key()
    key_id, secret = key[3:15], key[16:]
    unknown = "jh_000000000000_" + "B" * 43
    wrong = f"jh_{key_id}_" + "C" * 43
    first = (Path(text_server.database.removeprefix("sqlite:///")).parent / "data" / "first-key").read_text().strip()
    async with httpx.AsyncClient(base_url=text_server.url, timeout=30) as http:
        assert (await http.get("/api/jobs", headers={"Authorization": f"Bearer {key}"})).status_code == 200
        assert (await http.get("/api/jobs", headers={"X-API-Key": wrong})).status_code == 401
        assert (await http.get("/api/jobs", headers={"Authorization": f"Bearer {unknown}"})).status_code == 401
        assert (await http.get(f"/api/jobs?api_key={key}", headers={"X-Request-ID": key})).status_code == 401
        assert (await http.get(f"/api/jobs/{first}")).status_code == 401
        created = await http.post(
            "/api/jobs", json={"type": "leak", "input": {"password": key}}, headers={"Authorization": f"Bearer {key}"}
        )
        job_id = created.json()["job"]["id"]
        done = await http.get(
            f"/api/v1/run/jobs/{job_id}",
            params={"wait": "done", "timeout_ms": "20000"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert done.json()["error"]["message"] == "The job failed (PermissionError)"
    found = await logged(lambda: records(text_server), lambda r: f"job={job_id}" in r and " failed " in r, count=2)
    assert f"password=jh_{key_id}_[redacted]" in found[0]
    await logged(lambda: records(text_server), lambda r: f"api_key=jh_{key_id}_[redacted]" in r)
    output = text_server.output()
    for secret_part in (secret, unknown[16:], wrong[16:], first[16:]):
        assert secret_part not in output


# -- what the API shows ------------------------------------------------------------------------------


async def test_the_api_never_sends_a_traceback_unless_the_kind_opts_in(text_client: httpx.AsyncClient) -> None:
    hidden = await create(text_client, "boom")
    shown = await create(text_client, "boom-shown")
    for job in (hidden, shown):
        assert (await wait_done(text_client, job["id"]))["status"] == "failed"

    views_hidden = await every_view(text_client, hidden["id"], "boom")
    assert tracebacks_in(views_hidden) == []
    assert "Traceback (most recent call last)" not in json.dumps(views_hidden)
    assert len(errors_of(views_hidden)) >= 8

    views_shown = await every_view(text_client, shown["id"], "boom-shown")
    errors = errors_of(views_shown)
    assert len(errors) >= 8
    for error in errors:  # the kind opted in: its message too, though this server redacts the others'
        assert error["message"] == "boom: shown to clients"
        assert error["traceback"].startswith("Traceback (most recent call last):")
        assert SHOWN_LINE in error["traceback"]


async def test_redacted_messages_hide_the_handlers_words_from_clients_not_from_operators(
    text_server: ServerProcess, text_client: httpx.AsyncClient
) -> None:
    job = await create(text_client, "leak", input={"password": "hunter2"})
    assert (await wait_done(text_client, job["id"]))["status"] == "failed"
    views_of = await every_view(text_client, job["id"], "leak")
    errors = errors_of(views_of)
    assert "hunter2" not in json.dumps(errors)  # (the job's input, echoed back as given, holds it)
    assert errors
    assert all(e == {**e, "message": "The job failed (PermissionError)", "type": "PermissionError"} for e in errors)

    database = text_server.database
    (code, out, err), (json_code, json_out, json_err) = await asyncio.gather(
        cli("jobs", "get", job["id"], "--traceback", "--database", database),
        cli("jobs", "get", job["id"], "--traceback", "--json", env={"JOBHOUSE_DATABASE_URL": database}),
    )
    assert code == 0, err
    assert out.count("PermissionError: login refused for password=hunter2") >= 2
    assert out.count(LEAK_LINE) == 2
    assert out.count("Traceback (most recent call last):") == 2
    assert re.search(r"attempt 1 \(\S+\): PermissionError: login refused for password=hunter2", out)

    assert json_code == 0, json_err
    stored = json.loads(json_out)
    assert stored["error"]["message"] == "login refused for password=hunter2"
    assert [e["attempt"] for e in stored["errors"]] == [1, 2]
    assert all(LEAK_LINE in e["traceback"] for e in stored["errors"])


@pytest.mark.slow  # two more `jobhouse` processes, a second or two each
async def test_jobs_get_traceback_refuses_what_names_no_job(text_server: ServerProcess) -> None:
    database = text_server.database
    (missing, _, missing_err), (bad, _, bad_err) = await asyncio.gather(
        cli("jobs", "get", "00000000-0000-4000-8000-000000000000", "--traceback", "-d", database),
        cli("jobs", "get", "not-a-job", "--traceback", "-d", database),
    )
    assert missing == 4
    assert "No job 00000000-0000-4000-8000-000000000000 in the store" in missing_err
    assert bad == 4
    assert "Not a job id" in bad_err


NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_what_clients_see_of_each_failure() -> None:
    jobs = Registry()
    jobs.kind("open", expose_traceback=True)(lambda ctx: None)
    handler = Failure("password=hunter2", "KeyError", 1, None, "Traceback ...\nKeyError: 'password=hunter2'")
    ours = [
        Failure("Job was cancelled", "cancelled"),
        Failure("Attempt timed out after 5s", "timeout"),
        Failure("Worker w stopped heartbeating; attempt 1 was lost", "lost"),
        Failure("Result is not JSON-serializable: set", "InvalidResult"),
    ]

    def seen(disclosure: Disclosure, failure: Failure, kind: str = "closed") -> dict[str, Any]:
        """The error of a failed `kind` job, as the workspace surface writes it."""
        job = Job("j", "ws", kind, "t", JobStatus.FAILED, NOW, NOW, NOW, 1, error=failure)
        shown: dict[str, Any] = json.loads(json.dumps(views.workspace_job(job, disclosure), default=json_fields))
        return shown["error"]

    redacting = Disclosure(redact=True, registry=jobs)
    assert seen(PLAIN, handler) == {"message": "password=hunter2", "type": "KeyError"}
    assert seen(redacting, handler) == {"message": "The job failed (KeyError)", "type": "KeyError"}
    assert seen(redacting, handler, "open") == {
        "message": "password=hunter2",
        "type": "KeyError",
        "traceback": handler.traceback,
    }
    assert seen(OPERATOR, handler)["traceback"] == handler.traceback
    for failure in ours:  # jobhouse's own messages say nothing of a handler's data
        assert seen(redacting, failure) == {"message": failure.message, "type": failure.type}


# -- tracebacks kept, and lost attempts ------------------------------------------------------------------


def test_a_long_traceback_keeps_its_end() -> None:
    def down(n: int) -> None:  # two functions in turn: Python does not fold their frames
        if n == 0:
            raise LookupError("the bottom")
        across(n - 1)

    def across(n: int) -> None:
        down(n)

    try:
        down(300)
    except LookupError as exc:
        text = traceback_of(exc)
    assert len(text) == TRACEBACK_MAX
    assert text.startswith("[... the start of this traceback was cut ...]\n")
    assert text.endswith("LookupError: the bottom")
    assert 'raise LookupError("the bottom")' in text[-200:]


@pytest.fixture
def captured() -> Iterator[list[str]]:
    """The lines jobhouse logs in this process while the test runs, as the text format writes them."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(logs.TextFormatter())
    logger = logging.getLogger("jobhouse")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_traceback_is_kept_on_the_attempt_in_either_store(store: Store) -> None:
    jobs = Registry()
    jobs.kind("x", max_attempts=1)(lambda ctx: None)
    queue = Queue(store, jobs)
    job = await queue.enqueue("x", workspace="w")
    (claimed,) = await queue.claim("w1", ["x"], 1, 30)
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\n    raise KeyError('k')\nKeyError: 'k'"
    failure = Failure("'k'", "KeyError", 1, store.clock.now(), trace)
    assert await queue.finish([Outcome(claimed.ref, Verdict.FAILED, 0, (), failure=failure)]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.error is not None
    assert stored.error.traceback == trace
    assert [e.traceback for e in stored.errors] == [trace]


async def test_a_lost_attempt_is_logged_once_by_the_rescuer(
    store: Store, clock: ManualClock, captured: list[str]
) -> None:
    jobs = Registry()
    jobs.kind("x", max_attempts=2)(lambda ctx: None)
    queue = Queue(store, jobs)
    job = await queue.enqueue("x", workspace="w")
    rescuer = Rescuer(queue)
    for attempt in (1, 2):
        assert [j.id for j in await queue.claim(f"worker-{attempt}", ["x"], 1, 30)] == [job.id]
        clock.advance(31)
        assert await rescuer.sweep() == [job.id]
        assert await rescuer.sweep() == []
    lost = [line for line in captured if "was lost" in line]
    assert len(lost) == 2, captured
    assert re.search(
        rf" WARNING jobhouse\.maintenance: attempt 1 of 2 was lost \(Worker worker-1 stopped heartbeating; "
        rf"attempt 1 was lost\); the job will run again job={job.id} kind=x workspace=w attempt=1$",
        lost[0],
    ), lost[0]
    assert re.search(
        r" ERROR jobhouse\.maintenance: attempt 2 of 2 was lost .*; the job failed job=.* attempt=2$", lost[1]
    )
    assert "Traceback" not in "\n".join(lost)


def test_redact_replaces_the_secret_of_anything_shaped_like_a_key() -> None:
    key = "jh_abcdefabcdef_" + "Z" * 43
    assert (
        logs.redact(f"Bearer {key}, again {key}.")
        == "Bearer jh_abcdefabcdef_[redacted], again jh_abcdefabcdef_[redacted]."
    )
    assert logs.redact("cut short jh_abcdefabcdef_Zz9-_") == "cut short jh_abcdefabcdef_[redacted]"
    assert logs.redact("nothing here") == "nothing here"
