"""The kinds every jobhouse has: `search-resolve` and `source-sync`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from jobhouse.context import JobContext
from jobhouse.errors import InvalidRequest
from jobhouse.registry import Registry
from jobhouse.scanner import Synced
from jobhouse.search import Searcher, Selector
from jobhouse.sources import SourceError
from jobhouse.validation import validate

SEARCH_KIND = "search-resolve"
SYNC_KIND = "source-sync"
#: The last step of a sync: this process's search index takes in the new entries.
INDEX_STEP = "index"


class SyncInput(BaseModel):
    """Input of a `source-sync` job: one source, or every source when absent."""

    model_config = ConfigDict(extra="forbid", title="SyncInput")

    source: str | None = Field(default=None, min_length=1, max_length=200)
    force: StrictBool = Field(default=False, description="Read the sources even if their files did not change")


def _outcome(synced: Synced) -> dict[str, Any]:
    """A source's line in a sync's result: its entries, and whether its files had not changed."""
    return {"candidates": synced.count, **({"unchanged": True} if synced.unchanged else {})}


def builtin_kinds(searcher: Searcher) -> Registry:
    jobs = Registry()

    def check_sync(data: Mapping[str, Any]) -> Mapping[str, Any]:
        parsed = validate(SyncInput, data, f"Invalid input for {SYNC_KIND}")
        if parsed.source is not None and parsed.source not in searcher.sources:
            raise InvalidRequest(f"Invalid input for {SYNC_KIND}: unknown source {parsed.source!r}")
        return parsed.model_dump(exclude_none=True, exclude_defaults=True)

    def sync_steps(data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "source" in data:
            title = searcher.source(data["source"]).title
            return [("scan", f"Scanning {title}"), (INDEX_STEP, "Indexing candidates")]
        syncs = [(source.id, f"Syncing {source.title}") for source in searcher.sources.values()]
        return [*syncs, (INDEX_STEP, "Indexing candidates")]

    @jobs.kind(
        SEARCH_KIND,
        title="Resolving candidates",
        steps=[("resolve", "Resolving candidates")],
        timeout=300,
        result_type="search-response",
        input=searcher.check_input,
    )
    async def search_resolve(ctx: JobContext) -> dict[str, Any]:
        selector = Selector.model_validate(ctx.input)
        async with ctx.step("resolve"):
            candidates = await searcher.search(selector)
        return {"candidates": candidates}

    @jobs.kind(
        SYNC_KIND,
        title="Syncing sources",
        steps=sync_steps,
        timeout=1800,
        max_attempts=2,
        result_type="source-sync",
        input=check_sync,
    )
    async def source_sync(ctx: JobContext) -> dict[str, Any]:
        force = bool(ctx.input.get("force"))
        if "source" in ctx.input:
            source_id = ctx.input["source"]
            async with ctx.step("scan"):
                synced = await searcher.sync(source_id, force=force)
            async with ctx.step(INDEX_STEP):
                await searcher.refresh()
            return {"sources": {source_id: _outcome(synced)}}

        async def one(source_id: str) -> dict[str, Any]:
            try:
                async with ctx.step(source_id):
                    return _outcome(await searcher.sync(source_id, force=force))
            except SourceError as exc:
                return {"error": str(exc)}

        ids = [step.id for step in ctx.steps if step.id != INDEX_STEP]
        results = dict(zip(ids, await asyncio.gather(*map(one, ids)), strict=True))  # side by side
        if results and all("error" in r for r in results.values()):
            raise SourceError("every source failed: " + "; ".join(r["error"] for r in results.values()))
        async with ctx.step(INDEX_STEP):
            await searcher.refresh()
        return {"sources": results}

    return jobs
