"""The kinds every jobhouse has: `search-resolve` and `source-sync`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobhouse.context import JobContext
from jobhouse.errors import InvalidRequest
from jobhouse.registry import Registry
from jobhouse.search import Searcher, Selector
from jobhouse.sources import SourceError
from jobhouse.validation import validate

SEARCH_KIND = "search-resolve"
SYNC_KIND = "source-sync"


class SyncInput(BaseModel):
    """Input of a `source-sync` job: one source, or every source when absent."""

    model_config = ConfigDict(extra="forbid", title="SyncInput")

    source: str | None = Field(default=None, min_length=1, max_length=200)


def builtin_kinds(searcher: Searcher) -> Registry:
    jobs = Registry()

    def check_sync(data: Mapping[str, Any]) -> Mapping[str, Any]:
        parsed = validate(SyncInput, data, f"Invalid input for {SYNC_KIND}")
        if parsed.source is not None and parsed.source not in searcher.sources:
            raise InvalidRequest(f"Invalid input for {SYNC_KIND}: unknown source {parsed.source!r}")
        return parsed.model_dump(exclude_none=True)

    def sync_steps(data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "source" in data:
            title = searcher.source(data["source"]).title
            return [("scan", f"Scanning {title}"), ("index", "Indexing candidates")]
        return [(source.id, f"Syncing {source.title}") for source in searcher.sources.values()]

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
        if "source" in ctx.input:
            source_id = ctx.input["source"]

            def scanned(done: float) -> None:
                ctx.progress(int(50 * done))  # the scan is the first of two steps

            async with searcher.lock(source_id):
                async with ctx.step("scan"):
                    candidates = await searcher.scan(source_id, scanned)
                async with ctx.step("index"):
                    await searcher.index(source_id, candidates)
            return {"sources": {source_id: {"candidates": len(candidates)}}}
        results: dict[str, Any] = {}
        steps = ctx.steps
        for number, step in enumerate(steps):

            def progress(done: float, number: int = number) -> None:
                ctx.progress(int(100 * (number + done) / len(steps)))

            try:
                async with ctx.step(step.id):
                    results[step.id] = {"candidates": await searcher.sync(step.id, progress)}
            except SourceError as exc:
                results[step.id] = {"error": str(exc)}
        if results and all("error" in r for r in results.values()):
            raise SourceError("every source failed: " + "; ".join(r["error"] for r in results.values()))
        return {"sources": results}

    return jobs
