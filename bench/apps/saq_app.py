"""saq's worker settings: ``saq bench.apps.saq_app.settings`` (Redis or PostgreSQL, from the environment)."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue
from saq.types import SettingsDict

from bench.recorder import arecord


def make_queue(redis_url: str | None, pg_dsn: str | None, pg_schema: str | None) -> Queue:
    if pg_dsn:
        from psycopg_pool import AsyncConnectionPool
        from saq.queue.postgres import PostgresQueue

        pool = AsyncConnectionPool(
            pg_dsn, kwargs={"autocommit": True, "options": f"-c search_path={pg_schema}"}, open=False, max_size=20
        )
        return PostgresQueue(pool=pool, manage_pool_lifecycle=True)
    return Queue.from_url(redis_url or "redis://127.0.0.1:6379/15")


async def record(ctx: Any, *, t: float) -> None:
    await arecord(t)


settings: SettingsDict[Any] = {
    "queue": make_queue(
        os.environ.get("BENCH_REDIS_URL"), os.environ.get("BENCH_PG_DSN"), os.environ.get("BENCH_PG_SCHEMA")
    ),
    "functions": [("record", record)],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),
}
