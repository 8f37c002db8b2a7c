"""The worker pool: claims jobs in batches and runs their handlers, up to `concurrency` at once.

One `Worker` runs three loops on one event loop:

- the claim loop asks the store for as many due jobs as it has free slots, whenever work may
  have arrived (the hub wakes it at once) or at the latest every `poll_interval`;
- the heartbeat loop renews the leases of every running attempt in one write, and stops any
  attempt the store says is no longer ours (cancelled elsewhere, or rescued after a freeze);
- the reporter writes handlers' progress and steps, coalesced per job, in batches.

Each attempt ends in exactly one fenced `finish` write. A cancel stops the handler's task at once
(async handlers see `CancelledError` where they wait; threads see `ctx.cancelled`). On shutdown
the worker stops claiming, lets running jobs finish within `shutdown_grace`, and hands the rest
back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import orjson

from jobhouse.context import JobContext
from jobhouse.errors import JobCancelled, StoreUnavailable
from jobhouse.job import AttemptRef, Failure, Job, Outcome, Report, StepStatus, Verdict, settle_steps
from jobhouse.registry import Kind, Registry
from jobhouse.retry import Backoff
from jobhouse.store.base import Store

log = logging.getLogger(__name__)
_MESSAGE_MAX = 4000


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker pool behaves; every duration is in seconds."""

    concurrency: int = 16
    lease: float = 30.0
    heartbeat: float = 5.0
    poll_interval: float = 1.0
    shutdown_grace: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(slots=True)
class _Running:
    job: Job
    ctx: JobContext
    task: asyncio.Task[None]
    #: Why the task was cancelled: "stopped" (cancel or lost lease) or "shutdown".
    reason: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs jobs of the kinds in `registry` until `run`'s stop event is set."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        options: WorkerOptions | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.options = options or WorkerOptions()
        self.id = name or worker_name()
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        self._threads: ThreadPoolExecutor | None = None
        self._reporter = _Reporter(store, self.options.lease)

    @property
    def running(self) -> list[Job]:
        return [r.job for r in self._running.values()]

    async def run(self, stop: asyncio.Event) -> None:
        self._threads = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="jobhouse-handler")
        quiet = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._reporter.run(quiet))
                group.create_task(self._heartbeats(quiet))
                try:
                    await self._claim_loop(stop)
                    await self._drain()
                finally:
                    quiet.set()
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        kinds = self.registry.names()
        pause = 0.0
        with self.store.hub.work_waiter() as wake:
            self._wake = wake
            relay = asyncio.create_task(_relay(stop, wake))
            try:
                while not stop.is_set():
                    free = self.options.concurrency - len(self._running)
                    if free > 0:
                        wake.clear()
                        try:
                            jobs = await self.store.claim(self.id, kinds, free, self.options.lease)
                        except StoreUnavailable as exc:
                            pause = min(max(pause * 2, 0.1), 5.0)
                            log.warning("claim failed (%s); retrying in %.1fs", exc, pause)
                            await _wait(stop, pause)
                            continue
                        pause = 0.0
                        for job in jobs:
                            self._start(job)
                        if len(jobs) == free:
                            continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.options.poll_interval)
            finally:
                relay.cancel()

    def _start(self, job: Job) -> None:
        ctx = JobContext(job, self._reporter.push, asyncio.get_running_loop())
        task = asyncio.create_task(self._execute(job, ctx), name=f"job-{job.id}")
        self._running[job.id] = _Running(job, ctx, task)

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, job: Job, ctx: JobContext) -> None:
        entry = self._running[job.id]

        def stop() -> None:
            if entry.reason is None:
                entry.reason = "stopped"
            ctx.mark_cancelled()
            entry.task.cancel()

        try:
            with self.store.hub.running(job.ref, stop):
                outcome = await self._attempt(job, self.registry[job.kind], ctx, entry)
                if outcome is not None:
                    self._reporter.discard(job.id)
                    await self._finish(outcome)
        except asyncio.CancelledError:
            if entry.reason is None:
                raise
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _attempt(self, job: Job, kind: Kind, ctx: JobContext, entry: _Running) -> Outcome | None:
        loop = asyncio.get_running_loop()
        timeout = asyncio.timeout(kind.timeout)
        failure: Failure | None = None
        try:
            async with timeout:
                if kind.is_async:
                    result = await kind.handler(ctx)
                else:
                    call = contextvars.copy_context().run
                    result = await loop.run_in_executor(self._threads, call, kind.handler, ctx)
            failure = _unserializable(result)
        except asyncio.CancelledError:
            if entry.reason is None:
                raise
            return None
        except JobCancelled:
            if entry.reason is not None or ctx.cancelled:
                return None
            failure = Failure("Handler raised JobCancelled", "JobCancelled")
        except TimeoutError as exc:
            if timeout.expired():
                ctx.mark_cancelled()
                failure = Failure(f"Attempt timed out after {kind.timeout:g}s", "timeout")
            else:
                failure = _failure(exc)
        except Exception as exc:
            failure = _failure(exc)
        if failure is None:
            return Outcome(
                ref=job.ref,
                verdict=Verdict.COMPLETED,
                progress=100,
                steps=settle_steps(ctx.steps, StepStatus.COMPLETED),
                result=result,
                result_type=kind.result_type,
            )
        now = self.store.clock.now()
        failure = Failure(failure.message[:_MESSAGE_MAX], failure.type, job.attempt, now)
        retry = job.attempt < job.max_attempts
        delay = self.options.backoff.delay(job.attempt)
        return Outcome(
            ref=job.ref,
            verdict=Verdict.RETRY if retry else Verdict.FAILED,
            progress=ctx.current_progress,
            steps=settle_steps(ctx.steps, StepStatus.FAILED),
            failure=failure,
            retry_at=now + timedelta(seconds=delay) if retry else None,
        )

    async def _finish(self, outcome: Outcome) -> None:
        """Write the outcome, retrying through store outages while the lease may still hold."""
        pause = 0.1
        deadline = asyncio.get_running_loop().time() + self.options.lease
        while True:
            try:
                (written,) = await self.store.finish([outcome])
            except StoreUnavailable as exc:
                if asyncio.get_running_loop().time() + pause > deadline:
                    log.error("could not record the end of job %s: %s", outcome.ref.job_id, exc)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            if not written:
                ref = outcome.ref
                log.info("job %s attempt %d ended elsewhere; its outcome was discarded", ref.job_id, ref.attempt)
            return

    # -- heartbeats and shutdown -------------------------------------------------------------

    async def _heartbeats(self, quiet: asyncio.Event) -> None:
        while not quiet.is_set():
            await _wait(quiet, self.options.heartbeat)
            refs = [r.job.ref for r in self._running.values()]
            if not refs or quiet.is_set():
                continue
            try:
                lost = await self.store.heartbeat(self.id, refs, self.options.lease)
            except StoreUnavailable as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            self.store.hub.stopped(lost)

    async def _drain(self) -> None:
        tasks = [r.task for r in self._running.values()]
        if not tasks:
            return
        log.info("waiting up to %gs for %d running job(s)", self.options.shutdown_grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_grace)
        if not pending:
            return
        handed_back: list[AttemptRef] = []
        for entry in list(self._running.values()):
            if entry.task in pending:
                entry.reason = "shutdown"
                entry.ctx.mark_cancelled()
                entry.task.cancel()
                handed_back.append(entry.job.ref)
        await asyncio.wait(pending)
        with contextlib.suppress(StoreUnavailable):
            released = await self.store.release(handed_back)
            log.info("handed %d job(s) back to the queue", released)


