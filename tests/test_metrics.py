"""``/metrics`` and ``/readyz`` over real HTTP, against real servers of their own on each store.

Each test runs jobs through a server of its own (so that nothing else counts in its figures),
scrapes ``/metrics``, parses it as Prometheus does, and holds it to what the store holds, read
independently (`stored`): jobs created, ended by status, lost to the rescuer, the store's gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobhouse.store import open_store
from jobhouse.store.base import Cursor, JobQuery
from jobhouse.store.migrations import migrations
from jobhouse.store.postgres import parse_url
from tests import pg
from tests.beacon import Beacon
from tests.helpers import api_client, assert_error, create, wait_done
from tests.servers import REPO, Machine, ServerProcess, free_port, running_server, start_worker

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WORKSPACE = "metrics-ws"


class Scrape:
    """One parsed scrape: every sample's value by its name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 if there are none)."""
        return sum(value for have, value in self.samples.get(name, []) if labels.items() <= have.items())

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """The samples of `name` by the values of the labels `keys`, zeros left out."""
        found: Counter[tuple[str, ...]] = Counter()
        for labels, value in self.samples.get(name, []):
            if value:
                found[tuple(labels[key] for key in keys)] += value
        return dict(found)


async def scrape(url: str, headers: dict[str, str] | None = None) -> Scrape:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{url}/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(response.text)


async def stored(database: str, workspace: str = WORKSPACE) -> Counter[tuple[str, str]]:
    """How many jobs of each (kind, status) the workspace holds, read page by page from the store."""
    store = open_store(database)
    await store.open(migrate=False)
    found: Counter[tuple[str, str]] = Counter()
    try:
        after: Cursor | None = None
        while True:
            page = await store.list_jobs(JobQuery(workspace, limit=500, after=after))
            found.update((job.kind, job.status.value) for job in page.jobs)
            if page.next is None:
                return found
            after = page.next
    finally:
        await store.close()


def by_kind(counts: Counter[tuple[str, str]], *statuses: str) -> dict[tuple[str, ...], float]:
    """`counts` by kind alone (all statuses, or only `statuses`), as `Scrape.by` gives a counter."""
    found: Counter[tuple[str, ...]] = Counter()
    for (kind, status), count in counts.items():
        if not statuses or status in statuses:
            found[(kind,)] += count
    return dict(found)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of this test's own on each backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_schema_url")
        return url
    return f"sqlite:///{tmp_path / 'jobhouse.db'}"


# -- counts against the store ------------------------------------------------------------------


