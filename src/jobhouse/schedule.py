"""When a job may start, as its creator asked: at a time (``runAt``), or after a delay (``delayMs``).

A job scheduled for later is queued at once and reads ``queued`` with its ``scheduledAt``; workers
do not see it until then (see ``docs/job-control.md``). The store keeps it apart from the jobs that
are due, and the claim that finds it due moves it among them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobhouse.errors import InvalidRequest

#: How far ahead a job may be scheduled: a year.
HORIZON = timedelta(days=366)
DELAY_MAX_MS = int(HORIZON.total_seconds() * 1000)


def parse_time(text: object, name: str) -> datetime:
    """An ISO 8601 time a client sent as `name`; `InvalidRequest` when it is not one."""
    try:
        if isinstance(text, str):
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidRequest(f"Invalid request: {name}: must be an ISO 8601 time, e.g. 2030-01-01T09:00:00Z")


def start_at(
    now: datetime, run_at: datetime | None, delay_ms: int | None, *, names: tuple[str, str]
) -> datetime | None:
    """When a job created at `now` may start: None for at once (neither given). A time in the past is
    now; one beyond the horizon, a time without an offset, or both given is `InvalidRequest` (`names`
    are the two fields as the caller's surface spells them)."""
    if run_at is not None and delay_ms is not None:
        raise InvalidRequest(f"Invalid request: give {names[0]} or {names[1]}, not both")
    if delay_ms is not None:
        if not 0 <= delay_ms <= DELAY_MAX_MS:
            raise InvalidRequest(f"Invalid request: {names[1]} must be 0-{DELAY_MAX_MS}")
        return now + timedelta(milliseconds=delay_ms) if delay_ms else None
    if run_at is None:
        return None
    if run_at.tzinfo is None:
        raise InvalidRequest(f"Invalid request: {names[0]} needs a UTC offset, e.g. 2030-01-01T09:00:00Z")
    run_at = run_at.astimezone(UTC)
    if run_at - now > HORIZON:
        raise InvalidRequest(f"Invalid request: {names[0]} is more than {HORIZON.days} days ahead")
    return run_at if run_at > now else None
