"""Background duties, each a small service with the same shape: ``await service.run(stop)``.

- `Rescuer`: re-queues jobs whose worker stopped heartbeating (lease expired); a job with no
  attempts left fails with a "lost" error instead.
- `Pruner`: deletes finished jobs once their status's retention has passed, and idempotency keys
  past their time.

Every process that runs workers runs the rescuer; every process runs the pruner. Both are
idempotent, so several processes running them at once is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from jobhouse.aio import wait
from jobhouse.errors import StoreUnavailable
from jobhouse.job import JobStatus
from jobhouse.logs import bind_job, unbind_job

if TYPE_CHECKING:
    from jobhouse.queue import Queue
    from jobhouse.store.base import Store

log = logging.getLogger(__name__)


class Service(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


class Rescuer:
    """Every `interval` seconds, hands the jobs of vanished workers back to the queue."""

    def __init__(self, queue: Queue, interval: float = 1.0) -> None:
        self.queue = queue
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        while not await wait(stop, self.interval):
            await self.sweep()

    async def sweep(self) -> list[str]:
        try:
            rescued = await self.queue.rescue()
        except StoreUnavailable as exc:
            log.warning("rescue sweep failed: %s", exc)
            return []
        if rescued:
            await self._log_lost(rescued)
        return rescued

    async def _log_lost(self, rescued: list[str]) -> None:
        """One line per lost attempt, tagged with its job, by the process that rescued it: a WARNING
        when the job runs again, an ERROR when that was its last attempt (there is no traceback)."""
        try:
            jobs = await self.queue.store.jobs(rescued)
        except StoreUnavailable:
            jobs = {}
        for job_id in rescued:
            job = jobs.get(job_id)
            lost = next((e for e in reversed(job.errors) if e.type == "lost"), None) if job is not None else None
            if job is None or lost is None or lost.attempt is None:  # already pruned, or changed past recognition
                log.warning("job %s: its worker stopped heartbeating; the attempt was lost", job_id)
                continue
            again = lost.attempt < job.max_attempts
            token = bind_job(job, lost.attempt)
            log.log(
                logging.WARNING if again else logging.ERROR,
                "attempt %d of %d was lost (%s); %s",
                lost.attempt,
                job.max_attempts,
                lost.message,
                "the job will run again" if again else "the job failed",
            )
            unbind_job(token)


class Pruner:
    """Every `interval` seconds, deletes finished jobs past their retention, in batches."""

    def __init__(
        self,
        store: Store,
        retention: Mapping[JobStatus, float],
        interval: float = 60.0,
        idempotency_ttl: float = 24 * 3600.0,
    ) -> None:
        self.store = store
        self.retention = dict(retention)
        self.interval = interval
        self.idempotency_ttl = idempotency_ttl

    async def run(self, stop: asyncio.Event) -> None:
        while not await wait(stop, self.interval):
            await self.sweep()

    async def sweep(self, batch: int = 1000) -> int:
        deleted = 0
        try:
            while True:
                pruned = await self.store.prune(self.retention, self.idempotency_ttl, batch)
                deleted += pruned
                if pruned < batch:
                    break
        except StoreUnavailable as exc:
            log.warning("prune failed: %s", exc)
        if deleted:
            log.info("pruned %d finished job(s) past their retention", deleted)
        return deleted


async def run_services(services: Sequence[Service], stop: asyncio.Event) -> None:
    """Run services until `stop` is set; one failing does not stop the others."""
    async with asyncio.TaskGroup() as group:
        for service in services:
            group.create_task(_guarded(service, stop))


async def _guarded(service: Service, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await service.run(stop)
            return
        except Exception:
            log.exception("%s crashed; restarting it in 1s", type(service).__name__)
            await wait(stop, 1.0)
