"""Drain: enqueue N jobs in bulk, then start the worker processes and time them through the backlog.

*bulk enqueue/s* is N over the time the system's bulk API took to take them (batches of
``config.batch``). *drain jobs/s* is N over the time from the first job's start, as its handler
recorded it, to the moment the recorder's done counter reaches N (read every 5 ms), so worker
start-up is left out and every system's completion is seen the same way. The CPU time of the worker
processes and of the store is taken between the first poll that sees a job done and the last one,
and divided by the jobs done in between.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.config import Config
from bench.recorder import RecordServer
from bench.systems.base import System, stop_all
from bench.usage import CpuMeter, CpuSnapshot

POLL = 0.005
#: A run whose done counter does not move for this long is given up on.
STALL = 60.0


@dataclass(frozen=True, slots=True)
class Drain:
    system: str
    jobs: int
    bulk_seconds: float
    bulk_rate: float
    #: Workers started to the first job's start (process start-up plus the first claim).
    startup_seconds: float
    #: The first job's start to the last job's completion.
    drain_seconds: float
    drain_rate: float
    #: CPU milliseconds per job: the worker processes (with their children), and the store (None on SQLite).
    worker_cpu_ms: float
    store_cpu_ms: float | None
    #: Jobs whose body ran (more than `jobs` if some ran twice).
    ran: int
    capped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def measure(system: System, records: RecordServer, config: Config) -> Drain:
    jobs = config.jobs
    await records.reset()
    await system.setup()
    try:
        started = time.perf_counter()
        await system.enqueue_bulk(jobs)
        bulk_seconds = time.perf_counter() - started
        await system.after_bulk()

        workers = system.start_workers()
        meter = CpuMeter(system, workers)
        try:
            boot = time.time()
            first: tuple[int, CpuSnapshot] | None = None
            done = polls = 0
            capped = False
            moved_at = boot
            while True:
                previous, done = done, await records.done()
                now = time.time()
                if first is None and done > 0:
                    first = done, meter.snapshot()
                if done != previous:
                    moved_at = now
                if done >= jobs:
                    break
                if now - boot > config.time_limit:
                    capped = True
                    break
                if now - moved_at > STALL:
                    raise RuntimeError(f"{system.name}: stalled at {done} of {jobs} jobs for {STALL:.0f}s")
                polls += 1
                if polls % 100 == 0:
                    for worker in workers:
                        worker.check()
                await asyncio.sleep(POLL)
            last = meter.snapshot()
        finally:
            stop_all(workers)
            meter.close()
        samples = await records.samples()
    finally:
        await system.teardown()

    if first is None or not samples:
        raise RuntimeError(f"{system.name}: no job ran within {config.time_limit:.0f}s")
    first_start = min(start for _, start in samples)
    drain_seconds = now - first_start
    measured = max(done - first[0], 1)
    worker_cpu, store_cpu = meter.spent(first[1], last)
    return Drain(
        system=system.name,
        jobs=jobs,
        bulk_seconds=bulk_seconds,
        bulk_rate=jobs / bulk_seconds,
        startup_seconds=first_start - boot,
        drain_seconds=drain_seconds,
        drain_rate=min(done, jobs) / drain_seconds,
        worker_cpu_ms=worker_cpu * 1000 / measured,
        store_cpu_ms=None if store_cpu is None else store_cpu * 1000 / measured,
        ran=done,
        capped=capped,
    )
