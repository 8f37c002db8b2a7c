"""taskiq with taskiq-redis's streams broker (a consumer group; messages acknowledged once run)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from taskiq_redis import RedisStreamBroker

from bench.apps.taskiq_app import make_broker
from bench.procs import tool
from bench.systems.base import RedisMixin, System


class Taskiq(RedisMixin, System):
    name: ClassVar[str] = "taskiq"
    store: ClassVar[str] = "Redis (streams)"
    package: ClassVar[str] = "taskiq"
    _broker: RedisStreamBroker
    _task: Any

    @property
    def bulk(self) -> str:
        return f"no batch API: `task.kiq(...)` calls (XADD), {self.config.batch} at a time with `asyncio.gather`"

    @property
    def worker(self) -> str:
        return (
            f"`taskiq worker --workers {self.config.processes} --max-async-tasks {self.config.concurrency}`"
            " (its own manager process and two worker processes; async function)"
        )

    @property
    def wakeup(self) -> str:
        return "XREADGROUP blocking for up to 2 s, 100 messages at a time: immediate"

    async def setup(self) -> None:
        self.redis_prepare()
        self._broker, self._task = make_broker(self.config.redis_url())
        # Makes the consumer group at the stream's end, before any job is sent.
        await self._broker.startup()

    async def teardown(self) -> None:
        if hasattr(self, "_broker"):
            await self._broker.shutdown()
        self.redis_flush()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        await asyncio.gather(*(self._task.kiq(t) for t in stamps))

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self._task.kiq(enqueued_at)

    def worker_commands(self) -> list[Sequence[str]]:
        # taskiq starts its worker processes itself (`--workers`), under a manager process.
        return [self.worker_argv(0)]

    def worker_argv(self, index: int) -> Sequence[str]:
        return [
            tool("taskiq"),
            "worker",
            "bench.apps.taskiq_app:broker",
            "--workers",
            str(self.config.processes),
            "--max-async-tasks",
            str(self.config.concurrency),
            "--log-level",
            "WARNING",
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {"BENCH_REDIS_URL": self.config.redis_url()}
