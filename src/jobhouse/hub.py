"""In-process wake-ups, and the refresher that catches other processes' changes to running jobs.

`jobhouse.queue.Queue` publishes to the `Hub` right after each commit, so in one process
everything wakes at once: idle workers when work arrives, a running handler when its job is
cancelled, the change feed (`jobhouse.feed.Feed`, which serves event streams and long-polls)
when any job changed. Changes made by *other* processes reach the hub through the store's own
signal (SQLite's counters, PostgreSQL's LISTEN/NOTIFY), which calls `external_change` with what
kind of change it was: queued work wakes idle workers, changed jobs wake the feed, ended or
stopped jobs wake the `Refresher`, which reads every job running here in one query. The feed
and the refresher also run on a slow timer, so a lost signal costs latency, never correctness.
Waiting costs nothing per waiter: no waiter polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from jobhouse.aio import wait
from jobhouse.job import AttemptRef, JobStatus

StopCallback = Callable[[], None]
log = logging.getLogger(__name__)

#: The kinds of change other processes signal (`Hub.external_change`).
WORK, ENDED, STOPPED, KEYS, EVENTS = "work", "ended", "stopped", "keys", "events"
SIGNALS = (WORK, ENDED, STOPPED, KEYS, EVENTS)


@dataclass(frozen=True, slots=True)
class Seen:
    """A job's status and attempt, as the refresher reads them."""

    status: JobStatus
    attempt: int


class Hub:
    """Wakes whoever waits on work, on a cancel, or on job changes, in this process."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[int, StopCallback]] = {}
        self._work_waiters: set[asyncio.Event] = set()
        self._change_waiters: set[asyncio.Event] = set()
        self._revoke_listeners: list[Callable[[Collection[str] | None], None]] = []
        self._refresh = asyncio.Event()
        #: Set whenever jobs changed (events were written); the feed clears it as it reads.
        self.changes = asyncio.Event()

    # -- publishing (the queue, after commit; the store's signals) ----------------------------

    def changed(self) -> None:
        """Jobs changed (their events are committed): wake the change feed (and each `change_waiter`)."""
        self.changes.set()
        for event in self._change_waiters:
            event.set()

    def stopped(self, job_ids: Iterable[str]) -> None:
        """These jobs must stop running here (cancelled, or the attempt is no longer ours)."""
        for job_id in job_ids:
            entry = self._running.get(job_id)
            if entry is not None:
                entry[1]()

    def enqueued(self) -> None:
        """New or newly due work: wake idle workers."""
        for event in self._work_waiters:
            event.set()

    def revoked(self, key_ids: Collection[str] | None = None) -> None:
        """These API keys (None: any key) were revoked: forget what was cached of them."""
        for listener in self._revoke_listeners:
            listener(key_ids)

    def external_change(self, signals: Collection[str] = SIGNALS) -> None:
        """Another process changed the store, in these ways (`SIGNALS`; all when not known)."""
        if WORK in signals:
            self.enqueued()
        if EVENTS in signals:
            self.changed()
        if ENDED in signals or STOPPED in signals:
            self._refresh.set()
        if KEYS in signals:
            self.revoked(None)

    # -- subscribing -------------------------------------------------------------------------

    @contextmanager
    def running(self, ref: AttemptRef, stop: StopCallback) -> Iterator[None]:
        """Register a running attempt; `stop` is called if it is cancelled or lost."""
        self.hold(ref, stop)
        try:
            yield
        finally:
            self.let_go(ref.job_id)

    def hold(self, ref: AttemptRef, stop: StopCallback) -> None:
        """Register an attempt this process holds (running, or claimed and about to run); `stop`
        is called if it is cancelled or lost. A second call for the same job replaces the first."""
        self._running[ref.job_id] = (ref.attempt, stop)

    def let_go(self, job_id: str) -> None:
        self._running.pop(job_id, None)

    @contextmanager
    def work_waiter(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        event.set()
        self._work_waiters.add(event)
        try:
            yield event
        finally:
            self._work_waiters.discard(event)

    @contextmanager
    def change_waiter(self) -> Iterator[asyncio.Event]:
        """An event of its own that `changed` sets, for a service that must not clear the feed's."""
        event = asyncio.Event()
        self._change_waiters.add(event)
        try:
            yield event
        finally:
            self._change_waiters.discard(event)

    def on_revoke(self, listener: Callable[[Collection[str] | None], None]) -> None:
        """Call `listener` with the key ids (None: any) whenever keys are revoked."""
        self._revoke_listeners.append(listener)

    # -- the refresher's view ----------------------------------------------------------------

    def watched(self) -> set[str]:
        """Every job running in this process."""
        return set(self._running)

    def apply(self, seen: Mapping[str, Seen | None]) -> None:
        """Publish what the refresher read: attempts that are no longer ours."""
        lost = []
        for job_id, (attempt, _) in self._running.items():
            s = seen.get(job_id)
            if s is not None and s.attempt < attempt:
                continue  # read before this process claimed the job again: what it holds is newer
            if job_id in seen and (s is None or s.status != JobStatus.RUNNING or s.attempt != attempt):
                lost.append(job_id)
        self.stopped(lost)

    def refresh_now(self) -> None:
        """Ask the refresher to look (used when the store's signal may have been lost)."""
        self._refresh.set()

    async def wait_refresh(self, timeout: float) -> None:
        await wait(self._refresh, timeout)
        self._refresh.clear()


class Refresher:
    """Reads every job running here in one query whenever another process may have stopped one.

    Runs as a background service (`run(stop)`), woken by the store's signals or every `interval`
    seconds at the latest, and at most once every `gap` seconds: a burst of other processes'
    commits costs one query, not one each.
    """

    def __init__(
        self,
        hub: Hub,
        read: Callable[[set[str]], Awaitable[Mapping[str, Seen | None]]],
        interval: float,
        gap: float = 0.005,
    ) -> None:
        self.hub = hub
        self.read = read
        self.interval = interval
        self.gap = gap

    async def run(self, stop: asyncio.Event) -> None:
        waker = asyncio.create_task(_on_stop(stop, self.hub))
        try:
            await self._loop(stop)
        finally:
            waker.cancel()

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.hub.wait_refresh(self.interval)
            if stop.is_set():
                return
            watched = self.hub.watched()
            if watched:
                try:
                    seen = await self.read(watched)
                except Exception as exc:  # the store is down; the next round tries again
                    log.warning("refresh failed: %s", exc)
                    continue
                self.hub.apply(seen)
            await wait(stop, self.gap)


async def _on_stop(stop: asyncio.Event, hub: Hub) -> None:
    await stop.wait()
    hub.refresh_now()
