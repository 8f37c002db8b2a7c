"""The `Store` protocol: job operations, not SQL.

Internal: the seam between jobhouse and its backends (SQLite, PostgreSQL), not a public
extension point. Every backend passes the same contract suite (``tests/test_store_contract.py``).

Rules every backend keeps:

- A job change is one write; several changes submitted together are one transaction where the
  backend can batch them (claims, reports, outcomes).
- Worker writes are fenced by `AttemptRef`: they land only while the job is still running that
  attempt. A write that lost the race changes nothing and says so.
- A backend persists and says what changed; it does not publish its own writes to its `hub`
  (`jobhouse.queue.Queue` does, in one place). It does tell other processes (SQLite's counters,
  PostgreSQL's NOTIFY), and feeds what other processes changed to `Hub.external_change()`.
- An unreachable or locked store raises `StoreUnavailable`, never a driver error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobhouse.catalog import Entry, SourceState
from jobhouse.clock import Clock
from jobhouse.events import JobEvent
from jobhouse.hub import Hub, Seen
from jobhouse.job import AttemptRef, Job, JobStatus, NewJob, Outcome, Report
from jobhouse.keys import ApiKey
from jobhouse.maintenance import Service
from jobhouse.webhooks import Claimed, Delivery, DeliveryRef, DeliveryStatus, Result, Subscription

#: The columns of a stored `Entry` (after its source), in the order both backends use.
ENTRY_COLUMNS = (
    "id", "app", "name", "os", "kind", "version", "launch", "install", "description", "keywords", "installed",
    "popularity", "files", "program",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of a newest-first listing ends."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class JobQuery:
    """A listing of one workspace's jobs, newest first."""

    workspace: str
    subject: str | None = None
    kind: str | None = None
    statuses: frozenset[JobStatus] | None = None
    limit: int = 50
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An ``Idempotency-Key``, the fingerprint of the request that came with it, and how long it holds."""

    key: str
    fingerprint: str
    ttl: float = 24 * 3600.0


def unique_key(new: NewJob) -> Idempotency | None:
    """The uniqueness key of a job whose kind has one, held like an idempotency key (in the same
    table, under a name of its own) for the kind's `unique_for` window."""
    if new.unique_key is None or new.unique_for is None:
        return None
    return Idempotency(new.unique_key, "unique", new.unique_for)


@dataclass(slots=True)
class Lineup:
    """What this process's latest claim saw of the jobs waiting for their time."""

    #: When the next scheduled job is due (None: there is none).
    next_due: datetime | None = None
    #: Whether that claim made scheduled jobs ready that it did not take: claim again at once.
    promoted: bool = False


@dataclass(frozen=True, slots=True)
class Rescued:
    """The jobs a rescue sweep took from vanished workers: queued again, or failed (no attempts left)."""

    requeued: list[str]
    failed: list[str]
    #: The kind of each job taken back, by id (for the metrics).
    kinds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobCount:
    """How many jobs of one kind one workspace holds in one active status (queued or running); for
    queued jobs, also when the one due the longest became due (`earliest`: the least ``run_at``,
    which may be in the future)."""

    workspace: str
    kind: str
    status: JobStatus
    count: int
    earliest: datetime | None = None


@dataclass(frozen=True, slots=True)
class KindStats:
    """What one workspace holds of one kind (`Store.stats`): its queued jobs, due (`ready`) or waiting
    for a later time (`scheduled`: run_at still ahead), its running jobs, and how many of its jobs
    ended, in each way, in the window asked for. `oldest_ready` is when the ready job due the longest
    became due (the least run_at of the ready ones; None when none is ready)."""

    kind: str
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    oldest_ready: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    next: Cursor | None


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """A listing of one workspace's webhook deliveries, newest first (one job's, when `job_id`)."""

    workspace: str
    job_id: str | None = None
    subscription_id: str | None = None
    status: DeliveryStatus | None = None
    limit: int = 50
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[Delivery]
    next: Cursor | None


