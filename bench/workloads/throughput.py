"""Throughput: enqueue N no-op jobs in bulk, then run one worker process until all N have ended."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.systems.base import System

POLL = 0.02
#: A run whose count of ended jobs does not move for this long is given up on.
STALL = 60.0


@dataclass(frozen=True, slots=True)
class Throughput:
    system: str
    jobs: int
    enqueue_seconds: float
    enqueue_rate: float
    #: Worker start to the first completion seen (process start-up plus the first claim).
    startup_seconds: float
    process_seconds: float
    process_rate: float
    total_seconds: float
    done: int
    completed: int | None
    capped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def measure(system: System, jobs: int, time_limit: float) -> Throughput:
    await system.setup()
    try:
        started = time.perf_counter()
        await system.enqueue_bulk(jobs)
        enqueue_seconds = time.perf_counter() - started

        worker = system.start_worker()
        try:
            boot = time.perf_counter()
            first_at: float | None = None
            first_done = done = 0
            capped = False
            moved_at = boot
            while True:
                previous, done = done, await system.count_done()
                now = time.perf_counter()
                if first_at is None and done > 0:
                    first_at, first_done = now, done
                if done != previous:
                    moved_at = now
                if done >= jobs:
                    break
                if now - boot > time_limit:
                    capped = True
                    break
                if now - moved_at > STALL:
                    raise RuntimeError(f"{system.name}: stalled at {done} of {jobs} jobs for {STALL:.0f}s")
                worker.check()
                await asyncio.sleep(POLL)
        finally:
            worker.stop()
        completed = await system.count_completed()
    finally:
        await system.teardown()

    if first_at is None or done <= first_done:
        raise RuntimeError(f"{system.name}: no job ended within {time_limit:.0f}s")
    # The rate over the window between the first poll that saw a completion and the last one;
    # jobs ended before the first such poll are left out of both sides.
    process_rate = (done - first_done) / (now - first_at)
    process_seconds = done / process_rate
    return Throughput(
        system=system.name,
        jobs=jobs,
        enqueue_seconds=enqueue_seconds,
        enqueue_rate=jobs / enqueue_seconds,
        startup_seconds=first_at - boot,
        process_seconds=process_seconds,
        process_rate=process_rate,
        total_seconds=enqueue_seconds + process_seconds,
        done=done,
        completed=completed,
        capped=capped,
    )
