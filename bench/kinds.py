"""The jobhouse kinds the benchmarks run: `jobhouse worker --app bench.kinds:jobs`."""

from __future__ import annotations

from jobhouse import JobContext, Registry

jobs = Registry()


@jobs.kind("noop", title="No-op", max_attempts=1)
async def noop(ctx: JobContext) -> None:
    """Does nothing: what is measured is the queue, not the handler."""
    return
