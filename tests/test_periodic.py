"""Periodic kinds (`jobhouse.periodic`): the period arithmetic, the service on both stores with a
clock the test moves (several services on one store, restarts, outages), its timer on the wall
clock, and real server processes: two nodes on one store, one restarted, a job a second."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
import zoneinfo
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from jobhouse.clock import ManualClock, SystemClock
from jobhouse.errors import ConfigurationError
from jobhouse.job import Job
from jobhouse.periodic import Periodic, latest_start, next_start, period_key
from jobhouse.queue import Queue
from jobhouse.registry import Kind, Registry
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from jobhouse.store.base import Idempotency, JobQuery, Store
from jobhouse.store.postgres import PostgresStore
from jobhouse.store.sqlite import SqliteStore
from jobhouse.store.sqlite_engine import SqliteOptions
from tests.conftest import BACKENDS
from tests.helpers import imported
from tests.periodic_kinds import WORKSPACE
from tests.servers import Machine, ServerProcess, start_server

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the ManualClock's start: a whole day since the epoch
WS = "reports"


def registry(name: str = "report", **options: Any) -> Registry:
    jobs = Registry()
    periodic = "every" in options or "cron" in options
    jobs.kind(name, **{**({"periodic_workspace": WS} if periodic else {}), **options})(lambda ctx: None)
    return jobs


def kind(**options: Any) -> Kind:
    return registry(**options)["report"]


async def periodic_jobs(store: Store, workspace: str = WS) -> list[Job]:
    """The workspace's jobs, oldest period first."""
    page = await store.list_jobs(JobQuery(workspace=workspace, limit=500))
    assert page.next is None
    return sorted(page.jobs, key=lambda job: job.run_at)


def periods(jobs: list[Job]) -> list[datetime]:
    return [job.run_at for job in jobs]


# -- the arithmetic ---------------------------------------------------------------------------


