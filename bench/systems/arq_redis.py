"""arq (Redis): asyncio worker that polls its queue."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, result_key_prefix

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
        return f"`arq WorkerSettings` with `max_jobs={self.config.concurrency}` (async function)"

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

    async def enqueue_batch(self, count: int) -> None:
        jobs = await asyncio.gather(*(self._pool.enqueue_job("noop") for _ in range(count)))
        if any(job is None for job in jobs):
            raise RuntimeError("arq refused a job")

    async def enqueue_one(self) -> str:
        job = await self._pool.enqueue_job("noop")
        assert job is not None
        self.enqueued += 1
        return job.job_id

    async def is_done(self, job_id: str) -> bool:
        return bool(await self._pool.exists(result_key_prefix + job_id))

    async def count_done(self) -> int:
        # arq keeps a job in its queue until the job has ended.
        return self.enqueued - int(await self._pool.zcard(default_queue_name))

    async def count_completed(self) -> int | None:
        count = 0
        async for _ in self._pool.scan_iter(match=result_key_prefix + "*", count=5000):
            count += 1
        return count

    def worker_argv(self) -> Sequence[str]:
        return [tool("arq"), "--custom-log-dict", "bench.apps.arq_app.LOG_CONFIG", "bench.apps.arq_app.WorkerSettings"]

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url(), "BENCH_CONCURRENCY": str(self.config.concurrency)}