class _Reporter:
    """Writes the latest progress of each running job, many jobs per write.

    `push` returns a future that resolves once that state is written (or superseded by the
    job's end), so ``async with ctx.step(...)`` returns only when the API shows the step.
    """

    def __init__(self, store: Store, lease: float) -> None:
        self._store = store
        self._lease = lease
        self._pending: dict[str, Report] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._event = asyncio.Event()

    def push(self, report: Report) -> asyncio.Future[None]:
        job_id = report.ref.job_id
        self._pending[job_id] = report
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        self._event.set()
        return future

    def discard(self, job_id: str) -> None:
        self._pending.pop(job_id, None)
        _resolve(self._waiters.pop(job_id, ()))

    async def run(self, quiet: asyncio.Event) -> None:
        relay = asyncio.create_task(_relay(quiet, self._event))
        try:
            while True:
                await self._event.wait()
                self._event.clear()
                if not self._pending:
                    if quiet.is_set():
                        return
                    continue
                batch, self._pending = self._pending, {}
                waiters = [self._waiters.pop(job_id, []) for job_id in batch]
                try:
                    lost = await self._store.report(list(batch.values()), self._lease)
                except StoreUnavailable:
                    if quiet.is_set():
                        return
                    for job_id, report in batch.items():
                        self._pending.setdefault(job_id, report)
                    await asyncio.sleep(0.5)
                    self._event.set()
                    continue
                finally:
                    for futures in waiters:
                        _resolve(futures)
                self._store.hub.stopped(lost)
        finally:
            relay.cancel()
            for futures in self._waiters.values():
                _resolve(futures)


def _resolve(futures: Iterable[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _unserializable(result: object) -> Failure | None:
    try:
        orjson.dumps(result)
    except orjson.JSONEncodeError as exc:
        return Failure(f"Result is not JSON-serializable: {exc}", "InvalidResult")
    return None


def _failure(exc: BaseException) -> Failure:
    message = str(exc) or type(exc).__name__
    return Failure(message, type(exc).__name__)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
