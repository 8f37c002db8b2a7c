"""huey (Redis): a consumer process with worker threads, each blocking on the queue list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from huey import RedisHuey

from bench.apps.huey_app import make_huey
from bench.procs import tool
from bench.systems.base import RedisMixin, System


class Huey(RedisMixin, System):
    name: ClassVar[str] = "huey"
    store: ClassVar[str] = "Redis"
    package: ClassVar[str] = "huey"
    blocking: ClassVar[bool] = True
    _huey: RedisHuey
    _task: Any

    @property
    def bulk(self) -> str:
        return f"`task.map([...])`, {self.config.batch} jobs per call (one LPUSH each)"

    @property
    def worker(self) -> str:
        return (
            f"{self.config.processes} x `huey_consumer -k thread -w {self.config.concurrency}`"
            " (a sync function in each worker thread)"
        )

    @property
    def wakeup(self) -> str:
        return "each worker thread blocks on the queue list (BRPOP, 1 s timeout): immediate"

    @property
    def tuning(self) -> str:
        return "`results=False` (nothing reads results); thread workers (its advice when in doubt)"

    async def setup(self) -> None:
        self.redis_prepare()
        self._huey, self._task = make_huey(self.config.redis_url())

    async def teardown(self) -> None:
        if hasattr(self, "_huey"):
            self._huey.storage.conn.connection_pool.disconnect()
        self.redis_flush()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        self._task.map(stamps)

    async def enqueue_one(self, enqueued_at: float) -> None:
        self.send_one(enqueued_at)

    def send_one(self, enqueued_at: float) -> None:
        self._task(enqueued_at)

    def worker_argv(self, index: int) -> Sequence[str]:
        return [
            tool("huey_consumer"),
            "bench.apps.huey_app.huey",
            "--worker-type",
            "thread",
            "--workers",
            str(self.config.concurrency),
            "--quiet",
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url()}
