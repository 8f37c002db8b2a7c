"""The change log and the feed: every change of a job is an event, delivered once, in order.

Most tests drive the feed by hand (`Feed.poll`, as its loop does when woken) on a real store of each
backend, so nothing waits on timers; `running_feed` runs the real loop where the wake-ups are the
point.
"""

from __future__ import annotations

import asyncio

import pytest

from jobhouse.events import Change, JobEvent
from jobhouse.feed import Feed
from jobhouse.ids import new_id
from jobhouse.job import JobStatus, NewJob, Outcome, Report, Step, StepStatus, Verdict
from jobhouse.store.base import Store
from jobhouse.store.postgres import PostgresStore
from tests.helpers import ended, running_feed

STEPS = (Step("a", "A"), Step("b", "B"))


def new_job(workspace: str = "ws", subject: str | None = None) -> NewJob:
    return NewJob(new_id(), workspace, "k", "K", 1, steps=STEPS, subject=subject)


def stepped(*statuses: StepStatus) -> tuple[Step, ...]:
    return tuple(Step(s.id, s.name, status) for s, status in zip(STEPS, statuses, strict=True))


async def run_through(store: Store, job_id: str) -> None:
    """Claim the job and run it through both steps to completion, one write per change."""
    (claimed,) = await store.claim("w", {"k"}, 1, lease=30)
    assert claimed.id == job_id
    ref = claimed.ref
    await store.report([Report(ref, 0, stepped(StepStatus.RUNNING, StepStatus.PENDING), "A")], lease=30)
    await store.report([Report(ref, 50, stepped(StepStatus.COMPLETED, StepStatus.PENDING), None)], lease=30)
    await store.report([Report(ref, 50, stepped(StepStatus.COMPLETED, StepStatus.RUNNING), "B")], lease=30)
    await store.report([Report(ref, 75, stepped(StepStatus.COMPLETED, StepStatus.RUNNING), "B")], lease=30)
    await store.heartbeat("w", [ref], lease=30)  # changes nothing anyone watches: no event
    done = stepped(StepStatus.COMPLETED, StepStatus.COMPLETED)
    await store.finish([Outcome(ref, Verdict.COMPLETED, 100, done, result=b'{"ok":true}')])


EXPECTED = [
    (Change.CREATED, JobStatus.QUEUED, 0, None, 0),
    (Change.STATUS, JobStatus.RUNNING, 0, None, 1),
    (Change.STEP, JobStatus.RUNNING, 0, "A", 1),
    (Change.STEP, JobStatus.RUNNING, 50, None, 1),
    (Change.STEP, JobStatus.RUNNING, 50, "B", 1),
    (Change.PROGRESS, JobStatus.RUNNING, 75, "B", 1),
    (Change.STATUS, JobStatus.COMPLETED, 100, None, 1),
]


def summary(events: list[JobEvent]) -> list[tuple[Change, JobStatus, int, str | None, int]]:
    return [(e.change, e.status, e.progress, e.current_step, e.attempt) for e in events]


async def test_every_change_of_a_job_is_one_event_in_the_log(store: Store) -> None:
    (job,) = await store.enqueue([new_job()])
    await run_through(store, job.id)
    events = await store.events(0, job_id=job.id)
    assert summary(events) == EXPECTED
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert events[-1].steps == stepped(StepStatus.COMPLETED, StepStatus.COMPLETED)
    assert all(e.workspace == "ws" and e.kind == "k" for e in events)
    window = await store.events(events[2].seq, job_id=job.id, upto=events[4].seq)
    assert [e.seq for e in window] == [e.seq for e in events[3:5]]


async def test_a_deleted_job_takes_its_events_with_it(store: Store, clock: object) -> None:
    (job,) = await store.enqueue([new_job()])
    (kept,) = await store.enqueue([new_job()])
    await run_through(store, job.id)
    store.clock.advance(3600)  # type: ignore[attr-defined]
    assert await store.prune({JobStatus.COMPLETED: 60}) == 1
    assert await store.events(0, job_id=job.id) == []
    assert [e.job_id for e in await store.events(0)] == [kept.id]


async def test_a_subscriber_gets_the_jobs_changes_in_order_with_the_result_at_the_end(store: Store) -> None:
    feed = Feed(store)
    (job,) = await store.enqueue([new_job()])
    async with feed.job(job.id) as live:
        await run_through(store, job.id)
        await feed.poll()
        events = await live.next(0)
    assert summary(events) == EXPECTED[1:]  # what was committed after it subscribed
    assert events[-1].job is not None
    assert events[-1].job.result == {"ok": True}


async def test_workspace_subscribers_get_their_workspace_only_in_order_and_filtered(store: Store) -> None:
    feed = Feed(store)
    async with (
        feed.workspace("ws") as everything,
        feed.workspace("ws", lambda e: e.subject == "acme") as acme,
        feed.workspace("other") as other,
    ):
        first, second = await store.enqueue([new_job(subject="acme"), new_job(subject="zeta")])
        await store.enqueue([new_job("elsewhere")])
        await run_through(store, first.id)
        await feed.poll()
        seen = await everything.next(0)
        assert [e.seq for e in seen] == sorted(e.seq for e in seen)
        assert all(e.seq > everything.start for e in seen)
        assert {e.job_id for e in seen} == {first.id, second.id}
        assert summary(await acme.next(0)) == EXPECTED
        assert await other.next(0) == []


