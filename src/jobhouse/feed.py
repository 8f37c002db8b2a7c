"""The change feed: one reader of the store's change log per process, for everyone in it who watches.

Event streams and long-polls subscribe here, to one job or to a workspace. The feed reads the
events committed since it last looked (one query, whatever the number of subscribers) whenever
the hub says jobs changed (a commit of this process, or another process's signal), and every
`interval` seconds while anyone watches; then it hands each event to the subscribers of its job
and of its workspace. With nobody watching it reads nothing.

Order. SQLite commits one writer at a time, so event numbers are commit order. PostgreSQL takes
numbers inside the changing statement, so the transaction holding number 7 may commit after the
one holding number 8, and the feed then sees a gap. A job's own events never overtake each other
(the write that changes a job locks its row), so job subscribers get each event as soon as it is
read. Workspace subscribers get events strictly in number order: an event waits behind a gap until
the gap fills or `hold` seconds pass (a rolled-back statement leaves a number that is never used).

Caps. A subscription made for a client names its `owner` (the API key that asked); the feed
holds at most `max_waiters` of those at once and `max_per_owner` of one owner's (0: no cap).
`admit` says in advance whether one more would be held; a subscription registered past a cap is
closed at once, its `refused` saying why (subscriptions without an owner are never refused).

Starting. When the first subscriber arrives, the feed takes its position from the newest events;
on PostgreSQL, a missing number among them is a gap like any other (it may belong to a transaction
still committing). A subscriber registers *before* it reads what it has missed, so whatever
commits after that read reaches it live; it drops what it already has by number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from jobhouse.aio import wait
from jobhouse.errors import StoreUnavailable, TooManyWaiters
from jobhouse.events import JobEvent
from jobhouse.retry import STORE_RETRY
from jobhouse.store.base import Store

log = logging.getLogger(__name__)

#: Events a slow subscriber may have waiting before it is dropped (it resumes from the store).
BACKLOG = 10_000
#: How many of the newest events the feed looks at to take its position.
_START_WINDOW = 1000


class Subscription:
    """What one watcher receives, in order; closed when the feed shuts down or the watcher lags.

    Use it as an async context manager (`Feed.job`, `Feed.workspace`): entering registers it (and
    starts the feed if it was idle), leaving unregisters it. Thousands may be open at once, so it
    keeps to plain attributes: a list and, only while someone waits, a future.
    """

    __slots__ = (
        "_events",
        "_feed",
        "_key",
        "_table",
        "_waiter",
        "accept",
        "closed",
        "ends_only",
        "overflowed",
        "owner",
        "refused",
        "start",
    )

    def __init__(
        self,
        feed: Feed,
        table: dict[str, set[Subscription]],
        key: str,
        accept: Callable[[JobEvent], bool] | None = None,
        *,
        ends_only: bool = False,
        owner: str | None = None,
    ) -> None:
        self._feed = feed
        self._table = table
        self._key = key
        self._events: list[JobEvent] = []
        self._waiter: asyncio.Future[None] | None = None
        self.accept = accept
        self.ends_only = ends_only  # a long-poll: only the terminal event matters
        self.closed = False
        self.overflowed = False
        #: Who this subscription is held for (an API key's id), counted against the caps; None: not counted.
        self.owner = owner
        #: Why it was closed on registering, when a cap was reached (see `Feed.admit`).
        self.refused: TooManyWaiters | None = None
        #: For a workspace subscription: the number it starts after (earlier events are in the store).
        self.start = 0

    async def __aenter__(self) -> Subscription:
        await self._feed.register(self._table, self._key, self)
        self.start = self._feed.position
        return self

    async def __aexit__(self, *exc: object) -> None:
        members = self._table.get(self._key)
        if members is not None and self in members:
            members.remove(self)
            self._feed.counted(self, -1)
            if not members:
                del self._table[self._key]

    def push(self, event: JobEvent) -> None:
        if self.closed or (self.ends_only and not event.is_terminal):
            return
        if self.accept is not None and not self.accept(event):
            return
        if len(self._events) >= self._feed.backlog:
            self.overflowed = True
            self.close()
            return
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, timeout: float) -> list[JobEvent]:
        """The events that arrived since the last call, waiting up to `timeout` seconds for one
        (an empty list when none came, or when the subscription is closed)."""
        if not self._events and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        events, self._events = self._events, []
        return events


async def attach_jobs(store: Store, events: Sequence[JobEvent]) -> None:
    """Give the terminal events among `events` that lack it their whole job: one read for all."""
    missing = {e.job_id for e in events if e.is_terminal and e.job is None}
    if missing:
        jobs = await store.jobs(missing)
        for event in events:
            if event.job is None and event.job_id in jobs:
                event.job = jobs[event.job_id]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Feed:
    """Follows the store's change log and hands events to this process's subscribers."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 1.0,
        hold: float = 2.0,
        batch: int = 1000,
        backlog: int = BACKLOG,
        clock: Callable[[], float] = time.monotonic,
        max_waiters: int = 0,
        max_per_owner: int = 0,
    ) -> None:
        self.store = store
        self.max_waiters = max_waiters
        self.max_per_owner = max_per_owner
        self.backlog = backlog
        self.hub = store.hub
        self.interval = interval
        self.hold = hold
        self.batch = batch
        self.clock = clock
        self.closing = False
        #: Every event numbered up to here has been handed to workspace subscribers (or never will exist).
        self.position = 0
        self._started = False
        self._pending: dict[int, JobEvent] = {}  # read, handed to job subscribers, not yet released in order
        self._gaps: dict[int, float] = {}  # missing numbers below the newest read, and when first missed
        self._jobs: dict[str, set[Subscription]] = {}
        self._workspaces: dict[str, set[Subscription]] = {}
        self._subscribed = 0  # in both tables
        self._long_polls = 0  # of those, the job subscriptions that wait for the end only
        self._owned = 0  # of those, the ones held for an owner, and how many each owner holds:
        self._owners: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._wanted = asyncio.Event()

    # -- subscribing -------------------------------------------------------------------------

    def job(self, job_id: str, *, ends_only: bool = False, owner: str | None = None) -> Subscription:
        """A subscription to one job's events (only its terminal ones, with `ends_only`), held for `owner`."""
        return Subscription(self, self._jobs, job_id, ends_only=ends_only, owner=owner)

    def workspace(
        self, workspace: str, accept: Callable[[JobEvent], bool] | None = None, *, owner: str | None = None
    ) -> Subscription:
        """A subscription to a workspace's events (those `accept` takes), in order, from its `start`
        on (what came before is for the subscriber to read from the store), held for `owner`."""
        return Subscription(self, self._workspaces, workspace, accept, owner=owner)

    def admit(self, owner: str) -> None:
        """`TooManyWaiters` if one more subscription for `owner` would pass a cap."""
        if self.max_waiters and self._owned >= self.max_waiters:
            raise TooManyWaiters(
                f"Too many long-polls and event streams open on this server (the limit is {self.max_waiters})"
            )
        if self.max_per_owner and self._owners.get(owner, 0) >= self.max_per_owner:
            raise TooManyWaiters(
                f"Too many long-polls and event streams open for this API key (the limit is {self.max_per_owner})"
            )

    async def register(self, table: dict[str, set[Subscription]], key: str, subscription: Subscription) -> None:
        if self.closing:
            subscription.close()
        if subscription.owner is not None and not subscription.closed:
            try:
                self.admit(subscription.owner)
            except TooManyWaiters as refusal:
                subscription.refused = refusal
                subscription.close()
                return
        members = table.setdefault(key, set())
        if subscription not in members:
            members.add(subscription)
            self.counted(subscription, 1)
        if not self._started:
            self._wanted.set()
            async with self._lock:
                if not self._started:
                    await self._start()

    def watching(self) -> tuple[int, int]:
        """How many long-polls and how many event streams are open in this process (kept as they
        come and go: ``/healthz`` asks on every probe, and thousands may be open)."""
        return self._long_polls, self._subscribed - self._long_polls

    def counted(self, subscription: Subscription, change: int) -> None:
        """Count `subscription` in (`change` 1) or out (-1) of `watching`."""
        self._subscribed += change
        if subscription.ends_only:
            self._long_polls += change
        owner = subscription.owner
        if owner is not None:
            self._owned += change
            held = self._owners.get(owner, 0) + change
            if held:
                self._owners[owner] = held
            else:
                del self._owners[owner]

    def close(self) -> None:
        """Shutting down: end every stream and release every long-poll now."""
        self.closing = True
        for table in (self._jobs, self._workspaces):
            for members in table.values():
                for subscription in members:
                    subscription.close()

    # -- reading -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        waker = asyncio.create_task(self._wake_on(stop))
        try:
            await self._loop(stop)
        finally:
            waker.cancel()

    async def _loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            if not self._jobs and not self._workspaces:
                self._started = False
                self._wanted.clear()
                await self._wanted.wait()  # set by a subscriber, or by `stop`
                continue
            await wait(self.hub.changes, self._timeout())
            if stop.is_set():
                return
            try:
                await self.poll()
                failures = 0
            except StoreUnavailable as exc:
                failures += 1
                pause = STORE_RETRY.delay(failures)
                log.warning("reading job events failed (%s); retrying in %.1fs", exc, pause)
                await wait(stop, pause)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        """Wake the loop, wherever it waits, once `stop` is set."""
        await stop.wait()
        self._wanted.set()
        self.hub.changed()

    async def poll(self) -> None:
        """Read what was committed since the last read and deliver it (what `run` does when woken)."""
        self.hub.changes.clear()
        async with self._lock:
            if self._started:
                await self._read()

    def _timeout(self) -> float:
        """Until the next read without a signal: the interval, or sooner when a gap's hold ends."""
        if not self._gaps:
            return self.interval
        oldest = min(self._gaps.values())
        return max(0.0, min(self.interval, oldest + self.hold - self.clock()))

    async def _start(self) -> None:
        """Take a position from the newest events (see the module's docstring)."""
        recent = await self.store.recent_events(_START_WINDOW)
        self._pending.clear()
        self._gaps.clear()
        if not recent or self.store.events_in_commit_order:
            self.position = recent[0] if recent else 0
        else:
            present = set(recent)
            now = self.clock()
            self.position = recent[0]
            for seq in range(recent[-1] + 1, recent[0]):
                if seq not in present:
                    self._gaps[seq] = now
            if self._gaps:  # released in order once the gaps settle; already seen by anyone subscribing now
                for event in await self.store.events(min(self._gaps) - 1, limit=len(recent)):
                    self._pending[event.seq] = event
                self.position = min(self._gaps) - 1
        self._started = True

    async def _read(self) -> None:
        """Read everything committed past the position, page by page, and deliver it."""
        after = self.position
        while True:
            events = await self.store.events(after, limit=self.batch)
            fresh = [e for e in events if e.seq not in self._pending]
            await self._attach_jobs(fresh)
            for event in fresh:
                self._pending[event.seq] = event
                self._gaps.pop(event.seq, None)
                for subscription in self._jobs.get(event.job_id, ()):
                    subscription.push(event)
            self._release(events[-1].seq if events else after)
            if len(events) < self.batch:
                return
            after = events[-1].seq

    async def _attach_jobs(self, events: Iterable[JobEvent]) -> None:
        """Give terminal events someone watches their whole job (result, error): one read for all."""
        await attach_jobs(self.store, [e for e in events if e.job_id in self._jobs or e.workspace in self._workspaces])

    def _release(self, newest: int) -> None:
        """Hand workspace subscribers every event that is now next in order."""
        now = self.clock()
        top = max(newest, max(self._pending, default=0))
        for seq in range(self.position + 1, top):
            if seq not in self._pending:
                self._gaps.setdefault(seq, now)
        while self._pending:
            following = self.position + 1
            event = self._pending.pop(following, None)
            if event is not None:
                for subscription in self._workspaces.get(event.workspace, ()):
                    subscription.push(event)
                self.position = following
                continue
            lowest = min(self._pending)
            if not self.store.events_in_commit_order and any(
                now - self._gaps.get(seq, now) < self.hold for seq in range(following, lowest)
            ):
                return  # a gap still open: what follows waits
            self.position = lowest - 1
        self.position = max(self.position, newest)
        self._gaps = {seq: at for seq, at in self._gaps.items() if seq > self.position}
