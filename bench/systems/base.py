"""The small interface every system adapter implements, and helpers for Redis- and PostgreSQL-backed ones."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import psycopg
import redis
from psycopg import sql

from bench.config import Config
from bench.procs import Process


class JobFailed(RuntimeError):
    """A benchmark job did not complete (it failed or was lost)."""


class System(abc.ABC):
    """One queue system under test: a fresh store, bulk and single enqueue, a worker process, counts."""

    #: Short name, e.g. ``jobhouse-sqlite``; what ``--systems`` takes.
    name: ClassVar[str]
    #: Whether this is jobhouse (ratios are jobhouse ÷ peer).
    is_jobhouse: ClassVar[bool] = False
    #: The store it runs on, e.g. ``PostgreSQL``.
    store: ClassVar[str]
    #: The PyPI distribution whose version is reported.
    package: ClassVar[str]

    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.enqueued = 0

    # -- described in the report ---------------------------------------------------------------

    @property
    @abc.abstractmethod
    def bulk(self) -> str:
        """How jobs are enqueued in bulk (the batch API used, or its absence)."""

    @property
    @abc.abstractmethod
    def worker(self) -> str:
        """How the worker process is configured."""

    @property
    @abc.abstractmethod
    def wakeup(self) -> str:
        """How an idle worker learns of new work, with its default settings."""

    def describe(self) -> dict[str, str]:
        return {"store": self.store, "bulk": self.bulk, "worker": self.worker, "wakeup": self.wakeup}

    # -- life cycle -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def setup(self) -> None:
        """Make a fresh, empty store and connect the client."""

    @abc.abstractmethod
    async def teardown(self) -> None:
        """Disconnect and remove everything `setup` and the run made."""

    # -- enqueueing and counting ------------------------------------------------------------------

    @abc.abstractmethod
    async def enqueue_batch(self, count: int) -> None:
        """Enqueue `count` no-op jobs the way the system recommends for bulk."""

    @abc.abstractmethod
    async def enqueue_one(self) -> str:
        """Enqueue one no-op job; its id."""

    @abc.abstractmethod
    async def is_done(self, job_id: str) -> bool:
        """Whether that job has completed, read from the system's own store (raises JobFailed if it failed)."""

    @abc.abstractmethod
    async def count_done(self) -> int:
        """How many jobs have ended so far, read cheaply from the system's own store."""

    async def count_completed(self) -> int | None:
        """How many jobs completed successfully (checked once, at the end), if the store can tell."""
        return None

    @abc.abstractmethod
    def worker_argv(self) -> Sequence[str]:
        """The command that runs one worker process."""

    def worker_env(self) -> Mapping[str, str]:
        return {}

    def start_worker(self) -> Process:
        log = self.workdir / f"{self.name}-worker.log"
        return Process(f"{self.name} worker", self.worker_argv(), self.worker_env(), log).start()

    async def enqueue_bulk(self, count: int) -> None:
        left = count
        while left > 0:
            size = min(self.config.batch, left)
            await self.enqueue_batch(size)
            self.enqueued += size
            left -= size


class RedisMixin:
    """A system on one Redis database that must be empty at the start and is flushed at the end."""

    config: Config
    name: ClassVar[str]

    def redis_databases(self) -> list[int]:
        return [self.config.redis_db]

    def redis_client(self, db: int | None = None) -> redis.Redis:
        return redis.Redis(
            self.config.redis_host, self.config.redis_port, db=self.config.redis_db if db is None else db
        )

    def redis_prepare(self) -> None:
        for db in self.redis_databases():
            client = self.redis_client(db)
            keys = client.dbsize()
            if keys:
                client.close()
                raise RuntimeError(
                    f"Redis database {db} holds {keys} keys; the benchmarks flush the databases they use, so they"
                    " refuse to start on one that is not empty (pick others with --redis-db / --redis-results-db)"
                )
            client.close()

    def redis_count_values(self, pattern: str, needle: bytes, db: int | None = None) -> int:
        """How many keys matching `pattern` hold a value containing `needle` (a full scan: for the end of a run)."""
        client = self.redis_client(db)
        count = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=5000):
            batch.append(key)
            if len(batch) == 5000:
                count += _count_containing(client.mget(batch), needle)
                batch = []
        if batch:
            count += _count_containing(client.mget(batch), needle)
        client.close()
        return count

    def redis_flush(self) -> None:
        for db in self.redis_databases():
            client = self.redis_client(db)
            client.flushdb()
            client.close()


def _count_containing(values: Any, needle: bytes) -> int:
    return sum(1 for value in cast("list[bytes | None]", values) if value and needle in value)


class PostgresMixin:
    """A system in a PostgreSQL schema of its own, created at setup and dropped at teardown."""

    config: Config
    name: ClassVar[str]
    schema: str
    _pg_conn: psycopg.Connection[Any] | None = None

    def pg_create_schema(self) -> None:
        self.schema = self.config.pg_schema(self.name)
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))

    def pg_drop_schema(self) -> None:
        if not getattr(self, "schema", None):
            return
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def pg_options(self) -> str:
        """libpq `options` that make the schema the only one on the search path."""
        return f"-c search_path={self.schema}"

    def pg_scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        conn = self._pg_conn
        if conn is None or conn.closed:
            conn = psycopg.connect(self.config.pg_dsn, autocommit=True, options=self.pg_options())
            self._pg_conn = conn
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None

    def pg_close(self) -> None:
        conn = self._pg_conn
        if conn is not None:
            conn.close()
            self._pg_conn = None