async def test_the_feed_counts_its_watchers_as_they_come_and_go(store: Store) -> None:
    feed = Feed(store)
    (job,) = await store.enqueue([new_job()])
    async with feed.job(job.id, ends_only=True), feed.job(job.id, ends_only=True):
        assert feed.watching() == (2, 0)
        async with feed.job(job.id), feed.workspace("ws"), feed.workspace("ws"):
            assert feed.watching() == (2, 3)
        assert feed.watching() == (2, 0)
    feed.close()  # closing ends them, but they are open until their watchers leave
    async with feed.job(job.id):
        assert feed.watching() == (0, 1)
    assert feed.watching() == (0, 0)


async def test_long_polls_only_hear_the_end(store: Store) -> None:
    feed = Feed(store)
    (job,) = await store.enqueue([new_job()])
    async with feed.job(job.id, ends_only=True) as ending:
        assert feed.watching() == (1, 0)
        (claimed,) = await store.claim("w", {"k"}, 1, lease=30)
        await feed.poll()
        assert await ending.next(0) == []
        await store.cancel(job.id)
        await feed.poll()
        (event,) = await ending.next(0)
    assert event.status is JobStatus.CANCELLED
    assert claimed.attempt == 1
    assert feed.watching() == (0, 0)


async def test_closing_the_feed_releases_every_long_poll_and_stream(store: Store) -> None:
    feed = Feed(store)
    async with feed.job("a", ends_only=True) as a, feed.workspace("ws") as b:
        feed.close()
        assert (a.closed, b.closed) == (True, True)
        assert await a.next(60) == []  # at once: nothing will come
    async with feed.job("c") as c:
        assert c.closed


async def test_a_subscriber_that_falls_behind_is_dropped_and_says_so(store: Store) -> None:
    feed = Feed(store, backlog=3)
    jobs = await store.enqueue([new_job() for _ in range(2)])
    async with feed.workspace("ws") as slow:
        for job in jobs:
            await store.cancel(job.id)
        await store.enqueue([new_job() for _ in range(2)])
        await feed.poll()
        assert slow.overflowed
        assert slow.closed
        assert len(await slow.next(0)) == 3  # what it had; it resumes from the log with the last id


async def test_the_loop_wakes_on_this_processs_commits_and_idles_without_subscribers(store: Store) -> None:
    async with running_feed(store, interval=3600) as feed:
        (job,) = await store.enqueue([new_job()])
        async with feed.job(job.id, ends_only=True) as ending:
            await store.cancel(job.id)
            store.hub.changed()  # what the queue says after each commit
            assert (await ended(ending)).job_id == job.id
        (later,) = await store.enqueue([new_job()])
        async with feed.job(later.id) as live:
            await store.cancel(later.id)
            store.hub.changed()
            events = await _until_end(live)
        assert {e.job_id for e in events} == {later.id}
        assert events[-1].status is JobStatus.CANCELLED


async def _until_end(live: object) -> list[JobEvent]:
    events: list[JobEvent] = []
    async with asyncio.timeout(5):
        while not events or not events[-1].is_terminal:
            events.extend(await live.next(5))  # type: ignore[attr-defined]
    return events


# -- PostgreSQL: numbers taken in one order, committed in another --------------------------------


class Ticks:
    """A clock the test moves (the feed's hold is measured on it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.postgres
async def test_a_late_commit_reaches_job_subscribers_at_once_and_workspaces_in_order(pg_schema_url: str) -> None:
    store = PostgresStore(pg_schema_url)
    await store.open()
    try:
        feed = Feed(store, clock=Ticks())
        slow_job, fast_job = await store.enqueue([new_job(), new_job()])
        async with (
            feed.workspace("ws") as workspace,
            feed.job(fast_job.id) as fast,
            feed.job(slow_job.id) as slow,
        ):
            async with store.transaction() as conn:
                # Number n goes to a transaction that has not committed; n + 1 commits first.
                await conn.execute(f"UPDATE {store.t('jobs')} SET progress = 10 WHERE id = %s", (slow_job.id,))
                await store.cancel(fast_job.id)
                await feed.poll()
                (event,) = await fast.next(0)
                assert event.status is JobStatus.CANCELLED
                assert await workspace.next(0) == []  # it waits behind the gap
            await feed.poll()  # the transaction committed: the gap fills
            (filled,) = await slow.next(0)
            assert filled.seq < event.seq
            assert [e.seq for e in await workspace.next(0)] == [filled.seq, event.seq]
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_number_that_rolled_back_holds_workspaces_only_until_the_hold_ends(pg_schema_url: str) -> None:
    store = PostgresStore(pg_schema_url)
    await store.open()
    ticks = Ticks()
    try:
        feed = Feed(store, clock=ticks, hold=2.0)
        doomed, kept = await store.enqueue([new_job(), new_job()])
        async with feed.workspace("ws") as workspace:
            async with store.read() as conn, conn.transaction(force_rollback=True):
                await conn.execute(f"UPDATE {store.t('jobs')} SET progress = 10 WHERE id = %s", (doomed.id,))
                await store.cancel(kept.id)
            await feed.poll()
            assert await workspace.next(0) == []
            ticks.now += 1.9
            await feed.poll()
            assert await workspace.next(0) == []
            ticks.now += 0.2
            await feed.poll()
            (event,) = await workspace.next(0)
            assert (event.job_id, event.status) == (kept.id, JobStatus.CANCELLED)
    finally:
        await store.close()
