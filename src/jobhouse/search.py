"""The candidate search: selectors, syncing sources into the store's index, and ranked results.

A search never scans the machine itself: it reads the entries that `source-sync` jobs store, so
every API node answers the same. A source that was never synced is synced on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobhouse.catalog import OS, AppKind, CandidateFilter, Entry, SourceState
from jobhouse.errors import InvalidSelector, SourceNotFound
from jobhouse.merge import merge
from jobhouse.scanner import Scanner, Synced
from jobhouse.sources import Source, SourceError
from jobhouse.sources.path import platform_os
from jobhouse.store.base import Store
from jobhouse.validation import JsonInt, validate

if TYPE_CHECKING:  # the index (numpy, rapidfuzz) loads when the first one is built, not with every process
    from jobhouse.index import CandidateIndex
    from jobhouse.ranking import Match

Text = Annotated[str, Field(min_length=1, max_length=200)]
log = logging.getLogger(__name__)


class Selector(BaseModel):
    """What to search for: `app` (required) and optional filters."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Selector")

    app: Text = Field(description="Application name or part of it; typos are tolerated")
    os: Literal["linux", "macos", "windows"] | None = Field(default=None, description="Target OS")
    kind: Literal["gui", "cli"] | None = Field(default=None, description="Graphical or command-line")
    limit: JsonInt = Field(default=25, ge=1, le=100, description="Most candidates to return")
    version: Text | None = Field(
        default=None, description="Leading version components, e.g. '12' or '1.2' ('4' matches 4.2, not 43.1)"
    )
    source: Text | None = Field(default=None, description="Only candidates from this source")

    @field_validator("app")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


def candidate_view(match: Match) -> dict[str, Any]:
    c = match.candidate
    return {
        "id": c.id,
        "app": c.app,
        "name": c.name,
        "version": c.version,
        "os": c.os.value,
        "kind": c.kind.value,
        "source": c.source,
        "sources": list(c.sources),
        "installed": c.installed,
        "score": round(match.score, 2),
        "match": match.reason,
        "launch": c.launch,
        "install": c.install,
        "description": c.description,
        "package": c.package,
    }


