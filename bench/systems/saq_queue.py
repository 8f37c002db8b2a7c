"""saq, on Redis and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

from saq import Queue

from bench.apps.saq_app import make_queue
from bench.procs import tool
from bench.systems.base import PostgresMixin, RedisMixin, System


class Saq(System):
    package: ClassVar[str] = "saq"
    _queue: Queue

    @property
    def bulk(self) -> str:
        return f"no batch API: `queue.enqueue` calls, {self.config.batch} at a time with `asyncio.gather`"

    @property
    def worker(self) -> str:
        return f"{self.config.processes} x `saq settings` with `concurrency={self.config.concurrency}` (async function)"

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        jobs = await asyncio.gather(*(self._queue.enqueue("record", t=t) for t in stamps))
        if any(job is None for job in jobs):
            raise RuntimeError("saq refused a job")

    async def enqueue_one(self, enqueued_at: float) -> None:
        if await self._queue.enqueue("record", t=enqueued_at) is None:
            raise RuntimeError("saq refused a job")

    def worker_argv(self, index: int) -> Sequence[str]:
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

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url(), "BENCH_CONCURRENCY": str(self.config.concurrency)}


class SaqPostgres(PostgresMixin, Saq):
    name: ClassVar[str] = "saq-pg"
    store: ClassVar[str] = "PostgreSQL"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY, with a dequeue poll as a fallback"

    @property
    def tuning(self) -> str:
        return "`ANALYZE saq_jobs` after the bulk enqueue, as for procrastinate"

    async def setup(self) -> None:
        self.pg_create_schema()
        self._queue = make_queue(None, self.config.pg_dsn, self.schema)
        await self._queue.connect()

    async def teardown(self) -> None:
        if hasattr(self, "_queue"):
            await self._queue.disconnect()
        self.pg_drop_schema()

    async def after_bulk(self) -> None:
        self.pg_analyze("saq_jobs")

    def worker_env(self) -> Mapping[str, str]:
        return {
            "BENCH_PG_DSN": self.config.pg_dsn,
            "BENCH_PG_SCHEMA": self.schema,
            "BENCH_CONCURRENCY": str(self.config.concurrency),
        }
