"""The embedded store: one SQLite file in WAL mode, shared by the processes of one machine."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from jobhouse.clock import Clock, SystemClock, from_micros, to_micros
from jobhouse.errors import ConfigurationError, StoreUnavailable
from jobhouse.events import EVENT_COLUMNS, JobEvent, event_from_row
from jobhouse.hub import ENDED, STOPPED, WORK, Hub, Seen
from jobhouse.job import (
    AttemptRef,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Report,
    Step,
    Verdict,
    cancelled,
    lost,
    reset_steps,
)
from jobhouse.maintenance import Service
from jobhouse.store.base import Idempotency, JobCount, JobPage, JobQuery, KindStats, Lineup, Rescued
from jobhouse.store.control import DELETABLE_SQL, RETRYABLE_SQL, deletable, retried
from jobhouse.store.migrations import migrations
from jobhouse.store.ready import NO_LIMIT, claim_order, in_claim_order
from jobhouse.store.rows import COLUMNS, event_query, listing, page
from jobhouse.store.sqlite_catalog import SqliteCatalog
from jobhouse.store.sqlite_engine import Engine, SqliteOptions, signal
from jobhouse.store.sqlite_keys import SqliteKeys
from jobhouse.store.sqlite_webhooks import SqliteWebhooks
from jobhouse.store.sqlite_writes import (
    INSERT,
    REQUEUED_ROUND,
    SQLITE,
    create_job,
    dumps,
    finish_statement,
    ids_json,
    insert_row,
    promote,
    read_job,
    statements,
    steps_json,
)
from jobhouse.store.stats import kind_stats, stats_sql

_RESCUE_BATCH = 500
#: Which of the kinds (a JSON list) have ready jobs held to a concurrency limit.
_LIMITED_KINDS = (
    "SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_limited WHERE "
    "status = 'queued' AND scheduled = 0 AND concurrency_key IS NOT NULL AND kind = value)"
)
_LIMITED = SQLITE.limited(":kind", ":limit", ":count")
#: Queued and running jobs by workspace and kind, read from the partial indexes that hold only those
#: jobs (each carries the kind; without INDEXED BY, SQLite prefers an index that saves the GROUP BY's
#: sort, and reads every row of the table).
_ACTIVE_COUNTS = (
    "SELECT workspace, kind, 'queued', count(*), min(run_at) FROM jobs INDEXED BY jobs_queued_by_workspace "
    "WHERE status = 'queued' GROUP BY workspace, kind UNION ALL "
    "SELECT workspace, kind, 'running', count(*), NULL FROM jobs INDEXED BY jobs_leases "
    "WHERE status = 'running' GROUP BY workspace, kind"
)
#: One workspace's statistics (`jobhouse.store.stats`), each index named.
_STATS = stats_sql("jobs", lambda name: f":{name}", lambda index: f" INDEXED BY {index}")


class SqliteStore:
    """`Store` on one SQLite file (see `jobhouse.store.base` for the contract)."""

    #: One writer at a time: events are committed in the order of their numbers.
    events_in_commit_order = True
    backend = "sqlite"

    def __init__(self, path: str, *, clock: Clock | None = None, options: SqliteOptions | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.hub = Hub()
        self.options = options or SqliteOptions()
        self._engine: Engine | None = None
        self.keys = SqliteKeys(self)  # a local read is cheap: no cache, so a revocation holds at once
        self.catalog = SqliteCatalog(self)
        self.webhooks = SqliteWebhooks(self)
        self.lineup = Lineup()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreUnavailable("SQLite store is not open")
        return self._engine

    async def open(self, *, migrate: bool = True) -> None:
        if self._engine is not None:
            return
        engine = Engine(self.path, self.options, self.hub.external_change)
        await engine.start()
        self._engine = engine
        if migrate:
            await self.migrate()

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.stop()

    async def migrate(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS jobhouse_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM jobhouse_migrations")}
            applied = []
            for migration in migrations("sqlite"):
                if migration.version in done:
                    continue
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO jobhouse_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, to_micros(self.clock.now())),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied

        return await self.engine.write(run)

    # -- jobs --------------------------------------------------------------------------------

    def services(self) -> list[Service]:
        return []  # the writer thread's data-version probe needs no service of its own

    async def enqueue(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        if connection is not None:
            raise ConfigurationError("Enqueueing on your own connection needs the PostgreSQL store")
        now = self.clock.now()
        if any(new.unique_key is not None for new in jobs):  # each may be an earlier job: one at a time
            return await self.engine.write(lambda conn: [create_job(conn, new, now, None, None)[0] for new in jobs])
        built = [new.queued(now) for new in jobs]
        rows = [insert_row(job) for job in built]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(INSERT, rows)
            signal(conn, WORK)

        await self.engine.write(run)
        return built

    async def create(
        self, new: NewJob, *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[Job, bool]:
        now = self.clock.now()
        return await self.engine.write(lambda conn: create_job(conn, new, now, max_queued, idempotency))

    async def get(self, job_id: str, workspace: str | None = None) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else read_job(row)

        job = await self.engine.read_here(run)
        if job is None or (workspace is not None and job.workspace != workspace):
            return None
        return job

    async def list_jobs(self, query: JobQuery) -> JobPage:
        where, params = listing(query, "?", to_micros)
        sql = f"SELECT {COLUMNS} FROM jobs {where}"

        def run(conn: sqlite3.Connection) -> list[Job]:
            return [read_job(row) for row in conn.execute(sql, params)]

        return page(await self.engine.read(run), query.limit)

    async def cancel(self, job_id: str, workspace: str | None = None) -> tuple[Job, bool]:
        now = self.clock.now()
        n = to_micros(now)

        def run(conn: sqlite3.Connection) -> tuple[Job, bool]:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            ended, error = cancelled(read_job(row) if row else None, workspace, now)
            if error is None:
                return ended, False
            conn.execute(
                "UPDATE jobs SET status = 'cancelled', steps = ?, current_step = ?, error = ?, "
                "lease_expires_at = NULL, updated_at = ?, completed_at = ? WHERE id = ?",
                (steps_json(ended.steps), ended.current_step, dumps(error.to_dict()), n, n, job_id),
            )
            signal(conn, STOPPED, ENDED)
            return ended, True

        return await self.engine.write(run)

    async def claim(
        self, worker: str, kinds: Collection[str], limit: int, lease: float, *, limits: Mapping[str, int] | None = None
    ) -> list[Job]:
        if limit <= 0 or not kinds:
            return []
        n = to_micros(self.clock.now())
        expires = n + int(lease * 1_000_000)
        kind_list = sorted(kinds)
        start = (
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, worker = ?, lease_expires_at = ?, "
            "started_at = ?, updated_at = ? WHERE id IN "
        )
        ready = (
            "SELECT id{} FROM jobs INDEXED BY jobs_ready WHERE status = 'queued' AND scheduled = 0 AND "
            f"concurrency_key IS NULL AND kind IN ({', '.join('?' * len(kind_list))}) "
            "ORDER BY priority DESC, round, id LIMIT ?"
        )

        def run(conn: sqlite3.Connection) -> tuple[list[Job], Lineup]:
            lineup = promote(conn, n)
            held = [row[0] for row in conn.execute(_LIMITED_KINDS, (ids_json(kind_list),))]
            if not held:  # the usual case: one statement
                sql = f"{start}({ready.format('')}) RETURNING {COLUMNS}, round"
                rows = conn.execute(sql, (worker, expires, n, n, *kind_list, limit)).fetchall()
            else:
                candidates = conn.execute(ready.format(", priority, round"), (*kind_list, limit)).fetchall()
                for kind in held:
                    cap = (limits or {}).get(kind, NO_LIMIT)
                    candidates += conn.execute(_LIMITED, {"kind": kind, "limit": cap, "count": limit}).fetchall()
                chosen = [c[0] for c in sorted(candidates, key=claim_order)[:limit]]
                sql = f"{start}(SELECT value FROM json_each(?)) RETURNING {COLUMNS}, round"
                rows = conn.execute(sql, (worker, expires, n, n, ids_json(chosen))).fetchall()
            return in_claim_order([(read_job(row), row[-1]) for row in rows]), lineup

        jobs, self.lineup = await self.engine.write(run)
        return jobs

    async def heartbeat(self, worker: str, refs: Sequence[AttemptRef], lease: float) -> set[str]:
        if not refs:
            return set()
        expires = to_micros(self.clock.now()) + int(lease * 1_000_000)
        ids = ids_json(ref.job_id for ref in refs)

        def run(conn: sqlite3.Connection) -> set[tuple[str, int]]:
            rows = conn.execute(
                "UPDATE jobs SET lease_expires_at = ? WHERE status = 'running' AND worker = ? "
                "AND id IN (SELECT value FROM json_each(?)) RETURNING id, attempt",
                (expires, worker, ids),
            ).fetchall()
            return {(row[0], row[1]) for row in rows}

        held = await self.engine.write(run)
        return {ref.job_id for ref in refs if (ref.job_id, ref.attempt) not in held}

    async def report(self, reports: Sequence[Report], lease: float) -> set[str]:
        if not reports:
            return set()
        n = to_micros(self.clock.now())
        expires = n + int(lease * 1_000_000)
        rows = [
            (r.progress, steps_json(r.steps), r.current_step, n, expires, r.ref.job_id, r.ref.attempt) for r in reports
        ]

        def run(conn: sqlite3.Connection) -> set[str]:
            lost = set()
            for row in rows:
                cursor = conn.execute(
                    "UPDATE jobs SET progress = ?, steps = ?, current_step = ?, updated_at = ?, "
                    "lease_expires_at = ? WHERE id = ? AND attempt = ? AND status = 'running'",
                    row,
                )
                if cursor.rowcount == 0:
                    lost.add(row[5])
            return lost

        return await self.engine.write(run)

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        now = self.clock.now()
        n = to_micros(now)
        statements = [finish_statement(outcome, n) for outcome in outcomes]

        def run(conn: sqlite3.Connection) -> list[bool]:
            applied = [conn.execute(sql, params).rowcount == 1 for sql, params in statements]
            written = [o for o, ok in zip(outcomes, applied, strict=True) if ok]
            moved = {WORK if o.verdict == Verdict.RETRY else ENDED for o in written}
            if moved:
                signal(conn, *moved)
            return applied

        return await self.engine.write(run)

    async def release(self, refs: Sequence[AttemptRef], *, unstarted: bool = False) -> int:
        if not refs:
            return 0
        n = to_micros(self.clock.now())

        def run(conn: sqlite3.Connection) -> int:
            count = 0
            for ref in refs:
                row = conn.execute(
                    "SELECT steps FROM jobs WHERE id = ? AND attempt = ? AND status = 'running'",
                    (ref.job_id, ref.attempt),
                ).fetchone()
                if row is None:
                    continue
                steps = reset_steps([Step.from_dict(s) for s in orjson.loads(row[0])])
                if unstarted:  # as if never claimed: the attempt is not used, and the job keeps its place
                    update = (
                        "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, current_step = NULL, "
                        "worker = NULL, lease_expires_at = NULL, updated_at = ?, attempt = attempt - 1, scheduled = 0, "
                        "started_at = CASE WHEN attempt = 1 THEN NULL ELSE started_at END "
                        "WHERE id = ? AND attempt = ? AND status = 'running'"
                    )
                    values: tuple[object, ...] = (steps_json(steps), n, ref.job_id, ref.attempt)
                else:
                    update = (
                        "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, current_step = NULL, "
                        "worker = NULL, lease_expires_at = NULL, run_at = ?, updated_at = ?, scheduled = 0, "
                        f"round = {REQUEUED_ROUND} WHERE id = ? AND attempt = ? AND status = 'running'"
                    )
                    values = (steps_json(steps), n, n, 0, ref.job_id, ref.attempt)
                count += conn.execute(update, values).rowcount
            if count:
                signal(conn, WORK)
            return count

        return await self.engine.write(run)

    async def rescue(self) -> Rescued:
        now = self.clock.now()
        n = to_micros(now)

        def run(conn: sqlite3.Connection) -> Rescued:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE status = 'running' AND lease_expires_at < ? LIMIT ?",
                (n, _RESCUE_BATCH),
            ).fetchall()
            requeued: list[str] = []
            failed: list[str] = []
            kinds: dict[str, str] = {}
            for row in rows:
                job = read_job(row)
                outcome = lost(job, now)
                sql, params = finish_statement(outcome, n)
                if conn.execute(sql + " AND lease_expires_at < ?", (*params, n)).rowcount:
                    (requeued if outcome.verdict == Verdict.RETRY else failed).append(job.id)
                    kinds[job.id] = job.kind
            if requeued or failed:
                signal(conn, STOPPED, *([WORK] if requeued else []), *([ENDED] if failed else []))
            return Rescued(requeued, failed, kinds)

        return await self.engine.write(run)

    async def active_counts(self) -> list[JobCount]:
        def run(conn: sqlite3.Connection) -> list[JobCount]:
            return [
                JobCount(workspace, kind, JobStatus(status), count, None if due is None else from_micros(due))
                for workspace, kind, status, count, due in conn.execute(_ACTIVE_COUNTS)
            ]

        return await self.engine.read(run)

    async def stats(self, workspace: str, since: datetime, now: datetime) -> list[KindStats]:
        values = {"workspace": workspace, "since": to_micros(since), "now": to_micros(now)}

        def run(conn: sqlite3.Connection) -> list[KindStats]:
            return kind_stats(conn.execute(_STATS, values), from_micros)

        return await self.engine.read(run)

    async def migrations_applied(self) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobhouse_migrations'").fetchone() is None:
                return []
            return [row[0] for row in conn.execute("SELECT version FROM jobhouse_migrations ORDER BY version")]

        return await self.engine.read(run)

    async def seen(self, job_ids: Collection[str]) -> dict[str, Seen | None]:
        ids = ids_json(job_ids)

        def run(conn: sqlite3.Connection) -> dict[str, Seen | None]:
            found: dict[str, Seen | None] = dict.fromkeys(job_ids)
            for row in conn.execute(
                "SELECT id, status, attempt FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,)
            ):
                found[row[0]] = Seen(JobStatus(row[1]), row[2])
            return found

        return await self.engine.read(run)

    async def jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        ids = ids_json(job_ids)

        def run(conn: sqlite3.Connection) -> dict[str, Job]:
            rows = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,))
            return {row[0]: read_job(row) for row in rows}

        return await self.engine.read(run)

    async def events(
        self,
        after: int,
        *,
        job_id: str | None = None,
        workspace: str | None = None,
        upto: int | None = None,
        limit: int = 1000,
    ) -> list[JobEvent]:
        where, params = event_query("?", after, job_id, workspace, upto, limit)
        sql = f"SELECT {EVENT_COLUMNS} FROM job_events {where}"

        def run(conn: sqlite3.Connection) -> list[JobEvent]:
            return [event_from_row(row, orjson.loads, from_micros) for row in conn.execute(sql, params)]

        return await self.engine.read(run)

    async def recent_events(self, count: int) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            return [row[0] for row in conn.execute("SELECT seq FROM job_events ORDER BY seq DESC LIMIT ?", (count,))]

        return await self.engine.read(run)

    async def prune(
        self, retention: Mapping[JobStatus, float], idempotency_ttl: float = 24 * 3600.0, batch: int = 1000
    ) -> int:
        n = to_micros(self.clock.now())
        cutoffs = [(status.value, n - int(seconds * 1_000_000)) for status, seconds in retention.items() if seconds > 0]

        def run(conn: sqlite3.Connection) -> int:
            deleted = 0
            for status, cutoff in cutoffs:
                deleted += conn.execute(
                    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status = ? AND completed_at < ? LIMIT ?)",
                    (status, cutoff, batch),
                ).rowcount
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (n - int(idempotency_ttl * 1_000_000),))
            return deleted

        return await self.engine.write(run)

    async def retry(self, job_id: str, workspace: str | None, granted: int) -> Job:
        now = self.clock.now()
        n = to_micros(now)

        def run(conn: sqlite3.Connection) -> Job:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            again = retried(read_job(row) if row else None, workspace, granted, now)
            changed = conn.execute(
                "UPDATE jobs SET status = 'queued', max_attempts = ?, error = NULL, result = NULL, result_type = NULL, "
                "progress = 0, steps = ?, current_step = NULL, completed_at = NULL, run_at = ?, worker = NULL, "
                f"lease_expires_at = NULL, updated_at = ?, scheduled = 0, round = {REQUEUED_ROUND} "
                f"WHERE id = ? AND status IN {RETRYABLE_SQL} RETURNING {COLUMNS}",
                (again.max_attempts, steps_json(again.steps), n, n, 0, job_id),
            ).fetchone()
            signal(conn, WORK)
            return read_job(changed)

        return await self.engine.write(run)

    async def delete(self, job_id: str, workspace: str | None = None) -> Job:
        def run(conn: sqlite3.Connection) -> Job:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            job = deletable(read_job(row) if row else None, workspace)
            conn.execute(f"DELETE FROM jobs WHERE id = ? AND status IN {DELETABLE_SQL}", (job_id,))
            return job  # its events and deliveries go with it (triggers)

        return await self.engine.write(run)
