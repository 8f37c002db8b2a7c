"""Syncing a source: read it, and store what it yielded.

Reading a source is blocking, CPU-heavy Python (tens of megabytes of apt lists): done on the API
process's own threads it would hold the interpreter lock and stall every request. So a `Scanner`
reads in worker processes (`multiprocessing`'s forkserver: a script that embeds a `Runtime` must
guard its entry point with ``if __name__ == "__main__":``), one per core, and this process only
stores the entries they send back, in one transaction. A source that can be read in parts (the
apt lists, split by package) is read by every worker at once. With ``workers=0`` sources are read
on a thread of this process instead.

A source whose `fingerprint` (a signature of its files: sizes, times, inodes) is what it was at
its last sync is not read again: its stored entries are still what it would yield.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from jobhouse.catalog import Entry, SourceState
from jobhouse.sources import Source, SourceError
from jobhouse.store.base import Store

#: Part of every fingerprint: a new jobhouse may read the same files differently.
FORMAT = "1"


@runtime_checkable
class Sharded(Protocol):
    """A source that can be read in `n` parts whose entries, together, are what `scan` yields."""

    def scan_part(self, part: int, parts: int) -> list[Entry]: ...


@dataclass(frozen=True, slots=True)
class Synced:
    """How a sync went: how many entries the source has now, whether its files had not changed
    (and so it was not read), and, when it was read, the generation and entries stored."""

    count: int
    unchanged: bool = False
    generation: int | None = None
    entries: Sequence[Entry] = field(default=(), repr=False)


def fingerprint(source: Source) -> str | None:
    """The source's signature now (None: it has none, read it every time)."""
    own = source.fingerprint()
    return None if own is None else f"{FORMAT}:{own}"


def _ready() -> None:
    """Nothing: run once in each worker process to start it."""


def _scan(source: Source) -> list[Entry]:
    return source.scan()


def _scan_part(source: Sharded, part: int, parts: int) -> list[Entry]:
    return source.scan_part(part, parts)


class Scanner:
    """Reads sources in worker processes (or threads, with ``workers=0``) and stores their entries."""

    def __init__(self, store: Store, *, workers: int = 0) -> None:
        self.store = store
        self.workers = workers
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.workers > 0:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["jobhouse.scanner"])
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            else:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="jobhouse-scan")
        return self._pool

    async def start(self) -> None:
        """Start the worker processes now, so that the first sync does not wait for them."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(max(self.workers, 1))))

    async def sync(self, source: Source, state: SourceState | None) -> Synced:
        """Read `source` and store its entries, unless its files are as they were at `state`'s sync.
        A source that cannot be read raises `SourceError` (recorded on the source) and keeps its entries."""
        now = await asyncio.to_thread(fingerprint, source)
        if now is not None and state is not None and state.synced_at is not None and state.fingerprint == now:
            return Synced(state.candidate_count, unchanged=True)
        loop = asyncio.get_running_loop()
        pool = self._executor()
        parts = self.workers if self.workers > 1 and isinstance(source, Sharded) else 1
        try:
            if isinstance(source, Sharded) and parts > 1:
                read = [loop.run_in_executor(pool, _scan_part, source, part, parts) for part in range(parts)]
            else:
                read = [loop.run_in_executor(pool, _scan, source)]
            unique = {e.id: e for found in await asyncio.gather(*read) for e in found}
            entries = [unique[entry_id] for entry_id in sorted(unique)]
        except Exception as exc:
            await self.store.catalog.record_error(source.id, f"{type(exc).__name__}: {exc}")
            raise SourceError(f"{source.id}: {exc}") from exc
        generation = await self.store.catalog.replace(source.id, entries, now)
        return Synced(len(entries), generation=generation, entries=entries)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
