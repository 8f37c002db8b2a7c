"""The SQLite store's statements and rows: inserting jobs (idempotently, within a quota), ending
attempts, and the JSON and time values SQLite keeps (JSON text and blobs, microseconds)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from jobhouse import codec
from jobhouse.clock import from_micros, to_micros
from jobhouse.errors import IdempotencyConflict, QuotaExceeded
from jobhouse.hub import WORK
from jobhouse.job import Failure, Job, NewJob, Outcome, Step, Verdict, reset_steps
from jobhouse.store.base import Idempotency, Lineup, unique_key
from jobhouse.store.ready import PROMOTE_BATCH, SCHEDULED_ROUND, Dialect
from jobhouse.store.rows import COLUMNS, job_from_row
from jobhouse.store.sqlite_engine import signal


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def steps_json(steps: Iterable[Step]) -> str:
    return dumps([s.to_dict() for s in steps])


def ids_json(ids: Iterable[str]) -> str:
    return dumps(list(ids))


def read_job(row: tuple[Any, ...]) -> Job:
    return job_from_row(row, json=orjson.loads, time=from_micros)


def create_job(
    conn: sqlite3.Connection,
    new: NewJob,
    now: datetime,
    max_queued: int | None,
    idempotency: Idempotency | None,
) -> tuple[Job, bool]:
    """`Store.create` in the writer's transaction: the idempotency key, the uniqueness key, the
    quota, the insert."""
    made = new.queued(now)
    n = to_micros(now)
    keys = [k for k in (idempotency, unique_key(new)) if k is not None]
    for key in keys:
        seen = conn.execute(
            "SELECT fingerprint, job_id FROM idempotency_keys WHERE workspace = ? AND key = ? AND created_at >= ?",
            (new.workspace, key.key, n - int(key.ttl * 1_000_000)),
        ).fetchone()
        if seen is None:
            continue
        if seen[0] != key.fingerprint:
            raise IdempotencyConflict()
        earlier = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (seen[1],)).fetchone()
        if earlier is not None:
            _hold_keys(conn, new.workspace, [k for k in keys if k is not key], seen[1], n)
            return read_job(earlier), False
    if max_queued is not None:
        (queued,) = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE workspace = ? AND status = 'queued' LIMIT ?)",
            (new.workspace, max_queued),
        ).fetchone()
        if queued >= max_queued:
            raise QuotaExceeded(f"This workspace already has {max_queued} queued jobs; retry later")
    conn.execute(INSERT, insert_row(made))
    signal(conn, WORK)
    _hold_keys(conn, new.workspace, keys, made.id, n)
    return made, True


def _hold_keys(conn: sqlite3.Connection, workspace: str, keys: Iterable[Idempotency], job_id: str, now: int) -> None:
    """Make each key (one not yet held, or held past its time) name `job_id` from `now`."""
    for key in keys:
        conn.execute(
            "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
            (workspace, key.key, key.fingerprint, job_id, now),
        )


#: The SQLite words of the shared claim SQL.
SQLITE = Dialect(jobs="jobs", ready="q.scheduled = 0", ready_index="INDEXED BY jobs_ready")
#: The round of a job going back to the queue in an UPDATE of `jobs` with one parameter (1: scheduled).
REQUEUED_ROUND = f"CASE WHEN ? THEN {SCHEDULED_ROUND} ELSE {SQLITE.next_round('jobs.workspace', 'jobs.priority')} END"


#: Inserts one queued job (named parameters: `insert_row`), ready or scheduled (see `jobhouse.store.ready`).
INSERT = (
    "INSERT INTO jobs (id, workspace, kind, subject, title, status, steps, input, metadata, max_attempts, run_at, "
    "created_at, updated_at, callback_url, priority, concurrency_key, scheduled, round) VALUES (:id, :workspace, "
    ":kind, :subject, :title, 'queued', :steps, :input, :metadata, :max_attempts, :run_at, :now, :now, "
    ":callback_url, :priority, :concurrency_key, :scheduled, "
    f"CASE WHEN :scheduled THEN {SCHEDULED_ROUND} ELSE {SQLITE.next_round(':workspace', ':priority')} END)"
)


def insert_row(job: Job) -> dict[str, Any]:
    n = to_micros(job.created_at)
    run_at = to_micros(job.run_at)
    return {
        "id": job.id, "workspace": job.workspace, "kind": job.kind, "subject": job.subject, "title": job.title,
        "steps": steps_json(job.steps), "input": codec.encode(job.input), "metadata": codec.encode(job.metadata),
        "max_attempts": job.max_attempts, "run_at": run_at, "now": n, "callback_url": job.callback_url,
        "priority": job.priority, "concurrency_key": job.concurrency_key, "scheduled": int(run_at > n),
    }  # fmt: skip


def finish_statement(outcome: Outcome, now: int) -> tuple[str, tuple[Any, ...]]:
    """The one UPDATE that ends an attempt, fenced on (id, attempt, running)."""
    fence = (outcome.ref.job_id, outcome.ref.attempt)
    where = " WHERE id = ? AND attempt = ? AND status = 'running'"
    steps = steps_json(outcome.steps)
    if outcome.verdict == Verdict.COMPLETED:
        return (
            "UPDATE jobs SET status = 'completed', progress = 100, steps = ?, current_step = NULL, "
            "result = ?, result_type = ?, lease_expires_at = NULL, updated_at = ?, completed_at = ?" + where,
            (steps, outcome.result, outcome.result_type, now, now, *fence),
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
    later = int(retry_at > now)
    return (
        "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, current_step = NULL, "
        "errors = json_insert(errors, '$[#]', json(?)), worker = NULL, lease_expires_at = NULL, run_at = ?, "
        f"updated_at = ?, scheduled = ?, round = {REQUEUED_ROUND}" + where,
        (steps_json(reset_steps(outcome.steps)), error, retry_at, now, later, later, *fence),
    )


_FIRST_DUE = "SELECT min(run_at) FROM jobs INDEXED BY jobs_scheduled WHERE status = 'queued' AND scheduled = 1"


def promote(conn: sqlite3.Connection, now: int) -> Lineup:
    """Make the scheduled jobs that are due at `now` ready (a batch at a time), each taking its round;
    what is left waiting. One probe of the scheduled jobs' index when none is due."""
    (first,) = conn.execute(_FIRST_DUE).fetchone()
    promoted = False
    if first is not None and first <= now:
        due = conn.execute(
            "SELECT id FROM jobs INDEXED BY jobs_scheduled WHERE status = 'queued' AND scheduled = 1 "
            "AND run_at <= ? ORDER BY run_at, id LIMIT ?",
            (now, PROMOTE_BATCH),
        ).fetchall()
        ready = f"UPDATE jobs SET scheduled = 0, round = {REQUEUED_ROUND} WHERE id = ?"
        conn.executemany(ready, [(0, job_id) for (job_id,) in due])
        promoted = len(due) == PROMOTE_BATCH
        (first,) = conn.execute(_FIRST_DUE).fetchone()
    return Lineup(None if first is None else from_micros(first), promoted=promoted)


def statements(script: str) -> list[str]:
    """Split a migration into statements: a statement ends at the first semicolon after which SQLite
    sees a complete one (a trigger's body holds semicolons of its own)."""
    found: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            lines = [line for line in current.splitlines() if not line.strip().startswith("--")]
            statement = "\n".join(lines).strip().removesuffix(";").strip()
            if statement:
                found.append(statement)
            current = ""
    return found
