"""rq (Redis): one job at a time per worker process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import redis
from rq import Queue

from bench.procs import tool
from bench.systems.base import RedisMixin, System

TASK = "bench.apps.rq_tasks.record"


class Rq(RedisMixin, System):
    name: ClassVar[str] = "rq"
    store: ClassVar[str] = "Redis"
    package: ClassVar[str] = "rq"
    blocking: ClassVar[bool] = True
    _redis: redis.Redis
    _queue: Queue

    @property
    def bulk(self) -> str:
        return f"`Queue.enqueue_many(...)` in one pipeline, {self.config.batch} jobs per call"

    @property
    def worker(self) -> str:
        return (
            f"{self.config.processes} x `rq worker --worker-class rq.worker.SimpleWorker`"
            " (no fork per job; rq runs one job at a time per process)"
        )

    @property
    def wakeup(self) -> str:
        return "blocking pop on the queue list (BLMOVE/BLPOP): immediate"

    async def setup(self) -> None:
        self.redis_prepare()
        self._redis = self.redis_client()
        self._queue = Queue("default", connection=self._redis)

    async def teardown(self) -> None:
        if hasattr(self, "_redis"):
            self._redis.close()
        self.redis_flush()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        with self._redis.pipeline() as pipe:
            self._queue.enqueue_many([Queue.prepare_data(TASK, args=(t,)) for t in stamps], pipeline=pipe)
            pipe.execute()

    async def enqueue_one(self, enqueued_at: float) -> None:
        self.send_one(enqueued_at)

    def send_one(self, enqueued_at: float) -> None:
        self._queue.enqueue(TASK, enqueued_at)

    def worker_argv(self, index: int) -> Sequence[str]:
        return [
            tool("rq"),
            "worker",
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--url",
            self.config.redis_url(),
            "--logging_level",
            "WARNING",
            "default",
        ]
