"""Retry and delete over real HTTP, on both stores: `POST /api/jobs/{id}/retry` gives a failed or
cancelled job another run (the same job, its history kept), `DELETE /api/jobs/{id}` removes a
finished one. Every response is checked against the server's /openapi.json (`api_client`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.client import AsyncClient
from tests.beacon import Beacon
from tests.helpers import api_client, assert_error, create, wait_done
from tests.servers import ServerProcess
from tests.sse import Frame, read
from tests.test_cli_client import environ, invoke
from tests.test_webhooks import Receiver, eventually, settled

MISSING = "0197a8c2-0000-7000-8000-000000000000"


async def ended(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """The job (workspace surface) once it has ended."""
    response = await client.get(f"/api/jobs/{job_id}", params={"wait": "done", "timeout_ms": 20000})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["job"]
    assert job["completedAt"] is not None, job
    return job


async def retried(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/jobs/{job_id}/retry")
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/jobs/{job_id}"
    job: dict[str, Any] = response.json()["job"]
    return job


async def cancelled_while_running(client: httpx.AsyncClient, beacon: Beacon) -> dict[str, Any]:
    """A `hold` job cancelled as it ran its first attempt."""
    job = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']} attempt 1")
    assert (await client.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200
    await beacon.seen(f"interrupted {job['id']}")
    return await ended(client, job["id"])


# -- retry -------------------------------------------------------------------------------------------


async def test_a_failed_job_retried_runs_again_and_completes_with_its_history(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = await create(client, "gate", input={"gate": str(gate)})
    first = await ended(client, job["id"])
    assert (first["status"], first["attempt"], first["maxAttempts"]) == ("failed", 1, 1)
    gate.touch()

    again = await retried(client, job["id"])

    assert (again["id"], again["status"], again["attempt"], again["maxAttempts"]) == (job["id"], "queued", 1, 2)
    assert (again["error"], again["result"], again["resultType"]) == (None, None, None)
    assert (again["progress"], again["currentStep"], again["completedAt"]) == (0, None, None)
    assert again["steps"] == [{"id": "pass", "name": "Passing the gate", "status": "pending"}]
    assert again["errors"] == first["errors"]
    assert again["createdAt"] == job["createdAt"]
    done = await ended(client, job["id"])
    assert (done["status"], done["attempt"], done["result"], done["error"]) == ("completed", 2, {"passed_on": 2}, None)
    assert [(e["attempt"], e["type"]) for e in done["errors"]] == [(1, "FileNotFoundError")]
    assert "closed on attempt 1" in done["errors"][0]["message"]
    on_run = await wait_done(client, job["id"])
    assert (on_run["status"], on_run["attempt"]) == ("done", 2)


async def test_a_job_that_fails_again_keeps_the_errors_of_every_round(client: httpx.AsyncClient) -> None:
    job = await create(client, "boom")
    await ended(client, job["id"])

    await retried(client, job["id"])
    second = await ended(client, job["id"])
    third_try = await retried(client, job["id"])
    third = await ended(client, job["id"])

    assert (second["status"], second["attempt"], second["maxAttempts"]) == ("failed", 2, 2)
    assert [e["attempt"] for e in second["errors"]] == [1, 2]
    assert (third_try["attempt"], third_try["maxAttempts"]) == (2, 3)
    assert (third["status"], third["attempt"]) == ("failed", 3)
    assert [(e["attempt"], e["type"]) for e in third["errors"]] == [
        (1, "ValueError"),
        (2, "ValueError"),
        (3, "ValueError"),
    ]
    assert third["error"]["type"] == "ValueError"
    assert third["steps"] == [{"id": "explode", "name": "Exploding", "status": "failed"}]


async def test_a_cancelled_job_retried_runs_again(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await cancelled_while_running(client, beacon)
    assert (job["status"], job["currentStep"], job["attempt"]) == ("failed", "Cancelled", 1)

    again = await retried(client, job["id"])

    assert (again["status"], again["error"], again["currentStep"], again["maxAttempts"]) == ("queued", None, None, 4)
    await beacon.seen(f"started {job['id']} attempt 2")
    beacon.release(job["id"])
    done = await ended(client, job["id"])
    assert (done["status"], done["attempt"], done["errors"]) == ("completed", 2, [])  # a cancel adds no error
    assert done["result"]["attempt"] == 2


async def test_a_job_cancelled_before_it_ran_retried_is_queued_with_a_fresh_budget(
    idle_client: httpx.AsyncClient,
) -> None:
    job = await create(idle_client, "collect")
    await idle_client.post(f"/api/jobs/{job['id']}/cancel")

    again = await retried(idle_client, job["id"])

    assert (again["status"], again["attempt"], again["maxAttempts"], again["currentStep"]) == ("queued", 0, 1, None)
    assert [step["status"] for step in again["steps"]] == ["pending"] * 4
    listed = (await idle_client.get("/api/jobs", params={"status": "queued"})).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


async def test_retrying_a_queued_running_or_completed_job_is_409_and_changes_nothing(
    client: httpx.AsyncClient, idle_client: httpx.AsyncClient, beacon: Beacon
) -> None:
    queued = await create(idle_client, "collect")
    running = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {running['id']}")
    completed = await ended(client, (await create(client, "echo"))["id"])

    for http, job, state in (
        (idle_client, queued, "is queued"),
        (client, running, "is running"),
        (client, completed, "completed"),
    ):
        before = (await http.get(f"/api/jobs/{job['id']}")).json()

        response = await http.post(f"/api/jobs/{job['id']}/retry")

        message = assert_error(response, 409, "JOB_NOT_RETRYABLE")
        assert message == f"Job {job['id']} {state}: only a failed or cancelled job can be retried"
        assert (await http.get(f"/api/jobs/{job['id']}")).json() == before
    beacon.release(running["id"])
    assert (await ended(client, running["id"]))["attempt"] == 1


async def test_concurrent_retries_of_one_job_make_exactly_one_new_attempt(
    client: httpx.AsyncClient, beacon: Beacon
) -> None:
    job = await cancelled_while_running(client, beacon)

    answers = await asyncio.gather(*(client.post(f"/api/jobs/{job['id']}/retry") for _ in range(10)))

    assert sorted(answer.status_code for answer in answers) == [202] + [409] * 9
    for answer in answers:
        if answer.status_code == 409:
            assert_error(answer, 409, "JOB_NOT_RETRYABLE")
    await beacon.seen(f"started {job['id']} attempt 2")
    beacon.release(job["id"])
    done = await ended(client, job["id"])
    assert (done["status"], done["attempt"]) == ("completed", 2)
    assert not beacon.has(f"started {job['id']} attempt 3")


async def test_a_retry_is_seen_by_streams_and_long_polls(client: httpx.AsyncClient, beacon: Beacon, key: str) -> None:
    job = await cancelled_while_running(client, beacon)
    path = f"/api/jobs/{job['id']}/events"
    history = await read(client, path)
    first_end = history.frames[-1]
    assert (first_end.event, first_end.data["currentStep"]) == ("status", "Cancelled")
    after_end = {"Last-Event-ID": str(first_end.seq)}
    assert (await client.get(path, headers=after_end)).status_code == 204  # ended, nothing after: yet

    def its_end(frame: Frame) -> bool:
        return frame.data["id"] == job["id"] and frame.data["status"] == "completed"

    workspace = asyncio.create_task(read(client, "/api/jobs/events", headers=after_end, until=its_end))
    await retried(client, job["id"])
    resumed = asyncio.create_task(read(client, path, headers=after_end))
    waiting = asyncio.create_task(ended(client, job["id"]))
    await beacon.seen(f"started {job['id']} attempt 2")
    beacon.release(job["id"])

    done, stream, seen = await waiting, await resumed, await workspace
    assert (done["status"], done["attempt"]) == ("completed", 2)
    for frames in (stream.frames, [f for f in seen.frames if f.data["id"] == job["id"]]):
        assert [(f.event, f.data["status"]) for f in frames][:2] == [("status", "queued"), ("status", "running")]
        assert (frames[-1].data["status"], frames[-1].data["attempt"]) == ("completed", 2)
    assert stream.ended  # the server closed it after the new end
    # From the start, the history holds both runs, and the stream ends only after the last end.
    whole = await read(client, path)
    assert [f.data["status"] for f in whole.frames if f.event == "status"] == [
        "running", "failed", "queued", "running", "completed",
    ]  # fmt: skip
    assert whole.ended
    # The SDK follows it to that same end.
    async with AsyncClient(str(client.base_url), key) as sdk:
        events = [event async for event in sdk.jobs.events(job["id"])]
    assert [event.id for event in events] == [frame.seq for frame in whole.frames]
    assert events[-1].job.status == "completed"


# -- delete ------------------------------------------------------------------------------------------


async def test_deleting_a_finished_job_removes_it(client: httpx.AsyncClient, beacon: Beacon) -> None:
    completed = await ended(client, (await create(client, "echo", competitorId="gone"))["id"])
    failed = await ended(client, (await create(client, "boom", competitorId="gone"))["id"])
    cancelled = await cancelled_while_running(client, beacon)
    kept = await ended(client, (await create(client, "echo", competitorId="gone"))["id"])

    for job in (completed, failed, cancelled):
        response = await client.delete(f"/api/jobs/{job['id']}")

        assert response.status_code == 204
        assert response.content == b""
        for gone in (
            await client.get(f"/api/jobs/{job['id']}"),
            await client.get(f"/api/v1/run/jobs/{job['id']}"),
            await client.get(f"/api/jobs/{job['id']}/events"),
            await client.get(f"/api/jobs/{job['id']}/deliveries"),
            await client.post(f"/api/jobs/{job['id']}/retry"),
            await client.delete(f"/api/jobs/{job['id']}"),
        ):
            assert_error(gone, 404, "JOB_NOT_FOUND")

    listed = (await client.get("/api/jobs", params={"competitorId": "gone"})).json()["jobs"]
    assert [job["id"] for job in listed] == [kept["id"]]


async def test_deleting_an_active_job_is_409_and_changes_nothing(
    client: httpx.AsyncClient, idle_client: httpx.AsyncClient, beacon: Beacon
) -> None:
    queued = await create(idle_client, "collect")
    running = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {running['id']}")

    for http, job, status in ((idle_client, queued, "queued"), (client, running, "running")):
        before = (await http.get(f"/api/jobs/{job['id']}")).json()

        response = await http.delete(f"/api/jobs/{job['id']}")

        message = assert_error(response, 409, "JOB_NOT_FINISHED")
        assert message == f"Job {job['id']} is {status}: only a finished job can be deleted; cancel it first"
        assert (await http.get(f"/api/jobs/{job['id']}")).json() == before
    beacon.release(running["id"])
    done = await ended(client, running["id"])
    assert (done["status"], done["result"]["attempt"]) == ("completed", 1)  # the handler was never touched


async def test_another_workspaces_job_is_404_to_retry_and_delete(
    client: httpx.AsyncClient, server: ServerProcess
) -> None:
    async with api_client(server.url, {"Authorization": f"Bearer {await server.new_key()}"}) as theirs:
        failed = await ended(theirs, (await create(theirs, "boom"))["id"])

        for response in (
            await client.post(f"/api/jobs/{failed['id']}/retry"),
            await client.delete(f"/api/jobs/{failed['id']}"),
            await client.post(f"/api/jobs/{MISSING}/retry"),
            await client.delete(f"/api/jobs/{MISSING}"),
            await client.post("/api/jobs/not-a-uuid/retry"),
            await client.delete("/api/jobs/not-a-uuid"),
        ):
            assert_error(response, 404, "JOB_NOT_FOUND", "No job exists with the requested identifier")

        assert (await theirs.get(f"/api/jobs/{failed['id']}")).json()["job"] == failed


async def test_a_retry_and_a_delete_at_once_one_wins(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "collect")
    await idle_client.post(f"/api/jobs/{job['id']}/cancel")

    retry, delete = await asyncio.gather(
        idle_client.post(f"/api/jobs/{job['id']}/retry"), idle_client.delete(f"/api/jobs/{job['id']}")
    )

    after = await idle_client.get(f"/api/jobs/{job['id']}")
    if retry.status_code == 202:
        assert_error(delete, 409, "JOB_NOT_FINISHED")
        assert after.json()["job"]["status"] == "queued"
    else:
        assert_error(retry, 404, "JOB_NOT_FOUND")
        assert delete.status_code == 204
        assert_error(after, 404, "JOB_NOT_FOUND")


async def test_an_idempotency_key_that_named_a_deleted_job_makes_a_new_one(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "retry-delete-1"}
    first = await client.post("/api/jobs", json={"type": "echo"}, headers=headers)
    await ended(client, first.json()["job"]["id"])
    assert (await client.delete(f"/api/jobs/{first.json()['job']['id']}")).status_code == 204

    second = await client.post("/api/jobs", json={"type": "echo"}, headers=headers)
    again = await client.post("/api/jobs", json={"type": "echo"}, headers=headers)

    assert second.status_code == again.status_code == 202
    assert "idempotent-replayed" not in second.headers
    assert second.json()["job"]["id"] != first.json()["job"]["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["job"]["id"] == second.json()["job"]["id"]


async def test_the_job_path_names_its_methods(client: httpx.AsyncClient) -> None:
    response = await client.put(f"/api/jobs/{MISSING}")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}


# -- webhooks ----------------------------------------------------------------------------------------


@pytest.fixture
async def hooked_client(hooked: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(hooked.url, {"Authorization": f"Bearer {await hooked.new_key()}"}) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def test_a_retried_job_is_posted_again_when_it_ends_again_and_deleting_it_drops_its_deliveries(
    hooked_client: httpx.AsyncClient, receiver: Receiver, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = await create(hooked_client, "gate", input={"gate": str(gate)}, callbackUrl=receiver.url)
    await ended(hooked_client, job["id"])
    await eventually(lambda: len(receiver.delivered()) == 1, "the first end's callback")
    gate.touch()

    await retried(hooked_client, job["id"])
    await ended(hooked_client, job["id"])
    await eventually(lambda: len(receiver.delivered()) == 2, "the second end's callback")

    posted = sorted((got[0].event, got[0].data["job"]["status"]) for got in receiver.delivered().values())
    assert posted == [("job.completed", "completed"), ("job.failed", "failed")]
    logged = await settled(hooked_client, 2)  # the sender has recorded both answers
    assert sorted((d["jobId"], d["event"], d["status"]) for d in logged) == [
        (job["id"], "job.completed", "delivered"),
        (job["id"], "job.failed", "delivered"),
    ]

    assert (await hooked_client.delete(f"/api/jobs/{job['id']}")).status_code == 204
    everything = (await hooked_client.get("/api/webhooks/deliveries", params={"jobId": job["id"]})).json()
    assert everything["deliveries"] == []


# -- the command line --------------------------------------------------------------------------------


async def test_the_jobs_retry_and_delete_commands(server: ServerProcess, key: str, client: httpx.AsyncClient) -> None:
    env = environ(server, key)
    failed = await ended(client, (await create(client, "boom"))["id"])
    completed = await ended(client, (await create(client, "echo"))["id"])

    code, out, _ = await invoke(env, "jobs", "retry", failed["id"], "--json")
    assert code == 0
    assert (json.loads(out)["id"], json.loads(out)["status"]) == (failed["id"], "queued")
    assert (await ended(client, failed["id"]))["attempt"] == 2
    code, out, _ = await invoke(env, "jobs", "delete", failed["id"])
    assert (code, out) == (0, f"deleted {failed['id']}\n")
    code, out, _ = await invoke(env, "jobs", "delete", completed["id"], "--json")
    assert (code, json.loads(out)) == (0, {"id": completed["id"], "deleted": True})

    echo = await create(client, "echo")  # queued, running or completed: never retried
    for command, job_id, refusal in (
        ("retry", failed["id"], "(404 JOB_NOT_FOUND)"),
        ("delete", failed["id"], "(404 JOB_NOT_FOUND)"),
        ("retry", echo["id"], "(409 JOB_NOT_RETRYABLE)"),
    ):
        code, out, err = await invoke(env, "jobs", command, job_id)
        assert (code, out) == (4, "")
        assert err.startswith("jobhouse: ")
        assert err.rstrip().endswith(refusal)