async def test_a_scrape_counts_exactly_what_the_store_holds(
    database: str, machine: Machine, beacon: Beacon, tmp_path: Path
) -> None:
    """Completed, failed, cancelled and lost jobs, each counted once by kind, as the store has them."""
    env = {"JOBHOUSE_CONCURRENCY": "1", "JOBHOUSE_RESCUE_INTERVAL": "0.2"}
    with running_server(database, machine, env=env) as server:
        headers = {"Authorization": f"Bearer {await server.new_key(WORKSPACE)}"}
        async with api_client(server.url, headers) as client:
            # The one slot is busy, and no job has ended yet (so none is claimed ahead): a job
            # created now stays queued, for a worker of the test's own to claim and vanish with.
            held = await create(client, "hold", input={"beacon": beacon.address})
            await beacon.seen(f"started {held['id']}")
            orphan = await create(client, "record", input={"log": str(tmp_path / "runs.log")})
            waiting = await scrape(server.url)
            assert await stored(server.database) == {("hold", "running"): 1, ("record", "queued"): 1}
            assert waiting.by("jobhouse_jobs_running", "kind", "workspace") == {("hold", WORKSPACE): 1}
            assert waiting.by("jobhouse_queue_depth", "kind", "workspace") == {("record", WORKSPACE): 1}
            ghost = open_store(server.database)
            await ghost.open(migrate=False)
            try:
                claimed = await ghost.claim("ghost-worker", {"record"}, 1, lease=0.2)
            finally:
                await ghost.close()
            assert [job.id for job in claimed] == [orphan["id"]]
            cancelled = await client.post(f"/api/jobs/{held['id']}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert (await wait_done(client, orphan["id"]))["status"] == "done"  # rescued, then run here
            for kind, count in (("echo", 3), ("boom", 2)):
                for _ in range(count):
                    await wait_done(client, (await create(client, kind))["id"])
            assert (await client.get(f"/api/jobs/{orphan['id']}")).status_code == 200
            assert (await client.get("/api/jobs/not-a-route/at-all")).status_code == 404

        figures = await scrape(server.url)
        counts = await stored(server.database)

    assert counts == {
        ("hold", "cancelled"): 1,
        ("record", "completed"): 1,
        ("echo", "completed"): 3,
        ("boom", "failed"): 2,
    }
    assert figures.by("jobhouse_jobs_created_total", "kind") == by_kind(counts)
    assert figures.by("jobhouse_jobs_ended_total", "kind", "status") == dict(counts)
    assert figures.by("jobhouse_jobs_lost_total", "kind") == {("record",): 1}
    assert figures.by("jobhouse_jobs_retried_total", "kind") == {}
    started = {("hold",): 1, ("record",): 1, ("echo",): 3, ("boom",): 2}  # the ghost's attempt never ran here
    assert figures.by("jobhouse_attempts_started_total", "kind") == started
    assert figures.by("jobhouse_job_wait_seconds_count", "kind") == started
    assert figures.by("jobhouse_job_run_seconds_count", "kind") == started

    # The store's gauges: nothing queued or running now; the queues seen before stay, at 0.
    for gauge in ("jobhouse_queue_depth", "jobhouse_jobs_running", "jobhouse_queue_oldest_age_seconds"):
        assert {(labels["kind"], value) for labels, value in figures.samples[gauge]} == {("hold", 0), ("record", 0)}
    assert figures.total("jobhouse_store_up") == 1

    # API latency by route template, never by the path as sent; no route is "other".
    assert figures.total("jobhouse_http_request_duration_seconds_count", route="/api/jobs", method="POST") == 7
    assert figures.total("jobhouse_http_request_duration_seconds_count", route="/api/jobs/{id}", status="2xx") >= 1
    assert figures.total("jobhouse_http_request_duration_seconds_count", route="/api/jobs/{id}/cancel") == 1
    assert figures.total("jobhouse_http_request_duration_seconds_count", route="other", status="4xx") == 1
    assert orphan["id"] not in figures.text
    assert figures.total("jobhouse_store_seconds_count", operation="create") == 7
    assert figures.total("jobhouse_store_errors_total") == 0
    backend = "postgres" if database.startswith("postgresql") else "sqlite"
    assert figures.by("jobhouse_build_info", "store") == {(backend,): 1}
    assert figures.types["jobhouse_jobs_created"] == "counter"
    assert figures.types["jobhouse_job_wait_seconds"] == "histogram"
    assert figures.types["jobhouse_queue_depth"] == "gauge"
    assert [name for name in figures.samples if name.endswith("_created")] == []


async def test_queued_jobs_show_as_queue_depth_and_age(idle_server: ServerProcess) -> None:
    """A server without workers: what waits is counted by kind and workspace, with its age."""
    teams = {f"team-a-{os.urandom(3).hex()}": 3, f"team-b-{os.urandom(3).hex()}": 1}
    before = (await scrape(idle_server.url)).total("jobhouse_jobs_created_total", kind="echo")
    for workspace, count in teams.items():
        headers = {"Authorization": f"Bearer {await idle_server.new_key(workspace)}"}
        async with api_client(idle_server.url, headers) as client:
            for _ in range(count):
                await create(client, "echo")
    figures = await scrape(idle_server.url)
    mine = {key: n for key, n in figures.by("jobhouse_queue_depth", "kind", "workspace").items() if key[1] in teams}
    assert mine == {("echo", workspace): count for workspace, count in teams.items()}
    assert not [key for key in figures.by("jobhouse_jobs_running", "kind", "workspace") if key[1] in teams]
    first = next(iter(teams))
    age = figures.total("jobhouse_queue_oldest_age_seconds", workspace=first)
    assert 0 < age < 60
    later = await scrape(idle_server.url)
    assert later.total("jobhouse_queue_oldest_age_seconds", workspace=first) > age
    assert later.total("jobhouse_jobs_created_total", kind="echo") == before + 4  # created by this process
    assert later.total("jobhouse_attempts_started_total") == 0  # and none started: it runs no workers


# -- who may scrape ----------------------------------------------------------------------------


async def test_a_metrics_token_is_required_once_set(tmp_path: Path, machine: Machine) -> None:
    token = "scrape-secret-0123456789"
    with running_server(tmp_path / "token.db", machine, env={"JOBHOUSE_METRICS_TOKEN": token}) as server:
        async with api_client(server.url, {}) as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                refused = await http.get("/metrics", headers=headers)
                assert_error(refused, 401, "UNAUTHORIZED", "A valid metrics token is required")
                assert refused.headers["www-authenticate"] == 'Bearer realm="jobhouse"'
                assert token not in refused.text
        figures = await scrape(server.url, {"Authorization": f"Bearer {token}"})
        assert figures.total("jobhouse_build_info") == 1
    assert token not in server.output()


async def test_metrics_can_be_turned_off(tmp_path: Path, machine: Machine) -> None:
    with running_server(tmp_path / "off.db", machine, env={"JOBHOUSE_METRICS": "false"}) as server:
        async with api_client(server.url, {}) as http:
            assert_error(await http.get("/metrics"), 404, "NOT_FOUND")
            assert (await http.get("/readyz")).status_code == 200


# -- readiness ---------------------------------------------------------------------------------


def _execute(database: str, sql: str) -> None:
    """Run one statement on the store's own database, as another program would."""
    if database.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None)) as conn:
            conn.execute(sql.replace("{migrations}", "jobhouse_migrations"))
        return
    conninfo, schema = parse_url(database)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.replace("{migrations}", f"{schema}.migrations").encode())


