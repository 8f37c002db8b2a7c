"""The shared store: PostgreSQL, for any number of API nodes and workers on any machines.

- Claims take due jobs with ``FOR UPDATE SKIP LOCKED`` from a partial index of queued jobs only.
- Outcomes and progress reports from many coroutines are coalesced into one statement per kind
  of write (`Coalescer`), each fenced on (id, attempt, running); heartbeats are one statement per
  worker per interval for all of its running attempts.
- Every commit that matters to other processes sends a small ``NOTIFY`` from the statement that
  changes the rows (see `jobhouse.store.pg_writes`): work queued, jobs ended, attempts to stop,
  keys revoked. `PgListener` (one connection per process) turns them into hub events; a lost
  notification costs latency only, because the refresher also looks by itself.
- Connections commit single statements by themselves: a read is one round trip; writes run in
  `transaction`.
- A long-poll never holds a connection: connections are taken per operation from the pool.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from jobhouse.clock import Clock, SystemClock
from jobhouse.errors import ConfigurationError, JobhouseError, StoreUnavailable
from jobhouse.events import EVENT_COLUMNS, JobEvent, event_from_row
from jobhouse.hub import Hub, Seen
from jobhouse.job import AttemptRef, Job, JobStatus, NewJob, Outcome, Report, Verdict, cancelled, lost
from jobhouse.keys import CachedKeys
from jobhouse.maintenance import Service
from jobhouse.store.base import Idempotency, JobCount, JobPage, JobQuery, KindStats, Lineup, Rescued
from jobhouse.store.batching import Coalescer
from jobhouse.store.control import DELETABLE_SQL, RETRYABLE_SQL, deletable, retried
from jobhouse.store.migrations import migrations
from jobhouse.store.pg_catalog import PgCatalog
from jobhouse.store.pg_codec import IdleCheck, Jsonb, configure, job_from_row, steps_json, unavailable_on_errors
from jobhouse.store.pg_keys import PgKeys
from jobhouse.store.pg_listener import PgListener
from jobhouse.store.pg_webhooks import PgWebhooks
from jobhouse.store.pg_writes import SCHEMA, create_job, dialect_of, forced, insert_jobs, write_outcomes
from jobhouse.store.ready import NO_LIMIT, PROMOTE_BATCH, claim_order, in_claim_order
from jobhouse.store.rows import COLUMNS, as_is, event_query, listing, page
from jobhouse.store.stats import kind_stats, stats_sql

_J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in COLUMNS.split(","))
_RESCUE_BATCH = 500
_MIGRATION_LOCK = 7_311_902_417
#: A single enqueue this large refreshes the table's statistics.
_BURST = 1000
#: One create waiting for the next group commit: the job, the workspace's quota, its idempotency key.
_Create = tuple[NewJob, int | None, Idempotency | None]
#: TCP keepalives: a connection to a server that vanished without a word fails within ~15 s.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


def _claim_statements(schema: str) -> tuple[str, str, str]:
    """The claim's SQL for `schema`: the one statement of a usual claim, and the two reads of a claim
    that takes jobs held to concurrency limits (`jobhouse.store.ready`).

    The usual claim finds the scheduled jobs that are due and gives them their rounds, picks the first
    of them and of the ready jobs of `kinds` (unless some kind has jobs held to a limit), starts those
    and makes the other due ones ready, and ends with one row of no job that says how many it made
    ready, when the next scheduled job is due, and which kinds have held jobs. Each row it returns
    ends with the round the job was claimed at."""
    jobs = f"{schema}.jobs"
    dialect = dialect_of(schema)
    ready = (
        f"SELECT id{{}} FROM {jobs} WHERE status = 'queued' AND NOT scheduled AND concurrency_key IS NULL "
        "AND kind = ANY(%(kinds)s) ORDER BY priority DESC, round, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
    )
    nulls = ", ".join(["NULL"] * len(COLUMNS.split(",")))
    claim = (
        f"WITH due AS (SELECT id, workspace, priority, kind, concurrency_key FROM {jobs} WHERE status = 'queued' "
        "AND scheduled AND run_at <= %(now)s ORDER BY run_at, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED), "
        f"bases AS (SELECT d.workspace, d.priority, {dialect.next_round('d.workspace', 'd.priority')} AS base "
        "FROM (SELECT DISTINCT workspace, priority FROM due) AS d), "
        "ranked AS (SELECT due.id, due.priority, due.kind, due.concurrency_key, b.base + row_number() OVER "
        "(PARTITION BY due.workspace, due.priority ORDER BY due.id) - 1 AS round FROM due "
        "JOIN bases AS b ON b.workspace = due.workspace AND b.priority = due.priority), "
        f"held AS (SELECT coalesce(array_agg(k), '{{}}') AS kinds FROM unnest(%(kinds)s::text[]) AS k WHERE EXISTS "
        f"(SELECT 1 FROM {jobs} WHERE status = 'queued' AND NOT scheduled AND concurrency_key IS NOT NULL "
        "AND kind = k)), "
        "chosen AS (SELECT id, round FROM (SELECT id, priority, round FROM ("
        f"{ready.format(', priority, round')}) AS r UNION ALL SELECT id, priority, round FROM ranked "
        "WHERE concurrency_key IS NULL AND kind = ANY(%(kinds)s)) AS c "
        "WHERE (SELECT cardinality(kinds) FROM held) = 0 ORDER BY priority DESC, round, id LIMIT %(limit)s), "
        f"promoted AS (UPDATE {jobs} AS j SET scheduled = false, round = r.round FROM ranked AS r "
        "WHERE j.id = r.id AND r.id NOT IN (SELECT id FROM chosen) RETURNING j.id), "
        f"claimed AS (UPDATE {jobs} AS j SET status = 'running', attempt = j.attempt + 1, worker = %(worker)s, "
        "lease_expires_at = %(expires)s, started_at = %(now)s, updated_at = %(now)s, scheduled = false, "
        "round = CASE WHEN j.scheduled THEN (SELECT r.round FROM ranked AS r WHERE r.id = j.id) ELSE j.round END "
        "WHERE j.id = ANY((SELECT array_agg(id) FROM chosen)::uuid[]) "  # by the primary key, whatever the estimate
        f"RETURNING {_J_COLUMNS}, j.round) "
        f"SELECT *, NULL::bigint, NULL::timestamptz, NULL::text[] FROM claimed UNION ALL SELECT {nulls}, NULL, "
        f"(SELECT count(*) FROM promoted), (SELECT min(run_at) FROM {jobs} WHERE status = 'queued' AND scheduled "
        "AND run_at > %(now)s), (SELECT kinds FROM held)"
    )
    limited = dialect.limited("%(kind)s", "%(limit)s", "%(count)s")
    return claim, ready.format(", priority, round"), limited


def _plain(item: _Create) -> bool:
    """Whether a create needs nothing but its insert (no quota, no key, no uniqueness)."""
    new, max_queued, idempotency = item
    return max_queued is None and idempotency is None and new.unique_key is None


def parse_url(url: str) -> tuple[str, str]:
    """Split ``postgresql://…?schema=name`` into libpq conninfo and the schema (default jobhouse).

    Only ``schema`` is taken out; the rest reaches libpq exactly as written: an empty host is a Unix
    socket (``postgresql:///db``, ``postgresql://user@/db?host=/var/run/postgresql``), and every other
    parameter keeps its own encoding (libpq reads ``+`` as a plus sign, not a space).
    """
    base, _, query = url.partition("?")
    params = [param for param in query.split("&") if param]
    pairs = [(urllib.parse.unquote(param.partition("=")[0]), param) for param in params]
    given = [urllib.parse.unquote(param.partition("=")[2]) for name, param in pairs if name == "schema"]
    schema = given[0] if given else "jobhouse"
    if not SCHEMA.match(schema):
        raise ConfigurationError(f"Invalid schema {schema!r}: lower-case letters, digits and underscores")
    rest = "&".join(param for name, param in pairs if name != "schema")
    return f"{base}?{rest}" if rest else base, schema


class PostgresStore:
    """`Store` on PostgreSQL (see `jobhouse.store.base` for the contract)."""

    #: Event numbers are taken in the changing statement, and transactions may commit out of order.
    events_in_commit_order = False
    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        on_connect: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.conninfo, self.schema = parse_url(url)
        #: Called on each new pooled connection, after jobhouse's own setup (e.g. to set a
        #: ``statement_timeout``, or to trace the protocol).
        self.on_connect = on_connect
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
            configure=self._configure,
            check=idle_check.check,
            reset=idle_check.reset,
            kwargs={"connect_timeout": max(int(connect_timeout), 1), **_KEEPALIVES},
            name=f"jobhouse-{self.schema}",
        )
        self._opened = False
        self._analyzed_at = -60.0
        self.lineup = Lineup()
        self._claim_sql, self._ready_sql, self._limited_sql = _claim_statements(self.schema)
        self._requeued_round = dialect_of(self.schema).next_round("j.workspace", "j.priority")
        self._stats_sql = stats_sql(self.t("jobs"), lambda name: f"%({name})s")
        self.keys = CachedKeys(PgKeys(self), self.hub)
        self.catalog = PgCatalog(self)
        self.webhooks = PgWebhooks(self)
        self._creates: Coalescer[_Create, tuple[Job, bool] | JobhouseError] = Coalescer(self._create_batch)
        self._finishes: Coalescer[Outcome, bool] = Coalescer(self._finish_batch)
        self._reports: Coalescer[tuple[Report, float], bool] = Coalescer(self._report_batch)

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await configure(conn)
        if self.on_connect is not None:
            await self.on_connect(conn)

    def t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One transaction on a pooled connection; driver trouble becomes `StoreUnavailable`."""
        if not self._opened:
            raise StoreUnavailable("PostgreSQL store is not open")
        async with unavailable_on_errors(), self._pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection for one statement that commits by itself: one round trip, no BEGIN/COMMIT."""
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
                await conn.execute(migration.sql.replace("{schema}", self.schema))
                await conn.execute(
                    f"INSERT INTO {self.t('migrations')} VALUES (%s, %s, %s)",
                    (migration.version, migration.name, self.clock.now()),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied

    # -- jobs --------------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Insert jobs; with `connection` (a psycopg async connection), inside the caller's transaction."""
        now = self.clock.now()
        if any(new.unique_key is not None for new in jobs):  # each may be an earlier job: one at a time
            if connection is not None:
                return [(await create_job(connection, self.schema, new, now, None, None))[0] for new in jobs]
            async with self.transaction() as conn:
                return [(await create_job(conn, self.schema, new, now, None, None))[0] for new in jobs]
        if connection is not None:
            return await insert_jobs(connection, self.schema, jobs, now)
        if len(jobs) == 1:  # one at a time: shares a commit with the other creates in flight
            job, _ = await self.create(jobs[0])
            return [job]
        async with self.transaction() as conn:
            built = await insert_jobs(conn, self.schema, jobs, now)
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
        """Group commit: creates made while another group's transaction is in flight go together in
        the next one, each refused one (quota, key conflict) undone alone by its savepoint."""
        (result,) = await self._creates.submit([(new, max_queued, idempotency)])
        if isinstance(result, JobhouseError):
            raise result
        return result

    async def _create_batch(self, items: list[_Create]) -> list[tuple[Job, bool] | JobhouseError]:
        now = self.clock.now()
        results: list[tuple[Job, bool] | JobhouseError | None] = [None] * len(items)
        plain = [i for i, item in enumerate(items) if _plain(item)]
        async with self.transaction() as conn:
            for i, (new, max_queued, idempotency) in enumerate(items):
                if _plain(items[i]):
                    continue
                try:
                    async with conn.transaction():
                        results[i] = await create_job(conn, self.schema, new, now, max_queued, idempotency)
                except StoreUnavailable:
                    raise
                except JobhouseError as exc:
                    results[i] = exc
            if plain:
                built = await insert_jobs(conn, self.schema, [items[i][0] for i in plain], now)
                for i, job in zip(plain, built, strict=True):
                    results[i] = (job, True)
        return [result for result in results if result is not None]

    async def get(self, job_id: str, workspace: str | None = None) -> Job | None:
        async with self.read() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s", (job_id,))
            row = await cursor.fetchone()
        if row is None or (workspace is not None and row[1] != workspace):
            return None
        return job_from_row(row)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        where, params = listing(query, "%s", as_is, "::uuid")
        async with self.read() as conn:
            rows = await (await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} {where}", params)).fetchall()
        return page([job_from_row(row) for row in rows], query.limit)

    async def cancel(self, job_id: str, workspace: str | None = None) -> tuple[Job, bool]:
        now = self.clock.now()
        async with self.transaction() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s FOR UPDATE", (job_id,))
            row = await cursor.fetchone()
            ended, error = cancelled(job_from_row(row) if row else None, workspace, now)
            if error is None:
                return ended, False
            await conn.execute(
                f"WITH changed AS (UPDATE {self.t('jobs')} SET status = 'cancelled', steps = %s, current_step = %s, "
                "error = %s, lease_expires_at = NULL, updated_at = %s, completed_at = %s WHERE id = %s RETURNING id) "
                "SELECT pg_notify(%s, 'c:' || id) FROM changed",
                (steps_json(ended.steps), ended.current_step, Jsonb(error.to_dict()), now, now, job_id, self.channel),
            )
        return ended, True

    async def claim(
        self, worker: str, kinds: Collection[str], limit: int, lease: float, *, limits: Mapping[str, int] | None = None
    ) -> list[Job]:
        if limit <= 0 or not kinds:
            return []
        now = self.clock.now()
        params = {
            "worker": worker, "expires": now + timedelta(seconds=lease), "now": now,
            "kinds": sorted(kinds), "limit": limit, "batch": PROMOTE_BATCH,
        }  # fmt: skip
        async with self.transaction() as conn:
            rows = await (await conn.execute(self._claim_sql, params)).fetchall()
        jobs = in_claim_order([(job_from_row(row), row[-4]) for row in rows if row[0] is not None])
        (promoted, next_due, held) = next(row[-3:] for row in rows if row[0] is None)
        self.lineup = Lineup(next_due, promoted >= PROMOTE_BATCH)
        if held:  # jobs held to concurrency limits: claimed apart, in one order with the rest
            jobs = await self._claim_limited(params, held, limits or {})
        return jobs

    async def _claim_limited(self, params: dict[str, Any], held: list[str], limits: Mapping[str, int]) -> list[Job]:
        """A claim among the kinds' ready jobs and those held to limits: one claimer of each held kind
        at a time (an advisory lock until commit), so that two claims never both take a key's last place."""
        jobs = self.t("jobs")
        async with self.transaction() as conn:
            for kind in sorted(held):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}:limit:{kind}",))
            candidates = await (await conn.execute(self._ready_sql, params)).fetchall()
            for kind in held:
                cap = {"kind": kind, "limit": limits.get(kind, NO_LIMIT), "count": params["limit"]}
                candidates += await (await conn.execute(self._limited_sql, cap)).fetchall()
            chosen = [str(c[0]) for c in sorted(candidates, key=claim_order)[: params["limit"]]]
            rows = await (
                await conn.execute(
                    f"UPDATE {jobs} AS j SET status = 'running', attempt = j.attempt + 1, worker = %(worker)s, "
                    "lease_expires_at = %(expires)s, started_at = %(now)s, updated_at = %(now)s "
                    "WHERE j.id = ANY(%(chosen)s::uuid[]) AND j.status = 'queued' AND NOT j.scheduled "
                    f"RETURNING {_J_COLUMNS}, j.round",
                    {**params, "chosen": chosen},
                )
            ).fetchall()
        return in_claim_order([(job_from_row(row), row[-1]) for row in rows])

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
        return {r.ref.job_id for r, ok in zip(reports, written, strict=True) if not ok}

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
        return await self._finishes.submit(list(outcomes))

    async def _finish_batch(self, outcomes: list[Outcome]) -> list[bool]:
        async with self.transaction() as conn:
            written = await write_outcomes(conn, self.schema, outcomes, self.clock.now())
        return [o.ref in written for o in outcomes]

    async def release(self, refs: Sequence[AttemptRef], *, unstarted: bool = False) -> int:
        if not refs:
            return 0
        now = self.clock.now()
        params = {
            "now": now, "ids": [ref.job_id for ref in refs], "attempts": [ref.attempt for ref in refs],
            "channel": self.channel, "back": int(unstarted),
        }  # fmt: skip
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    f"WITH released AS (UPDATE {self.t('jobs')} AS j SET status = 'queued', progress = 0, "
                    "steps = coalesce((SELECT jsonb_agg(jsonb_set(s.step, '{status}', '\"pending\"') ORDER BY s.n) "
                    "FROM jsonb_array_elements(j.steps) WITH ORDINALITY AS s(step, n)), '[]'::jsonb), "
                    "current_step = NULL, worker = NULL, lease_expires_at = NULL, updated_at = %(now)s, "
                    "run_at = CASE WHEN %(back)s = 1 THEN j.run_at ELSE %(now)s END, attempt = j.attempt - %(back)s, "
                    f"scheduled = false, round = CASE WHEN %(back)s = 1 THEN j.round ELSE {self._requeued_round} END, "
                    "started_at = CASE WHEN %(back)s = 1 AND j.attempt = 1 THEN NULL ELSE j.started_at END "
                    "FROM unnest(%(ids)s::uuid[], %(attempts)s::int[]) AS r(id, attempt) "
                    "WHERE j.id = r.id AND j.attempt = r.attempt AND j.status = 'running' RETURNING j.id), "
                    "told AS (SELECT pg_notify(%(channel)s, 'e') FROM (SELECT 1 FROM released LIMIT 1) AS one) "
                    "SELECT (SELECT count(*) FROM released), (SELECT count(*) FROM told)",
                    params,
                )
            ).fetchone()
        return int(row[0]) if row is not None else 0

    async def rescue(self) -> Rescued:
        now = self.clock.now()
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE status = 'running' AND lease_expires_at < %s "
                    "LIMIT %s FOR UPDATE SKIP LOCKED",
                    (now, _RESCUE_BATCH),
                )
            ).fetchall()
            jobs = [job_from_row(row) for row in rows]
            outcomes = [lost(job, now) for job in jobs]
            written = await write_outcomes(conn, self.schema, outcomes, now, stop=True)
        return Rescued(
            requeued=[o.ref.job_id for o in outcomes if o.ref in written and o.verdict == Verdict.RETRY],
            failed=[o.ref.job_id for o in outcomes if o.ref in written and o.verdict == Verdict.FAILED],
            kinds={job.id: job.kind for job in jobs if job.ref in written},
        )

    async def active_counts(self) -> list[JobCount]:
        jobs = self.t("jobs")
        async with self.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT workspace, kind, 'queued', count(*), min(run_at) FROM {jobs} WHERE status = 'queued' "
                    f"GROUP BY workspace, kind UNION ALL SELECT workspace, kind, 'running', count(*), NULL "
                    f"FROM {jobs} WHERE status = 'running' GROUP BY workspace, kind"
                )
            ).fetchall()
        return [JobCount(space, kind, JobStatus(status), count, due) for space, kind, status, count, due in rows]

    async def stats(self, workspace: str, since: datetime, now: datetime) -> list[KindStats]:
        async with self.read() as conn:
            cursor = await conn.execute(self._stats_sql, {"workspace": workspace, "since": since, "now": now})
            rows = await cursor.fetchall()
        return kind_stats(rows, as_is)

    async def migrations_applied(self) -> list[int]:
        async with self.read() as conn:
            found = await (await conn.execute("SELECT to_regclass(%s)", (self.t("migrations"),))).fetchone()
            if found is None or found[0] is None:
                return []
            rows = await (await conn.execute(f"SELECT version FROM {self.t('migrations')} ORDER BY version")).fetchall()
        return [row[0] for row in rows]

    async def seen(self, job_ids: Collection[str]) -> dict[str, Seen | None]:
        found: dict[str, Seen | None] = dict.fromkeys(job_ids)
        async with self.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT id, status, attempt FROM {self.t('jobs')} WHERE id = ANY(%s::uuid[])",
                    (list(job_ids),),
                )
            ).fetchall()
        for row in rows:
            found[str(row[0])] = Seen(JobStatus(row[1]), row[2])
        return found

    async def jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        async with self.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = ANY(%s::uuid[])", (list(job_ids),)
                )
            ).fetchall()
        return {str(row[0]): job_from_row(row) for row in rows}

    async def events(
        self,
        after: int,
        *,
        job_id: str | None = None,
        workspace: str | None = None,
        upto: int | None = None,
        limit: int = 1000,
    ) -> list[JobEvent]:
        where, params = event_query("%s", after, job_id, workspace, upto, limit, "::uuid")
        async with self.read() as conn:
            rows = await (
                await conn.execute(f"SELECT {EVENT_COLUMNS} FROM {self.t('job_events')} {where}", params)
            ).fetchall()
        return [event_from_row(row, as_is, as_is) for row in rows]

    async def recent_events(self, count: int) -> list[int]:
        async with self.read() as conn:
            rows = await (
                await conn.execute(f"SELECT seq FROM {self.t('job_events')} ORDER BY seq DESC LIMIT %s", (count,))
            ).fetchall()
        return [row[0] for row in rows]

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

    async def retry(self, job_id: str, workspace: str | None, granted: int) -> Job:
        now = self.clock.now()
        async with self.transaction() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s FOR UPDATE", (job_id,))
            row = await cursor.fetchone()
            again = retried(job_from_row(row) if row else None, workspace, granted, now)
            changed = await (
                await conn.execute(
                    f"WITH changed AS (UPDATE {self.t('jobs')} AS j SET status = 'queued', "
                    "max_attempts = %(attempts)s, error = NULL, result = NULL, result_type = NULL, progress = 0, "
                    "steps = %(steps)s, current_step = NULL, completed_at = NULL, run_at = %(now)s, worker = NULL, "
                    f"lease_expires_at = NULL, updated_at = %(now)s, scheduled = false, round = {self._requeued_round} "
                    f"WHERE id = %(id)s AND status IN {RETRYABLE_SQL} RETURNING {COLUMNS}), "
                    "told AS (SELECT pg_notify(%(channel)s, 'e') FROM (SELECT 1 FROM changed LIMIT 1) AS one) "
                    f"SELECT {COLUMNS} FROM changed WHERE {forced('told')}",
                    {
                        "attempts": again.max_attempts, "steps": steps_json(again.steps), "now": now,
                        "id": job_id, "channel": self.channel,
                    },
                )
            ).fetchone()  # fmt: skip
        assert changed is not None  # the row is locked since it was read
        return job_from_row(changed)

    async def delete(self, job_id: str, workspace: str | None = None) -> Job:
        async with self.transaction() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM {self.t('jobs')} WHERE id = %s FOR UPDATE", (job_id,))
            row = await cursor.fetchone()
            job = deletable(job_from_row(row) if row else None, workspace)
            await conn.execute(f"DELETE FROM {self.t('jobs')} WHERE id = %s AND status IN {DELETABLE_SQL}", (job_id,))
        return job  # its events and deliveries go with it (triggers)
