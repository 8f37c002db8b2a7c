"""huey's app: ``huey_consumer bench.apps.huey_app.huey``, Redis storage without results."""

from __future__ import annotations

import os
from typing import Any

from huey import RedisHuey

from bench.recorder import record as _record


def record(t: float) -> None:
    _record(t)


def make_huey(url: str) -> tuple[RedisHuey, Any]:
    """A huey on `url` (results off: nothing reads them) and its `record` task."""
    huey = RedisHuey("bench", url=url, results=False)
    return huey, huey.task()(record)


huey, record_task = make_huey(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
