"""The shared store: PostgreSQL, for any number of API nodes and workers on any machines.

- Claims take due jobs with ``FOR UPDATE SKIP LOCKED`` from a partial index of queued jobs only.
- Outcomes, progress reports and heartbeats from many coroutines are coalesced into one
  statement per kind of write (`Coalescer`), each fenced on (id, attempt, running).
- Every commit that matters to other processes sends a small ``NOTIFY``: work queued, jobs
  ended, attempts to stop. `PgListener` (one connection per process) turns them into hub
  events; a lost notification costs latency only, because the refresher also looks by itself.
- A long-poll never holds a connection: connections are taken per operation from the pool.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from jobhouse.clock import Clock, SystemClock
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
from jobhouse.store.batching import Coalescer
from jobhouse.store.migrations import migrations
from jobhouse.store.pg_catalog import PgCatalog
from jobhouse.store.pg_codec import IdleCheck, Jsonb, configure, job_from_row, steps_json, unavailable_on_errors
from jobhouse.store.pg_keys import PgKeys
from jobhouse.store.pg_listener import PgListener, notify_payloads
from jobhouse.store.pg_writes import SCHEMA, insert_jobs, write_outcomes

COLUMNS = (
    "id, workspace, kind, subject, title, status, progress, steps, current_step, input, metadata, "
    "result, result_type, error, errors, attempt, max_attempts, run_at, worker, lease_expires_at, "
    "created_at, updated_at, started_at, completed_at"
)
_J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in COLUMNS.split(","))
_RESCUE_BATCH = 500
_MIGRATION_LOCK = 7_311_902_417
#: A single enqueue this large refreshes the table's statistics.
_BURST = 1000
#: TCP keepalives: a connection to a server that vanished without a word fails within ~15 s.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


def parse_url(url: str) -> tuple[str, str]:
    """Split ``postgresql://…?schema=name`` into libpq conninfo and the schema (default jobhouse)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "jobhouse")
    if not SCHEMA.match(schema):
        raise InvalidRequest(f"Invalid schema {schema!r}: lower-case letters, digits and underscores")
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), schema


