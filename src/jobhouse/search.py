"""The candidate search: selectors, syncing sources into the store's index, and ranked results.

A search never scans the machine itself: it reads the index that `source-sync` jobs fill, so
every API node answers the same. A source that was never synced is synced on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter, Progress, SourceState
from jobhouse.errors import InvalidSelector, SourceNotFound
from jobhouse.index import CandidateIndex
from jobhouse.ranking import Match
from jobhouse.sources import Source, SourceError
from jobhouse.store.base import Store
from jobhouse.validation import JsonInt, validate

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Selector(BaseModel):
    """What to search for: `app` (required) and optional filters."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Selector")

    app: Text = Field(description="Application name or part of it; typos are tolerated")
    os: Literal["linux", "macos", "windows"] | None = Field(default=None, description="Target OS")
    kind: Literal["gui", "cli"] | None = Field(default=None, description="Graphical or command-line")
    limit: JsonInt = Field(default=25, ge=1, le=100, description="Most candidates to return")
    version: Text | None = Field(default=None, description="Version prefix, e.g. '12' or '1.2'")
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
        "score": round(match.score, 2),
        "match": match.reason,
        "launch": c.launch,
        "install": c.install,
        "description": c.description,
    }


class Searcher:
    """Searches the store's candidate index and keeps it filled from `sources`.

    Searches run on an in-memory `CandidateIndex` built from the store's candidates and rebuilt
    whenever the store's catalog version moves (a sync anywhere), so every node answers alike.
    """

    def __init__(self, store: Store, sources: Sequence[Source]) -> None:
        self.store = store
        self.sources = {source.id: source for source in sources}
        self._sync_locks: dict[str, asyncio.Lock] = {}
        self._synced: set[str] = set()
        self._index = CandidateIndex([])
        self._index_version = -1
        self._index_lock = asyncio.Lock()

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
            version_prefix=selector.version,
        )
        index = await self.current_index()
        return [candidate_view(m) for m in index.search(selector.app, selector.limit, where)]

    async def current_index(self) -> CandidateIndex:
        """The index of the store's candidates as they are now (rebuilt after any sync)."""
        if await self.store.catalog.version() != self._index_version:
            async with self._index_lock:
                version = await self.store.catalog.version()
                if version != self._index_version:
                    everything = await self.store.catalog.candidates(CandidateFilter())
                    ours = [c for c in everything if c.source in self.sources]
                    self._index = await asyncio.to_thread(CandidateIndex, ours)
                    self._index_version = version
        return self._index

    async def ensure_synced(self, source_ids: Sequence[str]) -> None:
        """Sync, now, any of these sources that was never synced (nor failed)."""
        if self._synced.issuperset(source_ids):
            return
        states = await self.store.catalog.states()
        for source_id in source_ids:
            state = states.get(source_id)
            if state is None or (state.synced_at is None and state.last_error is None):
                try:
                    await self.sync(source_id)
                except SourceError:
                    pass  # recorded on the source; the search goes on with what there is
            self._synced.add(source_id)

    def lock(self, source_id: str) -> asyncio.Lock:
        """Held while a source syncs, so two syncs of one source in a process do not interleave."""
        return self._sync_locks.setdefault(source_id, asyncio.Lock())

    async def scan(self, source_id: str, progress: Progress | None = None) -> list[Candidate]:
        """Read a source; a failure is recorded on the source and raised as `SourceError`."""
        source = self.source(source_id)
        try:
            return await asyncio.to_thread(source.scan, progress)
        except Exception as exc:
            await self.store.catalog.record_error(source_id, f"{type(exc).__name__}: {exc}")
            raise SourceError(f"{source_id}: {exc}") from exc

    async def index(self, source_id: str, candidates: Sequence[Candidate]) -> None:
        """Swap a source's candidates in the store, atomically: searches see old or new, never half."""
        unique = {candidate.id: candidate for candidate in candidates}
        await self.store.catalog.replace(source_id, list(unique.values()))

    async def sync(self, source_id: str, progress: Progress | None = None) -> int:
        """Scan and index one source; the number of candidates. A failed scan keeps the old index."""
        async with self.lock(source_id):
            candidates = await self.scan(source_id, progress)
            await self.index(source_id, candidates)
            return len(candidates)

    def source(self, source_id: str) -> Source:
        try:
            return self.sources[source_id]
        except KeyError:
            raise SourceNotFound() from None

    async def states(self) -> list[tuple[Source, SourceState]]:
        states = await self.store.catalog.states()
        return [(source, states.get(source.id) or SourceState(source.id)) for source in self.sources.values()]
