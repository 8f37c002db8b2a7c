"""procrastinate (PostgreSQL): LISTEN/NOTIFY, one row per job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from procrastinate import App

from bench.apps.procrastinate_app import make_app
from bench.procs import tool
from bench.systems.base import JobFailed, PostgresMixin, System


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
        return f"`procrastinate worker --concurrency {self.config.concurrency}` (async task)"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY; polling every 5 s (`fetch_job_polling_interval`) as a fallback"

    async def setup(self) -> None:
        self.pg_create_schema()
        self._app = make_app(self.config.pg_dsn, self.schema)
        await self._app.open_async()
        await self._app.schema_manager.apply_schema_async()
        self._deferrer = self._app.configure_task("noop")

    async def teardown(self) -> None:
        self.pg_close()
        if hasattr(self, "_app"):
            await self._app.close_async()
        self.pg_drop_schema()

    async def enqueue_batch(self, count: int) -> None:
        await self._deferrer.batch_defer_async(*({} for _ in range(count)))

    async def enqueue_one(self) -> str:
        job_id = await self._deferrer.defer_async()
        self.enqueued += 1
        return str(job_id)

    async def is_done(self, job_id: str) -> bool:
        status = self.pg_scalar("SELECT status FROM procrastinate_jobs WHERE id = %s", (int(job_id),))
        if status not in ("todo", "doing", "succeeded"):
            raise JobFailed(f"job {job_id} is {status}")
        return bool(status == "succeeded")

    async def count_done(self) -> int:
        pending = self.pg_scalar("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
        return self.enqueued - int(pending)

    async def count_completed(self) -> int | None:
        return int(self.pg_scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"))

    def worker_argv(self) -> Sequence[str]:
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
