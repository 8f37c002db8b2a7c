"""celery with the Redis broker, its worker on the thread pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from celery import Celery

from bench.procs import tool
from bench.systems.base import RedisMixin, System

TASK = "bench.record"


class CeleryRedis(RedisMixin, System):
    name: ClassVar[str] = "celery"
    store: ClassVar[str] = "Redis"
    package: ClassVar[str] = "celery"
    blocking: ClassVar[bool] = True
    _app: Celery

    @property
    def bulk(self) -> str:
        return "no batch API: `send_task` in a loop on one acquired producer (one connection)"

    @property
    def worker(self) -> str:
        return f"{self.config.processes} x `celery worker --pool threads --concurrency {self.config.concurrency}`"

    @property
    def wakeup(self) -> str:
        return "BRPOP on the queue list: immediate; prefetches 4 per slot (`worker_prefetch_multiplier`)"

    @property
    def tuning(self) -> str:
        return "`task_ignore_result=True` (no result backend), as its guide advises when results are not used"

    async def setup(self) -> None:
        self.redis_prepare()
        self._app = Celery("bench-client", broker=self.config.redis_url())
        self._app.conf.update(task_ignore_result=True)

    async def teardown(self) -> None:
        if hasattr(self, "_app"):
            self._app.close()
        self.redis_flush()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        with self._app.producer_or_acquire() as producer:
            for t in stamps:
                self._app.send_task(TASK, args=(t,), producer=producer)

    async def enqueue_one(self, enqueued_at: float) -> None:
        self.send_one(enqueued_at)

    def send_one(self, enqueued_at: float) -> None:
        self._app.send_task(TASK, args=(enqueued_at,))

    def worker_argv(self, index: int) -> Sequence[str]:
        return [
            tool("celery"),
            "-A",
            "bench.apps.celery_app",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(self.config.concurrency),
            "--hostname",
            f"bench{index}@%h",
            "--loglevel",
            "WARNING",
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url()}