class Searcher:
    """Searches the store's candidate index and keeps it filled from `sources`.

    Searches run on an in-memory `CandidateIndex` of the merged entries of every source. When a
    sync anywhere moves the store's catalog version, the index is rebuilt in the background from
    the entries of the sources that changed (the others are kept), and swapped in whole when it
    is ready: searches never wait for a rebuild (but the very first one, which has nothing to
    answer from). A sync job rebuilds its own process's index before it ends, so once it has ended
    that process's searches see the new entries. Sources are read and stored by `scanner` (see
    `jobhouse.scanner`).
    """

    def __init__(
        self, store: Store, sources: Sequence[Source], *, scanner: Scanner | None = None, this_os: OS | None = None
    ) -> None:
        self.store = store
        self.sources = {source.id: source for source in sources}
        self.scanner = scanner or Scanner(store)
        self.this_os = this_os or platform_os()
        self._sync_locks: dict[str, asyncio.Lock] = {}
        self._synced: set[str] = set()
        self._entries: dict[str, list[Entry]] = {}
        self._stored: dict[str, tuple[int, list[Entry]]] = {}
        self._generations: dict[str, int] = {}
        self._index: CandidateIndex | None = None  # built by the first `refresh`
        self._index_version = -1
        self._refresh_lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    def selector(self, data: Any) -> Selector:
        """A valid selector from parsed JSON, or `InvalidSelector` naming the problem."""
        if isinstance(data, Mapping) and "app" not in data:
            raise InvalidSelector("Invalid selector: app is required")
        selector = validate(Selector, data, "Invalid selector", InvalidSelector)
        if selector.source is not None and selector.source not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise InvalidSelector(f"Invalid selector: source: unknown source {selector.source!r} (known: {known})")
        return selector

    def check_input(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Input check of the `search-resolve` kind: the normalized selector."""
        return self.selector(data).model_dump(exclude_none=True)

    async def search(self, selector: Selector) -> list[dict[str, Any]]:
        await self.ensure_synced([selector.source] if selector.source else list(self.sources))
        where = CandidateFilter(
            os=OS(selector.os) if selector.os else None,
            kind=AppKind(selector.kind) if selector.kind else None,
            source=selector.source,
            version=selector.version,
        )
        index = await self.current_index()
        prefer = where.os or self.this_os
        return [candidate_view(m) for m in index.search(selector.app, selector.limit, where, prefer)]

    async def current_index(self) -> CandidateIndex:
        """The latest index built; a newer one is started in the background if the store moved on."""
        if self._index_version < 0:
            await self.refresh()
        elif await self.store.catalog.version() != self._index_version and (
            self._background is None or self._background.done()
        ):
            self._background = asyncio.create_task(self._quietly(self.refresh(), "refreshing the search index"))
        assert self._index is not None  # the first refresh built one
        return self._index

    async def refresh(self) -> None:
        """Bring the index up to the store's entries now, reloading only the sources that changed."""
        async with self._refresh_lock:
            version = await self.store.catalog.version()
            if version == self._index_version:
                return
            states = await self.store.catalog.states()
            changed = False
            for source_id in self.sources:
                generation = states[source_id].generation if source_id in states else 0
                if generation != self._generations.get(source_id, 0):
                    stored, fresh = self._stored.pop(source_id, (None, []))
                    self._entries[source_id] = (
                        fresh if stored == generation else await self.store.catalog.entries(source_id)
                    )
                    self._generations[source_id] = generation
                    changed = True
            if changed or self._index_version < 0:
                entries = [e for source_id in self.sources for e in self._entries.get(source_id, ())]
                self._index = await asyncio.to_thread(_build, entries, list(self.sources))
            self._index_version = version

    @staticmethod
    async def _quietly(work: Awaitable[None], what: str) -> None:
        try:
            await work
        except Exception as exc:  # e.g. the store is down: searches go on with the index they have
            log.warning("%s failed: %s", what, exc)

    async def start(self) -> None:
        """Start what syncs need (in the background: nothing waits for it)."""
        self._background = asyncio.create_task(self._quietly(self.scanner.start(), "starting the scanners"))

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        await self.scanner.close()

    async def ensure_synced(self, source_ids: Sequence[str]) -> None:
        """Sync, now, any of these sources that was never synced (nor failed)."""
        if self._synced.issuperset(source_ids):
            return
        states = await self.store.catalog.states()
        missing = [
            source_id
            for source_id in source_ids
            if source_id not in states or (states[source_id].synced_at is None and states[source_id].last_error is None)
        ]
        synced = await asyncio.gather(*(self.sync(source_id) for source_id in missing), return_exceptions=True)
        for outcome in synced:  # a source that failed has its error recorded; the search goes on without it
            if isinstance(outcome, BaseException) and not isinstance(outcome, SourceError):
                raise outcome
        self._synced.update(source_ids)
        if missing:
            await self.refresh()

    async def sync(self, source_id: str, *, force: bool = False) -> Synced:
        """Read a source and store its entries (one sync of a source at a time in this process), unless
        its files did not change since its last sync and not `force`. A source that cannot be read
        raises `SourceError` and keeps its previous entries."""
        source = self.source(source_id)
        async with self._sync_locks.setdefault(source_id, asyncio.Lock()):
            state = None if force else (await self.store.catalog.states()).get(source_id)
            synced = await self.scanner.sync(source, state)
            if synced.generation is not None:  # the next refresh need not read back what was just stored
                self._stored[source_id] = (synced.generation, list(synced.entries))
            return synced

    def source(self, source_id: str) -> Source:
        try:
            return self.sources[source_id]
        except KeyError:
            raise SourceNotFound() from None

    async def states(self) -> list[tuple[Source, SourceState]]:
        states = await self.store.catalog.states()
        return [(source, states.get(source.id) or SourceState(source.id)) for source in self.sources.values()]


def _build(entries: Sequence[Entry], order: Sequence[str]) -> CandidateIndex:
    from jobhouse.index import CandidateIndex

    return CandidateIndex(merge(entries, order))
