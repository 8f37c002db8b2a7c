"""Keys and workspaces: every /api route needs a key; other workspaces' jobs do not exist."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from jobhouse.errors import NotAuthenticated
from jobhouse.keys import check_key, create_key
from jobhouse.store import open_store
from jobhouse.store.sqlite import SqliteStore
from tests.helpers import API_ROUTES, assert_error, create
from tests.servers import ServerProcess


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer jh_000000000000_" + "A" * 43},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ""},
    ],
)
async def test_every_route_needs_a_valid_key(
    server: ServerProcess, method: str, path: str, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.request(method, path, headers=headers, json={"app": "x", "type": "echo"})
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_both_headers_work(server: ServerProcess, key: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        bearer = await http.get("/api/jobs", headers={"Authorization": f"Bearer {key}"})
        api_key = await http.get("/api/jobs", headers={"X-API-Key": key})
    assert bearer.status_code == api_key.status_code == 200


async def test_another_workspace_sees_nothing_of_ours(server: ServerProcess, client: httpx.AsyncClient) -> None:
    ours = await create(client, "echo", competitorId="shared-competitor")
    search = (await client.post("/api/v1/run/search/jobs", json={"app": "firefox"})).json()
    other_key = await server.new_key()

    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": other_key}) as other:
        for job_id in (ours["id"], search["job_id"]):
            for response in (
                await other.get(f"/api/jobs/{job_id}"),
                await other.get(f"/api/jobs/{job_id}", params={"wait": "done", "timeout_ms": "100"}),
                await other.get(f"/api/v1/run/jobs/{job_id}"),
                await other.post(f"/api/jobs/{job_id}/cancel"),
                await other.post(f"/api/v1/run/jobs/{job_id}/cancel"),
            ):
                assert_error(response, 404, "JOB_NOT_FOUND")
        assert (await other.get("/api/jobs")).json()["jobs"] == []
        assert (await other.get("/api/jobs", params={"competitorId": "shared-competitor"})).json()["jobs"] == []

    assert (await client.get(f"/api/jobs/{ours['id']}")).json()["job"]["status"] != "failed"


async def test_a_revoked_key_stops_working(server: ServerProcess) -> None:
    key = await server.new_key()
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as http:
        assert (await http.get("/api/jobs")).status_code == 200
        store = open_store(server.database)
        await store.open()
        try:
            assert await store.keys.revoke(key.split("_")[1])
        finally:
            await store.close()
        response = await http.get("/api/jobs")
        # SQLite: at once. PostgreSQL: as soon as the revocation's NOTIFY reaches the server.
        deadline = time.monotonic() + (0 if server.database.startswith("sqlite") else 2)
        while response.status_code == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            response = await http.get("/api/jobs")
        assert_error(response, 401, "UNAUTHORIZED")


async def test_sqlite_key_lookups_see_another_processs_revocation_at_once(tmp_path: Path) -> None:
    """The API's key lookups on SQLite read on the event loop's thread (`Engine.read_here`), still on
    every request: another process's revocation is refused by the very next check."""
    here, there = SqliteStore(str(tmp_path / "k.db")), SqliteStore(str(tmp_path / "k.db"))
    await here.open()
    await there.open()
    try:
        key, record = await create_key(there, "ws")
        assert await check_key(here.keys, key) == "ws"
        assert await check_key(here.keys, key) == "ws"
        assert await there.keys.revoke(record.id)
        with pytest.raises(NotAuthenticated):
            await check_key(here.keys, key)
        assert await here.keys.get("nosuchkey000") is None
    finally:
        await here.close()
        await there.close()