class KeyStore(Protocol):
    """API keys, and the one-time first-run flag."""

    async def add(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def all(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; False if there is no such active key."""

    async def first_run(self) -> bool:
        """True exactly once in the life of a store: the first caller sets up defaults."""


class Catalog(Protocol):
    """The candidate index: the entries each source yielded at its last sync."""

    async def replace(self, source: str, entries: Sequence[Entry], fingerprint: str | None = None) -> int:
        """Swap a source's entries for these, atomically, and record the sync: its generation moves
        (the new one is returned) and its `fingerprint` (what the source's files looked like) is kept."""

    async def record_error(self, source: str, error: str) -> None: ...

    async def version(self) -> int:
        """A number that changes whenever any source's entries are replaced (0: never)."""

    async def states(self) -> dict[str, SourceState]: ...

    async def entries(self, source: str) -> list[Entry]:
        """A source's entries, by id."""


class WebhookStore(Protocol):
    """Webhook subscriptions, the workspaces' callback secrets, and the outbox of deliveries.

    The outbox is filled by the backend itself, in the transaction that ends a job (a trigger): one
    pending delivery, due at once, for the job's callback URL and one for each subscription of its
    workspace whose events and types match. A job's deletion deletes its deliveries.
    """

    async def subscribe(self, subscription: Subscription, secret: str, limit: int) -> None:
        """Store a subscription and its secret; `InvalidRequest` if its workspace already has `limit`."""

    async def subscriptions(self, workspace: str) -> list[Subscription]:
        """The workspace's subscriptions, oldest first."""

    async def unsubscribe(self, workspace: str, subscription_id: str) -> Subscription | None:
        """Delete a subscription of `workspace` (None: it has no such one); its pending deliveries
        end failed, in the same transaction."""

    async def secret(self, workspace: str, new: str, *, replace: bool = False) -> str:
        """The workspace's callback secret: `new` becomes it if there is none (or, with `replace`, anyway)."""

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        """Take up to `limit` pending deliveries that are due, the longest due first, each as a new
        attempt (counted) that is this caller's for `lease` seconds: no one else can claim it until
        then, and after that anyone can (its sender died). With the secret that signs each."""

    async def record(self, results: Sequence[Result]) -> list[bool]:
        """Write how attempts went, fenced on (delivery, attempt): for each, whether it was still the
        caller's and so was written."""

    async def release(self, refs: Sequence[DeliveryRef]) -> int:
        """Hand claimed deliveries back, due now, as if the attempt had never been made."""

    async def deliveries(self, query: DeliveryQuery) -> DeliveryPage: ...


class Store(Protocol):
    """What jobhouse needs from a backend: job operations, plus its keys and candidate index."""

    hub: Hub
    clock: Clock
    #: The backend's name ("sqlite", "postgres"): the folder of its migrations.
    backend: str
    #: Whether events always commit in the order of their numbers (else a later number may be
    #: visible before an earlier one: see `jobhouse.feed`).
    events_in_commit_order: bool
    #: What this process's latest claim saw of the scheduled jobs (workers time their next claim by it).
    lineup: Lineup

    @property
    def keys(self) -> KeyStore: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def webhooks(self) -> WebhookStore: ...

    async def open(self, *, migrate: bool = True) -> None:
        """Connect and (unless told not to) bring the schema up to date."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations; the names of those applied."""

    def services(self) -> list[Service]:
        """Background services the backend needs in every process (PostgreSQL: its listener)."""

    # -- jobs --------------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Insert queued jobs in one transaction.

        `connection`, where the backend supports it (PostgreSQL), is the caller's own open
        connection: the jobs are inserted in the caller's transaction and exist only if it commits.
        A job with a uniqueness key (`NewJob.unique_key`) that a job made within its window holds is
        not inserted: that earlier job takes its place in the list.
        """

    async def create(
        self, new: NewJob, *, max_queued: int | None = None, idempotency: Idempotency | None = None
    ) -> tuple[Job, bool]:
        """Enqueue one job with the API's safeguards; the job, and whether it is new.

        With `idempotency`, a key the workspace used within its ttl gives back the job it made
        (not new) if the fingerprint matches, and raises `IdempotencyConflict` if not; duplicates
        that race make one job. With `max_queued`, a workspace that already has that many queued
        jobs gets `QuotaExceeded` and nothing is stored. A uniqueness key (`NewJob.unique_key`) held by
        a job made within `NewJob.unique_for` seconds gives back that job (not new); racing creates
        with one key make one job.
        """

    async def get(self, job_id: str, workspace: str | None = None) -> Job | None:
        """A job, or None if it does not exist (in `workspace`, when given)."""

    async def list_jobs(self, query: JobQuery) -> JobPage: ...

    async def cancel(self, job_id: str, workspace: str | None = None) -> tuple[Job, bool]:
        """End a queued or running job as cancelled; idempotent on cancelled jobs. The job, and
        whether this call cancelled it.

        Raises `JobNotFound`, or `JobAlreadyFinished` for a completed or failed job.
        """

    async def retry(self, job_id: str, workspace: str | None, granted: int) -> Job:
        """Queue a failed or cancelled job again, due now, as its next attempt: the attempt counter
        goes on, `max_attempts` becomes the attempts made plus `granted`, the per-attempt `errors`
        stay, `error` and the result go, and progress, steps and the current step start over. One
        write conditional on the status, so of racing retries (or a retry and a delete) one wins.

        Raises `JobNotFound` (none, or another workspace's), or `JobNotRetryable` (queued, running
        or completed). The job, queued.
        """

    async def delete(self, job_id: str, workspace: str | None = None) -> Job:
        """Delete a finished (completed, failed or cancelled) job with its events and webhook
        deliveries; an idempotency key that named it makes a new job next time.

        Raises `JobNotFound`, or `JobNotFinished` for a queued or running job (nothing changes).
        The job as it was.
        """

    async def claim(
        self, worker: str, kinds: Collection[str], limit: int, lease: float, *, limits: Mapping[str, int] | None = None
    ) -> list[Job]:
        """Start up to `limit` ready jobs of `kinds`, each as a new attempt, in the order of
        `jobhouse.store.ready` (priority, then one workspace after another, oldest first in each).

        Scheduled jobs that are due become ready first. A job of a kind in `limits` starts only while
        fewer than its limit of jobs with its kind and concurrency key run. `lineup` tells what the
        claim saw of the scheduled jobs."""

    async def heartbeat(self, worker: str, refs: Sequence[AttemptRef], lease: float) -> set[str]:
        """Extend the leases of running attempts; the ids of those that are no longer ours."""

    async def report(self, reports: Sequence[Report], lease: float) -> set[str]:
        """Write progress and steps (renewing leases); the ids of attempts no longer ours."""

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """End attempts; for each, whether it was still ours and so was written."""

    async def release(self, refs: Sequence[AttemptRef], *, unstarted: bool = False) -> int:
        """Hand running attempts back to the queue at once (graceful shutdown).

        With `unstarted` (jobs a worker claimed ahead and never started), as if they had never
        been claimed: the attempt is not counted, and each job keeps its place in the queue.
        """

    async def rescue(self) -> Rescued:
        """Re-queue (or fail, with no attempts left) jobs whose lease expired."""

    # -- for the metrics and the readiness probe ---------------------------------------------

    async def active_counts(self) -> list[JobCount]:
        """How many queued and how many running jobs each (workspace, kind) has, where it has any, in
        one read of the partial indexes of those jobs (its cost grows with them, not with the table)."""

    async def stats(self, workspace: str, since: datetime, now: datetime) -> list[KindStats]:
        """`workspace`'s jobs by kind, for its statistics: those queued (ready at `now`, or due after
        it), running, and ended at or after `since` (completed, failed, cancelled), for each kind that
        has any, sorted by kind. Read from indexes alone (`jobhouse.store.stats`): its cost grows with
        the workspace's queued jobs, the running jobs and the jobs ended since `since`, not with the
        table."""

    async def migrations_applied(self) -> list[int]:
        """The versions of the migrations applied to this store, in order (none before the first)."""

    async def seen(self, job_ids: Collection[str]) -> dict[str, Seen | None]:
        """Status and attempt of each job (None when it no longer exists)."""

    async def jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        """The jobs of these ids that exist, by id."""

    # -- the change log ----------------------------------------------------------------------

    async def events(
        self,
        after: int,
        *,
        job_id: str | None = None,
        workspace: str | None = None,
        upto: int | None = None,
        limit: int = 1000,
    ) -> list[JobEvent]:
        """Up to `limit` committed events numbered above `after` (and at most `upto`), oldest
        first; only one job's or one workspace's when given."""

    async def recent_events(self, count: int) -> list[int]:
        """The numbers of the newest `count` committed events, newest first."""

    async def prune(
        self, retention: Mapping[JobStatus, float], idempotency_ttl: float = 24 * 3600.0, batch: int = 1000
    ) -> int:
        """Delete up to `batch` finished jobs per status that ended longer ago than its retention
        (seconds), and idempotency keys older than `idempotency_ttl`; the number of jobs deleted."""
