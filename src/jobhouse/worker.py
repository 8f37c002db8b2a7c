"""The worker pool: claims jobs in batches and runs their handlers, up to `concurrency` at once.

One `Worker` runs four loops on one event loop:

- the claim loop asks the store for as many due jobs as it has free slots, whenever work may
  have arrived (the hub wakes it at once), when the next scheduled job is due (the store's
  `lineup` says when), or at the latest every `poll_interval`. While its
  jobs are short (under `ahead_below`, 50 ms, on average) it also claims up to `concurrency`
  more, held ready to start the moment a slot frees, so that a slot never waits for a claim's
  commit; a job held ready longer than `ahead_hold` (1 s) goes back to the queue, unstarted,
  for another worker;
- the outcome writer writes the outcomes of every attempt that ended since its last write in
  one fenced `finish`: a slot is free as soon as its handler returns, and the outcome's commit
  shares its transaction with those of the jobs that ended meanwhile (and, on SQLite, with the
  next claim);
- the heartbeat loop renews, in one write, the lease of every attempt the worker holds
  (running, held ready, or with its outcome not yet written), and stops any the store says is
  no longer ours (cancelled elsewhere, or rescued after a freeze);
- the reporter (`jobhouse.reporter`) writes handlers' progress and steps in batches.

Each attempt runs under `jobhouse.attempt` and ends in at most one fenced outcome. On shutdown
the worker stops claiming, hands back the jobs it held ready, lets running jobs finish within
`shutdown_grace`, stops the rest and hands them back to the queue at once; cancelled outright (a
second signal), it stops them all immediately and still hands them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from jobhouse.aio import relay, wait
from jobhouse.attempt import Attempt, AttemptRunner, StopReason
from jobhouse.context import JobContext
from jobhouse.errors import StoreUnavailable
from jobhouse.job import AttemptRef, Job, Outcome
from jobhouse.logs import bind_job
from jobhouse.queue import Queue
from jobhouse.reporter import Reporter
from jobhouse.retry import STORE_RETRY, Backoff
from jobhouse.threads import HandlerThreads

log = logging.getLogger(__name__)

#: How much each handler's duration moves the average the claim-ahead rule reads.
_SMOOTHING = 0.2
#: A timer for a scheduled job fires this much after its time, so the claim finds it due.
_DUE_SLACK = 0.001


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker pool behaves; every duration is in seconds."""

    concurrency: int = 16
    lease: float = 30.0
    heartbeat: float = 5.0
    poll_interval: float = 1.0
    shutdown_grace: float = 10.0
    cancel_grace: float = 0.5
    backoff: Backoff = field(default_factory=Backoff)
    #: Claim ahead while handlers take less than this on average (0: never claim ahead).
    ahead_below: float = 0.05
    #: A job claimed ahead that has not started within this long goes back to the queue.
    ahead_hold: float = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs jobs of the kinds in the queue's registry until `run`'s stop event is set."""

    def __init__(self, queue: Queue, options: WorkerOptions | None = None, *, name: str | None = None) -> None:
        self.queue = queue
        self.store = queue.store
        self.registry = queue.registry
        self.options = options or WorkerOptions()
        self.id = name or worker_name()
        self.abandoned = 0
        #: Attempts whose handlers are running, by job id.
        self._running: dict[str, tuple[Attempt, asyncio.Task[None]]] = {}
        #: Jobs claimed ahead, waiting for a slot, with when they were claimed (loop time).
        self._ahead: deque[tuple[Job, float]] = deque()
        #: Every attempt this worker holds in the store: running, claimed ahead, or ended with
        #: its outcome not yet written. The heartbeat renews them all.
        self._held: dict[str, AttemptRef] = {}
        self._outcomes: list[Outcome] = []
        #: The kind of the job of each outcome not yet written (for the metrics).
        self._kinds: dict[AttemptRef, str] = {}
        self._outcomes_ready = asyncio.Event()
        self.metrics = queue.metrics
        #: How long handlers take, smoothed (None until one ended).
        self._typical: float | None = None
        self._claiming = False
        self._wake = asyncio.Event()
        self._reporter = Reporter(queue, self.options.lease)
        self._runner: AttemptRunner | None = None

    async def run(self, stop: asyncio.Event) -> None:
        threads = HandlerThreads()
        self._runner = AttemptRunner(
            threads, self.store.clock, self.options.backoff, self.options.cancel_grace, self._on_abandoned
        )
        quiet = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._reporter.run(quiet))
                group.create_task(self._heartbeats(quiet))
                group.create_task(self._write_outcomes(quiet))
                try:
                    await self._claim_loop(stop)
                    await self._drain()
                except asyncio.CancelledError:
                    await asyncio.shield(self._abort())
                    raise
                finally:
                    quiet.set()
        finally:
            threads.shutdown(wait=False)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        kinds = self.registry.names()
        failures = 0
        loop = asyncio.get_running_loop()
        self._claiming = True
        with self.store.hub.work_waiter() as wake:
            self._wake = wake
            stopper = asyncio.create_task(relay(stop, wake))
            try:
                while not stop.is_set():
                    wake.clear()  # before counting free slots, so no wake-up after the count is missed
                    await self._give_back_stale(loop.time())
                    wanted = self._wanted()
                    if wanted > 0:
                        try:
                            jobs = await self.queue.claim(self.id, kinds, wanted, self.options.lease)
                        except StoreUnavailable as exc:
                            failures += 1
                            pause = STORE_RETRY.delay(failures)
                            log.warning("claim failed (%s); retrying in %.1fs", exc, pause)
                            await wait(stop, pause)
                            continue
                        failures = 0
                        now = loop.time()
                        for job in jobs:
                            self._held[job.id] = job.ref
                            self._ahead.append((job, now))
                            self.store.hub.hold(job.ref, partial(self._drop_ahead, job.id))
                        self._start_ahead()
                        if len(jobs) == wanted or self.store.lineup.promoted:
                            continue
                    await wait(wake, self._until_due())
            finally:
                self._claiming = False
                stopper.cancel()

    def _until_due(self) -> float:
        """How long to wait for work: until the next scheduled job is due (a timer, so it starts on
        time), at most `poll_interval`; a wake-up (new work, a slot freed) cuts it short."""
        due = self.store.lineup.next_due
        if due is None:
            return self.options.poll_interval
        ahead = (due - self.store.clock.now()).total_seconds() + _DUE_SLACK
        return min(self.options.poll_interval, max(ahead, 0.0))

    def _wanted(self) -> int:
        """How many jobs to claim: one per free slot, and while jobs are short, a slot's worth ahead."""
        concurrency = self.options.concurrency
        ahead = concurrency if self._typical is not None and self._typical < self.options.ahead_below else 0
        return concurrency + ahead - len(self._running) - len(self._ahead)

    def _start_ahead(self) -> None:
        """Start jobs claimed ahead while there are free slots."""
        while self._ahead and len(self._running) < self.options.concurrency and self._claiming:
            job, _ = self._ahead.popleft()
            self._start(job)

    def _drop_ahead(self, job_id: str) -> None:
        """A job claimed ahead was cancelled or is no longer ours: it will not start here."""
        for entry in self._ahead:
            if entry[0].id == job_id:
                self._ahead.remove(entry)
                self._held.pop(job_id, None)
                self.store.hub.let_go(job_id)
                return

    async def _give_back_stale(self, now: float) -> None:
        """Hand back the jobs claimed ahead that found no slot in time (the jobs became long)."""
        stale = []
        while self._ahead and now - self._ahead[0][1] > self.options.ahead_hold:
            stale.append(self._ahead.popleft()[0])
        if stale:
            # The running jobs are not short after all: claim ahead again only once one has ended
            # and said how long they take, not at once (which would claim the same jobs again).
            self._typical = None
            await self._give_back(stale)

    async def _give_back(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._held.pop(job.id, None)
            self.store.hub.let_go(job.id)
        with contextlib.suppress(StoreUnavailable):  # then their leases lapse and the rescuer requeues them
            await self.queue.release([job.ref for job in jobs], unstarted=True)

    def _start(self, job: Job) -> None:
        self.metrics.started(job.kind, (self.store.clock.now() - job.run_at).total_seconds())
        attempt = Attempt(job, JobContext(job, self._reporter.push, asyncio.get_running_loop(), self.queue))
        task = asyncio.create_task(self._execute(attempt), name=f"job-{job.id}")
        self._running[job.id] = (attempt, task)

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, attempt: Attempt) -> None:
        job = attempt.job
        bind_job(job)  # this task's own context: its log lines, and its handler's, name the attempt
        assert self._runner is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome: Outcome | None = None
        try:
            with self.store.hub.running(job.ref, attempt.request_stop):
                outcome = await self._runner.run(attempt, self.registry[job.kind])
        finally:
            self._running.pop(job.id, None)
            took = loop.time() - started
            self.metrics.ran(job.kind, took)
            self._typical = took if self._typical is None else self._typical + _SMOOTHING * (took - self._typical)
            if outcome is None:  # stopped from outside: the job was already changed
                self._held.pop(job.id, None)
            else:
                self._reporter.discard(job.id)
                self._outcomes.append(outcome)
                self._kinds[outcome.ref] = job.kind
                self._outcomes_ready.set()
            self._start_ahead()
            self._wake.set()

    def _on_abandoned(self, attempt: Attempt) -> None:
        self.abandoned += 1

    async def _write_outcomes(self, quiet: asyncio.Event) -> None:
        """Write every outcome that is ready in one batch, until the worker is quiet and all are written."""
        ready = self._outcomes_ready
        stopper = asyncio.create_task(relay(quiet, ready))
        try:
            while True:
                await ready.wait()
                ready.clear()
                while self._outcomes:
                    batch, self._outcomes = self._outcomes, []
                    await self._finish(batch)
                if quiet.is_set():
                    return
        finally:
            stopper.cancel()

    async def _finish(self, outcomes: list[Outcome]) -> None:
        """Write outcomes, retrying through store outages while their leases may still hold."""
        failures = 0
        deadline = asyncio.get_running_loop().time() + self.options.lease
        kinds = [self._kinds.pop(outcome.ref, "") for outcome in outcomes]
        try:
            while True:
                try:
                    written = await self.queue.finish(outcomes, kinds)
                except StoreUnavailable as exc:
                    failures += 1
                    pause = STORE_RETRY.delay(failures)
                    if asyncio.get_running_loop().time() + pause > deadline:
                        log.error("could not record the end of %d job(s): %s", len(outcomes), exc)
                        return
                    await asyncio.sleep(pause)
                    continue
                for outcome, ok in zip(outcomes, written, strict=True):
                    if not ok:
                        ref = outcome.ref
                        log.info(
                            "job %s attempt %d ended elsewhere; its outcome was discarded", ref.job_id, ref.attempt
                        )
                return
        finally:
            for outcome in outcomes:
                if self._held.get(outcome.ref.job_id) == outcome.ref:
                    del self._held[outcome.ref.job_id]

    # -- heartbeats and shutdown -------------------------------------------------------------

    async def _heartbeats(self, quiet: asyncio.Event) -> None:
        while not await wait(quiet, self.options.heartbeat):
            refs = list(self._held.values())
            if not refs:
                continue
            try:
                await self.queue.heartbeat(self.id, refs, self.options.lease)
            except StoreUnavailable as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _drain(self) -> None:
        """Shutdown: hand back what was claimed ahead, give running jobs `shutdown_grace`, then stop
        the rest and hand them back."""
        await self._give_back([job for job, _ in self._ahead])
        self._ahead.clear()
        tasks = [task for _, task in self._running.values()]
        if not tasks:
            return
        log.info("waiting up to %gs for %d running job(s)", self.options.shutdown_grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_grace)
        await self._hand_back(pending, wait=True)

    async def _abort(self) -> None:
        """Cancelled outright: stop every running job now, and still hand them back and write the
        outcomes that are ready."""
        ahead = [job for job, _ in self._ahead]
        self._ahead.clear()
        await self._hand_back({task for _, task in self._running.values()}, wait=False)
        await self._give_back(ahead)
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                async with asyncio.timeout(5):
                    await self.queue.finish(outcomes, [self._kinds.pop(outcome.ref, "") for outcome in outcomes])

    async def _hand_back(self, tasks: set[asyncio.Task[None]], *, wait: bool) -> None:
        stopped = [attempt for attempt, task in self._running.values() if task in tasks]
        refs = [attempt.job.ref for attempt in stopped]
        if not refs:
            return
        for attempt in stopped:
            attempt.request_stop(StopReason.SHUTDOWN)
        if wait:
            await asyncio.wait(tasks)
        else:
            for task in tasks:
                task.cancel()
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            async with asyncio.timeout(5):
                released = await self.queue.release(refs)
            log.info("handed %d job(s) back to the queue", released)
