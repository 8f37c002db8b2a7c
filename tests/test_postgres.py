"""What only the PostgreSQL store does: transactional enqueue, LISTEN/NOTIFY, schemas."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import pq

from jobhouse import JobContext, Registry
from jobhouse.api import create_app
from jobhouse.errors import ConfigurationError, NotAuthenticated, StoreUnavailable
from jobhouse.ids import new_id
from jobhouse.job import JobStatus, NewJob, Outcome, Verdict
from jobhouse.keys import authenticate, create_key
from jobhouse.queue import Queue
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from jobhouse.store.base import JobQuery
from jobhouse.store.pg_listener import PgListener
from jobhouse.store.postgres import PostgresStore, parse_url
from tests.helpers import ended, running_feed

pytestmark = pytest.mark.postgres


Pair = tuple[PostgresStore, PostgresStore]


@pytest.fixture
async def listeners(pg_schema_url: str) -> AsyncIterator[list[tuple[PostgresStore, PgListener]]]:
    """Two stores on one schema, each with its own pool and listener, as on two machines."""
    stores = (PostgresStore(pg_schema_url), PostgresStore(pg_schema_url))
    stop = asyncio.Event()
    tasks = []
    running = []
    for store in stores:
        await store.open()
        (listener,) = store.services()
        assert isinstance(listener, PgListener)
        tasks.append(asyncio.create_task(listener.run(stop)))
        await asyncio.wait_for(listener.wait_connects(1), 10)
        running.append((store, listener))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for store in stores:
            await store.close()


@pytest.fixture
def pair(listeners: list[tuple[PostgresStore, PgListener]]) -> Pair:
    return listeners[0][0], listeners[1][0]


def a_job(kind: str = "k") -> NewJob:
    return NewJob(new_id(), "ws", kind, "K", 3)


async def test_an_end_on_one_node_wakes_a_long_poll_on_another_at_once(
    pair: Pair,
) -> None:
    here, there = pair
    (job,) = await there.enqueue([a_job()])
    (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
    async with running_feed(here, interval=3600) as feed, feed.job(job.id, ends_only=True) as ending:
        started = time.monotonic()
        await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])
        await ended(ending)
        assert time.monotonic() - started < 1


async def test_work_and_cancels_travel_between_nodes(pair: Pair) -> None:
    here, there = pair
    with here.hub.work_waiter() as work:
        work.clear()
        await there.enqueue([a_job()])
        await asyncio.wait_for(work.wait(), 5)
    (claimed,) = await here.claim("w", {"k"}, 1, lease=30)
    stopped = asyncio.Event()
    with here.hub.running(claimed.ref, stopped.set):
        await there.cancel(claimed.id)
        await asyncio.wait_for(stopped.wait(), 1)


async def test_a_listener_that_was_away_catches_up_when_it_connects(pg_schema_url: str) -> None:
    here, there = PostgresStore(pg_schema_url), PostgresStore(pg_schema_url)
    await here.open()
    await there.open()
    stop = asyncio.Event()
    try:
        (job,) = await there.enqueue([a_job()])
        async with running_feed(here, interval=3600) as feed, feed.job(job.id, ends_only=True) as ending:
            (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
            await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])  # nobody here listens yet
            assert await ending.next(0) == []
            (listener,) = here.services()
            listening = asyncio.create_task(listener.run(stop))
            await ended(ending, 10)
    finally:
        stop.set()
        await listening
        await here.close()
        await there.close()


async def test_a_killed_listen_connection_comes_back(listeners: list[tuple[PostgresStore, PgListener]]) -> None:
    (here, listener), (there, _) = listeners
    async with await psycopg.AsyncConnection.connect(here.conninfo, autocommit=True) as admin:
        killed = await (
            await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%%' AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 2
    await asyncio.wait_for(listener.wait_connects(2), 10)
    async with running_feed(here, interval=3600) as feed:
        for _ in range(2):  # after the reconnect, notifications flow again
            (job,) = await there.enqueue([a_job()])
            (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
            async with feed.job(job.id, ends_only=True) as ending:
                await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])
                await ended(ending, 15)


async def test_transactional_enqueue_follows_the_callers_transaction(pg_schema_url: str) -> None:
    store = PostgresStore(pg_schema_url)
    await store.open()
    jobs = Registry()

    @jobs.kind("send-invoice")
    async def send_invoice(ctx: JobContext) -> None:
        return None

    # Your own code: a queue over a store it never opens, enqueueing on its own connection.
    queue = Queue(PostgresStore(pg_schema_url), jobs)
    try:
        async with await psycopg.AsyncConnection.connect(store.conninfo) as conn:
            async with conn.transaction(force_rollback=True):
                rolled_back = await queue.enqueue("send-invoice", workspace="ws", connection=conn)
            async with conn.transaction():
                committed = await queue.enqueue("send-invoice", workspace="ws", input={"n": 1}, connection=conn)
        assert await store.get(rolled_back.id) is None
        kept = await store.get(committed.id)
        assert kept is not None
        assert kept.status is JobStatus.QUEUED
        assert kept.input == {"n": 1}
        assert [j.id for j in (await store.list_jobs(JobQuery("ws"))).jobs] == [committed.id]
        with pytest.raises(StoreUnavailable, match="not open"):
            await queue.enqueue("send-invoice", workspace="ws")  # without a connection, the store must be open
    finally:
        await store.close()


async def test_an_unreachable_server_is_unavailable_quickly() -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < 10
    with pytest.raises(StoreUnavailable):
        await store.get(new_id())


def test_urls_name_a_schema() -> None:
    assert parse_url("postgresql://u@h/db") == ("postgresql://u@h/db", "jobhouse")
    assert parse_url("postgresql://u@h/db?schema=queue&sslmode=require") == (
        "postgresql://u@h/db?sslmode=require",
        "queue",
    )
    with pytest.raises(ConfigurationError):
        parse_url("postgresql://u@h/db?schema=Robert'); DROP TABLE")


def test_a_unix_socket_url_reaches_libpq_as_written() -> None:
    """An empty host is libpq's Unix socket; only `schema` is taken out, the rest is left as written."""
    assert parse_url("postgresql:///jobs") == ("postgresql:///jobs", "jobhouse")
    assert parse_url("postgresql://jobs@/jobs?host=/var/run/postgresql&schema=queue") == (
        "postgresql://jobs@/jobs?host=/var/run/postgresql",
        "queue",
    )
    conninfo, schema = parse_url("postgresql:///jobs?schema=q&host=%2Ftmp%2Fpg&options=-c%20a%3Db&application_name=a+b")
    assert schema == "q"
    assert psycopg.conninfo.conninfo_to_dict(conninfo) == {  # as libpq itself parses it
        "dbname": "jobs",
        "host": "/tmp/pg",
        "options": "-c a=b",
        "application_name": "a+b",
    }
    assert psycopg.conninfo.conninfo_to_dict(parse_url("postgresql://jobs@/jobs?host=/run/pg")[0]) == {
        "user": "jobs",
        "dbname": "jobs",
        "host": "/run/pg",
    }


