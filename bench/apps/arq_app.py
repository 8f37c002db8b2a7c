"""arq's worker settings: ``arq bench.apps.arq_app.WorkerSettings``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings

from bench.recorder import arecord


async def record(ctx: dict[str, Any], t: float) -> None:
    await arecord(t)


#: arq logs two lines per job at INFO by default; every system runs at WARNING here.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


class WorkerSettings:
    functions: ClassVar[list[Any]] = [record]
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "10"))
