"""Periodic kinds: one job per period, however many processes run.

A kind declared with ``every=`` (seconds, or ``"30s"``, ``"5m"``, ...) or ``cron=`` (five fields,
UTC) gets one job per period, in its `periodic_workspace`, with its `periodic_input`:

- **Periods.** `every` periods start at the multiples of `every` since the Unix epoch (an
  ``every="1h"`` kind runs on the hour, whenever the process started); cron periods start at each
  time the expression names, in UTC (computed by croniter).
- **Once per period.** Each process that knows the kind creates the period's job through
  `Queue.create` with the idempotency key ``periodic:<kind>:<period start>``: the store makes the
  first create win and hands the others that job, on SQLite and PostgreSQL alike. The job is due at
  the period start (its ``run_at``) and carries it in its metadata, as ``{"period": "<start>"}``.
- **Timers.** `Periodic` sleeps until the soonest period start and enqueues when it comes; it
  re-reads the clock at least once a minute, so a clock that jumps is noticed.
- **No backlog.** A process that starts, or whose store comes back after an outage, enqueues only
  the latest period that has begun (when it began at most `horizon` ago, 24 hours at most); the
  periods before it are skipped. The key makes that a no-op when another process already made it.

Every process (``jobhouse serve``, with or without workers, and ``jobhouse worker``) runs one
`Periodic` when its registry has periodic kinds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobhouse.aio import wait
from jobhouse.clock import to_micros
from jobhouse.errors import ConfigurationError, IdempotencyConflict, InvalidRequest, StoreUnavailable
from jobhouse.keys import check_workspace
from jobhouse.logs import bind_job, unbind_job
from jobhouse.store.base import Idempotency

if TYPE_CHECKING:
    from jobhouse.queue import Queue
    from jobhouse.registry import Kind

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
#: The longest a timer sleeps before it reads the clock again.
MAX_SLEEP = 60.0
#: How a periodic job's idempotency key says where it came from.
FINGERPRINT = "periodic"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_periodic(kind: Kind) -> bool:
    return kind.every is not None or kind.cron is not None


def check_periodic(kind: Kind) -> None:
    """`ConfigurationError`, naming the kind, for a cron expression croniter cannot read or that
    never matches, a bad `periodic_workspace`, `periodic_input` the kind's input check refuses, or
    periodic options on a kind that is not periodic."""
    if not is_periodic(kind):
        if kind.periodic_input or kind.periodic_workspace != "default":
            raise ConfigurationError(f"kind {kind.name!r}: periodic_workspace and periodic_input need every or cron")
        return
    if kind.cron is not None:
        from croniter import CroniterError  # croniter loads only for a kind with a cron schedule

        try:
            _cron(kind.cron, _EPOCH).get_next(datetime)
        except (CroniterError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"kind {kind.name!r}: cron {kind.cron!r} is not a five-field cron expression that ever matches "
                f"(minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'): {exc}"
            ) from None
    try:
        check_workspace(kind.periodic_workspace)
        if kind.check_input is not None:
            kind.check_input(kind.periodic_input)
    except InvalidRequest as exc:
        raise ConfigurationError(f"kind {kind.name!r}: periodic job: {exc.message}") from None


def latest_start(kind: Kind, now: datetime) -> datetime:
    """The start of the period `now` is in: the latest period start at or before `now`."""
    if kind.every is not None:
        micros = to_micros(now)
        return _EPOCH + timedelta(microseconds=micros - micros % _every_micros(kind.every))
    assert kind.cron is not None
    start: datetime = _cron(kind.cron, now).get_prev(datetime)
    following: datetime = _cron(kind.cron, start).get_next(datetime)
    return following if following <= now else start  # croniter's previous is strictly before `now`


def next_start(kind: Kind, after: datetime) -> datetime:
    """The first period start strictly after `after`."""
    if kind.every is not None:
        return latest_start(kind, after) + timedelta(microseconds=_every_micros(kind.every))
    assert kind.cron is not None
    start: datetime = _cron(kind.cron, after).get_next(datetime)
    return start


def period_key(kind: Kind, start: datetime) -> str:
    """The idempotency key of `kind`'s job for the period that starts at `start`."""
    return f"periodic:{kind.name}:{_iso(start)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _every_micros(every: float) -> int:
    return round(every * 1_000_000)


