"""What both backends do alike with job rows: one column list, one row-to-`Job` mapping, one
newest-first listing. Only the SQL dialect differs, and the way each driver hands values back
(SQLite: JSON text and microseconds; PostgreSQL: decoded jsonb and aware datetimes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from jobhouse.job import Failure, Job, JobStatus, Step
from jobhouse.store.base import Cursor, JobPage, JobQuery

#: The columns every job read selects, in the order `job_from_row` reads them.
COLUMNS = (
    "id, workspace, kind, subject, title, status, progress, steps, current_step, input, metadata, "
    "result, result_type, error, errors, attempt, max_attempts, run_at, worker, lease_expires_at, "
    "created_at, updated_at, started_at, completed_at, callback_url, priority, concurrency_key"
)

Decode = Callable[[Any], Any]


def as_is(value: Any) -> Any:
    """The decoder of a value the driver already decoded."""
    return value


def job_from_row(row: Sequence[Any], json: Decode, time: Callable[[Any], datetime]) -> Job:
    """A `Job` from the columns of `COLUMNS`; `json` decodes a JSON column, `time` a timestamp."""
    error = row[13]
    return Job(
        id=str(row[0]),
        workspace=row[1],
        kind=row[2],
        subject=row[3],
        title=row[4],
        status=JobStatus(row[5]),
        progress=row[6],
        steps=tuple(Step.from_dict(s) for s in json(row[7])),
        current_step=row[8],
        input=json(row[9]),
        metadata=json(row[10]),
        result=None if row[11] is None else json(row[11]),
        result_type=row[12],
        error=None if error is None else Failure.from_dict(json(error)),
        errors=tuple(Failure.from_dict(e) for e in json(row[14])),
        attempt=row[15],
        max_attempts=row[16],
        run_at=time(row[17]),
        worker=row[18],
        lease_expires_at=None if row[19] is None else time(row[19]),
        created_at=time(row[20]),
        updated_at=time(row[21]),
        started_at=None if row[22] is None else time(row[22]),
        completed_at=None if row[23] is None else time(row[23]),
        callback_url=row[24],
        priority=row[25],
        concurrency_key=row[26],
    )


def listing(query: JobQuery, mark: str, time: Callable[[datetime], Any], id_type: str = "") -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT`` of a newest-first listing and its parameters, with `mark`
    as the placeholder (one more row than the page, to know whether another page follows)."""
    where = [f"workspace = {mark}"]
    params: list[Any] = [query.workspace]
    if query.subject is not None:
        where.append(f"subject = {mark}")
        params.append(query.subject)
    if query.kind is not None:
        where.append(f"kind = {mark}")
        params.append(query.kind)
    if query.statuses is not None:
        where.append(f"status IN ({', '.join([mark] * len(query.statuses))})")
        params.extend(sorted(s.value for s in query.statuses))
    return newest_first(where, params, query.after, query.limit, mark, time, id_type)


def newest_first(
    where: list[str],
    params: list[Any],
    after: Cursor | None,
    limit: int,
    mark: str,
    time: Callable[[datetime], Any],
    id_type: str = "",
) -> tuple[str, list[Any]]:
    """A newest-first listing's ``WHERE ... ORDER BY ... LIMIT`` from its conditions `where` (with
    their `params`): past the cursor `after`, one row more than the page of `limit` (to know whether
    another page follows). Jobs and webhook deliveries are listed so."""
    if after is not None:
        where.append(f"(created_at, id) < ({mark}, {mark}{id_type})")
        params.extend([time(after.created_at), after.id])
    params.append(limit + 1)
    return f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT {mark}", params


def event_query(
    mark: str,
    after: int,
    job_id: str | None,
    workspace: str | None,
    upto: int | None,
    limit: int,
    id_type: str = "",
) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT`` of a read of the change log, and its parameters."""
    where = [f"seq > {mark}"]
    params: list[Any] = [after]
    if job_id is not None:
        where.append(f"job_id = {mark}{id_type}")
        params.append(job_id)
    if workspace is not None:
        where.append(f"workspace = {mark}")
        params.append(workspace)
    if upto is not None:
        where.append(f"seq <= {mark}")
        params.append(upto)
    params.append(limit)
    return f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT {mark}", params


def page(jobs: list[Job], limit: int) -> JobPage:
    """A page of a listing read with `listing` (which asks for one row more than `limit`)."""
    if len(jobs) > limit:
        jobs = jobs[:limit]
        return JobPage(jobs, Cursor(jobs[-1].created_at, jobs[-1].id))
    return JobPage(jobs, None)
