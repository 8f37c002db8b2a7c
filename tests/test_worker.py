"""The worker pool, in-process on a real SQLite store; handlers and tests meet on asyncio events."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from jobhouse import JobContext, Registry
from jobhouse.clock import ManualClock
from jobhouse.errors import ConfigurationError, JobCancelled
from jobhouse.job import Job, JobStatus, StepStatus
from jobhouse.queue import Queue
from jobhouse.registry import Kind
from jobhouse.retry import Backoff
from jobhouse.service import JobService
from jobhouse.store.base import Store
from jobhouse.worker import Worker, WorkerOptions
from tests.helpers import running_feed

FAST = WorkerOptions(
    concurrency=4,
    lease=30,
    heartbeat=0.05,
    poll_interval=0.05,
    shutdown_grace=0.5,
    cancel_grace=0.1,
    backoff=Backoff(0, 0, 0),
)


@dataclass
class Harness:
    store: Store
    registry: Registry
    options: WorkerOptions = FAST
    events: dict[str, asyncio.Event] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)
    interrupted_threads: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    worker: Worker | None = None

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    @property
    def queue(self) -> Queue:
        return Queue(self.store, self.registry)

    async def start(self, options: WorkerOptions | None = None) -> Worker:
        self.worker = Worker(self.queue, options or self.options, name="test-worker")
        self.task = asyncio.create_task(self.worker.run(self.stop))
        return self.worker

    async def shutdown(self) -> None:
        self.stop.set()
        if self.task is not None and not self.task.done():
            await asyncio.wait_for(self.task, 10)

    async def create(self, kind: str, **input: Any) -> Job:
        return await self.queue.enqueue(kind, workspace="ws", input=input)

    async def finished(self, job: Job, timeout: float = 10) -> Job:
        async with running_feed(self.store) as feed:
            done = await JobService(self.queue, feed).wait(job.id, "ws", timeout)
        assert done.is_terminal, done
        return done


@pytest.fixture
async def harness(store: Store) -> AsyncIterator[Harness]:
    registry = Registry()
    h = Harness(store, registry)

    @registry.kind("steps", steps=[("one", "One"), ("two", "Two")], max_attempts=1)
    async def steps(ctx: JobContext) -> dict[str, Any]:
        h.runs[ctx.id] += 1
        async with ctx.step("one"):
            h.event(f"in-one {ctx.id}").set()
            await h.event(f"go {ctx.id}").wait()
        async with ctx.step("two"):
            await ctx.progress(80)
            await ctx.progress(60)
        return {"ok": ctx.input.get("n")}

    @registry.kind("hold", max_attempts=1)
    async def hold(ctx: JobContext) -> str:
        h.runs[ctx.id] += 1
        h.event(f"started {ctx.id}").set()
        try:
            await h.event(f"go {ctx.id}").wait()
        except asyncio.CancelledError:
            h.event(f"interrupted {ctx.id}").set()
            raise
        h.event(f"after {ctx.id}").set()
        return "released"

    @registry.kind("flaky", max_attempts=3)
    async def flaky(ctx: JobContext) -> int:
        h.runs[ctx.id] += 1
        if ctx.attempt < 2:
            raise RuntimeError(f"attempt {ctx.attempt} failed")
        return ctx.attempt

    @registry.kind("threaded", steps=[("work", "Working")], max_attempts=1)
    def threaded(ctx: JobContext) -> dict[str, Any]:
        with ctx.step("work"):
            ctx.progress(50)
        return {"thread": threading.current_thread().name}

    @registry.kind("slow", timeout=0.2, max_attempts=1)
    async def slow(ctx: JobContext) -> None:
        await asyncio.Event().wait()

    @registry.kind("unjsonable", max_attempts=1)
    async def unjsonable(ctx: JobContext) -> object:
        return {1, 2, 3}

    @registry.kind("type-error", max_attempts=1)
    async def type_error(ctx: JobContext) -> None:
        raise TypeError("wrong type inside the handler")

    @registry.kind("stubborn", max_attempts=1)
    async def stubborn(ctx: JobContext) -> str:
        """Swallows its cancellation and goes on until the test lets it go."""
        h.event(f"started {ctx.id}").set()
        while not h.event(f"go {ctx.id}").is_set():
            try:
                await h.event(f"go {ctx.id}").wait()
            except asyncio.CancelledError:
                h.event(f"ignored {ctx.id}").set()
        h.event(f"after {ctx.id}").set()
        return "late"

    @registry.kind("spin", max_attempts=1, timeout=0.3)
    def spin(ctx: JobContext) -> str:
        """A plain function that never looks at ctx.cancelled."""
        h.runs[ctx.id] += 1
        try:
            while True:
                sum(range(100))
        except JobCancelled:
            h.interrupted_threads.add(ctx.id)
            raise

    @registry.kind("swallow", max_attempts=1, timeout=0.3)
    def swallow(ctx: JobContext) -> str:
        """A plain function whose loop catches every Exception: the stop gets through all the same."""
        while True:
            try:
                sum(range(100))
            except Exception:
                h.runs["swallowed"] += 1
            finally:
                h.interrupted_threads.add(ctx.id)

    @registry.kind("quick", max_attempts=1)
    async def quick(ctx: JobContext) -> int:
        h.runs[ctx.id] += 1
        return 1

    @registry.kind("spawn", max_attempts=1)
    async def spawn(ctx: JobContext) -> str:
        """Queues a `quick` job with the priority and start time of its input."""
        at = datetime.fromisoformat(ctx.input["at"])
        return (await ctx.enqueue("quick", priority=ctx.input["priority"], run_at=at)).id

    @registry.kind("spawn-sync", max_attempts=1)
    def spawn_sync(ctx: JobContext) -> str:
        at = datetime.fromisoformat(ctx.input["at"])
        return ctx.enqueue_sync("quick", priority=ctx.input["priority"], run_at=at).id

    yield h
    for event in h.events.values():
        event.set()
    await h.shutdown()


@pytest.mark.parametrize("kind", ["spawn", "spawn-sync"])
async def test_a_handler_queues_a_job_with_a_priority_and_a_start_time(harness: Harness, kind: str) -> None:
    await harness.start()
    at = (harness.store.clock.now() + timedelta(hours=1)).replace(microsecond=0)
    spawner = await harness.finished(await harness.create(kind, at=at.isoformat(), priority=7))
    assert spawner.status is JobStatus.COMPLETED, spawner.error
    spawned = await harness.store.get(spawner.result)
    assert spawned is not None
    assert (spawned.workspace, spawned.kind, spawned.status) == ("ws", "quick", JobStatus.QUEUED)
    assert (spawned.priority, spawned.scheduled_at) == (7, at)


async def test_steps_and_progress_are_visible_as_the_handler_reports_them(harness: Harness) -> None:
    await harness.start()
    job = await harness.create("steps", n=7)
    await harness.event(f"in-one {job.id}").wait()

    running = await harness.store.get(job.id)
    assert running is not None
    assert running.status is JobStatus.RUNNING
    assert [s.status for s in running.steps] == [StepStatus.RUNNING, StepStatus.PENDING]
    assert running.current_step == "One"
    assert running.progress == 0

    harness.event(f"go {job.id}").set()
    done = await harness.finished(job)
    assert done.status is JobStatus.COMPLETED
    assert done.result == {"ok": 7}
    assert done.progress == 100
    assert [s.status for s in done.steps] == [StepStatus.COMPLETED, StepStatus.COMPLETED]


async def test_no_more_than_concurrency_jobs_run_at_once(harness: Harness) -> None:
    await harness.start(_with(concurrency=2))
    jobs = [await harness.create("hold") for _ in range(3)]
    await harness.event(f"started {jobs[0].id}").wait()
    await harness.event(f"started {jobs[1].id}").wait()

    third = await harness.store.get(jobs[2].id)
    assert third is not None
    assert third.status is JobStatus.QUEUED
    assert not harness.event(f"started {jobs[2].id}").is_set()

    harness.event(f"go {jobs[0].id}").set()
    await harness.event(f"started {jobs[2].id}").wait()
    for job in jobs[1:]:
        harness.event(f"go {job.id}").set()
    for job in jobs:
        assert (await harness.finished(job)).status is JobStatus.COMPLETED


async def test_while_jobs_are_short_the_worker_claims_ahead_and_gives_back_what_waits(harness: Harness) -> None:
    await harness.start(_with(concurrency=1, ahead_hold=0.2))
    for job in [await harness.create("quick") for _ in range(3)]:  # short jobs: now it claims ahead
        assert (await harness.finished(job)).status is JobStatus.COMPLETED
    first, second = await harness.queue.enqueue_many([harness.queue.new_job("hold", workspace="ws") for _ in range(2)])
    await harness.event(f"started {first.id}").wait()

    # The second was claimed with the first, to start when a slot frees; the first holds the only
    # slot, so the second goes back to the queue, unstarted, as if it had never been claimed.
    waited = await _until(harness.store, second.id, lambda job: job.status is JobStatus.QUEUED and job.attempt == 0)
    assert waited.started_at is None
    assert not harness.event(f"started {second.id}").is_set()

    harness.event(f"go {first.id}").set()
    await harness.event(f"started {second.id}").wait()
    harness.event(f"go {second.id}").set()
    done = await harness.finished(second)
    assert (done.status, done.attempt) == (JobStatus.COMPLETED, 1)
    assert harness.runs[second.id] == 1


async def test_a_job_cancelled_while_claimed_ahead_never_starts(harness: Harness) -> None:
    await harness.start(_with(concurrency=1, ahead_hold=30))
    for job in [await harness.create("quick") for _ in range(3)]:
        await harness.finished(job)
    first, second = await harness.queue.enqueue_many([harness.queue.new_job("hold", workspace="ws") for _ in range(2)])
    await harness.event(f"started {first.id}").wait()
    await _until(harness.store, second.id, lambda job: job.status is JobStatus.RUNNING)

    cancelled = await harness.queue.cancel(second.id)
    assert cancelled.status is JobStatus.CANCELLED
    harness.event(f"go {first.id}").set()
    assert (await harness.finished(first)).status is JobStatus.COMPLETED
    third = await harness.create("quick")  # runs after the first: the cancelled one took no slot
    assert (await harness.finished(third)).status is JobStatus.COMPLETED
    assert harness.runs[second.id] == 0
    assert (await harness.finished(second)).status is JobStatus.CANCELLED


async def _until(store: Store, job_id: str, condition: Callable[[Job], bool], timeout: float = 10) -> Job:
    """The job once `condition` holds (read every 10 ms: the state is in the store, not an event)."""
    async with asyncio.timeout(timeout):
        while True:
            job = await store.get(job_id)
            assert job is not None
            if condition(job):
                return job
            await asyncio.sleep(0.01)


async def test_a_failing_attempt_is_retried_and_its_error_kept(harness: Harness) -> None:
    await harness.start()
    job = await harness.create("flaky")

    done = await harness.finished(job)

    assert done.status is JobStatus.COMPLETED
    assert done.result == 2
    assert done.attempt == 2
    assert [(e.message, e.type, e.attempt) for e in done.errors] == [("attempt 1 failed", "RuntimeError", 1)]


async def test_plain_functions_run_in_a_thread(harness: Harness) -> None:
    await harness.start()
    done = await harness.finished(await harness.create("threaded"))
    assert done.status is JobStatus.COMPLETED
    assert done.result["thread"].startswith("jobhouse-handler")
    assert [s.status for s in done.steps] == [StepStatus.COMPLETED]


async def test_an_attempt_past_its_timeout_fails(harness: Harness) -> None:
    await harness.start()
    done = await harness.finished(await harness.create("slow"))
    assert done.status is JobStatus.FAILED
    assert done.error is not None
    assert done.error.type == "timeout"
    assert "0.2s" in done.error.message


async def test_a_result_that_is_not_json_fails_the_job(harness: Harness) -> None:
    await harness.start()
    done = await harness.finished(await harness.create("unjsonable"))
    assert done.status is JobStatus.FAILED
    assert done.error is not None
    assert done.error.type == "InvalidResult"


async def test_a_type_error_in_the_handler_is_reported_as_itself(harness: Harness) -> None:
    await harness.start()
    done = await harness.finished(await harness.create("type-error"))
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("TypeError", "wrong type inside the handler")


async def test_cancel_interrupts_the_handler_where_it_waits(harness: Harness) -> None:
    await harness.start()
    job = await harness.create("hold")
    await harness.event(f"started {job.id}").wait()

    await harness.queue.cancel(job.id)

    await asyncio.wait_for(harness.event(f"interrupted {job.id}").wait(), 1)
    assert not harness.event(f"after {job.id}").is_set()
    assert (await harness.finished(job)).status is JobStatus.CANCELLED


async def test_a_lost_lease_stops_the_handler_and_discards_its_result(harness: Harness, clock: ManualClock) -> None:
    await harness.start(_with(lease=10, heartbeat=60))
    job = await harness.create("hold")
    await harness.event(f"started {job.id}").wait()
    clock.advance(11)

    assert await harness.queue.rescue() == [job.id]

    await asyncio.wait_for(harness.event(f"interrupted {job.id}").wait(), 1)
    requeued = await harness.store.get(job.id)
    assert requeued is not None
    assert requeued.errors[0].type == "lost"


async def test_shutdown_lets_running_jobs_finish_within_the_grace_period(harness: Harness) -> None:
    await harness.start(_with(shutdown_grace=10))
    job = await harness.create("hold")
    await harness.event(f"started {job.id}").wait()

    harness.stop.set()
    harness.event(f"go {job.id}").set()
    await harness.shutdown()

    assert (await harness.store.get(job.id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_shutdown_hands_unfinished_jobs_back_to_the_queue(harness: Harness) -> None:
    await harness.start(_with(shutdown_grace=0.1))
    job = await harness.create("hold")
    await harness.event(f"started {job.id}").wait()

    await harness.shutdown()

    assert harness.event(f"interrupted {job.id}").is_set()
    back = await harness.store.get(job.id)
    assert back is not None
    assert back.status is JobStatus.QUEUED
    assert back.worker is None


async def test_every_job_runs_exactly_once(harness: Harness) -> None:
    await harness.start(_with(concurrency=8))
    jobs = [await harness.create("quick") for _ in range(200)]
    for job in jobs:
        assert (await harness.finished(job)).status is JobStatus.COMPLETED
    assert harness.runs == Counter({job.id: 1 for job in jobs})


async def test_a_handler_that_ignores_its_cancel_is_abandoned_and_its_slot_reused(harness: Harness) -> None:
    worker = await harness.start(_with(concurrency=1))
    job = await harness.create("stubborn")
    await harness.event(f"started {job.id}").wait()

    await harness.queue.cancel(job.id)

    await harness.event(f"ignored {job.id}").wait()
    other = await harness.create("quick")
    assert (await harness.finished(other)).status is JobStatus.COMPLETED
    assert worker.abandoned == 1
    harness.event(f"go {job.id}").set()
    await harness.event(f"after {job.id}").wait()
    final = await harness.store.get(job.id)
    assert final is not None
    assert final.status is JobStatus.CANCELLED
    assert final.result is None


async def test_a_thread_past_its_timeout_is_interrupted_inside(harness: Harness) -> None:
    worker = await harness.start(_with(concurrency=1))
    job = await harness.create("spin")

    done = await harness.finished(job)

    assert done.status is JobStatus.FAILED
    assert done.error is not None
    assert done.error.type == "timeout"
    assert harness.interrupted_threads == {job.id}
    assert worker.abandoned == 0
    assert (await harness.finished(await harness.create("quick"))).status is JobStatus.COMPLETED


async def test_except_exception_in_a_handler_does_not_swallow_its_stop(harness: Harness) -> None:
    worker = await harness.start(_with(concurrency=1))
    job = await harness.create("swallow")

    done = await harness.finished(job)

    assert done.error is not None
    assert done.error.type == "timeout"
    assert harness.runs["swallowed"] == 0  # JobCancelled is no Exception
    assert worker.abandoned == 0  # it stopped when interrupted, within the grace period


async def test_cancelling_the_worker_outright_hands_its_jobs_back(harness: Harness) -> None:
    await harness.start()
    job = await harness.create("hold")
    await harness.event(f"started {job.id}").wait()
    assert harness.task is not None

    harness.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await harness.task

    assert harness.event(f"interrupted {job.id}").is_set()
    back = await harness.store.get(job.id)
    assert back is not None
    assert back.status is JobStatus.QUEUED


def test_registry_refuses_bad_kinds() -> None:
    registry = Registry()

    async def handler(ctx: JobContext) -> None:
        return None

    registry.add(Kind("a", handler, "A"))
    with pytest.raises(ConfigurationError, match="twice"):
        registry.add(Kind("a", handler, "A"))
    with pytest.raises(ConfigurationError, match="max_attempts"):
        registry.add(Kind("b", handler, "B", max_attempts=0))
    with pytest.raises(ConfigurationError, match="unique"):
        registry.kind("c", steps=[("x", "X"), ("x", "Y")])(handler)


def _with(**changes: Any) -> WorkerOptions:
    return WorkerOptions(**{**{f: getattr(FAST, f) for f in FAST.__dataclass_fields__}, **changes})
