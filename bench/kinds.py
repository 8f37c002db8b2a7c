"""The jobhouse kinds the benchmarks run: `jobhouse worker --app bench.kinds:jobs`."""

from __future__ import annotations

from bench.recorder import arecord
from jobhouse import JobContext, Registry

jobs = Registry()


@jobs.kind("noop", title="No-op", max_attempts=1)
async def noop(ctx: JobContext) -> None:
    """Does nothing: what is measured is the queue, not the handler."""
    return


@jobs.kind("record", title="Record", max_attempts=1)
async def record(ctx: JobContext) -> None:
    """The queue workloads' job, the same on every system: record its start and count itself (`bench.recorder`)."""
    await arecord(ctx.input["t"])
