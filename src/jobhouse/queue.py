"""The one way jobs change: `Queue` writes through the store, then publishes what changed.

The store persists and reports what a write changed; `Queue` is the only place that turns that
into hub events for this process (the store's own signals, SQLite's counters and PostgreSQL's
NOTIFY, tell the other processes):

============================  =====================================================
write                         published to this process's hub
============================  =====================================================
enqueue, create, release      ``enqueued``: idle workers look for work
retry (by a client)           ``enqueued``: the job is queued again
finish                        a retry is ``enqueued``
cancel                        ``stopped``: the handler is interrupted
rescue                        ``stopped``; ``enqueued`` for the requeued
heartbeat, report             ``stopped`` for attempts that are no longer ours
delete                        nothing: a finished job has no watcher or handler left to wake
============================  =====================================================

and every write that changed a job (but delete) is ``changed``: the change feed (`jobhouse.feed`)
reads the new events, for event streams and long-polls.

Everything that makes jobs goes through `Queue.enqueue`: the API, handlers (``ctx.enqueue``)
and your own code, which builds a queue from a store and the registry of its kinds::

    queue = Queue(open_store("postgresql://localhost/app"), jobs)
    async with await psycopg.AsyncConnection.connect(...) as conn:
        async with conn.transaction():
            ...  # your own writes
            await queue.enqueue("send-invoice", workspace="acme", input={...}, connection=conn)

With `connection` (PostgreSQL only) the job is inserted in your open transaction and exists only
if it commits; the store need not be opened for that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from jobhouse.errors import InvalidRequest
from jobhouse.ids import new_id
from jobhouse.job import AttemptRef, Job, NewJob, Outcome, Report, Verdict
from jobhouse.metrics import Metrics
from jobhouse.registry import PRIORITY_MAX, PRIORITY_MIN, Kind, Registry
from jobhouse.store.base import Idempotency, Store
from jobhouse.validation import check_clean

TITLE_MAX = 200
SUBJECT_MAX = 200


def _concurrency_key(kind: Kind, data: Mapping[str, Any]) -> str | None:
    """The key a job of a limited kind shares its limit with ('' the whole kind); None: no limit."""
    if kind.concurrency is None:
        return None
    return "" if kind.concurrency_key is None else _text(kind.concurrency_key(data))


def _unique_key(kind: Kind, data: Mapping[str, Any]) -> str | None:
    """The uniqueness key of a job of a kind with `unique_for` (by default its whole input), hashed."""
    if kind.unique_for is None:
        return None
    value = data if kind.unique_key is None else kind.unique_key(data)
    digest = hashlib.sha256(_text(value).encode()).hexdigest()[:32]
    return f"unique\x1f{kind.name}\x1f{digest}"


def _text(value: Any) -> str:
    """A key's text: strings as they are, anything else as canonical JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Queue:
    """Makes, enqueues and changes jobs on `store`, for the kinds of `registry`; counts what changed
    and times its store calls in `metrics` (none given: nothing is recorded)."""

    def __init__(self, store: Store, registry: Registry, metrics: Metrics | None = None) -> None:
        self.store = store
        self.registry = registry
        self.hub = store.hub
        self.metrics = metrics or Metrics(enabled=False)

    # -- making jobs -------------------------------------------------------------------------

    def new_job(
        self,
        kind: str,
        *,
        workspace: str,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
        title: str | None = None,
        callback_url: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
    ) -> NewJob:
        """A job of `kind`, checked: known kind, valid input (normalized), sane subject and title.

        `callback_url` is where the job's end is POSTed (see `jobhouse.webhooks`); the API checks it
        against `webhook_hosts` before it gets here, and the sender checks it again before each attempt.
        `priority` (the kind's when None) orders claims; `run_at` (None: now) is when it may start.
        The kind's concurrency and uniqueness keys are taken from the (validated) input here."""
        spec = self.registry[kind]
        for name, value in (("input", input), ("metadata", metadata)):
            if value is not None and not isinstance(value, Mapping):
                raise InvalidRequest(f"{name} must be a JSON object")
            check_clean(value, name)
        data = dict(input or {})
        if spec.check_input is not None:
            data = dict(spec.check_input(data))
        if subject is not None and not 0 < len(subject) <= SUBJECT_MAX:
            raise InvalidRequest(f"competitorId must be 1-{SUBJECT_MAX} characters")
        if title is not None and not 0 < len(title) <= TITLE_MAX:
            raise InvalidRequest(f"displayTitle must be 1-{TITLE_MAX} characters")
        if priority is not None and not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise InvalidRequest(f"priority must be {PRIORITY_MIN}..{PRIORITY_MAX}")
        return NewJob(
            id=new_id(),
            workspace=workspace,
            kind=spec.name,
            title=title or spec.title,
            max_attempts=spec.max_attempts,
            steps=spec.steps_for(data),
            subject=subject,
            input=data,
            metadata=dict(metadata or {}),
            callback_url=callback_url,
            priority=spec.priority if priority is None else priority,
            run_at=run_at,
            concurrency_key=_concurrency_key(spec, data),
            unique_key=_unique_key(spec, data),
            unique_for=spec.unique_for,
        )

    async def enqueue(
        self,
        kind: str,
        *,
        workspace: str,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
        title: str | None = None,
        connection: Any = None,
        callback_url: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
    ) -> Job:
        """Check and enqueue a job (in the caller's PostgreSQL transaction, with `connection`); a job of a
        kind with `unique_for` may be an earlier one (see `new_job`)."""
        new = self.new_job(
            kind,
            workspace=workspace,
            input=input,
            metadata=metadata,
            subject=subject,
            title=title,
            callback_url=callback_url,
            priority=priority,
            run_at=run_at,
        )
        (job,) = await self.enqueue_many([new], connection=connection)
        return job

    async def enqueue_many(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Enqueue jobs made by `new_job` in one transaction (a job with a uniqueness key that an earlier
        job holds comes back as that earlier job)."""
        built = await self.metrics.timed("enqueue", self.store.enqueue(jobs, connection=connection))
        self.metrics.created(job.kind for job, new in zip(built, jobs, strict=True) if job.id == new.id)
        if connection is None:  # in the caller's transaction, it is the commit's NOTIFY that tells
            self.hub.enqueued()
            self.hub.changed()
        return built

    async def create(
        self, new: NewJob, *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[Job, bool]:
        """Enqueue with the API's safeguards (quota, idempotency key); the job, and whether it is new."""
        job, created = await self.metrics.timed(
            "create", self.store.create(new, max_queued=max_queued, idempotency=idempotency)
        )
        if created:
            self.metrics.created((job.kind,))
            self.hub.enqueued()
            self.hub.changed()
        return job, created

    async def cancel(self, job_id: str, workspace: str | None = None) -> Job:
        job, changed = await self.metrics.timed("cancel", self.store.cancel(job_id, workspace))
        if changed:
            self.metrics.cancelled(job.kind)
            self.hub.stopped([job_id])
            self.hub.changed()
        return job

    # -- a worker's writes -------------------------------------------------------------------

    async def claim(self, worker: str, kinds: Collection[str], limit: int, lease: float) -> list[Job]:
        """Claim ready jobs of `kinds`, holding those of limited kinds to their registered limits."""
        limits = {kind: self.registry[kind].concurrency for kind in kinds if kind in self.registry}
        held = {kind: cap for kind, cap in limits.items() if cap is not None}
        jobs = await self.metrics.timed("claim", self.store.claim(worker, kinds, limit, lease, limits=held))
        if jobs:
            self.hub.changed()
        return jobs

    async def heartbeat(self, worker: str, refs: Sequence[AttemptRef], lease: float) -> set[str]:
        lost = await self.metrics.timed("heartbeat", self.store.heartbeat(worker, refs, lease))
        self.hub.stopped(lost)
        return lost

    async def report(self, reports: Sequence[Report], lease: float) -> set[str]:
        lost = await self.metrics.timed("report", self.store.report(reports, lease))
        self.hub.stopped(lost)
        self.hub.changed()
        return lost

    async def finish(self, outcomes: Sequence[Outcome], kinds: Sequence[str] = ()) -> list[bool]:
        """Write outcomes; `kinds` (each outcome's job's kind, when given) lets the metrics count them."""
        applied = await self.metrics.timed("finish", self.store.finish(outcomes))
        written = [o for o, ok in zip(outcomes, applied, strict=True) if ok]
        for outcome, kind, ok in zip(outcomes, kinds, applied, strict=False):
            if ok:
                self.metrics.finished(kind, outcome.verdict)
        if written:
            self.hub.changed()
        if any(o.verdict == Verdict.RETRY for o in written):
            self.hub.enqueued()
        return applied

    async def release(self, refs: Sequence[AttemptRef], *, unstarted: bool = False) -> int:
        count = await self.metrics.timed("release", self.store.release(refs, unstarted=unstarted))
        if count:
            self.hub.enqueued()
            self.hub.changed()
        return count

    async def rescue(self) -> list[str]:
        rescued = await self.metrics.timed("rescue", self.store.rescue())
        for job_id in rescued.requeued:
            self.metrics.lost(rescued.kinds.get(job_id, ""), failed=False)
        for job_id in rescued.failed:
            self.metrics.lost(rescued.kinds.get(job_id, ""), failed=True)
        if rescued.requeued:
            self.hub.enqueued()
        if rescued.requeued or rescued.failed:
            self.hub.changed()
        # Not `stopped` by id: a rescued job may already run here again as its next attempt (claimed
        # since), which must go on; only the attempts the store no longer has as ours are stopped.
        here = self.hub.watched() & {*rescued.requeued, *rescued.failed}
        if here:
            self.hub.apply(await self.store.seen(here))
        return [*rescued.requeued, *rescued.failed]

    # -- a client's control of a finished job ------------------------------------------------

    async def retry(self, job_id: str, workspace: str | None = None) -> Job:
        """Queue a failed or cancelled job again as its next attempt, with a fresh budget of its kind's
        `max_attempts` (one, if its kind is no longer registered); `JobNotRetryable` otherwise."""
        job = await self.store.get(job_id, workspace)
        granted = self.registry[job.kind].max_attempts if job is not None and job.kind in self.registry else 1
        retried = await self.metrics.timed("retry", self.store.retry(job_id, workspace, granted))
        self.hub.enqueued()
        self.hub.changed()
        return retried

    async def delete(self, job_id: str, workspace: str | None = None) -> Job:
        """Delete a finished job, its events and its webhook deliveries; `JobNotFinished` otherwise."""
        return await self.metrics.timed("delete", self.store.delete(job_id, workspace))
