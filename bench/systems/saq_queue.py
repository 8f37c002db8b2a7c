"""saq, on Redis and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

from saq import Queue, Status

from bench.apps.saq_app import make_queue
from bench.procs import tool
from bench.systems.base import JobFailed, PostgresMixin, RedisMixin, System


class Saq(System):
    package: ClassVar[str] = "saq"
    _queue: Queue

    @property
    def bulk(self) -> str:
        return f"no batch API: `queue.enqueue` calls, {self.config.batch} at a time with `asyncio.gather`"

    @property
    def worker(self) -> str:
        return f"`saq settings` with `concurrency={self.config.concurrency}` (async function)"

    async def enqueue_batch(self, count: int) -> None:
        jobs = await asyncio.gather(*(self._queue.enqueue("noop") for _ in range(count)))
        if any(job is None for job in jobs):
            raise RuntimeError("saq refused a job")

    async def enqueue_one(self) -> str:
        job = await self._queue.enqueue("noop")
        assert job is not None
        self.enqueued += 1
        return job.key

    async def is_done(self, job_id: str) -> bool:
        job = await self._queue.job(job_id)
        if job is None or job.status in (Status.FAILED, Status.ABORTED, Status.ABORTING):
            raise JobFailed(f"job {job_id} is {job and job.status}")
        return job.status == Status.COMPLETE

    async def count_done(self) -> int:
        return self.enqueued - await self._queue.count("incomplete")

    def worker_argv(self) -> Sequence[str]:
        return [tool("saq"), "bench.apps.saq_app.settings"]


class SaqRedis(RedisMixin, Saq):
    name: ClassVar[str] = "saq-redis"
    store: ClassVar[str] = "Redis"

    @property
    def wakeup(self) -> str:
        return "blocking pop (BLMOVE) on the queue list: immediate"

    async def setup(self) -> None:
        self.redis_prepare()
        self._queue = make_queue(self.config.redis_url(), None, None)
        await self._queue.connect()

    async def teardown(self) -> None:
        if hasattr(self, "_queue"):
            await self._queue.disconnect()
        self.redis_flush()

    async def count_completed(self) -> int | None:
        return self.redis_count_values(f"saq:job:{self._queue.name}:*", b'"status": "complete"')

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url(), "BENCH_CONCURRENCY": str(self.config.concurrency)}


class SaqPostgres(PostgresMixin, Saq):
    name: ClassVar[str] = "saq-pg"
    store: ClassVar[str] = "PostgreSQL"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY, with a dequeue poll as a fallback"

    async def setup(self) -> None:
        self.pg_create_schema()
        self._queue = make_queue(None, self.config.pg_dsn, self.schema)
        await self._queue.connect()

    async def teardown(self) -> None:
        self.pg_close()
        if hasattr(self, "_queue"):
            await self._queue.disconnect()
        self.pg_drop_schema()

    async def count_completed(self) -> int | None:
        return int(self.pg_scalar("SELECT count(*) FROM saq_jobs WHERE status = 'complete'"))

    def worker_env(self) -> Mapping[str, str]:
        return {
            "BENCH_PG_DSN": self.config.pg_dsn,
            "BENCH_PG_SCHEMA": self.schema,
            "BENCH_CONCURRENCY": str(self.config.concurrency),
        }
