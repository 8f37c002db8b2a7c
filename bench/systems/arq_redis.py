"""arq (Redis): asyncio worker that polls its queue."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from bench.procs import tool
from bench.systems.base import RedisMixin, System


class Arq(RedisMixin, System):
    name: ClassVar[str] = "arq"
    store: ClassVar[str] = "Redis"
    package: ClassVar[str] = "arq"
    _pool: ArqRedis

    @property
    def bulk(self) -> str:
        return f"no batch API: `enqueue_job` calls, {self.config.batch} at a time with `asyncio.gather`"

    @property
    def worker(self) -> str:
        return f"{self.config.processes} x `arq WorkerSettings` with `max_jobs={self.config.concurrency}` (async)"

    @property
    def wakeup(self) -> str:
        return "polls the queue every 0.5 s (`poll_delay`)"

    async def setup(self) -> None:
        self.redis_prepare()
        self._pool = await create_pool(RedisSettings.from_dsn(self.config.redis_url()))

    async def teardown(self) -> None:
        if hasattr(self, "_pool"):
            await self._pool.aclose()
        self.redis_flush()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        jobs = await asyncio.gather(*(self._pool.enqueue_job("record", t) for t in stamps))
        if any(job is None for job in jobs):
            raise RuntimeError("arq refused a job")

    async def enqueue_one(self, enqueued_at: float) -> None:
        if await self._pool.enqueue_job("record", enqueued_at) is None:
            raise RuntimeError("arq refused a job")

    def worker_argv(self, index: int) -> Sequence[str]:
        return [tool("arq"), "--custom-log-dict", "bench.apps.arq_app.LOG_CONFIG", "bench.apps.arq_app.WorkerSettings"]

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url(), "BENCH_CONCURRENCY": str(self.config.concurrency)}
