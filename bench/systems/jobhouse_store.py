"""jobhouse on its embedded SQLite store and on a shared PostgreSQL store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from bench.kinds import jobs
from bench.procs import tool
from bench.systems.base import PostgresMixin, StoreKind, System
from jobhouse.queue import Queue
from jobhouse.store import Store, open_store

WORKSPACE = "bench"
KIND = "record"


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
        return (
            f"{self.config.processes} x `jobhouse worker --concurrency {self.config.concurrency}`"
            " (async handler, default settings)"
        )

    async def _open(self) -> None:
        self._store = open_store(self.url)
        self._queue = Queue(self._store, jobs)
        await self._store.open()

    async def _close(self) -> None:
        if hasattr(self, "_store"):
            await self._store.close()

    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        await self._queue.enqueue_many([self._queue.new_job(KIND, workspace=WORKSPACE, input={"t": t}) for t in stamps])

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self._queue.enqueue(KIND, workspace=WORKSPACE, input={"t": enqueued_at})

    def worker_argv(self, index: int) -> Sequence[str]:
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
    store_kind: ClassVar[StoreKind] = "sqlite"

    @property
    def wakeup(self) -> str:
        return "each worker process watches SQLite's `data_version` (a probe every few ms), then claims"

    async def setup(self) -> None:
        self.path = self.workdir / f"jobhouse-{self.config.run_id}.db"
        self.url = f"sqlite:///{self.path}"
        await self._open()

    async def teardown(self) -> None:
        await self._close()
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


class JobhousePostgres(PostgresMixin, Jobhouse):
    name: ClassVar[str] = "jobhouse-pg"
    store: ClassVar[str] = "PostgreSQL"

    @property
    def wakeup(self) -> str:
        return "LISTEN/NOTIFY on every enqueue; `poll_interval` 1 s as a fallback"

    async def setup(self) -> None:
        self.schema = self.config.pg_schema(self.name)
        self.url = f"{self.config.pg_url()}?schema={self.schema}"
        await self._open()  # jobhouse creates its schema and migrates it

    async def teardown(self) -> None:
        await self._close()
        self.pg_drop_schema()
