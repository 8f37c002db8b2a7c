"""Start latency: with idle worker processes running, how long from enqueue to the handler's start.

Each job carries `time.time()` taken just before its enqueue call; its handler records its own
`time.time()` at its start (`bench.recorder`), and the benchmark waits for that record before the
next job, after a random pause of 0 to ``config.latency_gap`` seconds (so that jobs meet polling
workers at random points of their cycle). Nothing polls the system's store: the delay is the
enqueue, the wake-up, the claim and the hand-over to the handler, as the handler sees it.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.config import Config
from bench.procs import Process
from bench.recorder import RecordServer
from bench.stats import percentile
from bench.systems.base import System, stop_all

WARMUP = 10
#: After the first job (which waits for a worker to be up), time for the other processes to come up.
BOOT = 2.0
TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Latency:
    system: str
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _one(system: System, records: RecordServer, workers: list[Process], timeout: float = TIMEOUT) -> float:
    """Enqueue one job and wait for its handler's record: seconds from enqueue to start."""
    await system.enqueue_one(time.time())
    deadline = time.monotonic() + timeout
    while True:
        try:
            enqueued, started = await records.next_sample(timeout=1)
        except TimeoutError:
            for worker in workers:
                worker.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{system.name}: a job did not start within {timeout:.0f}s") from None
            continue
        return started - enqueued


async def measure(system: System, records: RecordServer, config: Config) -> Latency:
    await records.reset()
    await system.setup()
    try:
        workers = system.start_workers()
        try:
            await _one(system, records, workers, timeout=60.0)
            await asyncio.sleep(BOOT)
            for _ in range(WARMUP):
                await _one(system, records, workers)
            delays = []
            for _ in range(config.latency_samples):
                await asyncio.sleep(random.uniform(0, config.latency_gap))
                delays.append(await _one(system, records, workers))
        finally:
            stop_all(workers)
    finally:
        await system.teardown()
    ms = sorted(d * 1000 for d in delays)
    return Latency(
        system=system.name,
        samples=len(ms),
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1],
        mean_ms=sum(ms) / len(ms),
    )
