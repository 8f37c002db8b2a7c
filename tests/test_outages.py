"""Store outages: the API answers 503 `Job queue unavailable` (never a 500, never a hang), workers
back off, and everything resumes by itself once the store is back."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests import pg
from tests.helpers import assert_error
from tests.servers import Machine, running_server
from tests.sidetable import SideTable

OUTAGE_SETTINGS = {"JOBHOUSE_STORE_TIMEOUT": "1", "JOBHOUSE_LEASE": "3", "JOBHOUSE_HEARTBEAT": "0.5"}


def assert_unavailable(response: httpx.Response) -> None:
    assert_error(response, 503, "STORE_UNAVAILABLE", "Job queue unavailable")
    assert int(response.headers["retry-after"]) > 0


async def test_a_sqlite_write_lock_held_elsewhere_is_503_then_recovers(tmp_path: Path, machine: Machine) -> None:
    db = tmp_path / "locked.db"
    with running_server(db, machine, args=["--no-workers"], env=OUTAGE_SETTINGS) as server:
        key = await server.new_key()
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as client:
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                started = time.monotonic()
                refused = await client.post("/api/jobs", json={"type": "echo"})
                assert time.monotonic() - started < 5
                assert_unavailable(refused)
                assert (await client.get("/api/jobs")).status_code == 200  # reads go on
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            assert (await client.post("/api/jobs", json={"type": "echo"})).status_code == 202
            assert len((await client.get("/api/jobs")).json()["jobs"]) == 1


async def poll_until_done(client: httpx.AsyncClient, ids: list[str], deadline: float) -> dict[str, str]:
    """Status of every job once all have ended, retrying through 503s; no answer may be a 500."""
    statuses: dict[str, str] = {}
    while len(statuses) < len(ids) and time.monotonic() < deadline:
        for job_id in [i for i in ids if i not in statuses]:
            response = await client.get(f"/api/jobs/{job_id}", params={"wait": "done", "timeout_ms": 2000})
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200 and response.json()["job"]["status"] in {"completed", "failed"}:
                statuses[job_id] = response.json()["job"]["status"]
    return statuses


async def create_all(client: httpx.AsyncClient, count: int, log: Path, seconds: float) -> list[str]:
    ids = []
    for _ in range(count):
        response = await client.post(
            "/api/jobs", json={"type": "record", "input": {"log": str(log), "seconds": seconds}}
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["job"]["id"])
    return ids


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_connections_killed_mid_run_cost_nothing(
    pg_database: str, machine: Machine, tmp_path: Path
) -> None:
    schema = pg.new_schema()
    name = f"jobhouse-{secrets.token_hex(4)}"
    url = pg.with_schema(pg_database, schema) + f"&application_name={name}"
    log = tmp_path / "runs.log"
    try:
        with running_server(url, machine, env=OUTAGE_SETTINGS) as server:
            key = await server.new_key()
            async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as client:
                ids = await create_all(client, 150, log, 0.02)
                for _ in range(3):
                    with psycopg.connect(pg_database, autocommit=True) as admin:
                        killed = admin.execute(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                            (name,),
                        ).fetchone()
                    assert killed is not None
                    assert killed[0] >= 1
                    response = await client.get("/api/jobs", params={"limit": "1"})
                    assert response.status_code in (200, 503), response.text
                    await asyncio.sleep(0.3)  # let the workers run into the dead connections

                statuses = await poll_until_done(client, ids, time.monotonic() + 60)
        assert statuses == dict.fromkeys(ids, "completed")
        assert set(SideTable.read(log).runs) == set(ids)
    finally:
        pg.drop_schema(pg_database, schema)


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_stopped_and_started_mid_run_loses_nothing(machine: Machine, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    with pg.OwnServer() as database, running_server(database.url, machine, env=OUTAGE_SETTINGS) as server:
        key = await server.new_key()
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as client:
            ids = await create_all(client, 100, log, 0.05)

            database.stop()
            try:
                for request in (client.get("/api/jobs"), client.post("/api/jobs", json={"type": "echo"})):
                    started = time.monotonic()
                    assert_unavailable(await request)
                    assert time.monotonic() - started < 5
                assert (await client.get("/readyz")).status_code == 503
            finally:
                database.start()

            statuses = await poll_until_done(client, ids, time.monotonic() + 90)
            assert (await client.get("/readyz")).status_code == 200
    assert statuses == dict.fromkeys(ids, "completed")
    table = SideTable.read(log)
    assert set(table.runs) == set(ids)
    assert all(runs[-1].ended is not None for runs in table.runs.values())
