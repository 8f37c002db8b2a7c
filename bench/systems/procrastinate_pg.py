"""procrastinate (PostgreSQL): LISTEN/NOTIFY, one row per job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from procrastinate import App

from bench.apps.procrastinate_app import make_app
from bench.procs import tool
from bench.systems.base import PostgresMixin, System


class Procrastinate(PostgresMixin, System):
    name: ClassVar[str] = "procrastinate"
    store: ClassVar[str] = "PostgreSQL"
    package: ClassVar[str] = "procrastinate"
    _app: App

    @property
    def bulk(self) -> str:
        return f"`batch_defer_async(...)`, {self.config.batch} jobs per call"

    @property
    def worker(self) -> str:
        return f"{self.config.processes} x `procrastinate worker --concurrency {self.config.concurrency}` (async task)"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY; polling every 5 s (`fetch_job_polling_interval`) as a fallback"

    @property
    def tuning(self) -> str:
        return "`ANALYZE procrastinate_jobs` after the bulk enqueue; logging at WARNING"

    async def setup(self) -> None:
        self.pg_create_schema()
        self._app = make_app(self.config.pg_dsn, self.schema)
        await self._app.open_async()
        await self._app.schema_manager.apply_schema_async()
        self._deferrer = self._app.configure_task("record")

    async def teardown(self) -> None:
        if hasattr(self, "_app"):
            await self._app.close_async()
        self.pg_drop_schema()

    async def after_bulk(self) -> None:
        # A fresh table has no statistics yet, and its fetch query then sorts the whole backlog.
        self.pg_analyze("procrastinate_jobs")

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        await self._deferrer.batch_defer_async(*({"t": t} for t in stamps))  # type: ignore[arg-type]

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self._deferrer.defer_async(t=enqueued_at)

    def worker_argv(self, index: int) -> Sequence[str]:
        return [
            tool("procrastinate"),
            "--app=bench.apps.procrastinate_app.app",
            "worker",
            f"--concurrency={self.config.concurrency}",
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {
            "BENCH_PG_DSN": self.config.pg_dsn,
            "BENCH_PG_SCHEMA": self.schema,
            "PROCRASTINATE_LOG_LEVEL": "warning",  # its default, INFO, logs two lines per job
        }