class PostgresStore:
    """`Store` on PostgreSQL (see `jobhouse.store.base` for the contract)."""

    def __init__(
        self, url: str, *, clock: Clock | None = None, pool_size: int = 10, connect_timeout: float = 5.0
    ) -> None:
        self.conninfo, self.schema = parse_url(url)
        self.clock: Clock = clock or SystemClock()
        self.hub = Hub()
        self.channel = f"jobhouse.{self.schema}"
        idle_check = IdleCheck()
        self._pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(pool_size, 2),
            open=False,
            timeout=connect_timeout,
            configure=configure,
            check=idle_check.check,
            reset=idle_check.reset,
            kwargs={"connect_timeout": max(int(connect_timeout), 1), **_KEEPALIVES},
            name=f"jobhouse-{self.schema}",
        )
        self._opened = False
        self._analyzed_at = -60.0
        self.keys = PgKeys(self)
        self.catalog = PgCatalog(self)
        self._finishes: Coalescer[Outcome, bool] = Coalescer(self._finish_batch)
        self._reports: Coalescer[tuple[Report, float], bool] = Coalescer(self._report_batch)

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    def t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One transaction on a pooled connection; driver trouble becomes `StoreUnavailable`."""
        if not self._opened:
            raise StoreUnavailable("PostgreSQL store is not open")
        async with unavailable_on_errors(), self._pool.connection() as conn:
            yield conn

    async def open(self, *, migrate: bool = True) -> None:
        if self._opened:
            return
        async with unavailable_on_errors():
            await self._pool.open(wait=True, timeout=self._pool.timeout)
        self._opened = True
        if migrate:
            await self.migrate()

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self._pool.close()

    def services(self) -> list[Service]:
        """The LISTEN connection: other processes' changes reach this process's hub."""
        return [PgListener(self.conninfo, self.channel, self.hub)]

    async def migrate(self) -> list[str]:
        async with self.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.t('migrations')} "
                "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            done = {
                row[0] for row in await (await conn.execute(f"SELECT version FROM {self.t('migrations')}")).fetchall()
            }
            applied = []
            for migration in migrations("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql.replace("{schema}", self.schema))  # type: ignore[arg-type, unused-ignore]
                await conn.execute(
                    f"INSERT INTO {self.t('migrations')} VALUES (%s, %s, %s)",
                    (migration.version, migration.name, self.clock.now()),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied

    async def _notify(self, conn: psycopg.AsyncConnection[Any], kind: str, ids: Collection[str] = ()) -> None:
        for payload in notify_payloads(kind, ids):
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    # -- jobs --------------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Insert jobs; with `connection` (a psycopg async connection), inside the caller's transaction."""
        now = self.clock.now()
        if connection is not None:
            return await insert_jobs(connection, self.schema, jobs, now)
        async with self.transaction() as conn:
            built = await insert_jobs(conn, self.schema, jobs, now)
        self.hub.enqueued()
        if len(built) >= _BURST:
            await self._refresh_statistics()
        return built

    async def _refresh_statistics(self) -> None:
        """After a burst of jobs, analyze the table (at most once a minute), before autovacuum gets to it:
        with statistics from before the burst, the planner would sort the whole backlog on every claim."""
        moment = time.monotonic()
        if moment - self._analyzed_at < 60:
            return
        self._analyzed_at = moment
        async with self.transaction() as conn:
            await conn.execute(f"ANALYZE {self.t('jobs')}")

    async def create(
        self, new: NewJob, *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[Job, bool]:
        now = self.clock.now()
        async with self.transaction() as conn:
            if idempotency is not None:
                earlier = await self._claim_key(conn, new, idempotency, now)
                if earlier is not None:
                    return earlier, False
            if max_queued is not None:
                # One creator per workspace at a time while the quota is counted.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}:{new.workspace}",))
                queued = await (
                    await conn.execute(
                        f"SELECT count(*) FROM (SELECT 1 FROM {self.t('jobs')} WHERE workspace = %s "
                        "AND status = 'queued' LIMIT %s) AS q",
                        (new.workspace, max_queued),
                    )
                ).fetchone()
                if queued is not None and queued[0] >= max_queued:
                    raise QuotaExceeded(f"This workspace already has {max_queued} queued jobs; retry later")
            (job,) = await insert_jobs(conn, self.schema, [new], now)
        self.hub.enqueued()
        return job, True

    async def _claim_key(
        self, conn: psycopg.AsyncConnection[Any], new: NewJob, idempotency: Idempotency, now: datetime
    ) -> Job | None:
        """Take `idempotency.key` for `new`, or return the job it already names.

        ``INSERT … ON CONFLICT`` makes a racing duplicate wait for the first transaction and then
        see its row, so duplicates that race make one job.
        """
        expired = now - timedelta(seconds=idempotency.ttl)
        took = await (
            await conn.execute(
                f"INSERT INTO {self.t('idempotency_keys')} AS k VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (workspace, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "job_id = excluded.job_id, created_at = excluded.created_at WHERE k.created_at < %s RETURNING 1",
                (new.workspace, idempotency.key, idempotency.fingerprint, new.id, now, expired),
            )
        ).fetchone()
        if took is not None:
            return None
        held = await (
            await conn.execute(
                f"SELECT fingerprint, job_id FROM {self.t('idempotency_keys')} WHERE workspace = %s AND key = %s",
                (new.workspace, idempotency.key),
            )
        ).fetchone()
        assert held is not None
        if held[0] != idempotency.fingerprint:
            raise IdempotencyConflict()
        row = await (await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s", (held[1],))).fetchone()
        if row is not None:
            return job_from_row(row)
        # The job it named was pruned: the key starts over with this one.
        await conn.execute(
            f"UPDATE {self.t('idempotency_keys')} SET job_id = %s, created_at = %s WHERE workspace = %s AND key = %s",
            (new.id, now, new.workspace, idempotency.key),
        )
        return None

    async def get(self, job_id: str, workspace: str | None = None) -> Job | None:
        async with self.transaction() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s", (job_id,))
            row = await cursor.fetchone()
        if row is None or (workspace is not None and row[1] != workspace):
            return None
        return job_from_row(row)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        where = ["workspace = %s"]
        params: list[Any] = [query.workspace]
        if query.subject is not None:
            where.append("subject = %s")
            params.append(query.subject)
        if query.kind is not None:
            where.append("kind = %s")
            params.append(query.kind)
        if query.statuses is not None:
            where.append("status = ANY(%s)")
            params.append(sorted(s.value for s in query.statuses))
        if query.after is not None:
            where.append("(created_at, id) < (%s, %s::uuid)")
            params.extend([query.after.created_at, query.after.id])
        sql = (
            f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %s"
        )
        params.append(query.limit + 1)
        async with self.transaction() as conn:
            rows = await (await conn.execute(sql, params)).fetchall()
        jobs = [job_from_row(row) for row in rows]
        if len(jobs) > query.limit:
            jobs = jobs[: query.limit]
            return JobPage(jobs, Cursor(jobs[-1].created_at, jobs[-1].id))
        return JobPage(jobs, None)

    async def cancel(self, job_id: str, workspace: str | None = None) -> Job:
        now = self.clock.now()
        async with self.transaction() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s FOR UPDATE", (job_id,))
            row = await cursor.fetchone()
            if row is None:
                raise JobNotFound()
            job = job_from_row(row)
            ended = cancelled(job, workspace, now)
            if ended is None:
                return job
            assert ended.error is not None
            job = ended
            await conn.execute(
                f"UPDATE {self.t('jobs')} SET status = 'cancelled', steps = %s, current_step = %s, error = %s, "
                "lease_expires_at = NULL, updated_at = %s, completed_at = %s WHERE id = %s",
                (steps_json(job.steps), job.current_step, Jsonb(ended.error.to_dict()), now, now, job_id),
            )
            await self._notify(conn, "s", [job_id])
            await self._notify(conn, "d", [job_id])
        self.hub.stopped([job_id])
        self.hub.ended([job_id])
        return job

    async def claim(self, worker: str, kinds: Collection[str], limit: int, lease: float) -> list[Job]:
        if limit <= 0 or not kinds:
            return []
        now = self.clock.now()
        sql = (
            f"UPDATE {self.t('jobs')} AS j SET status = 'running', attempt = j.attempt + 1, worker = %(worker)s, "
            "lease_expires_at = %(expires)s, started_at = %(now)s, updated_at = %(now)s "
            f"FROM (SELECT id FROM {self.t('jobs')} WHERE status = 'queued' AND run_at <= %(now)s "
            "AND kind = ANY(%(kinds)s) ORDER BY run_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS next "
            f"WHERE j.id = next.id RETURNING {_J_COLUMNS}"
        )
        params = {
            "worker": worker, "expires": now + timedelta(seconds=lease), "now": now,
            "kinds": sorted(kinds), "limit": limit,
        }  # fmt: skip
        async with self.transaction() as conn:
            rows = await (await conn.execute(sql, params)).fetchall()
        jobs = [job_from_row(row) for row in rows]
        jobs.sort(key=lambda job: (job.run_at, job.id))
        return jobs

    async def heartbeat(self, worker: str, refs: Sequence[AttemptRef], lease: float) -> set[str]:
        if not refs:
            return set()
        expires = self.clock.now() + timedelta(seconds=lease)
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"UPDATE {self.t('jobs')} SET lease_expires_at = %s WHERE status = 'running' AND worker = %s "
                    "AND id = ANY(%s::uuid[]) RETURNING id, attempt",
                    (expires, worker, [ref.job_id for ref in refs]),
                )
            ).fetchall()
        held = {(str(row[0]), row[1]) for row in rows}
        return {ref.job_id for ref in refs if (ref.job_id, ref.attempt) not in held}

    async def report(self, reports: Sequence[Report], lease: float) -> set[str]:
        if not reports:
            return set()
        written = await self._reports.submit([(r, lease) for r in reports])
        lost = {r.ref.job_id for r, ok in zip(reports, written, strict=True) if not ok}
        for r in reports:
            if r.ref.job_id not in lost:
                self.hub.changed(r.ref.job_id)
        return lost

    async def _report_batch(self, items: list[tuple[Report, float]]) -> list[bool]:
        now = self.clock.now()
        latest = {r.ref: (r, lease) for r, lease in items}
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"UPDATE {self.t('jobs')} AS j SET progress = r.progress, steps = r.steps, "
                    "current_step = r.current_step, updated_at = %s, lease_expires_at = %s::timestamptz + r.lease "
                    "FROM unnest(%s::uuid[], %s::int[], %s::int[], %s::jsonb[], %s::text[], %s::interval[]) "
                    "AS r(id, attempt, progress, steps, current_step, lease) "
                    "WHERE j.id = r.id AND j.attempt = r.attempt AND j.status = 'running' RETURNING j.id, j.attempt",
                    (
                        now, now,
                        [ref.job_id for ref in latest], [ref.attempt for ref in latest],
                        [r.progress for r, _ in latest.values()], [steps_json(r.steps) for r, _ in latest.values()],
                        [r.current_step for r, _ in latest.values()],
                        [timedelta(seconds=lease) for _, lease in latest.values()],
                    ),
                )
            ).fetchall()  # fmt: skip
        held = {AttemptRef(str(row[0]), row[1]) for row in rows}
        return [r.ref in held for r, _ in items]

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        applied = await self._finishes.submit(list(outcomes))
        self.hub.ended(
            [o.ref.job_id for o, ok in zip(outcomes, applied, strict=True) if ok and o.verdict != Verdict.RETRY]
        )
        if any(ok and o.verdict == Verdict.RETRY for o, ok in zip(outcomes, applied, strict=True)):
            self.hub.enqueued()
        return applied

    async def _finish_batch(self, outcomes: list[Outcome]) -> list[bool]:
        now = self.clock.now()
        async with self.transaction() as conn:
            written = await write_outcomes(conn, self.schema, outcomes, now)
            ended = [o.ref.job_id for o in outcomes if o.ref in written and o.verdict != Verdict.RETRY]
            await self._notify(conn, "d", ended)
            if any(o.ref in written and o.verdict == Verdict.RETRY for o in outcomes):
                await self._notify(conn, "e")
        return [o.ref in written for o in outcomes]

    async def release(self, refs: Sequence[AttemptRef]) -> int:
        if not refs:
            return 0
        now = self.clock.now()
        count = 0
        async with self.transaction() as conn:
            for ref in refs:
                cursor = await conn.execute(
                    f"SELECT steps FROM {self.t('jobs')} WHERE id = %s AND attempt = %s AND status = 'running' "
                    "FOR UPDATE",
                    (ref.job_id, ref.attempt),
                )
                row = await cursor.fetchone()
                if row is None:
                    continue
                steps = reset_steps([Step.from_dict(s) for s in row[0]])
                cursor = await conn.execute(
                    f"UPDATE {self.t('jobs')} SET status = 'queued', progress = 0, steps = %s, current_step = NULL, "
                    "worker = NULL, lease_expires_at = NULL, run_at = %s, updated_at = %s "
                    "WHERE id = %s AND attempt = %s AND status = 'running'",
                    (steps_json(steps), now, now, ref.job_id, ref.attempt),
                )
                count += cursor.rowcount
            if count:
                await self._notify(conn, "e")
        if count:
            self.hub.enqueued()
        return count

    async def rescue(self) -> list[str]:
        now = self.clock.now()
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE status = 'running' AND lease_expires_at < %s "
                    "LIMIT %s FOR UPDATE SKIP LOCKED",
                    (now, _RESCUE_BATCH),
                )
            ).fetchall()
            outcomes = [lost(job_from_row(row), now) for row in rows]
            written = await write_outcomes(conn, self.schema, outcomes, now)
            requeued = [o.ref.job_id for o in outcomes if o.ref in written and o.verdict == Verdict.RETRY]
            failed = [o.ref.job_id for o in outcomes if o.ref in written and o.verdict == Verdict.FAILED]
            await self._notify(conn, "s", requeued + failed)
            await self._notify(conn, "d", failed)
            if requeued:
                await self._notify(conn, "e")
        if requeued:
            self.hub.enqueued()
        self.hub.ended(failed)
        self.hub.stopped(requeued + failed)
        return requeued + failed

    async def seen(self, job_ids: Collection[str]) -> dict[str, Seen | None]:
        found: dict[str, Seen | None] = dict.fromkeys(job_ids)
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT id, status, attempt FROM {self.t('jobs')} WHERE id = ANY(%s::uuid[])",
                    (list(job_ids),),
                )
            ).fetchall()
        for row in rows:
            found[str(row[0])] = Seen(JobStatus(row[1]), row[2])
        return found

    async def prune(
        self, retention: Mapping[JobStatus, float], idempotency_ttl: float = 24 * 3600.0, batch: int = 1000
    ) -> int:
        now = self.clock.now()
        deleted = 0
        async with self.transaction() as conn:
            for status, seconds in retention.items():
                if seconds <= 0:
                    continue
                cursor = await conn.execute(
                    f"DELETE FROM {self.t('jobs')} WHERE id IN (SELECT id FROM {self.t('jobs')} WHERE status = %s "
                    "AND completed_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                    (status.value, now - timedelta(seconds=seconds), batch),
                )
                deleted += cursor.rowcount
            await conn.execute(
                f"DELETE FROM {self.t('idempotency_keys')} WHERE created_at < %s",
                (now - timedelta(seconds=idempotency_ttl),),
            )
        return deleted
