"""jobhouse on its embedded SQLite store and on a shared PostgreSQL store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import ClassVar

from bench.kinds import jobs
from bench.procs import tool
from bench.systems.base import JobFailed, PostgresMixin, System
from jobhouse.job import JobStatus
from jobhouse.queue import Queue
from jobhouse.store import Store, open_store

WORKSPACE = "bench"


class Jobhouse(System):
    is_jobhouse = True
    package = "jobhouse"
    url: str
    _store: Store
    _queue: Queue

    @property
    def bulk(self) -> str:
        return f"`Queue.enqueue_many([...])`, {self.config.batch} jobs per call (one transaction)"

    @property
    def worker(self) -> str:
        return f"`jobhouse worker --concurrency {self.config.concurrency}` (async handler, default settings)"

    async def _open(self) -> None:
        self._store = open_store(self.url)
        self._queue = Queue(self._store, jobs)
        await self._store.open()

    async def enqueue_batch(self, count: int) -> None:
        await self._queue.enqueue_many([self._queue.new_job("noop", workspace=WORKSPACE) for _ in range(count)])

    async def enqueue_one(self) -> str:
        job = await self._queue.enqueue("noop", workspace=WORKSPACE)
        self.enqueued += 1
        return job.id

    async def is_done(self, job_id: str) -> bool:
        job = await self._store.get(job_id)
        if job is None or job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobFailed(f"job {job_id} is {job and job.status}")
        return job.status == JobStatus.COMPLETED

    def worker_argv(self) -> Sequence[str]:
        return [
            tool("jobhouse"),
            "worker",
            "--app",
            "bench.kinds:jobs",
            "--database",
            self.url,
            "--concurrency",
            str(self.config.concurrency),
        ]

    def worker_env(self) -> Mapping[str, str]:
        return {"JOBHOUSE_LOG_LEVEL": "warning"}


class JobhouseSqlite(Jobhouse):
    name: ClassVar[str] = "jobhouse-sqlite"
    store: ClassVar[str] = "SQLite (WAL, synchronous=FULL)"
    _reader: sqlite3.Connection | None = None

    @property
    def wakeup(self) -> str:
        return "the worker process polls SQLite's `data_version` every 20 ms, then claims; `poll_interval` 1 s"

    async def setup(self) -> None:
        self.path = self.workdir / f"jobhouse-{self.config.run_id}.db"
        self.url = f"sqlite:///{self.path}"
        await self._open()

    def _read(self, query: str) -> int:
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return int(self._reader.execute(query).fetchone()[0])

    async def count_done(self) -> int:
        # The partial indexes on queued and running jobs make this cheap however many have ended.
        pending = self._read(
            "SELECT (SELECT count(*) FROM jobs WHERE status = 'queued')"
            " + (SELECT count(*) FROM jobs WHERE status = 'running')"
        )
        return self.enqueued - pending

    async def count_completed(self) -> int | None:
        return self._read("SELECT count(*) FROM jobs WHERE status = 'completed'")

    async def teardown(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if hasattr(self, "_store"):
            await self._store.close()
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


class JobhousePostgres(PostgresMixin, Jobhouse):
    name: ClassVar[str] = "jobhouse-pg"
    store: ClassVar[str] = "PostgreSQL"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY (`e` on every enqueue); `poll_interval` 1 s as a fallback"

    async def setup(self) -> None:
        self.schema = self.config.pg_schema(self.name)
        self.url = f"{self.config.pg_url()}?schema={self.schema}"
        await self._open()  # jobhouse creates its schema and migrates it

    async def count_done(self) -> int:
        pending = self.pg_scalar(
            f"SELECT (SELECT count(*) FROM {self.schema}.jobs WHERE status = 'queued')"
            f" + (SELECT count(*) FROM {self.schema}.jobs WHERE status = 'running')"
        )
        return self.enqueued - int(pending)

    async def count_completed(self) -> int | None:
        return int(self.pg_scalar(f"SELECT count(*) FROM {self.schema}.jobs WHERE status = 'completed'"))

    async def teardown(self) -> None:
        self.pg_close()
        if hasattr(self, "_store"):
            await self._store.close()
        self.pg_drop_schema()