def _cron(expression: str, start: datetime) -> Any:
    """croniter over `expression` from `start`, in UTC; five fields only (croniter would take a sixth
    as seconds and a seventh as the year)."""
    from croniter import croniter

    parsed = croniter(expression, start.astimezone(UTC))
    if len(parsed.expanded) != 5:
        raise ValueError(f"{len(parsed.expanded)} fields, not 5")
    return parsed


class Periodic:
    """Enqueues one job per period of each periodic kind of `queue`'s registry (see the module).

    `horizon`: how late (seconds) a period may still be enqueued when the process starts or the
    store comes back; at most a day, and no longer than the pruner keeps idempotency keys (the
    runtime passes `idempotency_ttl`), since the period's key is what makes a late try safe.
    `retry`: seconds between attempts while the store is unavailable."""

    def __init__(self, queue: Queue, *, horizon: float = DAY, retry: float = 1.0) -> None:
        self.queue = queue
        self.clock = queue.store.clock
        self.kinds = [kind for kind in queue.registry if is_periodic(kind)]
        self.horizon = timedelta(seconds=min(horizon, DAY))
        #: How long a period's key holds: past the horizon, so a late try still finds it.
        self.ttl = min(horizon, DAY) + 3600.0
        self.retry = retry
        #: The next period start to enqueue, by kind; a kind whose last try failed keeps that period.
        self._due: dict[str, datetime] = {}

    async def run(self, stop: asyncio.Event) -> None:
        if not self.kinds:
            return
        while not await wait(stop, await self.tick()):
            pass

    async def tick(self) -> float:
        """Enqueue the latest period of each kind whose next period has begun; the seconds until the
        next one begins (or until the next try, if the store was unavailable)."""
        now = self.clock.now()
        failed = False
        for kind in self.kinds:
            due = self._due.get(kind.name)
            if due is not None and due > now:
                continue
            start = latest_start(kind, now)  # periods between `due` and this one are skipped
            if now - start <= self.horizon and not await self._enqueue(kind, start):
                self._due[kind.name] = start
                failed = True
                continue
            self._due[kind.name] = next_start(kind, start)
        ahead = [(due - now).total_seconds() for due in self._due.values() if due > now]
        delay = min([*ahead, MAX_SLEEP])
        return min(delay, self.retry) if failed else delay

    async def _enqueue(self, kind: Kind, start: datetime) -> bool:
        """Create `kind`'s job for the period at `start` unless another process did; False when the
        store could not be reached (the caller tries again)."""
        period = _iso(start)
        try:
            new = self.queue.new_job(
                kind.name,
                workspace=kind.periodic_workspace,
                input=kind.periodic_input,
                metadata={"period": period},
                run_at=start,
            )
            job, created = await self.queue.create(
                new, idempotency=Idempotency(key=period_key(kind, start), fingerprint=FINGERPRINT, ttl=self.ttl)
            )
        except StoreUnavailable as exc:
            log.warning("periodic %s: could not enqueue the period of %s (will retry): %s", kind.name, period, exc)
            return False
        except (IdempotencyConflict, InvalidRequest) as exc:  # the key taken by a client's request; input refused
            log.error("periodic %s: skipped the period of %s: %s", kind.name, period, exc)
            return True
        if created:
            token = bind_job(job)  # tagged like the job's own lines (kind, workspace), in either log format
            log.info("periodic %s: enqueued job %s for the period of %s", kind.name, job.id, period)
            unbind_job(token)
        else:
            log.debug("periodic %s: the period of %s already has job %s", kind.name, period, job.id)
        return True
