"""The fault suite: real worker processes killed, frozen and stopped, on every backend.

Every run of the `record` kind is written to a side table (job, attempt, pid, start, end), so the
tests can check what the guarantees promise: every job ends, none is lost, and a job runs more
than once only when a fault interrupted an earlier run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from jobhouse.queue import Queue
from jobhouse.store import open_store
from tests import kinds
from tests.beacon import Beacon
from tests.conftest import BACKENDS, backend_url
from tests.helpers import create
from tests.servers import Machine, ServerProcess, running_server, start_worker
from tests.sidetable import SideTable

pytestmark = pytest.mark.slow

#: Short leases, so that dead workers' jobs come back quickly; not so short that a live worker held
#: up for a moment beside the rest of the suite loses the jobs it is running.
LEASE = 6
FAULT_SETTINGS = {
    "JOBHOUSE_LEASE": str(LEASE),
    "JOBHOUSE_HEARTBEAT": "0.3",
    "JOBHOUSE_RESCUE_INTERVAL": "0.2",
    "JOBHOUSE_POLL_INTERVAL": "0.2",
    "JOBHOUSE_SHUTDOWN_GRACE": "2",
}


@dataclass
class Cluster:
    """An API server without workers, worker processes the test controls, and a side table."""

    database: str
    server: ServerProcess
    client: httpx.AsyncClient
    log: Path
    worker_log: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: dict[int, float] = field(default_factory=dict)
    logs: dict[int, Path] = field(default_factory=dict)

    def add_worker(self, **env: str) -> subprocess.Popen[bytes]:
        log = self.worker_log.with_name(f"worker-{len(self.workers)}.log")
        worker = start_worker(self.database, {**FAULT_SETTINGS, "JOBHOUSE_LOG_LEVEL": "info", **env}, log)
        self.workers.append(worker)
        self.logs[worker.pid] = log
        return worker

    def started(self, worker: subprocess.Popen[bytes]) -> bool:
        """Whether `worker` has said it runs (it claims jobs from then on)."""
        return "worker running" in self.logs[worker.pid].read_text()

    def worker_output(self) -> str:
        return "".join(log.read_text() for log in self.logs.values())

    def kill(self, worker: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        worker.send_signal(sig)
        worker.wait()
        self.killed[worker.pid] = time.time()  # the moment it was certainly dead

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    async def job(self, job_id: str, wait_ms: int = 0) -> dict[str, object]:
        response = await self.client.get(f"/api/jobs/{job_id}", params={"wait": "done", "timeout_ms": wait_ms})
        assert response.status_code == 200, response.text
        job: dict[str, object] = response.json()["job"]
        return job


@pytest.fixture(params=BACKENDS)
async def cluster(request: pytest.FixtureRequest, tmp_path: Path, machine: Machine) -> AsyncIterator[Cluster]:
    database = backend_url(request, request.param, tmp_path / "faults.db")
    with running_server(database, machine, args=["--no-workers"], env=FAULT_SETTINGS) as server:
        key = await server.new_key("faults")
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as client:
            cluster = Cluster(database, server, client, tmp_path / "runs.log", tmp_path / "workers.log")
            cluster.log.touch()
            try:
                yield cluster
            finally:
                cluster.stop_all()


def count_by_status(database: str) -> dict[str, int]:
    sql = "SELECT status, count(*) FROM {table} GROUP BY status"
    if database.startswith("sqlite:///"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as conn:
            return dict(conn.execute(sql.format(table="jobs")).fetchall())
    conninfo, schema = database.split("?schema=")
    with psycopg.connect(conninfo) as conn:
        return dict(conn.execute(sql.format(table=f"{schema}.jobs")).fetchall())  # type: ignore[arg-type]


@pytest.mark.timeout(240)  # its own deadline is 150 s; a loaded CI machine needs the room
async def test_thousands_of_jobs_survive_workers_killed_at_random(cluster: Cluster) -> None:
    rng = random.Random(20261124)
    store = open_store(cluster.database)
    queue = Queue(store, kinds.jobs)
    await store.open()
    try:
        for _ in range(2):
            batch = [
                queue.new_job(
                    "record", workspace="faults", input={"log": str(cluster.log), "seconds": rng.random() / 100}
                )
                for _ in range(1000)
            ]
            await queue.enqueue_many(batch)
    finally:
        await store.close()
    # A longer lease still, for the replacements that start while the rest of the suite runs.
    worker = {"JOBHOUSE_CONCURRENCY": "16", "JOBHOUSE_LEASE": "30"}
    for _ in range(3):
        cluster.add_worker(**worker)

    # Ten kills, each at a random point of the run (paced by the jobs done, not by the clock: a
    # loaded machine gets the same faults, not more of them), each of a random worker that is up.
    kill_at = sorted(rng.sample(range(50, 1_950), 10))
    deadline = time.monotonic() + 150
    while (done := count_by_status(cluster.database).get("completed", 0)) < 2_000 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # a poll with a deadline
        while kill_at and done >= kill_at[0]:
            running = [w for w in cluster.workers if w.poll() is None and cluster.started(w)]
            if not running:
                break  # the replacements are still starting: the next look kills
            kill_at.pop(0)
            cluster.kill(rng.choice(running))
            cluster.add_worker(**worker)

    assert count_by_status(cluster.database) == {"completed": 2_000}
    table = SideTable.read(cluster.log)
    assert len(table.runs) == 2_000
    assert all(runs[-1].ended is not None for runs in table.runs.values())
    assert len(cluster.killed) >= 5
    for run in table.extra_runs():
        # Ran more than once only because this run's process was killed while the job was in flight.
        assert run.pid in cluster.killed, run
        assert run.started <= cluster.killed[run.pid], run


async def test_a_worker_killed_a_second_into_a_long_job(cluster: Cluster, beacon: Beacon) -> None:
    first = cluster.add_worker()
    job = await create(cluster.client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']} attempt 1 pid {first.pid}")
    await asyncio.sleep(1)  # the fault happens one second into the job

    cluster.kill(first)
    killed_at = time.monotonic()
    second = cluster.add_worker()
    await beacon.seen(f"started {job['id']} attempt 2 pid {second.pid}", timeout=20)

    assert time.monotonic() - killed_at < LEASE + 0.2 + 8  # lease + sweep, and a worker's start-up on a busy machine
    beacon.release(job["id"])
    final = await cluster.job(job["id"], 20000)
    errors = [(e["attempt"], e["type"]) for e in final["errors"]]  # type: ignore[index, union-attr]
    assert (final["status"], final["attempt"], errors) == ("completed", 2, [(1, "lost")]), (
        final["errors"],
        cluster.worker_output()[-4000:],
    )


async def test_a_frozen_worker_cannot_write_after_losing_its_lease(cluster: Cluster, beacon: Beacon) -> None:
    frozen = cluster.add_worker()
    job = await create(cluster.client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']} attempt 1 pid {frozen.pid}")
    frozen.send_signal(signal.SIGSTOP)

    other = cluster.add_worker()
    await beacon.seen(f"started {job['id']} attempt 2 pid {other.pid}", timeout=20)
    beacon.release(job["id"])
    done = await cluster.job(job["id"], 20000)
    assert done["status"] == "completed"
    assert done["result"] == {"released": True, "attempt": 2, "pid": other.pid}

    frozen.send_signal(signal.SIGCONT)
    frozen.terminate()  # whatever the stale worker was going to write, it has written once it exits
    assert await asyncio.to_thread(frozen.wait, 15) == 0

    assert await cluster.job(job["id"]) == done


async def test_a_handler_that_kills_its_process_fails_after_its_attempts(cluster: Cluster) -> None:
    for _ in range(2):
        cluster.add_worker()

    async def supervise() -> None:
        """What a process manager does: a worker that died is started again."""
        while True:
            for worker in list(cluster.workers):
                if worker.poll() is not None and worker.pid not in cluster.killed:
                    cluster.killed[worker.pid] = time.time()
                    cluster.add_worker()
            await asyncio.sleep(0.1)

    supervisor = asyncio.create_task(supervise())
    try:
        doomed = await create(cluster.client, "suicide")
        others = [await create(cluster.client, "record", input={"log": str(cluster.log)}) for _ in range(30)]
        final = await cluster.job(doomed["id"], 60000)
        finished = [await cluster.job(job["id"], 30000) for job in others]
    finally:
        supervisor.cancel()

    assert final["status"] == "failed"
    assert final["attempt"] == 3
    assert [e["type"] for e in final["errors"]] == ["lost", "lost", "lost"]  # type: ignore[union-attr]
    assert {job["status"] for job in finished} == {"completed"}
    assert len(cluster.killed) >= 3


async def test_sigterm_lets_short_jobs_finish_and_hands_long_ones_back(cluster: Cluster, beacon: Beacon) -> None:
    worker = cluster.add_worker(JOBHOUSE_LEASE="60", JOBHOUSE_SHUTDOWN_GRACE="2")
    jobs = [await create(cluster.client, "hold", input={"beacon": beacon.address}) for _ in range(4)]
    short, long = jobs[:2], jobs[2:]
    for job in jobs:
        await beacon.seen(f"started {job['id']}")

    worker.terminate()
    for job in short:
        beacon.release(job["id"])
    started = time.monotonic()
    assert await asyncio.to_thread(worker.wait, 15) == 0  # the beacon keeps answering meanwhile
    assert time.monotonic() - started < 2 + 2  # the grace period, and the hand-back

    for job in short:
        assert (await cluster.job(job["id"]))["status"] == "completed"
    for job in long:
        back = await cluster.job(job["id"])
        assert back["status"] == "queued"  # at once, not after the 60 s lease
    replacement = cluster.add_worker()
    for job in long:
        await beacon.seen(f"started {job['id']} attempt 2 pid {replacement.pid}", timeout=20)
        beacon.release(job["id"])
        assert (await cluster.job(job["id"], 20000))["status"] == "completed"


async def test_a_second_signal_stops_a_worker_at_once(cluster: Cluster, beacon: Beacon) -> None:
    worker = cluster.add_worker(JOBHOUSE_LEASE="60", JOBHOUSE_SHUTDOWN_GRACE="30")
    jobs = [await create(cluster.client, "hold", input={"beacon": beacon.address}) for _ in range(3)]
    for job in jobs:
        await beacon.seen(f"started {job['id']}")

    worker.terminate()
    await asyncio.sleep(0.2)  # two distinct signals, as an impatient operator sends them
    started = time.monotonic()
    worker.terminate()
    await asyncio.to_thread(worker.wait, 15)

    assert time.monotonic() - started < 3  # not the 30 s grace period
    for job in jobs:
        assert (await cluster.job(job["id"]))["status"] == "queued"


@pytest.fixture
def api_node(tmp_path: Path, machine: Machine) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "api.db", machine, args=["--no-workers"]) as server:
        yield server


async def test_an_api_nodes_shutdown_releases_its_long_polls_within_a_second(api_node: ServerProcess) -> None:
    key = await api_node.new_key()
    async with httpx.AsyncClient(base_url=api_node.url, headers={"X-API-Key": key}, timeout=60) as client:
        job = await create(client, "echo")
        polls = [
            asyncio.create_task(client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 60000}))
            for _ in range(5)
        ]
        while (await client.get("/healthz")).json()["long_polls"] < 5:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.01)  # until the server holds all five

        api_node.signal(signal.SIGTERM)
        started = time.monotonic()
        answers = await asyncio.gather(*polls)

    assert time.monotonic() - started < 1.0
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["job"]["status"] for r in answers} == {"queued"}
