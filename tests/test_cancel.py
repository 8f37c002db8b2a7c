"""Cancel: queued jobs end at once; running handlers are interrupted for real."""

from __future__ import annotations

import asyncio

import httpx

from tests.beacon import Beacon
from tests.helpers import assert_error, create, wait_done


async def test_cancelling_a_queued_job_ends_it_at_once(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "collect", competitorId="c-9")

    response = await idle_client.post(f"/api/jobs/{job['id']}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["job"]["id"] == job["id"]
    assert body["job"]["status"] == "failed"
    assert body["job"]["currentStep"] == "Cancelled"
    assert body["job"]["completedAt"] is not None
    run_view = (await idle_client.get(f"/api/v1/run/jobs/{job['id']}")).json()
    assert run_view["status"] == "cancelled"
    assert run_view["error"]["type"] == "cancelled"
    listed = (await idle_client.get("/api/jobs", params={"status": "failed"})).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


async def test_cancelling_twice_succeeds_and_changes_nothing(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "echo")
    first = (await idle_client.post(f"/api/jobs/{job['id']}/cancel")).json()["job"]

    second = await idle_client.post(f"/api/jobs/{job['id']}/cancel")

    assert second.status_code == 200
    assert second.json() == {"success": True, "job": first}


async def test_cancelling_a_finished_job_is_409(client: httpx.AsyncClient) -> None:
    completed = await create(client, "echo")
    failed = await create(client, "boom")
    for job in (completed, failed):
        before = await wait_done(client, job["id"])

        response = await client.post(f"/api/jobs/{job['id']}/cancel")

        message = assert_error(response, 409, "JOB_ALREADY_FINISHED")
        assert "already" in message
        assert (await client.get(f"/api/v1/run/jobs/{job['id']}")).json() == before


async def test_cancel_interrupts_a_running_handler(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']}")

    response = await client.post(f"/api/jobs/{job['id']}/cancel")

    assert response.status_code == 200
    assert response.json()["job"]["status"] == "failed"
    assert response.json()["job"]["currentStep"] == "Cancelled"
    await beacon.seen(f"interrupted {job['id']}")
    # Released now, a handler that had not been interrupted would go on and report "after".
    beacon.release(job["id"])
    final = await wait_done(client, job["id"])
    assert final["status"] == "cancelled"
    assert final["steps"] == [{"id": "hold", "name": "Holding", "status": "failed"}]
    marker = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {marker['id']}")
    beacon.release(marker["id"])
    await beacon.seen(f"after {marker['id']}")
    assert not beacon.has(f"after {job['id']}")


async def test_a_thread_handler_sees_the_cancel(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(client, "hold-sync", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']}")

    await client.post(f"/api/jobs/{job['id']}/cancel")

    await beacon.seen(f"cancelled {job['id']}", timeout=5)
    assert (await wait_done(client, job["id"]))["status"] == "cancelled"


async def test_the_run_surface_can_cancel_too(idle_client: httpx.AsyncClient) -> None:
    job_id = (await idle_client.post("/api/v1/run/search/jobs", json={"app": "firefox"})).json()["job_id"]

    response = await idle_client.post(f"/api/v1/run/jobs/{job_id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_cancelling_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    for job_id in ("550e8400-e29b-41d4-a716-446655440000", "nope"):
        assert_error(await client.post(f"/api/jobs/{job_id}/cancel"), 404, "JOB_NOT_FOUND")
        assert_error(await client.post(f"/api/v1/run/jobs/{job_id}/cancel"), 404, "JOB_NOT_FOUND")


async def test_a_completion_racing_a_cancel_ends_as_the_api_answered(client: httpx.AsyncClient, beacon: Beacon) -> None:
    jobs = [await create(client, "hold", input={"beacon": beacon.address}) for _ in range(12)]
    for job in jobs:
        await beacon.seen(f"started {job['id']}")

    async def race(job_id: str) -> tuple[int, str]:
        beacon.release(job_id)  # the handler returns and its result is written...
        answer = await client.post(f"/api/jobs/{job_id}/cancel")  # ...while the cancel arrives
        final = await wait_done(client, job_id)
        return answer.status_code, final["status"]

    outcomes = await asyncio.gather(*(race(job["id"]) for job in jobs))

    for answer, final in outcomes:
        assert (answer, final) in {(200, "cancelled"), (409, "done")}