def test_every_periods_start_at_the_multiples_of_every_since_the_epoch() -> None:
    five = kind(every="5m")
    assert five.every == 300
    now = T0 + timedelta(minutes=7, seconds=13.5)
    assert latest_start(five, now) == T0 + timedelta(minutes=5)
    assert next_start(five, now) == T0 + timedelta(minutes=10)
    on_a_start = T0 + timedelta(minutes=10)
    assert latest_start(five, on_a_start) == on_a_start
    assert next_start(five, on_a_start) == T0 + timedelta(minutes=15)

    odd = kind(every=7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert latest_start(odd, epoch + timedelta(seconds=20)) == epoch + timedelta(seconds=14)
    half = kind(every=1.5)
    assert latest_start(half, epoch + timedelta(seconds=4)) == epoch + timedelta(seconds=3)
    assert next_start(half, epoch + timedelta(seconds=4)) == epoch + timedelta(seconds=4.5)
    week = kind(every="7d")  # the epoch was a Thursday: use cron to pick the weekday
    assert latest_start(week, T0).strftime("%A %H:%M") == "Thursday 00:00"


def test_cron_periods_are_the_times_of_the_expression_in_utc() -> None:
    quarter = kind(cron="*/15 * * * *")
    assert latest_start(quarter, T0 + timedelta(minutes=20, microseconds=5)) == T0 + timedelta(minutes=15)
    assert latest_start(quarter, T0 + timedelta(minutes=15)) == T0 + timedelta(minutes=15)
    assert next_start(quarter, T0 + timedelta(minutes=15)) == T0 + timedelta(minutes=30)

    weekdays = kind(cron="0 9 * * mon-fri")
    saturday = datetime(2030, 1, 5, 12, tzinfo=UTC)
    assert latest_start(weekdays, saturday) == datetime(2030, 1, 4, 9, tzinfo=UTC)
    assert next_start(weekdays, saturday) == datetime(2030, 1, 7, 9, tzinfo=UTC)
    # UTC whatever the offset of the time asked about
    new_york = datetime(2030, 1, 7, 10, 30, tzinfo=UTC).astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert latest_start(weekdays, new_york) == datetime(2030, 1, 7, 9, tzinfo=UTC)
    assert next_start(kind(cron="@hourly"), T0) == T0 + timedelta(hours=1)


@pytest.mark.parametrize("options", [{"every": 90}, {"every": "1d"}, {"cron": "*/7 2-5 * * *"}, {"cron": "0 0 L * *"}])
@given(offset=st.integers(min_value=0, max_value=400 * 86400 * 10**6))
def test_a_moment_lies_in_exactly_one_period(options: dict[str, Any], offset: int) -> None:
    spec = kind(**options)
    now = T0 + timedelta(microseconds=offset)
    start = latest_start(spec, now)
    following = next_start(spec, start)
    assert start <= now < following
    assert next_start(spec, now) == following
    assert latest_start(spec, start) == start
    assert latest_start(spec, following) == following


def test_period_keys_name_the_kind_and_the_start() -> None:
    assert period_key(kind(every=60), T0) == "periodic:report:2030-01-01T00:00:00Z"
    assert period_key(kind(every=1.5), T0 + timedelta(seconds=1.5)) == "periodic:report:2030-01-01T00:00:01.500000Z"


class ReportInput(BaseModel):
    size: int


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, "cron '61 * * * *' is not a five-field cron expression"),
        ({"cron": "every day"}, "cron 'every day' is not a five-field cron expression"),
        ({"cron": "* * * * * 30"}, "is not a five-field cron expression"),  # croniter's seconds field
        ({"cron": "0 0 30 2 *"}, "that ever matches"),  # 30 February
        ({"cron": "*/5 * * * *", "every": 60}, "give every or cron, not both"),
        ({"every": "0.5s"}, "every must be at least one second"),
        ({"every": 60, "input": ReportInput, "periodic_input": {"size": "big"}}, "periodic job: Invalid input"),
        ({"every": 60, "periodic_workspace": "no spaces"}, "periodic job: "),
        ({"periodic_input": {"size": 1}}, "periodic_workspace and periodic_input need every or cron"),
    ],
)
def test_bad_periodic_options_fail_at_registration_naming_the_kind(options: dict[str, Any], message: str) -> None:
    jobs = Registry()
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
        jobs.kind("report", **options)(lambda ctx: None)
    assert str(raised.value).startswith("kind 'report': ")
    assert "report" not in jobs


# -- the service, on a clock the test moves ---------------------------------------------------


async def test_one_job_per_period_due_at_its_start(store: Store, clock: ManualClock) -> None:
    jobs = registry(every="1m", periodic_input={"depth": 2})
    service = Periodic(Queue(store, jobs))
    clock.advance(10)

    assert await service.tick() == 50.0
    (first,) = await periodic_jobs(store)
    assert (first.kind, first.workspace, first.status.value) == ("report", WS, "queued")
    assert first.input == {"depth": 2}
    assert first.metadata == {"period": "2030-01-01T00:00:00Z"}
    assert first.run_at == T0
    assert first.created_at == T0 + timedelta(seconds=10)

    clock.advance(49)
    assert await service.tick() == 1.0
    assert len(await periodic_jobs(store)) == 1
    clock.advance(1)
    assert await service.tick() == 60.0
    assert periods(await periodic_jobs(store)) == [T0, T0 + timedelta(minutes=1)]


async def test_cron_kinds_get_a_job_at_each_time_of_the_expression(store: Store, clock: ManualClock) -> None:
    service = Periodic(Queue(store, registry(cron="*/15 * * * *")))
    clock.advance(60)
    assert await service.tick() == 60.0  # the next is 14 minutes away; it reads the clock again in a minute
    clock.advance(14 * 60 - 1)
    assert await service.tick() == 1.0
    for _ in range(4):
        clock.advance(1)
        await service.tick()
        clock.advance(15 * 60 - 1)
    assert periods(await periodic_jobs(store)) == [T0 + timedelta(minutes=15 * n) for n in range(5)]


