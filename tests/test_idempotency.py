"""Idempotency-Key and the per-workspace quota, over HTTP on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import assert_error
from tests.servers import Machine, ServerProcess, running_server


async def test_a_retried_create_returns_the_first_job(client: httpx.AsyncClient) -> None:
    body = {"type": "echo", "competitorId": "c-1", "metadata": {"n": 1}}
    headers = {"Idempotency-Key": "create-c-1"}

    first = await client.post("/api/jobs", json=body, headers=headers)
    again = await client.post("/api/jobs", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert len((await client.get("/api/jobs")).json()["jobs"]) == 1


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    await client.post("/api/jobs", json={"type": "echo", "metadata": {"n": 1}}, headers=headers)

    response = await client.post("/api/jobs", json={"type": "echo", "metadata": {"n": 2}}, headers=headers)

    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert len((await client.get("/api/jobs")).json()["jobs"]) == 1


async def test_racing_duplicates_create_one_job(client: httpx.AsyncClient) -> None:
    body = {"app": "firefox", "kind": "gui"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/run/search/jobs", json=body, headers={"Idempotency-Key": "race"}) for _ in range(25))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert len((await client.get("/api/jobs")).json()["jobs"]) == 1


async def test_keys_belong_to_their_workspace(server: ServerProcess, client: httpx.AsyncClient) -> None:
    mine = await client.post("/api/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "shared"})
    other_key = await server.new_key()
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": other_key}) as other:
        theirs = await other.post("/api/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "shared"})
    assert theirs.status_code == 202
    assert theirs.json()["job"]["id"] != mine.json()["job"]["id"]


@pytest.mark.parametrize("idempotency_key", ["", "x" * 256, "with space", "ключ"])
async def test_a_malformed_key_is_400(client: httpx.AsyncClient, idempotency_key: str) -> None:
    header = idempotency_key.encode()
    response = await client.post("/api/jobs", json={"type": "echo"}, headers={"Idempotency-Key": header})
    assert "Idempotency-Key" in assert_error(response, 400, "INVALID_REQUEST")
    assert (await client.get("/api/jobs")).json()["jobs"] == []


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    db: Path = tmp_path_factory.mktemp("quota") / "jobhouse.db"
    with running_server(db, machine, args=["--no-workers"], env={"JOBHOUSE_MAX_QUEUED": "3"}) as process:
        yield process


async def test_a_workspace_over_its_quota_gets_429(quota_server: ServerProcess) -> None:
    key = await quota_server.new_key()
    async with httpx.AsyncClient(base_url=quota_server.url, headers={"X-API-Key": key}) as client:
        made = [(await client.post("/api/jobs", json={"type": "echo"})).json()["job"]["id"] for _ in range(3)]

        refused = await client.post("/api/jobs", json={"type": "echo"})
        search = await client.post("/api/v1/run/search/jobs", json={"app": "x"})

        assert_error(refused, 429, "QUOTA_EXCEEDED")
        assert int(refused.headers["retry-after"]) > 0
        assert_error(search, 429, "QUOTA_EXCEEDED")
        assert len((await client.get("/api/jobs")).json()["jobs"]) == 3
        await client.post(f"/api/jobs/{made[0]}/cancel")
        assert (await client.post("/api/jobs", json={"type": "echo"})).status_code == 202
