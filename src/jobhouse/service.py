"""What clients can do with jobs, independent of how they ask: HTTP, the CLI, or Python.

`JobService` makes jobs through the `Queue` (known kind, valid input, quotas, idempotency keys)
and reads them from the store; it also owns the long-poll: wait for a job to end without holding
anything but a subscription to the change feed. Kinds may be rate-limited per workspace (source
syncs are): a token bucket per workspace, in this process's memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from jobhouse.errors import JobNotFound, RateLimited
from jobhouse.feed import Feed
from jobhouse.ids import parse_id
from jobhouse.job import Job, NewJob
from jobhouse.queue import Queue
from jobhouse.store.base import Idempotency, JobPage, JobQuery

#: The longest a single long-poll may wait, in seconds (the default of setting `long_poll_max`).
MAX_WAIT = 120.0


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `per_minute` jobs a minute on average, and `burst` at once after a quiet spell."""

    per_minute: float
    burst: int


class Buckets:
    """A token bucket per workspace: `rate.burst` tokens, refilled at `rate.per_minute` a minute."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # workspace -> (tokens, when counted)

    def take(self, workspace: str) -> float:
        """Take a token of `workspace`'s bucket: 0 when there was one, else the seconds until there is."""
        now = self.clock()
        per_second = self.rate.per_minute / 60
        tokens, then = self._buckets.get(workspace, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - then) * per_second)
        if tokens >= 1:
            self._buckets[workspace] = (tokens - 1, now)
            return 0.0
        self._buckets[workspace] = (tokens, now)
        return (1 - tokens) / per_second


class JobService:
    """Create, read, list, wait for, cancel, retry and delete jobs, on behalf of one workspace at a time."""

    def __init__(
        self,
        queue: Queue,
        feed: Feed,
        *,
        max_queued: int = 0,
        idempotency_ttl: float = 24 * 3600.0,
        long_poll_max: float = MAX_WAIT,
        rates: Mapping[str, Rate] | None = None,
    ) -> None:
        self.queue = queue
        #: The kinds whose creation is rate-limited per workspace, and their buckets.
        self.buckets = {kind: Buckets(rate) for kind, rate in (rates or {}).items() if rate.per_minute > 0}
        self.feed = feed
        self.long_poll_max = long_poll_max
        self.store = queue.store
        self.max_queued = max_queued
        self.idempotency_ttl = idempotency_ttl

    async def submit(
        self, new: NewJob, *, idempotency_key: str | None = None, fingerprint: str = ""
    ) -> tuple[Job, bool]:
        """Create a job for a client (made by `Queue.new_job`): the workspace's quota applies, and an
        idempotency key makes a retried request return the job the first one made. The job, and
        whether it is new. A rate-limited kind over its rate is `RateLimited` (each request takes a
        token, replays too)."""
        buckets = self.buckets.get(new.kind)
        if buckets is not None and (wait := buckets.take(new.workspace)):
            raise RateLimited(
                f"Too many {new.kind} jobs in this workspace: at most {buckets.rate.per_minute:g} a minute "
                f"(bursts of {buckets.rate.burst}); try again in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )
        idempotency = None
        if idempotency_key is not None:
            idempotency = Idempotency(idempotency_key, fingerprint, self.idempotency_ttl)
        return await self.queue.create(new, max_queued=self.max_queued or None, idempotency=idempotency)

    async def get(self, job_id: str, workspace: str) -> Job:
        canonical = parse_id(job_id)
        job = await self.queue.metrics.timed("get", self.store.get(canonical, workspace)) if canonical else None
        if job is None:
            raise JobNotFound()
        return job

    async def wait(self, job_id: str, workspace: str, timeout: float, owner: str | None = None) -> Job:
        """The job once it ends, or as it is when `timeout` seconds have passed.

        The wait holds no connection or transaction: it subscribes to the job's terminal event on
        the change feed, which reads the store once for every watcher of this process. A wait held
        for an `owner` (an API key's id) counts against the feed's caps: past one, `TooManyWaiters`.
        """
        if timeout <= 0:
            return await self.get(job_id, workspace)
        canonical = parse_id(job_id)
        if canonical is None:
            raise JobNotFound()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.long_poll_max)
        async with self.feed.job(canonical, ends_only=True, owner=owner) as ending:
            if ending.refused is not None:
                raise ending.refused
            job = await self.get(canonical, workspace)  # subscribed first, so an end from now on is seen
            while True:
                remaining = deadline - loop.time()
                if job.is_terminal or remaining <= 0 or ending.closed:
                    return job
                events = await ending.next(remaining)
                # The feed read each ended job once for all its watchers: answer with that, so ten
                # thousand waiters on ending jobs cost no read each.
                ended = next((e.job for e in events if e.job is not None and e.job.is_terminal), None)
                job = ended if ended is not None else await self.get(canonical, workspace)

    async def list(self, query: JobQuery) -> JobPage:
        return await self.queue.metrics.timed("list", self.store.list_jobs(query))

    async def cancel(self, job_id: str, workspace: str) -> Job:
        canonical = parse_id(job_id)
        if canonical is None:
            raise JobNotFound()
        return await self.queue.cancel(canonical, workspace)

    async def retry(self, job_id: str, workspace: str) -> Job:
        """Queue a failed or cancelled job again (see `Queue.retry`)."""
        canonical = parse_id(job_id)
        if canonical is None:
            raise JobNotFound()
        return await self.queue.retry(canonical, workspace)

    async def delete(self, job_id: str, workspace: str) -> Job:
        """Delete a finished job (see `Queue.delete`)."""
        canonical = parse_id(job_id)
        if canonical is None:
            raise JobNotFound()
        return await self.queue.delete(canonical, workspace)
