"""The worker's reporter: handlers' progress and steps, written in batches.

Each running job's latest state replaces the one before it, so a handler that reports in a tight
loop costs one write per batch, not one per call; many jobs share each write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from jobhouse.aio import relay, wait
from jobhouse.errors import StoreUnavailable
from jobhouse.job import Report
from jobhouse.queue import Queue
from jobhouse.retry import STORE_RETRY


class Reporter:
    """Writes the latest progress of each running job, many jobs per write.

    `push` returns a future that resolves once that state is written (or superseded by the
    job's end), so ``async with ctx.step(...)`` returns only when the API shows the step.
    """

    def __init__(self, queue: Queue, lease: float) -> None:
        self._queue = queue
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
        waker = asyncio.create_task(relay(quiet, self._event))
        failures = 0
        try:
            while True:
                if not self._pending:
                    if quiet.is_set():
                        return
                    await self._event.wait()  # set by push, or by `quiet` through the waker
                    self._event.clear()
                    continue
                batch, self._pending = self._pending, {}
                waiters = [self._waiters.pop(job_id, []) for job_id in batch]
                try:
                    await self._queue.report(list(batch.values()), self._lease)
                except StoreUnavailable:
                    if quiet.is_set():
                        return
                    for job_id, report in batch.items():
                        self._pending.setdefault(job_id, report)
                    failures += 1
                    await wait(quiet, STORE_RETRY.delay(failures))
                    continue
                finally:
                    for futures in waiters:
                        _resolve(futures)
                failures = 0
        finally:
            waker.cancel()
            for futures in self._waiters.values():
                _resolve(futures)


def _resolve(futures: Iterable[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
