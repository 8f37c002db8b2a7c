"""Long-polling (`wait=done`): answers the moment a job ends, or its current state at the timeout."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.beacon import Beacon
from tests.helpers import assert_error, create


async def test_a_long_poll_answers_within_50ms_of_the_job_ending(client: httpx.AsyncClient, beacon: Beacon) -> None:
    """Three long-polls: the best within 50 ms of the end (the mechanism), none slower than a
    generous bound (a loaded CI machine can stall any process for a moment)."""
    delays = []
    for _ in range(3):
        job = await create(client, "hold", input={"beacon": beacon.address})
        poll = asyncio.create_task(client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 30000}))
        await beacon.seen(f"started {job['id']}")
        assert not poll.done()

        beacon.release(job["id"])
        response = await poll
        answered = datetime.now(UTC)

        done = response.json()["job"]
        assert done["status"] == "completed"
        ended = datetime.fromisoformat(done["completedAt"].replace("Z", "+00:00"))
        delays.append((answered - ended).total_seconds())
    # completedAt is truncated to the millisecond, hence the extra millisecond.
    assert min(delays) < 0.051, delays
    assert max(delays) < 0.5, delays


async def test_the_run_surface_long_polls_too(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(client, "hold", input={"beacon": beacon.address})
    poll = asyncio.create_task(
        client.get(f"/api/v1/run/jobs/{job['id']}", params={"wait": "done", "timeout_ms": "30000"})
    )
    await beacon.seen(f"started {job['id']}")
    beacon.release(job["id"])

    body = (await poll).json()
    assert body["status"] == "done"
    assert body["result"]["released"] is True


async def test_at_the_timeout_it_answers_the_current_state(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "echo")
    started = time.monotonic()

    response = await idle_client.get(f"/api/v1/run/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 300})

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.3 <= elapsed < 10


async def test_without_wait_or_with_zero_timeout_it_answers_at_once(idle_client: httpx.AsyncClient) -> None:
    job = await create(idle_client, "echo")
    for params in ({}, {"wait": "done"}, {"wait": "done", "timeout_ms": "0"}, {"timeout_ms": "60000"}):
        started = time.monotonic()
        response = await idle_client.get(f"/api/jobs/{job['id']}", params=params)
        assert response.status_code == 200
        assert response.json()["job"]["status"] == "queued"
        assert time.monotonic() - started < 5


async def test_a_long_poll_on_a_job_cancelled_meanwhile_answers_cancelled(
    idle_client: httpx.AsyncClient,
) -> None:
    # The idle server's refresher runs once a minute and the long-poll would wait two: only the
    # hub's wake-up on the cancel can answer it within the 10 s this test allows.
    job = await create(idle_client, "echo")
    poll = asyncio.create_task(
        idle_client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 120000}, timeout=130)
    )
    while (await idle_client.get("/healthz")).json()["long_polls"] < 1:  # the poll waits on the hub now
        assert not poll.done(), poll.result().text
    cancelled = await idle_client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200

    answered = (await asyncio.wait_for(poll, 10)).json()["job"]
    assert answered["status"] == "failed"
    assert answered["currentStep"] == "Cancelled"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"wait": "yes"}, "wait"),
        ({"wait": ""}, "wait"),
        ({"wait": "DONE"}, "wait"),
        ({"wait": "done", "timeout_ms": "-1"}, "timeout_ms"),
        ({"wait": "done", "timeout_ms": "120001"}, "timeout_ms"),
        ({"wait": "done", "timeout_ms": "abc"}, "timeout_ms"),
        ({"wait": "done", "timeout_ms": "1.5"}, "timeout_ms"),
        ({"wait": "done", "timeout_ms": ""}, "timeout_ms"),
        ({"wait": "done", "timeout_ms": "99999999999999999999"}, "timeout_ms"),
    ],
)
async def test_bad_wait_parameters_are_400_naming_the_parameter(
    idle_client: httpx.AsyncClient, params: dict[str, str], name: str
) -> None:
    job = await create(idle_client, "echo")
    for path in (f"/api/v1/run/jobs/{job['id']}", f"/api/jobs/{job['id']}"):
        message = assert_error(await idle_client.get(path, params=params), 400, "INVALID_REQUEST")
        assert name in message
