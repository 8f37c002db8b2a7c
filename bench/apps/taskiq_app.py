"""taskiq's broker: ``taskiq worker bench.apps.taskiq_app:broker``, taskiq-redis's Redis streams broker."""

from __future__ import annotations

import os
from typing import Any

from taskiq_redis import RedisStreamBroker

from bench.recorder import arecord


async def record(t: float) -> None:
    await arecord(t)


def make_broker(url: str) -> tuple[RedisStreamBroker, Any]:
    """A streams broker on `url` (no result backend: nothing reads results) and its `record` task."""
    broker = RedisStreamBroker(url)
    return broker, broker.register_task(record, task_name="record")


broker, record_task = make_broker(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
