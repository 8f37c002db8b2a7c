"""rq's task: enqueued by its dotted path, run by ``rq worker``."""

from __future__ import annotations

from bench.recorder import record as _record


def record(t: float) -> None:
    _record(t)