@asynccontextmanager
async def another_process(store: Store, request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[Store]:
    """A second store object on the same SQLite file or PostgreSQL schema, as another process has."""
    other: Store
    if isinstance(store, PostgresStore):
        other = PostgresStore(request.getfixturevalue("pg_schema_url"), clock=clock)
    else:
        assert isinstance(store, SqliteStore)
        other = SqliteStore(store.path, clock=clock)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_services_of_several_processes_make_one_job_per_period(
    store: Store, clock: ManualClock, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobhouse.periodic")
    jobs = registry(every=30)
    async with another_process(store, request, clock) as other:
        services = [Periodic(Queue(s, jobs)) for s in (store, store, other, other)]
        for _ in range(6):
            await asyncio.gather(*(service.tick() for service in services))
            clock.advance(30)

    made = await periodic_jobs(store)
    assert periods(made) == [T0 + timedelta(seconds=30 * n) for n in range(6)]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debugs = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sorted(infos) == sorted(
        f"periodic report: enqueued job {job.id} for the period of {job.metadata['period']}" for job in made
    )
    assert len(debugs) == 3 * 6
    assert all("already has job" in line for line in debugs)


async def test_a_restart_enqueues_only_the_latest_period_it_missed(store: Store, clock: ManualClock) -> None:
    jobs = registry(every=60)
    await Periodic(Queue(store, jobs)).tick()  # the process that made T0's job stops here
    clock.advance(10 * 60 + 15)

    restarted = Periodic(Queue(store, jobs))
    assert await restarted.tick() == 45.0
    assert periods(await periodic_jobs(store)) == [T0, T0 + timedelta(minutes=10)]

    clock.advance(5)  # and again, within the same period: its key holds
    assert await Periodic(Queue(store, jobs)).tick() == 40.0
    assert len(await periodic_jobs(store)) == 2


async def test_a_period_that_began_past_the_horizon_is_skipped(store: Store, clock: ManualClock) -> None:
    jobs = registry(every="1d")
    clock.advance(2 * 3600)
    service = Periodic(Queue(store, jobs), horizon=3600)
    assert await service.tick() == 60.0  # nothing due for 22 hours; it reads the clock again in a minute
    assert await periodic_jobs(store) == []
    clock.advance(22 * 3600)
    await service.tick()
    assert periods(await periodic_jobs(store)) == [T0 + timedelta(days=1)]


async def test_a_key_a_client_took_costs_that_period_only(
    store: Store, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = registry(every=60)
    queue = Queue(store, jobs)
    taken = queue.new_job("report", workspace=WS)
    await queue.create(taken, idempotency=Idempotency(period_key(jobs["report"], T0), "a client's request"))

    service = Periodic(queue)
    assert await service.tick() == 60.0
    clock.advance(60)
    await service.tick()
    assert [job.metadata for job in await periodic_jobs(store)] == [{}, {"period": "2030-01-01T00:01:00Z"}]
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("periodic report: skipped the period of 2030-01-01T00:00:00Z: ")


@contextmanager
def write_lock(store: Store) -> Iterator[None]:
    """Another connection holds the write lock (SQLite) or a lock on the keys' table (PostgreSQL)."""
    if isinstance(store, SqliteStore):
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.conninfo) as holder:
        holder.execute(f"LOCK TABLE {store.schema}.idempotency_keys IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


async def short_timeout(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET statement_timeout = 200")
    await conn.commit()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_store_outage_skips_the_periods_it_hid_but_the_latest(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store: Store
    if backend == "postgres":
        store = PostgresStore(request.getfixturevalue("pg_schema_url"), clock=clock, on_connect=short_timeout)
    else:
        store = SqliteStore(str(tmp_path / "store.db"), clock=clock, options=SqliteOptions(busy_timeout=0.2))
    await store.open()
    try:
        service = Periodic(Queue(store, registry(every=60)), retry=0.5)
        await service.tick()
        with write_lock(store):
            clock.advance(60)
            assert await service.tick() == 0.5  # unavailable: it tries again soon, not in a minute
            clock.advance(3 * 60 + 20)  # three more periods began while the store was away
            assert await service.tick() == 0.5
        clock.advance(1)
        assert await service.tick() == 39.0
        assert periods(await periodic_jobs(store)) == [T0, T0 + timedelta(minutes=4)]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2
        assert warnings[0].startswith("periodic report: could not enqueue the period of 2030-01-01T00:01:00Z")
        assert warnings[1].startswith("periodic report: could not enqueue the period of 2030-01-01T00:04:00Z")
    finally:
        await store.close()


# -- the service on the wall clock ------------------------------------------------------------


async def wait_for_jobs(store: Store, count: int, timeout: float = 5.0) -> list[Job]:
    deadline = time.monotonic() + timeout
    while len(made := await periodic_jobs(store)) < count:
        assert time.monotonic() < deadline, f"{len(made)} of {count} jobs in {timeout}s"
        await asyncio.sleep(0.02)
    return made


async def test_the_timer_enqueues_at_each_period_start(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"), clock=SystemClock())
    await store.open()
    stop = asyncio.Event()
    task = asyncio.create_task(Periodic(Queue(store, registry(every=1))).run(stop))
    try:
        made = await wait_for_jobs(store, 3)
    finally:
        stop.set()
        await task
        await store.close()
    assert [b - a for a, b in zip(periods(made), periods(made)[1:], strict=False)] == [timedelta(seconds=1)] * 2
    late = [(job.created_at - job.run_at).total_seconds() for job in made[1:]]  # the first one came at start
    # A few milliseconds on a quiet machine; the bound leaves room for a loaded one, and is still far
    # below what polling the store once a second would give.
    assert all(0 <= seconds < 0.5 for seconds in late), late


async def test_stop_ends_the_service_while_it_waits_for_the_next_period(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"), clock=SystemClock())
    await store.open()
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(Periodic(Queue(store, registry(every="1h"))).run(stop))
        (job,) = await wait_for_jobs(store, 1)  # this hour's job, made at start
        assert job.run_at == latest_start(registry(every="1h")["report"], job.created_at)
        stop.set()
        async with asyncio.timeout(1):
            await task
    finally:
        await store.close()


@pytest.mark.parametrize("workers", [True, False])
def test_each_process_with_periodic_kinds_runs_one_periodic_service(tmp_path: Path, workers: bool) -> None:
    settings = Settings(database=f"sqlite:///{tmp_path}/db.sqlite")
    with_periodic = Runtime(settings, registry=registry(every=60), sources=[])
    without = Runtime(settings, registry=registry(), sources=[])
    assert [type(s) for s in with_periodic.services(workers=workers)].count(Periodic) == 1
    assert [type(s) for s in without.services(workers=workers)].count(Periodic) == 0


# -- real processes: two nodes on one store, one restarted ------------------------------------

APP = "tests.periodic_kinds:jobs"
ENQUEUED = re.compile(r"periodic tick: enqueued job (\S+) for the period of (\S+)")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def read_jobs(node: ServerProcess, key: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=node.url, headers={"X-API-Key": key}, timeout=10) as http:
        response = await http.get("/api/jobs", params={"type": "tick", "limit": "500"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nextCursor"] is None
    jobs: list[dict[str, Any]] = body["jobs"]
    return jobs


async def wait_for_period(node: ServerProcess, key: str, period: int, timeout: float = 10.0) -> None:
    """Until a job exists for the period that starts at `period` (Unix seconds) or a later one."""
    deadline = time.monotonic() + timeout
    while not any(instant(job["metadata"]["period"]).timestamp() >= period for job in await read_jobs(node, key)):
        assert time.monotonic() < deadline, f"no job for the period of {period} within {timeout}s"
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_nodes_and_a_restart_make_exactly_one_job_a_second(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, machine: Machine
) -> None:
    database: Path | str = request.getfixturevalue("pg_schema_url") if backend == "postgres" else tmp_path / "j.db"
    env = {"JOBHOUSE_LOG_LEVEL": "info", "JOBHOUSE_SCAN_WORKERS": "0"}  # no scan processes to start

    def start(*args: str) -> ServerProcess:
        return start_server(database, machine, app=APP, args=args, env=env)

    nodes: list[ServerProcess] = []
    try:
        launched = time.time()
        nodes.append(await asyncio.to_thread(start, "--no-workers"))  # node one: API and periodic kinds only
        ready = time.time()
        key = await nodes[0].new_key(WORKSPACE)
        nodes.append(await asyncio.to_thread(start))  # node two: with workers
        await wait_for_period(nodes[1], key, int(time.time()) + 1)

        await asyncio.to_thread(nodes[0].stop)  # node one restarts while node two goes on
        nodes.append(await asyncio.to_thread(start, "--no-workers"))
        await wait_for_period(nodes[1], key, int(time.time()) + 1)

        asked = time.time()
        await wait_for_period(nodes[2], key, int(asked))
        made = await read_jobs(nodes[2], key)
    finally:
        for node in nodes:
            await asyncio.to_thread(node.stop)

    starts = sorted(int(instant(job["metadata"]["period"]).timestamp()) for job in made)
    assert Counter(starts).most_common(1)[0][1] == 1, "a period ran twice"
    assert starts == list(range(starts[0], starts[-1] + 1)), "a period was missed"
    # one a second from node one's start (its first period: the one it started in) until the listing
    assert int(launched) <= starts[0] <= int(ready) + 1
    assert int(asked) <= starts[-1] <= int(asked) + 1
    for job in made:
        late = (instant(job["createdAt"]) - instant(job["metadata"]["period"])).total_seconds()
        assert job["input"] == {"note": "every second"}
        if starts[0] < instant(job["metadata"]["period"]).timestamp():  # the first one came at node one's start
            assert 0 <= late < 1.0, job
        if job["status"] == "completed":
            assert job["result"] == {"period": job["metadata"]["period"], "input": {"note": "every second"}}
    assert sum(job["status"] == "completed" for job in made) >= len(made) - 3

    logged = Counter(m.group(1) for node in nodes for m in ENQUEUED.finditer(node.output()))
    assert set(logged.values()) == {1}, "one line per job, by the node that made it"
    assert {job["id"] for job in made} <= set(logged)
    assert len(logged) - len(made) <= 2  # made after the listing, before the nodes stopped


# -- docs/periodic.md and its example ---------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "periodic.py"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), flags=re.DOTALL)


def test_periodic_md_shows_the_example_whole_and_only_excerpts_of_it() -> None:
    source = EXAMPLE.read_text("utf-8")
    blocks = python_blocks(REPO / "docs" / "periodic.md")
    assert source in blocks
    for block in blocks:
        assert block in source, f"docs/periodic.md shows code that docs/examples/periodic.py lacks:\n{block}"


@pytest.fixture
def example() -> Iterator[ModuleType]:
    with imported(EXAMPLE, "jobhouse_docs_example_periodic") as module:
        yield module


async def test_the_example_keeps_its_schedule(example: ModuleType, store: Store, clock: ManualClock) -> None:
    service = Periodic(Queue(store, example.jobs))
    clock.advance(6 * 3600 + 59 * 60)  # Tuesday 1 January 2030, 06:59 UTC: deployed
    await service.tick()
    clock.advance(60)
    await service.tick()

    sessions = await periodic_jobs(store, "default")
    assert [job.metadata["period"] for job in sessions] == ["2030-01-01T06:55:00Z", "2030-01-01T07:00:00Z"]
    digests = await periodic_jobs(store, "reports")
    # the first: Monday's, which began less than a day before the deploy; then Tuesday's, on time
    assert [job.metadata["period"] for job in digests] == ["2029-12-31T07:00:00Z", "2030-01-01T07:00:00Z"]
    assert digests[1].input == {"recipients": ["ops@example.com"], "days": 1}
    assert digests[1].created_at == digests[1].run_at
