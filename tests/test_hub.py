"""The hub wakes waiters in this process; the refresher and the change feed bring in what other
processes changed."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobhouse.errors import NotAuthenticated
from jobhouse.feed import Feed
from jobhouse.hub import Hub, Refresher, Seen
from jobhouse.ids import new_id
from jobhouse.job import AttemptRef, JobStatus, NewJob, Outcome, Report, Verdict
from jobhouse.keys import authenticate, create_key
from jobhouse.store.pg_listener import dispatch
from jobhouse.store.sqlite import SqliteStore
from jobhouse.store.sqlite_engine import SqliteOptions
from tests.helpers import ended, running_feed

Processes = tuple[SqliteStore, SqliteStore, Feed]


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[Processes]:
    """Two stores on one file: each has its own connections, as two processes would; the first
    has its change feed."""
    here, there = SqliteStore(str(tmp_path / "shared.db")), SqliteStore(str(tmp_path / "shared.db"))
    await here.open()
    await there.open()
    stop = asyncio.Event()
    refresher = asyncio.create_task(Refresher(here.hub, here.seen, interval=60).run(stop))
    try:
        async with running_feed(here, interval=60) as feed:
            yield here, there, feed
    finally:
        stop.set()
        here.hub.external_change()
        await refresher
        await here.close()
        await there.close()


async def test_a_job_ended_by_another_process_wakes_a_waiter_here(
    two_processes: Processes,
) -> None:
    here, there, feed = two_processes
    (job,) = await there.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])
    async with feed.job(job.id, ends_only=True) as ending:
        (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
        assert await ending.next(0) == []  # a claim is not an end
        await there.finish([Outcome(claimed.ref, Verdict.COMPLETED, 100, (), result=b"null")])
        event = await ended(ending)
    assert event.status is JobStatus.COMPLETED
    assert (await here.get(job.id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_a_cancel_in_another_process_stops_the_handler_here(
    two_processes: Processes,
) -> None:
    here, there, _feed = two_processes
    await here.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])
    (claimed,) = await here.claim("w", {"k"}, 1, lease=30)
    stopped = asyncio.Event()
    with here.hub.running(claimed.ref, stopped.set):
        await there.cancel(claimed.id)
        await asyncio.wait_for(stopped.wait(), 5)


async def test_work_enqueued_by_another_process_wakes_idle_workers_here(
    two_processes: Processes,
) -> None:
    here, there, _feed = two_processes
    with here.hub.work_waiter() as work:
        work.clear()
        await there.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])
        await asyncio.wait_for(work.wait(), 5)


async def test_another_processs_heartbeats_and_reports_wake_nobody_here(
    two_processes: Processes,
) -> None:
    here, there, feed = two_processes
    with here.hub.work_waiter() as work:
        work.clear()
        running, other = await there.enqueue([NewJob(new_id(), "ws", "k", "K", 1) for _ in range(2)])
        await asyncio.wait_for(work.wait(), 5)  # here has seen the enqueue
    (claimed,) = await there.claim("w", {"k"}, 1, lease=30)
    with here.hub.work_waiter() as work:
        async with feed.job(other.id, ends_only=True) as ending:
            work.clear()
            await there.heartbeat("w", [claimed.ref], lease=30)
            await there.report([Report(claimed.ref, 50, (), None)], lease=30)
            await there.cancel(other.id)  # a signal that does reach us: once it has, so have the others
            await ended(ending)
        assert not work.is_set()  # nothing said that work was queued
        await there.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])
        await asyncio.wait_for(work.wait(), 5)
    assert running.id != other.id


async def test_a_revoked_key_is_refused_at_once_by_every_process(
    two_processes: Processes,
) -> None:
    here, there, _feed = two_processes
    key, record = await create_key(there, "ws")
    assert await authenticate(here, key) == "ws"
    await there.keys.revoke(record.id)
    with pytest.raises(NotAuthenticated):
        await authenticate(here, key)


async def test_a_commit_in_another_process_wakes_this_one_at_once_not_at_its_poll(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    no_poll = SqliteOptions(probe_interval=30)  # only the datagram beside the file can wake it in time
    here, there = SqliteStore(path, options=no_poll), SqliteStore(path, options=no_poll)
    await here.open()
    await there.open()
    try:
        with here.hub.work_waiter() as work:
            work.clear()
            await there.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])
            await asyncio.wait_for(work.wait(), 5)
    finally:
        await here.close()
        await there.close()
    assert list((tmp_path / "shared.db-wake").glob("*.sock")) == []  # each process took its socket away


async def test_the_socket_of_a_process_that_died_is_removed_by_the_next_commit(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    await store.open()
    try:
        dead = tmp_path / "shared.db-wake" / "4242-deadbeef.sock"
        orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        orphan.bind(str(dead))
        orphan.close()  # bound and gone without cleaning up, as a process killed with SIGKILL
        assert dead.exists()

        await store.enqueue([NewJob(new_id(), "ws", "k", "K", 1)])

        assert not dead.exists()
    finally:
        await store.close()


async def test_a_writer_lock_held_by_a_frozen_process_delays_writes_but_never_hangs_them(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path, options=SqliteOptions(busy_timeout=0.3))
    await store.open()
    lock = os.open(tmp_path / "shared.db-wake" / "lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process stopped mid-transaction would hold it
        (job,) = await asyncio.wait_for(store.enqueue([NewJob(new_id(), "ws", "k", "K", 1)]), 5)
        assert (await store.get(job.id)) is not None  # written once the patience (busy_timeout) ran out
    finally:
        os.close(lock)
        await store.close()


def test_a_rescue_read_before_this_process_claimed_the_job_again_never_stops_the_new_attempt() -> None:
    """A rescue of attempt 1 (its worker died) is told to every process; one that has since claimed
    the job again as attempt 2 must go on running it: only a reading that shows attempt 2 no longer
    ours stops it (else the job would sit "running" until its lease lapsed, and run a third time)."""
    hub = Hub()
    job = new_id()
    stopped: list[int] = []
    hub.hold(AttemptRef(job, 2), lambda: stopped.append(2))

    dispatch(hub, f"r:{job}")  # PostgreSQL's signal of the rescue: a look, not a stop
    hub.apply({job: Seen(JobStatus.QUEUED, 1)})  # what a read before the claim saw
    assert stopped == []

    hub.apply({job: Seen(JobStatus.RUNNING, 2)})
    assert stopped == []
    hub.apply({job: Seen(JobStatus.QUEUED, 2)})  # attempt 2 itself was taken back
    assert stopped == [2]
