"""The embedded store: one SQLite file in WAL mode, shared by the processes of one machine."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from jobhouse.clock import Clock, SystemClock, from_micros, to_micros
from jobhouse.errors import (
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    QuotaExceeded,
    StoreUnavailable,
)
from jobhouse.hub import Hub, Seen
from jobhouse.job import (
    AttemptRef,
    Failure,
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
from jobhouse.store.base import Cursor, Idempotency, JobPage, JobQuery
from jobhouse.store.migrations import migrations
from jobhouse.store.sqlite_catalog import SqliteCatalog
from jobhouse.store.sqlite_engine import Engine, SqliteOptions
from jobhouse.store.sqlite_keys import SqliteKeys

COLUMNS = (
    "id, workspace, kind, subject, title, status, progress, steps, current_step, input, metadata, "
    "result, result_type, error, errors, attempt, max_attempts, run_at, worker, lease_expires_at, "
    "created_at, updated_at, started_at, completed_at"
)
_RESCUE_BATCH = 500


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _steps_json(steps: Iterable[Step]) -> str:
    return dumps([s.to_dict() for s in steps])


def _ts(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _job(row: tuple[Any, ...]) -> Job:
    error = row[13]
    return Job(
        id=row[0],
        workspace=row[1],
        kind=row[2],
        subject=row[3],
        title=row[4],
        status=JobStatus(row[5]),
        progress=row[6],
        steps=tuple(Step.from_dict(s) for s in orjson.loads(row[7])),
        current_step=row[8],
        input=orjson.loads(row[9]),
        metadata=orjson.loads(row[10]),
        result=None if row[11] is None else orjson.loads(row[11]),
        result_type=row[12],
        error=None if error is None else Failure.from_dict(orjson.loads(error)),
        errors=tuple(Failure.from_dict(e) for e in orjson.loads(row[14])),
        attempt=row[15],
        max_attempts=row[16],
        run_at=from_micros(row[17]),
        worker=row[18],
        lease_expires_at=_ts(row[19]),
        created_at=from_micros(row[20]),
        updated_at=from_micros(row[21]),
        started_at=_ts(row[22]),
        completed_at=_ts(row[23]),
    )


def _ids_json(ids: Iterable[str]) -> str:
    return dumps(list(ids))


class SqliteStore:
    """`Store` on one SQLite file (see `jobhouse.store.base` for the contract)."""

    def __init__(self, path: str, *, clock: Clock | None = None, options: SqliteOptions | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.hub = Hub()
        self.options = options or SqliteOptions()
        self._engine: Engine | None = None
        self.keys = SqliteKeys(self)
        self.catalog = SqliteCatalog(self)

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
                for statement in _statements(migration.sql):
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
            raise InvalidRequest("Enqueueing on your own connection needs the PostgreSQL store")
        now = self.clock.now()
        built = [new.queued(now) for new in jobs]
        rows = [_insert_row(job) for job in built]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT, rows)

        await self.engine.write(run)
        self.hub.enqueued()
        return built

    async def create(
        self, new: NewJob, *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[Job, bool]:
        now = self.clock.now()
        job = new.queued(now)
        n = to_micros(now)

        def run(conn: sqlite3.Connection) -> tuple[Job, bool]:
            if idempotency is not None:
                seen = conn.execute(
                    "SELECT fingerprint, job_id FROM idempotency_keys WHERE workspace = ? AND key = ? "
                    "AND created_at >= ?",
                    (new.workspace, idempotency.key, n - int(idempotency.ttl * 1_000_000)),
                ).fetchone()
                if seen is not None:
                    if seen[0] != idempotency.fingerprint:
                        raise IdempotencyConflict()
                    earlier = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (seen[1],)).fetchone()
                    if earlier is not None:
                        return _job(earlier), False
            if max_queued is not None:
                (queued,) = conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE workspace = ? AND status = 'queued' LIMIT ?)",
                    (new.workspace, max_queued),
                ).fetchone()
                if queued >= max_queued:
                    raise QuotaExceeded(f"This workspace already has {max_queued} queued jobs; retry later")
            conn.execute(_INSERT, _insert_row(job))
            if idempotency is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (new.workspace, idempotency.key, idempotency.fingerprint, job.id, n),
                )
            return job, True

        created = await self.engine.write(run)
        if created[1]:
            self.hub.enqueued()
        return created

    async def get(self, job_id: str, workspace: str | None = None) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _job(row)

        job = await self.engine.read(run)
        if job is None or (workspace is not None and job.workspace != workspace):
            return None
        return job

    async def list_jobs(self, query: JobQuery) -> JobPage:
        where = ["workspace = ?"]
        params: list[Any] = [query.workspace]
        if query.subject is not None:
            where.append("subject = ?")
            params.append(query.subject)
        if query.kind is not None:
            where.append("kind = ?")
            params.append(query.kind)
        if query.statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            params.extend(sorted(s.value for s in query.statuses))
        if query.after is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend([to_micros(query.after.created_at), query.after.id])
        sql = f"SELECT {COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(query.limit + 1)

        def run(conn: sqlite3.Connection) -> list[Job]:
            return [_job(row) for row in conn.execute(sql, params)]

        jobs = await self.engine.read(run)
        if len(jobs) > query.limit:
            jobs = jobs[: query.limit]
            return JobPage(jobs, Cursor(jobs[-1].created_at, jobs[-1].id))
        return JobPage(jobs, None)

    async def cancel(self, job_id: str, workspace: str | None = None) -> Job:
        now = self.clock.now()

        def run(conn: sqlite3.Connection) -> tuple[Job, bool]:
            row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound()
            job = _job(row)
            ended = cancelled(job, workspace, now)
            if ended is None:
                return job, False
            assert ended.error is not None
            n = to_micros(now)
            conn.execute(
                "UPDATE jobs SET status = 'cancelled', steps = ?, current_step = ?, error = ?, "
                "lease_expires_at = NULL, updated_at = ?, completed_at = ? WHERE id = ?",
                (_steps_json(ended.steps), ended.current_step, dumps(ended.error.to_dict()), n, n, job_id),
            )
            return ended, True

        job, changed = await self.engine.write(run)
        if changed:
            self.hub.stopped([job_id])
            self.hub.ended([job_id])
        return job

    async def claim(self, worker: str, kinds: Collection[str], limit: int, lease: float) -> list[Job]:
        if limit <= 0 or not kinds:
            return []
        now = self.clock.now()
        n = to_micros(now)
        expires = n + int(lease * 1_000_000)
        kind_list = sorted(kinds)
        sql = (
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, worker = ?, lease_expires_at = ?, "
            "started_at = ?, updated_at = ? WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' "
            f"AND run_at <= ? AND kind IN ({', '.join('?' * len(kind_list))}) ORDER BY run_at, id LIMIT ?) "
            f"RETURNING {COLUMNS}"
        )
        params = (worker, expires, n, n, n, *kind_list, limit)

        def run(conn: sqlite3.Connection) -> list[Job]:
            return [_job(row) for row in conn.execute(sql, params).fetchall()]

        jobs = await self.engine.write(run)
        jobs.sort(key=lambda job: (job.run_at, job.id))
        return jobs

    async def heartbeat(self, worker: str, refs: Sequence[AttemptRef], lease: float) -> set[str]:
        if not refs:
            return set()
        expires = to_micros(self.clock.now()) + int(lease * 1_000_000)
        ids = _ids_json(ref.job_id for ref in refs)

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
            (r.progress, _steps_json(r.steps), r.current_step, n, expires, r.ref.job_id, r.ref.attempt) for r in reports
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

        lost = await self.engine.write(run)
        for r in reports:
            if r.ref.job_id not in lost:
                self.hub.changed(r.ref.job_id)
        return lost

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        now = self.clock.now()
        n = to_micros(now)
        statements = [_finish_statement(outcome, n) for outcome in outcomes]

        def run(conn: sqlite3.Connection) -> list[bool]:
            return [conn.execute(sql, params).rowcount == 1 for sql, params in statements]

        applied = await self.engine.write(run)
        ended = [o.ref.job_id for o, ok in zip(outcomes, applied, strict=True) if ok and o.verdict != Verdict.RETRY]
        self.hub.ended(ended)
        if any(ok and o.verdict == Verdict.RETRY for o, ok in zip(outcomes, applied, strict=True)):
            self.hub.enqueued()
        return applied

    async def release(self, refs: Sequence[AttemptRef]) -> int:
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
                count += conn.execute(
                    "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, "
                    "current_step = NULL, worker = NULL, lease_expires_at = NULL, run_at = ?, updated_at = ? "
                    "WHERE id = ? AND attempt = ? AND status = 'running'",
                    (_steps_json(steps), n, n, ref.job_id, ref.attempt),
                ).rowcount
            return count

        count = await self.engine.write(run)
        if count:
            self.hub.enqueued()
        return count

    async def rescue(self) -> list[str]:
        now = self.clock.now()
        n = to_micros(now)

        def run(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE status = 'running' AND lease_expires_at < ? LIMIT ?",
                (n, _RESCUE_BATCH),
            ).fetchall()
            requeued: list[str] = []
            failed: list[str] = []
            for row in rows:
                job = _job(row)
                outcome = lost(job, now)
                sql, params = _finish_statement(outcome, n)
                if conn.execute(sql + " AND lease_expires_at < ?", (*params, n)).rowcount:
                    (requeued if outcome.verdict == Verdict.RETRY else failed).append(job.id)
            return requeued, failed

        requeued, failed = await self.engine.write(run)
        if requeued:
            self.hub.enqueued()
        self.hub.ended(failed)
        self.hub.stopped(requeued + failed)
        return requeued + failed

    async def seen(self, job_ids: Collection[str]) -> dict[str, Seen | None]:
        ids = _ids_json(job_ids)

        def run(conn: sqlite3.Connection) -> dict[str, Seen | None]:
            found: dict[str, Seen | None] = dict.fromkeys(job_ids)
            for row in conn.execute(
                "SELECT id, status, attempt FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,)
            ):
                found[row[0]] = Seen(JobStatus(row[1]), row[2])
            return found

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


_INSERT = (
    "INSERT INTO jobs (id, workspace, kind, subject, title, status, steps, input, metadata, max_attempts, run_at, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)"
)


def _insert_row(job: Job) -> tuple[Any, ...]:
    n = to_micros(job.created_at)
    return (
        job.id, job.workspace, job.kind, job.subject, job.title, _steps_json(job.steps), dumps(job.input),
        dumps(job.metadata), job.max_attempts, to_micros(job.run_at), n, n,
    )  # fmt: skip


def _finish_statement(outcome: Outcome, now: int) -> tuple[str, tuple[Any, ...]]:
    """The one UPDATE that ends an attempt, fenced on (id, attempt, running)."""
    fence = (outcome.ref.job_id, outcome.ref.attempt)
    where = " WHERE id = ? AND attempt = ? AND status = 'running'"
    steps = _steps_json(outcome.steps)
    if outcome.verdict == Verdict.COMPLETED:
        return (
            "UPDATE jobs SET status = 'completed', progress = 100, steps = ?, current_step = NULL, "
            "result = ?, result_type = ?, lease_expires_at = NULL, updated_at = ?, completed_at = ?" + where,
            (steps, dumps(outcome.result), outcome.result_type, now, now, *fence),
        )
    failure = outcome.failure or Failure("Job failed", "error")
    error = dumps(failure.to_dict())
    if outcome.verdict == Verdict.FAILED:
        return (
            "UPDATE jobs SET status = 'failed', progress = ?, steps = ?, current_step = NULL, error = ?, "
            "errors = json_insert(errors, '$[#]', json(?)), lease_expires_at = NULL, updated_at = ?, "
            "completed_at = ?" + where,
            (outcome.progress, steps, error, error, now, now, *fence),
        )
    retry_at = to_micros(outcome.retry_at) if outcome.retry_at is not None else now
    return (
        "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, current_step = NULL, "
        "errors = json_insert(errors, '$[#]', json(?)), worker = NULL, lease_expires_at = NULL, run_at = ?, "
        "updated_at = ?" + where,
        (_steps_json(reset_steps(outcome.steps)), error, retry_at, now, *fence),
    )


def _statements(script: str) -> list[str]:
    """Split a migration into statements (they hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
