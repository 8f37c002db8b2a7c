"""Latency: with an idle worker running, enqueue one job and wait until the store says it completed."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.procs import Process
from bench.stats import percentile
from bench.systems.base import System

WARMUP = 5
TIMEOUT = 30.0
#: How often the client polls the system's own store for the job's completion.
POLL = 0.001
#: A random pause between samples, up to arq's poll period, so that jobs arrive at random phases
#: of a polling worker's cycle instead of just after the poll that ran the previous job.
GAP = 0.5


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


async def _one(system: System, worker: Process, timeout: float = TIMEOUT) -> float:
    started = time.perf_counter()
    job_id = await system.enqueue_one()
    polls = 0
    while not await system.is_done(job_id):
        polls += 1
        if polls % 100 == 0:
            worker.check()
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{system.name}: job {job_id} not done after {timeout}s")
        await asyncio.sleep(POLL)
    return time.perf_counter() - started


async def measure(system: System, samples: int) -> Latency:
    await system.setup()
    try:
        worker = system.start_worker()
        try:
            for _ in range(WARMUP):  # the first also waits for the worker to be up
                await _one(system, worker, timeout=60.0)
            times = []
            for _ in range(samples):
                await asyncio.sleep(random.uniform(0, GAP))
                times.append(await _one(system, worker))
        finally:
            worker.stop()
    finally:
        await system.teardown()
    ms = sorted(t * 1000 for t in times)
    return Latency(
        system=system.name,
        samples=samples,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1],
        mean_ms=sum(ms) / len(ms),
    )
