"""rq (Redis): one job at a time per worker process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, cast

import redis
from rq import Queue

from bench.procs import tool
from bench.systems.base import JobFailed, RedisMixin, System

TASK = "bench.apps.rq_tasks.noop"


class Rq(RedisMixin, System):
    name: ClassVar[str] = "rq"
    store: ClassVar[str] = "Redis"
    package: ClassVar[str] = "rq"
    _redis: redis.Redis
    _queue: Queue

    @property
    def bulk(self) -> str:
        return f"`Queue.enqueue_many(...)` in one pipeline, {self.config.batch} jobs per call"

    @property
    def worker(self) -> str:
        return "`rq worker --worker-class rq.worker.SimpleWorker` (no fork per job; rq runs one job at a time)"

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

    async def enqueue_batch(self, count: int) -> None:
        with self._redis.pipeline() as pipe:
            self._queue.enqueue_many([Queue.prepare_data(TASK) for _ in range(count)], pipeline=pipe)
            pipe.execute()

    async def enqueue_one(self) -> str:
        job = self._queue.enqueue(TASK)
        self.enqueued += 1
        return str(job.id)

    async def is_done(self, job_id: str) -> bool:
        status = cast("bytes | None", self._redis.hget(f"rq:job:{job_id}", "status"))
        if status in (b"failed", b"stopped", b"canceled", None):
            raise JobFailed(f"job {job_id} is {status!r}")
        return status == b"finished"

    async def count_done(self) -> int:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard("rq:finished:default")
            pipe.zcard("rq:failed:default")
            finished, failed = pipe.execute()
        return int(finished) + int(failed)

    async def count_completed(self) -> int | None:
        return cast(int, self._redis.zcard("rq:finished:default"))

    def worker_argv(self) -> Sequence[str]:
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

    def worker_env(self) -> Mapping[str, str]:
        return {}
