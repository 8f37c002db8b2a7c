"""The worker pool: claims jobs in batches and runs their handlers, up to `concurrency` at once.

One `Worker` runs three loops on one event loop:

- the claim loop asks the store for as many due jobs as it has free slots, whenever work may
  have arrived (the hub wakes it at once) or at the latest every `poll_interval`;
- the heartbeat loop renews the leases of every running attempt in one write, and stops any
  attempt the store says is no longer ours (cancelled elsewhere, or rescued after a freeze);
- the reporter (`jobhouse.reporter`) writes handlers' progress and steps in batches.

Each attempt runs under `jobhouse.attempt` and ends in at most one fenced `finish` write. On
shutdown the worker stops claiming, lets running jobs finish within `shutdown_grace`, stops the
rest and hands them back to the queue at once; cancelled outright (a second signal), it stops
them all immediately and still hands them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field

from jobhouse.aio import relay, wait
from jobhouse.attempt import Attempt, AttemptRunner, StopReason
from jobhouse.context import JobContext
from jobhouse.errors import StoreUnavailable
from jobhouse.job import Job, Outcome
from jobhouse.queue import Queue
from jobhouse.reporter import Reporter
from jobhouse.retry import STORE_RETRY, Backoff
from jobhouse.threads import HandlerThreads

log = logging.getLogger(__name__)


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
        self._running: dict[str, tuple[Attempt, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._reporter = Reporter(queue, self.options.lease)

    async def run(self, stop: asyncio.Event) -> None:
        threads = HandlerThreads()
        runner = AttemptRunner(
            threads, self.store.clock, self.options.backoff, self.options.cancel_grace, self._on_abandoned
        )
        quiet = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._reporter.run(quiet))
                group.create_task(self._heartbeats(quiet))
                try:
                    await self._claim_loop(stop, runner)
                    await self._drain()
                except asyncio.CancelledError:
                    await asyncio.shield(self._abort())
                    raise
                finally:
                    quiet.set()
        finally:
            threads.shutdown(wait=False)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event, runner: AttemptRunner) -> None:
        kinds = self.registry.names()
        failures = 0
        with self.store.hub.work_waiter() as wake:
            self._wake = wake
            stopper = asyncio.create_task(relay(stop, wake))
            try:
                while not stop.is_set():
                    wake.clear()  # before counting free slots, so no wake-up after the count is missed
                    free = self.options.concurrency - len(self._running)
                    if free > 0:
                        try:
                            jobs = await self.queue.claim(self.id, kinds, free, self.options.lease)
                        except StoreUnavailable as exc:
                            failures += 1
                            pause = STORE_RETRY.delay(failures)
                            log.warning("claim failed (%s); retrying in %.1fs", exc, pause)
                            await wait(stop, pause)
                            continue
                        failures = 0
                        for job in jobs:
                            self._start(job, runner)
                        if len(jobs) == free:
                            continue
                    await wait(wake, self.options.poll_interval)
            finally:
                stopper.cancel()

    def _start(self, job: Job, runner: AttemptRunner) -> None:
        attempt = Attempt(job, JobContext(job, self._reporter.push, asyncio.get_running_loop(), self.queue))
        task = asyncio.create_task(self._execute(attempt, runner), name=f"job-{job.id}")
        self._running[job.id] = (attempt, task)

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, attempt: Attempt, runner: AttemptRunner) -> None:
        job = attempt.job
        try:
            with self.store.hub.running(job.ref, attempt.request_stop):
                outcome = await runner.run(attempt, self.registry[job.kind])
                if outcome is not None:
                    self._reporter.discard(job.id)
                    await self._finish(outcome)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    def _on_abandoned(self, attempt: Attempt) -> None:
        self.abandoned += 1

    async def _finish(self, outcome: Outcome) -> None:
        """Write the outcome, retrying through store outages while the lease may still hold."""
        failures = 0
        deadline = asyncio.get_running_loop().time() + self.options.lease
        while True:
            try:
                (written,) = await self.queue.finish([outcome])
            except StoreUnavailable as exc:
                failures += 1
                pause = STORE_RETRY.delay(failures)
                if asyncio.get_running_loop().time() + pause > deadline:
                    log.error("could not record the end of job %s: %s", outcome.ref.job_id, exc)
                    return
                await asyncio.sleep(pause)
                continue
            if not written:
                ref = outcome.ref
                log.info("job %s attempt %d ended elsewhere; its outcome was discarded", ref.job_id, ref.attempt)
            return

    # -- heartbeats and shutdown -------------------------------------------------------------

    async def _heartbeats(self, quiet: asyncio.Event) -> None:
        while not await wait(quiet, self.options.heartbeat):
            refs = [attempt.job.ref for attempt, _ in self._running.values()]
            if not refs:
                continue
            try:
                await self.queue.heartbeat(self.id, refs, self.options.lease)
            except StoreUnavailable as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _drain(self) -> None:
        """Shutdown: give running jobs `shutdown_grace`, then stop the rest and hand them back."""
        tasks = [task for _, task in self._running.values()]
        if not tasks:
            return
        log.info("waiting up to %gs for %d running job(s)", self.options.shutdown_grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_grace)
        await self._hand_back(pending, wait=True)

    async def _abort(self) -> None:
        """Cancelled outright: stop every running job now, and still hand them back."""
        await self._hand_back({task for _, task in self._running.values()}, wait=False)

    async def _hand_back(self, tasks: set[asyncio.Task[None]], *, wait: bool) -> None:
        if not tasks:
            return
        stopped = [attempt for attempt, task in self._running.values() if task in tasks]
        for attempt in stopped:
            attempt.request_stop(StopReason.SHUTDOWN)
        if wait:
            await asyncio.wait(tasks)
        else:
            for task in tasks:
                task.cancel()
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            async with asyncio.timeout(5):
                released = await self.queue.release([attempt.job.ref for attempt in stopped])
            log.info("handed %d job(s) back to the queue", released)
