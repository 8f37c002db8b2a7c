"""The PostgreSQL store's batched writes: inserting jobs, and ending many attempts at once.

Module-level functions over a connection, so that code outside a running jobhouse can insert jobs
in its own transaction (`insert_jobs`), and so the store's outcome writes read apart from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from jobhouse.errors import InvalidRequest
from jobhouse.job import AttemptRef, Failure, Job, NewJob, Outcome, Verdict, reset_steps
from jobhouse.store.pg_codec import Jsonb, steps_json, unavailable_on_errors

#: Schema names jobhouse accepts (they are written into SQL).
SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def insert_jobs(
    conn: psycopg.AsyncConnection[Any], schema: str, jobs: Sequence[NewJob], now: datetime
) -> list[Job]:
    """Insert queued jobs on `conn`, in whatever transaction it has open, and tell the workers.

    The NOTIFY is part of the transaction: workers hear of the jobs when (and only if) it commits.
    """
    if not SCHEMA.match(schema):
        raise InvalidRequest(f"Invalid schema {schema!r}")
    built = [new.queued(now) for new in jobs]
    rows = [
        (
            job.id, job.workspace, job.kind, job.subject, job.title, steps_json(job.steps),
            Jsonb(job.input), Jsonb(job.metadata), job.max_attempts, job.run_at, now, now,
        )
        for job in built
    ]  # fmt: skip
    async with unavailable_on_errors(), conn.cursor() as cursor:
        await cursor.executemany(
            f"INSERT INTO {schema}.jobs (id, workspace, kind, subject, title, status, steps, input, metadata, "
            "max_attempts, run_at, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        await cursor.execute("SELECT pg_notify(%s, 'e')", (f"jobhouse.{schema}",))
    return built


async def write_outcomes(
    conn: psycopg.AsyncConnection[Any], schema: str, outcomes: Sequence[Outcome], now: datetime
) -> set[AttemptRef]:
    """Apply outcomes (one statement per verdict), fenced; the attempts that were written."""
    written: set[AttemptRef] = set()
    fence = "WHERE j.id = o.id AND j.attempt = o.attempt AND j.status = 'running' RETURNING j.id, j.attempt"
    done = [o for o in outcomes if o.verdict == Verdict.COMPLETED]
    if done:
        sql = (
            f"UPDATE {schema}.jobs AS j SET status = 'completed', progress = 100, steps = o.steps, "
            "current_step = NULL, result = o.result, result_type = o.result_type, lease_expires_at = NULL, "
            "updated_at = %s, completed_at = %s FROM unnest(%s::uuid[], %s::int[], %s::jsonb[], %s::jsonb[], "
            f"%s::text[]) AS o(id, attempt, steps, result, result_type) {fence}"
        )
        params: tuple[Any, ...] = (
            now, now, [o.ref.job_id for o in done], [o.ref.attempt for o in done],
            [steps_json(o.steps) for o in done], [Jsonb(o.result) for o in done], [o.result_type for o in done],
        )  # fmt: skip
        written |= await _returning_refs(conn, sql, params)
    for verdict in (Verdict.FAILED, Verdict.RETRY):
        group = [o for o in outcomes if o.verdict == verdict]
        if not group:
            continue
        errors = [Jsonb((o.failure or Failure("Job failed", "error")).to_dict()) for o in group]
        if verdict == Verdict.FAILED:
            sets = (
                "status = 'failed', progress = o.progress, steps = o.steps, current_step = NULL, error = o.error, "
                "errors = j.errors || jsonb_build_array(o.error), lease_expires_at = NULL, updated_at = %s, "
                "completed_at = %s"
            )
            steps = [steps_json(o.steps) for o in group]
        else:
            sets = (
                "status = 'queued', progress = 0, steps = o.steps, current_step = NULL, "
                "errors = j.errors || jsonb_build_array(o.error), worker = NULL, lease_expires_at = NULL, "
                "run_at = coalesce(o.run_at, %s), updated_at = %s"
            )
            steps = [steps_json(reset_steps(o.steps)) for o in group]
        sql = (
            f"UPDATE {schema}.jobs AS j SET {sets} FROM unnest(%s::uuid[], %s::int[], %s::jsonb[], "
            f"%s::jsonb[], %s::int[], %s::timestamptz[]) AS o(id, attempt, steps, error, progress, run_at) {fence}"
        )
        params = (
            now, now, [o.ref.job_id for o in group], [o.ref.attempt for o in group], steps, errors,
            [o.progress for o in group], [o.retry_at for o in group],
        )  # fmt: skip
        written |= await _returning_refs(conn, sql, params)
    return written


async def _returning_refs(conn: psycopg.AsyncConnection[Any], sql: str, params: tuple[Any, ...]) -> set[AttemptRef]:
    rows = await (await conn.execute(sql, params)).fetchall()
    return {AttemptRef(str(row[0]), row[1]) for row in rows}
