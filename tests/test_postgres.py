"""What only the PostgreSQL store does: transactional enqueue, LISTEN/NOTIFY, schemas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from jobhouse import JobContext, Registry
from jobhouse.errors import ConfigurationError, InvalidRequest, StoreUnavailable
from jobhouse.hub import Refresher
from jobhouse.ids import new_id
from jobhouse.job import JobStatus, NewJob, Outcome, Verdict
from jobhouse.store.base import JobQuery
from jobhouse.store.pg_listener import PgListener, notify_payloads
from jobhouse.store.postgres import PostgresStore, parse_url

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
    with here.hub.watch_end(job.id) as ended:
        started = time.monotonic()
        await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])
        await asyncio.wait_for(ended.wait(), 5)
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
    refresher = asyncio.create_task(Refresher(here.hub, here.seen, interval=3600).run(stop))
    try:
        (job,) = await there.enqueue([a_job()])
        with here.hub.watch_end(job.id) as ended:
            (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
            await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])  # nobody here listens yet
            assert not ended.is_set()
            (listener,) = here.services()
            listening = asyncio.create_task(listener.run(stop))
            await asyncio.wait_for(ended.wait(), 10)
    finally:
        stop.set()
        await refresher
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
    for _ in range(2):  # after the reconnect, notifications flow again
        (job,) = await there.enqueue([a_job()])
        (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
        with here.hub.watch_end(job.id) as ended:
            await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, ())])
            await asyncio.wait_for(ended.wait(), 15)


async def test_transactional_enqueue_follows_the_callers_transaction(pg_schema_url: str) -> None:
    store = PostgresStore(pg_schema_url)
    await store.open()
    jobs = Registry()

    @jobs.kind("send-invoice")
    async def send_invoice(ctx: JobContext) -> None:
        return None

    try:
        async with await psycopg.AsyncConnection.connect(store.conninfo) as conn:
            async with conn.transaction(force_rollback=True):
                rolled_back = await jobs.enqueue("send-invoice", workspace="ws", connection=conn, schema=store.schema)
            async with conn.transaction():
                committed = await jobs.enqueue(
                    "send-invoice", workspace="ws", input={"n": 1}, connection=conn, schema=store.schema
                )
        assert await store.get(rolled_back.id) is None
        kept = await store.get(committed.id)
        assert kept is not None
        assert kept.status is JobStatus.QUEUED
        assert kept.input == {"n": 1}
        assert [j.id for j in (await store.list_jobs(JobQuery("ws"))).jobs] == [committed.id]
        with pytest.raises(ConfigurationError, match="connection="):
            await jobs.enqueue("send-invoice", workspace="ws")
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
    with pytest.raises(InvalidRequest):
        parse_url("postgresql://u@h/db?schema=Robert'); DROP TABLE")


def test_notify_payloads_stay_under_the_limit() -> None:
    ids = [new_id() for _ in range(1000)]
    payloads = list(notify_payloads("d", ids))
    assert len(payloads) > 1
    assert all(len(p) < 8000 for p in payloads)
    assert [i for p in payloads for i in p[2:].split(",")] == ids
    assert list(notify_payloads("e")) == ["e"]


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
                    f"EXPLAIN SELECT id FROM {store.schema}.jobs WHERE status = 'queued' AND run_at <= now() "
                    "AND kind = ANY(%s) ORDER BY run_at, id LIMIT 10 FOR UPDATE SKIP LOCKED",
                    (["k"],),
                )
            ).fetchall()
    finally:
        await store.close()
    assert row == (True,)
    assert "Sort" not in "\n".join(line for (line,) in plan)
