"""The one way jobs change: `Queue` writes through the store, then publishes what changed.

The store persists and reports what a write changed; `Queue` is the only place that turns that
into hub events for this process (the store's own signals, SQLite's counters and PostgreSQL's
NOTIFY, tell the other processes):

============================  =====================================================
write                         published to this process's hub
============================  =====================================================
enqueue, create, release      ``enqueued``: idle workers look for work
finish                        a retry is ``enqueued``
cancel                        ``stopped``: the handler is interrupted
rescue                        ``stopped``; ``enqueued`` for the requeued
heartbeat, report             ``stopped`` for attempts that are no longer ours
============================  =====================================================

and every write that changed a job is ``changed``: the change feed (`jobhouse.feed`) reads the
new events, for event streams and long-polls.

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

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from jobhouse.errors import InvalidRequest
from jobhouse.ids import new_id
from jobhouse.job import AttemptRef, Job, NewJob, Outcome, Report, Verdict
from jobhouse.metrics import Metrics
from jobhouse.registry import Registry
from jobhouse.store.base import Idempotency, Store
from jobhouse.validation import check_clean

TITLE_MAX = 200
SUBJECT_MAX = 200


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
    ) -> NewJob:
        """A job of `kind`, checked: known kind, valid input (normalized), sane subject and title.

        `callback_url` is where the job's end is POSTed (see `jobhouse.webhooks`); the API checks it
        against `webhook_hosts` before it gets here, and the sender checks it again before each attempt."""
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
    ) -> Job:
        """Check and enqueue a job (in the caller's PostgreSQL transaction, with `connection`)."""
        new = self.new_job(
            kind,
            workspace=workspace,
            input=input,
            metadata=metadata,
            subject=subject,
            title=title,
            callback_url=callback_url,
        )
        (job,) = await self.enqueue_many([new], connection=connection)
        return job

    async def enqueue_many(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Enqueue jobs made by `new_job` in one transaction."""
        built = await self.metrics.timed("enqueue", self.store.enqueue(jobs, connection=connection))
        self.metrics.created(job.kind for job in built)
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
        jobs = await self.metrics.timed("claim", self.store.claim(worker, kinds, limit, lease))
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
        self.hub.stopped([*rescued.requeued, *rescued.failed])
        return [*rescued.requeued, *rescued.failed]
