"""The workspace surface (/api/jobs) over real HTTP, as seed 004 documents it."""

from __future__ import annotations

import asyncio

import httpx

from tests.beacon import Beacon
from tests.helpers import WORKSPACE_TIME, assert_error, create, is_uuid

SEED_STEPS = [
    ("collect", "Collecting Intel"),
    ("ingest", "Processing Intel"),
    ("build-matrix", "Building Competitor Matrix"),
    ("build-battlecard", "Generating Battle Card"),
]


async def test_create_answers_202_with_a_queued_job(client: httpx.AsyncClient) -> None:
    metadata = {"competitorName": "Competitor Inc", "isFirstRun": True, "productIds": ["product-id-1"]}
    response = await client.post("/api/jobs", json={"type": "echo", "competitorId": "c-1", "metadata": metadata})

    assert response.status_code == 202
    job = response.json()["job"]
    assert is_uuid(job["id"])
    assert job["status"] == "queued"
    assert job["type"] == "echo"
    assert job["competitorId"] == "c-1"
    assert job["metadata"] == metadata
    assert job["displayTitle"] == "Echo"
    assert job["startedAt"] is None
    assert job["completedAt"] is None
    assert response.headers["location"] == f"/api/jobs/{job['id']}"


async def test_a_running_job_reads_like_the_seed(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(
        client,
        "collect",
        competitorId="competitor-id",
        metadata={"competitorName": "Competitor Inc", "isFirstRun": True},
        input={"beacon": beacon.address, "hold_at": "ingest"},
    )
    await beacon.seen(f"at ingest {job['id']}")

    response = await client.get(f"/api/jobs/{job['id']}")

    assert response.status_code == 200
    running = response.json()["job"]
    assert running["workspaceId"]
    assert running["type"] == "collect"
    assert running["displayTitle"] == "Analyzing Competitor"
    assert running["status"] == "running"
    assert running["progress"] == 25
    assert running["currentStep"] == "Processing Intel"
    assert running["steps"] == [
        {"id": "collect", "name": "Collecting Intel", "status": "completed"},
        {"id": "ingest", "name": "Processing Intel", "status": "running"},
        {"id": "build-matrix", "name": "Building Competitor Matrix", "status": "pending"},
        {"id": "build-battlecard", "name": "Generating Battle Card", "status": "pending"},
    ]
    assert WORKSPACE_TIME.match(running["startedAt"])
    assert running["completedAt"] is None
    assert running["metadata"] == {"competitorName": "Competitor Inc", "isFirstRun": True}

    beacon.release(job["id"])
    done = (await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})).json()["job"]
    assert done["status"] == "completed"
    assert done["progress"] == 100
    assert done["currentStep"] is None
    assert all(step["status"] == "completed" for step in done["steps"])
    assert WORKSPACE_TIME.match(done["completedAt"])
    assert done["result"] == {"battlecard": "for competitor-id", "metadata_seen": running["metadata"]}
    assert done["resultType"] == "battlecard"


async def test_list_is_newest_first_and_filters(client: httpx.AsyncClient) -> None:
    first = await create(client, "echo", competitorId="alpha")
    second = await create(client, "echo", competitorId="beta")
    third = await create(client, "boom", competitorId="alpha")
    for job in (first, second, third):
        await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})

    everything = (await client.get("/api/jobs")).json()
    assert [j["id"] for j in everything["jobs"]] == [third["id"], second["id"], first["id"]]
    assert everything["nextCursor"] is None

    async def ids(**params: str) -> list[str]:
        response = await client.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["jobs"]]

    assert await ids(competitorId="alpha") == [third["id"], first["id"]]
    assert await ids(type="echo") == [second["id"], first["id"]]
    assert await ids(status="failed") == [third["id"]]
    assert await ids(status="completed", competitorId="alpha") == [first["id"]]
    assert await ids(status="running") == []
    assert await ids(limit="2") == [third["id"], second["id"]]
    assert await ids(competitorId="nobody") == []


async def test_cursor_pagination_walks_every_job_once(client: httpx.AsyncClient) -> None:
    created = [(await create(client, "echo"))["id"] for _ in range(7)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/jobs", params=params)).json()
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == list(reversed(created))
    assert pages == 3


async def test_a_failed_job_carries_its_error(client: httpx.AsyncClient) -> None:
    job = await create(client, "boom")
    failed = (await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})).json()["job"]

    assert failed["status"] == "failed"
    assert failed["error"] == {"message": "boom: the handler failed", "type": "ValueError"}
    assert failed["steps"] == [{"id": "explode", "name": "Exploding", "status": "failed"}]
    assert failed["attempt"] == 1


async def test_unknown_type_is_400(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/jobs", json={"type": "no-such-kind"}), 400, "UNKNOWN_JOB_TYPE")


async def test_display_title_and_input_are_kept(client: httpx.AsyncClient) -> None:
    job = await create(client, "echo", displayTitle="My echo", input={"x": [1, 2, {"y": "z"}]})
    done = (await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})).json()["job"]

    assert done["displayTitle"] == "My echo"
    assert done["result"] == {"input": {"x": [1, 2, {"y": "z"}]}}


async def test_search_jobs_can_be_created_here_too(client: httpx.AsyncClient) -> None:
    job = await create(client, "search-resolve", input={"app": "firefox"})
    assert job["input"] == {"app": "firefox", "limit": 25}
    bad = await client.post("/api/jobs", json={"type": "search-resolve", "input": {"os": "linux"}})
    assert_error(bad, 400, "INVALID_SELECTOR", "Invalid selector: app is required")


async def test_many_concurrent_creates_are_all_listed(client: httpx.AsyncClient) -> None:
    jobs = await asyncio.gather(*(create(client, "echo", input={"n": n}) for n in range(40)))
    listed = (await client.get("/api/jobs", params={"limit": "500"})).json()["jobs"]
    assert sorted(j["id"] for j in listed) == sorted(j["id"] for j in jobs)
