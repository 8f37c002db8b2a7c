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
from jobhouse.store.base import Idempotency
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
    conn: sqlite3.Connection, new: NewJob, now: datetime, max_queued: int | None, idempotency: Idempotency | None
) -> tuple[Job, bool]:
    """`Store.create` in the writer's transaction: the idempotency key, the quota, the insert."""
    made = new.queued(now)
    n = to_micros(now)
    if idempotency is not None:
        seen = conn.execute(
            "SELECT fingerprint, job_id FROM idempotency_keys WHERE workspace = ? AND key = ? AND created_at >= ?",
            (new.workspace, idempotency.key, n - int(idempotency.ttl * 1_000_000)),
        ).fetchone()
        if seen is not None:
            if seen[0] != idempotency.fingerprint:
                raise IdempotencyConflict()
            earlier = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (seen[1],)).fetchone()
            if earlier is not None:
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
    if idempotency is not None:
        conn.execute(
            "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
            (new.workspace, idempotency.key, idempotency.fingerprint, made.id, n),
        )
    return made, True


INSERT = (
    "INSERT INTO jobs (id, workspace, kind, subject, title, status, steps, input, metadata, max_attempts, run_at, "
    "created_at, updated_at, callback_url) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_row(job: Job) -> tuple[Any, ...]:
    n = to_micros(job.created_at)
    return (
        job.id, job.workspace, job.kind, job.subject, job.title, steps_json(job.steps), codec.encode(job.input),
        codec.encode(job.metadata), job.max_attempts, to_micros(job.run_at), n, n, job.callback_url,
    )  # fmt: skip


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
    return (
        "UPDATE jobs SET status = 'queued', progress = 0, steps = ?, current_step = NULL, "
        "errors = json_insert(errors, '$[#]', json(?)), worker = NULL, lease_expires_at = NULL, run_at = ?, "
        "updated_at = ?" + where,
        (steps_json(reset_steps(outcome.steps)), error, retry_at, now, *fence),
    )


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
