"""The PostgreSQL store's bigger writes: inserting jobs (idempotently, within a quota), and ending
many attempts at once.

Module-level functions over a connection, so that code outside a running jobhouse can insert jobs
in its own transaction (`insert_jobs`), and so the store's outcome writes read apart from it.

Each write tells the other processes in the statement that changes the rows: a ``pg_notify`` in
a CTE over the rows it changed (`told`), so the notification is sent if and only if the change
commits, with no extra round trip. Payloads (see `jobhouse.store.pg_listener`): ``e`` work was
queued, ``r:<ids>`` attempts requeued (stop them; work was queued), ``c:<ids>`` jobs ended whose
attempts must stop (cancelled, or rescued with no attempts left). That jobs changed at all (``v``)
is told by the change log's triggers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from jobhouse.errors import ConfigurationError, IdempotencyConflict, QuotaExceeded
from jobhouse.job import AttemptRef, Failure, Job, NewJob, Outcome, Verdict, reset_steps
from jobhouse.store.base import Idempotency, unique_key
from jobhouse.store.pg_codec import Jsonb, encoded, job_from_row, steps_json, unavailable_on_errors
from jobhouse.store.ready import SCHEDULED_ROUND, Dialect
from jobhouse.store.rows import COLUMNS

#: Schema names jobhouse accepts (they are written into SQL).
SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Job ids per NOTIFY payload: PostgreSQL refuses payloads of 8000 bytes or more.
_IDS_PER_PAYLOAD = 200


def channel(schema: str) -> str:
    return f"jobhouse.{schema}"


def told(name: str, kind: str, rows: str) -> str:
    """A CTE `name` that NOTIFYs the ids of `rows` (a CTE with an ``id`` column) as ``<kind>:<ids>``;
    the statement must refer to it (``forced(name)``) for PostgreSQL to run it."""
    return (
        f"{name} AS (SELECT pg_notify(%(channel)s, '{kind}:' || string_agg(id::text, ',')) FROM "
        f"(SELECT id, (row_number() OVER () - 1) / {_IDS_PER_PAYLOAD} AS part FROM {rows}) AS p GROUP BY part)"
    )


def forced(*names: str) -> str:
    """A condition that is always true but makes PostgreSQL run the CTEs `names`."""
    return " AND ".join(f"(SELECT count(*) FROM {name}) >= 0" for name in names)


async def insert_jobs(
    conn: psycopg.AsyncConnection[Any], schema: str, jobs: Sequence[NewJob], now: datetime
) -> list[Job]:
    """Insert queued jobs on `conn`, in whatever transaction it has open, in one statement that also
    tells the workers (the NOTIFY is sent when, and only if, the transaction commits)."""
    if not SCHEMA.match(schema):
        raise ConfigurationError(f"Invalid schema {schema!r}")
    built = [new.queued(now) for new in jobs]
    if not built:
        return built
    params = {
        "channel": channel(schema), "now": now,
        "ids": [j.id for j in built], "workspaces": [j.workspace for j in built], "kinds": [j.kind for j in built],
        "subjects": [j.subject for j in built], "titles": [j.title for j in built],
        "steps": [steps_json(j.steps) for j in built], "inputs": [Jsonb(j.input) for j in built],
        "metadata": [Jsonb(j.metadata) for j in built], "attempts": [j.max_attempts for j in built],
        "run_at": [j.run_at for j in built], "callbacks": [j.callback_url for j in built],
        "priorities": [j.priority for j in built], "keys": [j.concurrency_key for j in built],
    }  # fmt: skip
    dialect = dialect_of(schema)
    async with unavailable_on_errors():
        await conn.execute(
            "WITH n AS (SELECT * FROM unnest(%(ids)s::uuid[], %(workspaces)s::text[], %(kinds)s::text[], "
            "%(subjects)s::text[], %(titles)s::text[], %(steps)s::jsonb[], %(inputs)s::jsonb[], %(metadata)s::jsonb[], "
            "%(attempts)s::int[], %(run_at)s::timestamptz[], %(callbacks)s::text[], %(priorities)s::int[], "
            "%(keys)s::text[]) WITH ORDINALITY AS n(id, workspace, kind, subject, title, steps, input, metadata, "
            "max_attempts, run_at, callback_url, priority, concurrency_key, ord)), "
            f"bases AS (SELECT d.workspace, d.priority, {dialect.next_round('d.workspace', 'd.priority')} AS base "
            "FROM (SELECT DISTINCT workspace, priority FROM n WHERE run_at <= %(now)s) AS d), "
            f"inserted AS (INSERT INTO {schema}.jobs (id, workspace, kind, subject, title, status, steps, input, "
            "metadata, max_attempts, run_at, created_at, updated_at, callback_url, priority, concurrency_key, "
            "scheduled, round) SELECT n.id, n.workspace, n.kind, n.subject, n.title, 'queued', n.steps, n.input, "
            "n.metadata, n.max_attempts, n.run_at, %(now)s, %(now)s, n.callback_url, n.priority, n.concurrency_key, "
            f"n.run_at > %(now)s, CASE WHEN n.run_at > %(now)s THEN {SCHEDULED_ROUND} ELSE b.base + row_number() "
            "OVER (PARTITION BY n.workspace, n.priority, n.run_at > %(now)s ORDER BY n.ord) - 1 END "
            "FROM n LEFT JOIN bases AS b ON b.workspace = n.workspace AND b.priority = n.priority RETURNING 1) "
            "SELECT pg_notify(%(channel)s, 'e') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_inserted",
            params,
        )
    return built


def dialect_of(schema: str) -> Dialect:
    """The PostgreSQL words of the shared claim SQL, for the tables of `schema`."""
    return Dialect(jobs=f"{schema}.jobs", ready="NOT q.scheduled")


async def create_job(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    new: NewJob,
    now: datetime,
    max_queued: int | None,
    idempotency: Idempotency | None,
) -> tuple[Job, bool]:
    """`Store.create` inside the transaction of `conn`: the idempotency key, the uniqueness key, the
    quota, the insert."""
    keys = [k for k in (idempotency, unique_key(new)) if k is not None]
    for i, key in enumerate(keys):
        earlier = await _claim_key(conn, schema, new, key, now)
        if earlier is not None:
            for taken in keys[:i]:  # keys taken for the job that will not be made name the earlier one
                await conn.execute(
                    f"UPDATE {schema}.idempotency_keys SET job_id = %s WHERE workspace = %s AND key = %s",
                    (earlier.id, new.workspace, taken.key),
                )
            return earlier, False
    if max_queued is not None:
        # One creator per workspace at a time while the quota is counted.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}:{new.workspace}",))
        queued = await (
            await conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {schema}.jobs WHERE workspace = %s AND status = 'queued' "
                "LIMIT %s) AS q",
                (new.workspace, max_queued),
            )
        ).fetchone()
        if queued is not None and queued[0] >= max_queued:
            raise QuotaExceeded(f"This workspace already has {max_queued} queued jobs; retry later")
    (job,) = await insert_jobs(conn, schema, [new], now)
    return job, True


async def _claim_key(
    conn: psycopg.AsyncConnection[Any], schema: str, new: NewJob, idempotency: Idempotency, now: datetime
) -> Job | None:
    """Take `idempotency.key` for `new`, or return the job it already names.

    ``INSERT … ON CONFLICT`` makes a racing duplicate wait for the first transaction and then
    see its row, so duplicates that race make one job.
    """
    expired = now - timedelta(seconds=idempotency.ttl)
    took = await (
        await conn.execute(
            f"INSERT INTO {schema}.idempotency_keys AS k VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (workspace, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
            "job_id = excluded.job_id, created_at = excluded.created_at WHERE k.created_at < %s RETURNING 1",
            (new.workspace, idempotency.key, idempotency.fingerprint, new.id, now, expired),
        )
    ).fetchone()
    if took is not None:
        return None
    held = await (
        await conn.execute(
            f"SELECT fingerprint, job_id FROM {schema}.idempotency_keys WHERE workspace = %s AND key = %s",
            (new.workspace, idempotency.key),
        )
    ).fetchone()
    assert held is not None
    if held[0] != idempotency.fingerprint:
        raise IdempotencyConflict()
    row = await (await conn.execute(f"SELECT {COLUMNS} FROM {schema}.jobs WHERE id = %s", (held[1],))).fetchone()
    if row is not None:
        return job_from_row(row)
    # The job it named was pruned: the key starts over with this one.
    await conn.execute(
        f"UPDATE {schema}.idempotency_keys SET job_id = %s, created_at = %s WHERE workspace = %s AND key = %s",
        (new.id, now, new.workspace, idempotency.key),
    )
    return None


async def write_outcomes(
    conn: psycopg.AsyncConnection[Any], schema: str, outcomes: Sequence[Outcome], now: datetime, *, stop: bool = False
) -> set[AttemptRef]:
    """Apply outcomes (one statement per verdict), fenced; the attempts that were written. With
    `stop` (a rescue: the attempts' workers vanished, or froze), the attempts are also told to stop."""
    written: set[AttemptRef] = set()
    fence = "WHERE j.id = o.id AND j.attempt = o.attempt AND j.status = 'running' RETURNING j.id, j.attempt"
    ended = "c" if stop else None
    done = [o for o in outcomes if o.verdict == Verdict.COMPLETED]
    if done:
        sql = (
            f"UPDATE {schema}.jobs AS j SET status = 'completed', progress = 100, steps = o.steps, "
            "current_step = NULL, result = o.result, result_type = o.result_type, lease_expires_at = NULL, "
            "updated_at = %(now)s, completed_at = %(now)s FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], "
            "%(steps)s::jsonb[], %(results)s::jsonb[], %(types)s::text[]) AS o(id, attempt, steps, result, "
            f"result_type) {fence}"
        )
        params: dict[str, Any] = {
            "now": now, "ids": [o.ref.job_id for o in done], "attempts": [o.ref.attempt for o in done],
            "steps": [steps_json(o.steps) for o in done], "results": [encoded(o.result) for o in done],
            "types": [o.result_type for o in done],
        }  # fmt: skip
        written |= await _returning_refs(conn, sql, params, schema, ended)
    for verdict in (Verdict.FAILED, Verdict.RETRY):
        group = [o for o in outcomes if o.verdict == verdict]
        if not group:
            continue
        if verdict == Verdict.FAILED:
            sets = (
                "status = 'failed', progress = o.progress, steps = o.steps, current_step = NULL, error = o.error, "
                "errors = j.errors || jsonb_build_array(o.error), lease_expires_at = NULL, updated_at = %(now)s, "
                "completed_at = %(now)s"
            )
            steps = [steps_json(o.steps) for o in group]
        else:
            sets = (
                "status = 'queued', progress = 0, steps = o.steps, current_step = NULL, "
                "errors = j.errors || jsonb_build_array(o.error), worker = NULL, lease_expires_at = NULL, "
                "run_at = coalesce(o.run_at, %(now)s), updated_at = %(now)s, "
                "scheduled = coalesce(o.run_at, %(now)s) > %(now)s, "
                f"round = CASE WHEN coalesce(o.run_at, %(now)s) > %(now)s THEN {SCHEDULED_ROUND} "
                f"ELSE {dialect_of(schema).next_round('j.workspace', 'j.priority')} END"
            )
            steps = [steps_json(reset_steps(o.steps)) for o in group]
        sql = (
            f"UPDATE {schema}.jobs AS j SET {sets} FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], "
            "%(steps)s::jsonb[], %(errors)s::jsonb[], %(progress)s::int[], %(run_at)s::timestamptz[]) "
            f"AS o(id, attempt, steps, error, progress, run_at) {fence}"
        )
        params = {
            "now": now, "ids": [o.ref.job_id for o in group], "attempts": [o.ref.attempt for o in group],
            "steps": steps, "errors": [Jsonb((o.failure or Failure("Job failed", "error")).to_dict()) for o in group],
            "progress": [o.progress for o in group], "run_at": [o.retry_at for o in group],
        }  # fmt: skip
        written |= await _returning_refs(conn, sql, params, schema, ended if verdict == Verdict.FAILED else "r")
    return written


async def _returning_refs(
    conn: psycopg.AsyncConnection[Any], update: str, params: dict[str, Any], schema: str, kind: str | None
) -> set[AttemptRef]:
    """Run an ``UPDATE ... RETURNING j.id, j.attempt`` and notify its rows as `kind` (if any), in one statement."""
    if kind is None:
        rows = await (await conn.execute(update, params)).fetchall()
        return {AttemptRef(str(row[0]), row[1]) for row in rows}
    notify = told("told", kind, "changed")
    sql = f"WITH changed AS ({update}), {notify} SELECT id, attempt FROM changed WHERE {forced('told')}"
    rows = await (await conn.execute(sql, {**params, "channel": channel(schema)})).fetchall()
    return {AttemptRef(str(row[0]), row[1]) for row in rows}
