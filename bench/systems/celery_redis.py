"""celery with the Redis broker (and the Redis result backend, its record of completion)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import redis
from celery import Celery

from bench.procs import tool
from bench.systems.base import JobFailed, RedisMixin, System

TASK = "bench.noop"


class CeleryRedis(RedisMixin, System):
    name: ClassVar[str] = "celery"
    store: ClassVar[str] = "Redis (broker and results)"
    package: ClassVar[str] = "celery"
    _app: Celery
    _results: redis.Redis
    _producer: Any

    @property
    def bulk(self) -> str:
        return "no batch API: `send_task` in a loop on one acquired producer (one connection)"

    @property
    def worker(self) -> str:
        return f"`celery worker --pool threads --concurrency {self.config.concurrency}` (one process)"

    @property
    def wakeup(self) -> str:
        return "BRPOP on the queue list: immediate; prefetches 4 per slot (`worker_prefetch_multiplier`)"

    def redis_databases(self) -> list[int]:
        return [self.config.redis_db, self.config.redis_results_db]

    async def setup(self) -> None:
        self.redis_prepare()
        self._app = Celery(
            "bench-client",
            broker=self.config.redis_url(),
            backend=self.config.redis_url(self.config.redis_results_db),
        )
        self._results = self.redis_client(self.config.redis_results_db)

    async def teardown(self) -> None:
        if hasattr(self, "_app"):
            self._results.close()
            self._app.close()
        self.redis_flush()

    async def enqueue_batch(self, count: int) -> None:
        with self._app.producer_or_acquire() as producer:
            for _ in range(count):
                self._app.send_task(TASK, producer=producer)

    async def enqueue_one(self) -> str:
        result = self._app.send_task(TASK)
        self.enqueued += 1
        return str(result.id)

    async def is_done(self, job_id: str) -> bool:
        state = str(self._app.AsyncResult(job_id).state)
        if state in ("FAILURE", "REVOKED"):
            raise JobFailed(f"task {job_id} is {state}")
        return state == "SUCCESS"

    async def count_done(self) -> int:
        # One result key per ended task, alone in its database.
        return cast(int, self._results.dbsize())

    async def count_completed(self) -> int | None:
        return self.redis_count_values("celery-task-meta-*", b'"status": "SUCCESS"', self.config.redis_results_db)

    def worker_argv(self) -> Sequence[str]:
        return [
            tool("celery"),
            "-A",
            "bench.apps.celery_app",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(self.config.concurrency),
            "--loglevel",
            "WARNING",
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {
            "BENCH_REDIS_URL": self.config.redis_url(),
            "BENCH_REDIS_RESULTS_URL": self.config.redis_url(self.config.redis_results_db),
        }