def _socket_directory(conninfo: str) -> tuple[str, int]:
    """The local directory of the test server's Unix socket, and its port; skips when there is none."""
    with psycopg.connect(conninfo) as conn:
        (directories,) = conn.execute("SHOW unix_socket_directories").fetchone() or ("",)
        port = conn.info.port
    for directory in (d.strip() for d in directories.split(",")):
        if directory.startswith("/") and Path(directory, f".s.PGSQL.{port}").exists():
            return directory, port
    pytest.skip(f"the test server has no Unix socket on this machine (unix_socket_directories={directories!r})")


async def test_a_store_connects_over_a_unix_socket(pg_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conninfo, schema = parse_url(pg_schema_url)
    over_tcp = psycopg.conninfo.conninfo_to_dict(conninfo)
    directory, port = _socket_directory(conninfo)
    user, database = over_tcp.get("user", "postgres"), over_tcp["dbname"]
    with psycopg.connect(conninfo) as conn:
        server = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone() or ()
    urls = [
        f"postgresql://{user}@/{database}?host={directory}&port={port}&schema={schema}",
        f"postgresql:///{database}?schema={schema}",  # host, port and user from libpq's environment
    ]
    monkeypatch.setenv("PGHOST", directory)
    monkeypatch.setenv("PGPORT", str(port))
    monkeypatch.setenv("PGUSER", str(user))
    for url in urls:
        store = PostgresStore(url)
        await store.open()
        try:
            async with store.read() as conn:
                row = await (
                    await conn.execute("SELECT system_identifier, inet_server_addr() FROM pg_control_system()")
                ).fetchone()
            assert row == (*server, None)  # the same server, and no address: a Unix socket
            (job,) = await store.enqueue([a_job()])
            assert (await store.get(job.id)) == job
        finally:
            await store.close()


async def test_hundreds_of_jobs_ending_in_one_statement_reach_every_node(pair: Pair) -> None:
    here, there = pair
    jobs = await here.enqueue([a_job() for _ in range(450)])  # more ids than fit in one NOTIFY payload
    running = await here.claim("w", {"k"}, 450, lease=30)
    async with running_feed(there, interval=3600) as feed, contextlib.AsyncExitStack() as watching:
        endings = [await watching.enter_async_context(feed.job(job.id, ends_only=True)) for job in jobs]
        outcomes = [Outcome(job.ref, Verdict.COMPLETED, 100, job.steps, result=b"1") for job in running]
        assert all(await here.finish(outcomes))
        await asyncio.gather(*(ended(ending, 15) for ending in endings))


async def test_the_embedded_server_fallback_works(tmp_path: object) -> None:
    from tests import pg

    with pg.embedded() as url:
        store = PostgresStore(pg.with_schema(url, "jobhouse"))
        await store.open()
        try:
            (job,) = await store.enqueue([a_job()])
            assert (await store.get(job.id)) == job
        finally:
            await store.close()


async def test_a_burst_of_jobs_refreshes_the_claim_plans_statistics(pg_schema_url: str) -> None:
    store = PostgresStore(pg_schema_url)
    await store.open()
    try:
        await store.enqueue([a_job() for _ in range(1000)])
        async with store.transaction() as conn:
            row = await (
                await conn.execute(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE schemaname = %s AND relname = 'jobs'",
                    (store.schema,),
                )
            ).fetchone()
            plan = await (
                await conn.execute(
                    f"EXPLAIN SELECT id FROM {store.schema}.jobs WHERE status = 'queued' AND NOT scheduled "
                    "AND concurrency_key IS NULL AND kind = ANY(%s) ORDER BY priority DESC, round, id LIMIT 10 "
                    "FOR UPDATE SKIP LOCKED",
                    (["k"],),
                )
            ).fetchall()
    finally:
        await store.close()
    assert row == (True,)
    assert "Sort" not in "\n".join(line for (line,) in plan)


async def test_a_get_is_one_round_trip(pg_schema_url: str, tmp_path: Path) -> None:
    """Counted on the wire: libpq traces every protocol message; each Sync (or simple Query) the
    client sends ends a round trip. Reading a job with a known key: the key is cached, the read
    commits by itself (no BEGIN, no COMMIT)."""
    trace = (tmp_path / "trace.txt").open("w")

    async def traced(conn: psycopg.AsyncConnection[Any]) -> None:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    runtime = Runtime(Settings(database=pg_schema_url, pool_size=1), registry=Registry(), sources=[])
    assert isinstance(runtime.store, PostgresStore)
    runtime.store.on_connect = traced
    await runtime.open()
    try:
        key, _ = await create_key(runtime.store, "ws")
        (job,) = await runtime.queue.enqueue_many([a_job()])
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://jobhouse") as http:
            headers = {"X-API-Key": key}
            assert (await http.get(f"/api/jobs/{job.id}", headers=headers)).status_code == 200  # caches the key
            trace.flush()
            before = (tmp_path / "trace.txt").read_text()
            response = await http.get(f"/api/jobs/{job.id}", headers=headers)
            trace.flush()
            during = (tmp_path / "trace.txt").read_text()[len(before) :]
    finally:
        await runtime.close()
        trace.close()
    assert response.status_code == 200
    sent = [line.split()[2] for line in during.splitlines() if line.startswith("F")]
    assert 1 <= sum(message in ("Sync", "Query") for message in sent) <= 2, sent
    assert "BEGIN" not in during


async def test_a_key_revoked_on_one_node_is_refused_by_another_that_cached_it(pair: Pair) -> None:
    here, there = pair
    key, record = await create_key(there, "ws")
    assert await authenticate(here, key) == "ws"  # cached here
    forgotten = asyncio.Event()
    here.hub.on_revoke(lambda ids: forgotten.set())

    await there.keys.revoke(record.id)

    await asyncio.wait_for(forgotten.wait(), 10)  # the NOTIFY reached this node
    with pytest.raises(NotAuthenticated):
        await authenticate(here, key)
