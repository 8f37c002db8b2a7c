"""rq's task: enqueued by its dotted path, run by ``rq worker``."""

from __future__ import annotations


def noop() -> None:
    return None
