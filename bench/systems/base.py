"""The small interface every system adapter implements, and helpers for Redis- and PostgreSQL-backed ones."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, Literal

import psycopg
import redis
from psycopg import sql

from bench import recorder
from bench.config import Config
from bench.procs import Process

#: What kind of store a system keeps its queue in, for whose CPU time is measured.
StoreKind = Literal["sqlite", "postgres", "redis"]


class System(abc.ABC):
    """One queue system under test: a fresh store, bulk and single enqueue, worker processes.

    Every job carries its enqueue time (`time.time()`) as its one argument, and every handler runs
    `bench.recorder`'s body, so completion and start times are read from the recorder, the same
    way for every system.
    """

    #: Short name, e.g. ``jobhouse-sqlite``; what ``--systems`` takes.
    name: ClassVar[str]
    #: Whether this is jobhouse (ratios are jobhouse ÷ peer).
    is_jobhouse: ClassVar[bool] = False
    #: The store it runs on, e.g. ``PostgreSQL``.
    store: ClassVar[str]
    store_kind: ClassVar[StoreKind]
    #: The PyPI distribution whose version is reported.
    package: ClassVar[str]
    #: Whether the client blocks (a sync client): concurrent callers are then threads, not tasks.
    blocking: ClassVar[bool] = False

    def __init__(self, config: Config, workdir: Path, record_url: str) -> None:
        self.config = config
        self.workdir = workdir
        self.record_url = record_url

    # -- described in the report ---------------------------------------------------------------

    @property
    @abc.abstractmethod
    def bulk(self) -> str:
        """How jobs are enqueued in bulk (the batch API used, or its absence)."""

    @property
    @abc.abstractmethod
    def worker(self) -> str:
        """How the worker processes are configured."""

    @property
    @abc.abstractmethod
    def wakeup(self) -> str:
        """How an idle worker learns of new work, with the settings used."""

    @property
    def tuning(self) -> str:
        """Settings changed from the system's defaults, following its own documentation."""
        return "none"

    def describe(self) -> dict[str, str]:
        return {
            "store": self.store,
            "bulk": self.bulk,
            "worker": self.worker,
            "wakeup": self.wakeup,
            "tuning": self.tuning,
        }

    # -- life cycle -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def setup(self) -> None:
        """Make a fresh, empty store and connect the client."""

    @abc.abstractmethod
    async def teardown(self) -> None:
        """Disconnect and remove everything `setup` and the run made."""

    async def after_bulk(self) -> None:
        """Run after a bulk enqueue, before the workers start (e.g. ANALYZE where the system says to)."""
        return

    # -- enqueueing -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def enqueue_batch(self, stamps: Sequence[float]) -> None:
        """Enqueue one job per enqueue time in `stamps`, the way the system recommends for bulk."""

    @abc.abstractmethod
    async def enqueue_one(self, enqueued_at: float) -> None:
        """Enqueue one job carrying `enqueued_at` (blocking systems do it in `send_one`)."""

    def send_one(self, enqueued_at: float) -> None:
        """Enqueue one job from a thread (blocking systems only)."""
        raise NotImplementedError

    async def enqueue_bulk(self, count: int) -> None:
        """Enqueue `count` jobs in batches of ``config.batch``."""
        left = count
        while left > 0:
            size = min(self.config.batch, left)
            now = time.time()
            await self.enqueue_batch([now] * size)
            left -= size

    async def enqueue_concurrently(self, count: int, callers: int) -> None:
        """Enqueue `count` jobs one at a time from `callers` concurrent callers (tasks, or threads if blocking)."""
        shares = [count // callers + (1 if i < count % callers else 0) for i in range(callers)]
        if not self.blocking:

            async def caller(share: int) -> None:
                for _ in range(share):
                    await self.enqueue_one(time.time())

            await asyncio.gather(*(caller(share) for share in shares))
            return

        def thread(share: int) -> None:
            for _ in range(share):
                self.send_one(time.time())

        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=callers, thread_name_prefix="bench-caller") as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, thread, share) for share in shares))

    # -- workers ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def worker_argv(self, index: int) -> Sequence[str]:
        """The command that runs worker process number `index` (one of ``config.processes``)."""

    def worker_env(self) -> Mapping[str, str]:
        return {}

    def worker_commands(self) -> list[Sequence[str]]:
        """The commands started for one measurement: by default ``config.processes`` worker processes."""
        return [self.worker_argv(index) for index in range(self.config.processes)]

    def start_workers(self) -> list[Process]:
        env = {**self.worker_env(), recorder.ENV: self.record_url}
        processes = []
        try:
            for index, argv in enumerate(self.worker_commands()):
                log = self.workdir / f"{self.name}-worker-{index}.log"
                processes.append(Process(f"{self.name} worker {index}", argv, env, log).start())
        except BaseException:
            stop_all(processes)
            raise
        return processes


def stop_all(processes: Sequence[Process]) -> None:
    """Stop `processes` side by side (each gets SIGTERM, then SIGKILL after its grace period)."""
    if not processes:
        return
    with ThreadPoolExecutor(max_workers=len(processes), thread_name_prefix="bench-stop") as pool:
        list(pool.map(Process.stop, processes))


class RedisMixin:
    """A system on one Redis database that must be empty at the start and is flushed at the end."""

    config: Config
    name: ClassVar[str]
    store_kind: ClassVar[StoreKind] = "redis"

    def redis_client(self) -> redis.Redis:
        return redis.Redis(self.config.redis_host, self.config.redis_port, db=self.config.redis_db)

    def redis_prepare(self) -> None:
        client = self.redis_client()
        try:
            keys = client.dbsize()
        finally:
            client.close()
        if keys:
            raise RuntimeError(
                f"Redis database {self.config.redis_db} holds {keys} keys; the benchmarks flush the database they"
                " use, so they refuse to start on one that is not empty (pick another with --redis-db)"
            )

    def redis_flush(self) -> None:
        client = self.redis_client()
        try:
            client.flushdb()
        finally:
            client.close()


class PostgresMixin:
    """A system in a PostgreSQL schema of its own, created at setup and dropped at teardown."""

    config: Config
    name: ClassVar[str]
    store_kind: ClassVar[StoreKind] = "postgres"
    schema: str

    def pg_create_schema(self) -> None:
        self.schema = self.config.pg_schema(self.name)
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))

    def pg_drop_schema(self) -> None:
        if not getattr(self, "schema", None):
            return
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def pg_analyze(self, *tables: str) -> None:
        """ANALYZE the schema's `tables`, so that the planner knows how many jobs are queued."""
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            for table in tables:
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.schema, table)))

    def pg_options(self) -> str:
        """libpq `options` that make the schema the only one on the search path."""
        return f"-c search_path={self.schema}"