async def test_readyz_names_the_schema_and_refuses_one_it_does_not_know(database: str, machine: Machine) -> None:
    backend = "postgres" if database.startswith("postgresql") else "sqlite"
    newest = migrations(backend)[-1].version
    with running_server(database, machine, args=["--no-workers"]) as server:
        async with api_client(server.url, {}) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "schema": newest}

            _execute(database, "INSERT INTO {migrations} VALUES (9999, 'from_the_future', " + _now(backend) + ")")
            ahead = await http.get("/readyz")
            message = assert_error(ahead, 503, "SCHEMA_MISMATCH")
            assert message == (
                f"The store's schema is ahead of this build: it has migration 9999, this build knows up to {newest}"
            )
            _execute(database, "DELETE FROM {migrations} WHERE version = 9999")
            assert (await http.get("/readyz")).status_code == 200

            _execute(database, f"DELETE FROM {{migrations}} WHERE version = {newest}")
            behind = await http.get("/readyz")
            assert assert_error(behind, 503, "SCHEMA_MISMATCH") == (
                f"The store's schema is behind this build: migration {newest} is not applied yet"
            )
            assert (await http.get("/healthz")).status_code == 200  # up, only not ready


def _now(backend: str) -> str:
    return "now()" if backend == "postgres" else "0"


@pytest.mark.slow
@pytest.mark.postgres
async def test_readyz_is_503_while_the_store_is_stopped(machine: Machine) -> None:
    with pg.OwnServer() as database, running_server(database.url, machine, args=["--no-workers"]) as server:
        async with api_client(server.url, {}) as http:
            assert (await http.get("/readyz")).status_code == 200
            database.stop()
            try:
                down = await http.get("/readyz")
                assert_error(down, 503, "STORE_UNAVAILABLE", "Job queue unavailable")
                assert int(down.headers["retry-after"]) > 0
                blind = await scrape(server.url)  # the scrape still comes, without the store's gauges
                assert blind.total("jobhouse_store_up") == 0
                assert "jobhouse_queue_depth" not in blind.samples
            finally:
                database.start()
            deadline = time.monotonic() + 30
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "not ready again after the store came back"
        figures = await scrape(server.url)
        assert figures.total("jobhouse_store_errors_total", operation="active_counts") >= 1
        assert figures.total("jobhouse_store_up") == 1


# -- several processes -------------------------------------------------------------------------


