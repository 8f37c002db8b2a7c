"""Enqueue: N jobs one at a time from 50 concurrent callers, with no worker running.

Callers are asyncio tasks on the system's async client, or threads where its client blocks (rq,
celery, huey). *one-at-a-time enqueue/s* is N over the time from the first call to the last return.
The bulk rate is the drain workload's enqueue phase.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.config import Config
from bench.recorder import RecordServer
from bench.systems.base import System


@dataclass(frozen=True, slots=True)
class Enqueue:
    system: str
    jobs: int
    callers: int
    seconds: float
    rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def measure(system: System, records: RecordServer, config: Config) -> Enqueue:
    await system.setup()
    try:
        started = time.perf_counter()
        await system.enqueue_concurrently(config.single_jobs, config.callers)
        seconds = time.perf_counter() - started
    finally:
        await system.teardown()
    return Enqueue(
        system=system.name, jobs=config.single_jobs, callers=config.callers, seconds=seconds,
        rate=config.single_jobs / seconds,
    )  # fmt: skip