@contextlib.contextmanager
def worker(database: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(database, env, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run_jobs(url: str, headers: dict[str, str], plan: dict[str, int]) -> None:
    async with api_client(url, headers) as client:
        made = [await create(client, kind) for kind, count in plan.items() for _ in range(count)]
        for job in made:
            await wait_done(client, job["id"])


async def test_a_multiprocess_directory_adds_up_every_process(tmp_path: Path, machine: Machine) -> None:
    """``serve --no-workers`` and a ``jobhouse worker`` share PROMETHEUS_MULTIPROC_DIR: the API's
    scrape counts the jobs the worker ran."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    db = tmp_path / "shared.db"
    with (
        running_server(db, machine, args=["--no-workers"], env=env) as server,
        worker(server.database, env, tmp_path / "worker.log"),
    ):
        headers = {"Authorization": f"Bearer {await server.new_key(WORKSPACE)}"}
        await run_jobs(server.url, headers, {"echo": 20, "boom": 2})
        figures = await scrape(server.url)
        counts = await stored(server.database)

    assert counts == {("echo", "completed"): 20, ("boom", "failed"): 2}
    assert figures.by("jobhouse_jobs_created_total", "kind") == {("echo",): 20, ("boom",): 2}
    assert figures.by("jobhouse_jobs_ended_total", "kind", "status") == {
        ("echo", "completed"): 20,
        ("boom", "failed"): 2,
    }
    assert figures.by("jobhouse_attempts_started_total", "kind") == {("echo",): 20, ("boom",): 2}
    assert figures.total("jobhouse_job_run_seconds_count") == 22
    assert figures.total("jobhouse_store_seconds_count", operation="claim") >= 1  # only the worker claims
    assert "process_resident_memory_bytes" not in figures.samples  # one process's own: not added up
    assert len(list(shared.glob("counter_*.db"))) == 2  # one file per process


def test_a_missing_multiprocess_directory_stops_the_start(tmp_path: Path) -> None:
    missing = tmp_path / "not-made"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(missing),
        "JOBHOUSE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    command = [sys.executable, "-m", "jobhouse", "worker", "--app", "tests.kinds:jobs"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"jobhouse: cannot start: PROMETHEUS_MULTIPROC_DIR={missing} is not a directory" in done.stderr
    assert not missing.exists()


async def test_a_worker_serves_its_own_metrics_on_a_port(tmp_path: Path, machine: Machine) -> None:
    port = free_port()
    token = "worker-scrape-token"
    env = {"JOBHOUSE_METRICS_TOKEN": token}
    db = tmp_path / "ported.db"
    with running_server(db, machine, args=["--no-workers"]) as server:
        log = tmp_path / "worker.log"
        with worker(server.database, {**env, "JOBHOUSE_METRICS_PORT": str(port)}, log):
            headers = {"Authorization": f"Bearer {await server.new_key(WORKSPACE)}"}
            await run_jobs(server.url, headers, {"echo": 5, "boom": 1})
            url = f"http://127.0.0.1:{port}"
            await _listening(url)
            async with httpx.AsyncClient(timeout=10) as http:
                assert_error(await http.get(f"{url}/metrics"), 401, "UNAUTHORIZED")
                assert_error(await http.get(f"{url}/openapi.json"), 404, "NOT_FOUND")
            ran = await scrape(url, {"Authorization": f"Bearer {token}"})
        api = await scrape(server.url)

    assert ran.by("jobhouse_jobs_ended_total", "kind", "status") == {("echo", "completed"): 5, ("boom", "failed"): 1}
    assert ran.by("jobhouse_jobs_created_total", "kind") == {}  # created by the API server: counted there
    assert api.by("jobhouse_jobs_created_total", "kind") == {("echo",): 5, ("boom",): 1}
    assert api.by("jobhouse_jobs_ended_total", "kind", "status") == {}
    assert ran.total("jobhouse_store_up") == 1  # the store's gauges are read by every scrape
    assert ran.total("process_resident_memory_bytes") > 0


async def _listening(url: str, timeout: float = 15) -> None:
    """Once something answers HTTP at `url`."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as http:
        while True:
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"nothing listens at {url}"
                await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_what_a_killed_worker_counted_still_adds_up(tmp_path: Path, machine: Machine) -> None:
    """The `suicide` kind kills every worker process that runs it; each next worker rescues the lost
    attempt and dies on the next one. The files of the dead processes still count."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    fast = {"JOBHOUSE_LEASE": "1", "JOBHOUSE_HEARTBEAT": "0.2", "JOBHOUSE_RESCUE_INTERVAL": "0.2"}
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), **fast}
    with running_server(tmp_path / "killed.db", machine, args=["--no-workers"], env=env) as server:
        headers = {"Authorization": f"Bearer {await server.new_key(WORKSPACE)}"}
        async with api_client(server.url, headers) as client:
            job = await create(client, "suicide")
            deadline = time.monotonic() + 90
            killed = 0

            async def status() -> str:
                return str((await client.get(f"/api/jobs/{job['id']}")).json()["job"]["status"])

            while await status() != "failed":
                with worker(server.database, env, tmp_path / "worker.log") as process:
                    # Until its handler kills it, or it rescued the last attempt and so failed the job.
                    while process.poll() is None and await status() != "failed":
                        assert time.monotonic() < deadline, "the job never failed"
                        await asyncio.sleep(0.1)  # another process's work: a poll with a deadline
                    if process.returncode is not None:
                        assert process.returncode == -signal.SIGKILL
                        killed += 1
        figures = await scrape(server.url)
        counts = await stored(server.database)

    assert counts == {("suicide", "failed"): 1}
    assert killed == 3  # max_attempts
    assert figures.by("jobhouse_attempts_started_total", "kind") == {("suicide",): 3}
    assert figures.by("jobhouse_jobs_lost_total", "kind") == {("suicide",): 3}
    assert figures.by("jobhouse_jobs_retried_total", "kind") == {}
    assert figures.by("jobhouse_jobs_ended_total", "kind", "status") == {("suicide", "failed"): 1}


# -- the acceptance run ------------------------------------------------------------------------


async def pipelined(url: str, path: str, headers: dict[str, str], body: bytes, count: int) -> list[int]:
    """POST `body` to `path` `count` times on one connection, all requests written at once (HTTP/1.1
    pipelining), then read the answers in order; their statuses. A client that costs the test next
    to nothing, so the server's own work is what the run measures."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request * count)
        await writer.drain()
        statuses = []
        for _ in range(count):
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            statuses.append(status)
        return statuses
    finally:
        writer.close()


def _store_counts(path: Path) -> Counter[str]:
    """Jobs by status, straight from the SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return Counter(dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()))


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_scrapes_during_a_10000_job_run_match_the_store(tmp_path: Path, machine: Machine) -> None:
    """Scrapes taken while 10,000 jobs are created and run never count more than the store holds
    (a count moves only once its write committed); the last one counts exactly what it holds."""
    total, writers = 10_000, 40
    assert total % writers == 0
    db = tmp_path / "run.db"
    with running_server(db, machine) as server:
        headers = {"Authorization": f"Bearer {await server.new_key(WORKSPACE)}"}
        done = asyncio.Event()
        checked = 0

        async def write(share: int) -> None:
            statuses = await pipelined(server.url, "/api/jobs", headers, b'{"type": "echo"}', share)
            assert statuses == [202] * share

        async def watch() -> None:
            nonlocal checked
            while not done.is_set():
                figures = await scrape(server.url)
                counts = await asyncio.to_thread(_store_counts, db)  # read after the scrape
                assert figures.total("jobhouse_jobs_created_total") <= sum(counts.values())
                assert figures.total("jobhouse_jobs_ended_total", status="completed") <= counts["completed"]
                checked += 1
                with contextlib.suppress(TimeoutError):  # a scrape every 0.2 s or so, as Prometheus would
                    await asyncio.wait_for(done.wait(), 0.2)

        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        try:
            await asyncio.gather(*(write(total // writers) for _ in range(writers)))
            created = time.monotonic() - started
            while _store_counts(db)["completed"] < total:
                assert time.monotonic() - started < 540, _store_counts(db)
                await asyncio.sleep(0.2)  # a poll with a deadline
            ran = time.monotonic() - started
        finally:
            done.set()
            await watcher
        final = await scrape(server.url)
        counts = _store_counts(db)

    print(f"\n10,000 jobs: created in {created:.1f}s, all done in {ran:.1f}s, {checked} scrapes checked")
    assert counts == {"completed": total}
    assert checked >= 3
    assert final.total("jobhouse_jobs_created_total", kind="echo") == total
    assert final.total("jobhouse_jobs_ended_total", kind="echo", status="completed") == total
    assert final.total("jobhouse_queue_depth") == counts["queued"] == 0
    assert final.total("jobhouse_jobs_running") == counts["running"] == 0
    assert final.total("jobhouse_attempts_started_total") == total
    assert final.total("jobhouse_http_request_duration_seconds_count", route="/api/jobs", method="POST") == total
