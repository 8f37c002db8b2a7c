"""CPU time spent during a measurement by the worker processes and by the store that serves them.

- *worker*: every worker process started for the measurement and its children (psutil);
- *store*, on PostgreSQL: the server processes (backends) whose connections come from those worker
  processes, found by matching the workers' TCP connections to ``pg_stat_activity.client_port``;
- *store*, on Redis: the whole ``redis-server`` (``INFO cpu``), which serves nothing else of the
  benchmark's (the jobs record themselves in a Redis of their own, `bench.recorder`);
- *store*, on SQLite: none apart; the store runs inside the worker processes, so its cost is theirs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil
import psycopg
import redis

from bench.procs import Process
from bench.systems.base import System


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds (user + system) so far, per process id, and the Redis server's total."""

    workers: dict[int, float]
    backends: dict[int, float]
    redis_seconds: float | None


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _tree(roots: Sequence[Process]) -> list[psutil.Process]:
    found = []
    for root in roots:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(root.pid)
            found += [parent, *parent.children(recursive=True)]
    return found


def _cpu_by_pid(processes: Sequence[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            seconds[process.pid] = _cpu(process)
    return seconds


class CpuMeter:
    """Takes snapshots of the CPU time of `workers` and of `system`'s store; `close` when done."""

    def __init__(self, system: System, workers: Sequence[Process]) -> None:
        self.system = system
        self.workers = list(workers)
        self._pg: psycopg.Connection[Any] | None = None
        self._redis: redis.Redis | None = None
        config = system.config
        if system.store_kind == "postgres":
            self._pg = psycopg.connect(config.pg_dsn, autocommit=True)
            self._pg_port = int(config.pg_parts().get("port", "5432"))
        elif system.store_kind == "redis":
            self._redis = redis.Redis(config.redis_host, config.redis_port)

    def snapshot(self) -> CpuSnapshot:
        tree = _tree(self.workers)
        return CpuSnapshot(
            workers=_cpu_by_pid(tree),
            backends=self._backends(tree) if self._pg is not None else {},
            redis_seconds=self._redis_seconds(),
        )

    def _backends(self, tree: Sequence[psutil.Process]) -> dict[int, float]:
        assert self._pg is not None
        ports = set()
        for process in tree:
            with contextlib.suppress(psutil.Error):
                for conn in process.net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == self._pg_port:
                        ports.add(conn.laddr.port)
        if not ports:
            return {}
        rows = self._pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (sorted(ports),)
        ).fetchall()
        backends = []
        for (pid,) in rows:
            with contextlib.suppress(psutil.Error):
                backends.append(psutil.Process(pid))
        return _cpu_by_pid(backends)

    def _redis_seconds(self) -> float | None:
        if self._redis is None:
            return None
        info: dict[str, Any] = self._redis.info("cpu")  # type: ignore[assignment]
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._redis is not None:
            self._redis.close()

    def spent(self, start: CpuSnapshot, end: CpuSnapshot) -> tuple[float, float | None]:
        """Worker and store CPU seconds between two snapshots (store None on SQLite).

        A process first seen in `end` counts from zero: it started during the measurement.
        """
        workers = sum(seconds - start.workers.get(pid, 0.0) for pid, seconds in end.workers.items())
        if self.system.store_kind == "postgres":
            store: float | None = sum(seconds - start.backends.get(pid, 0.0) for pid, seconds in end.backends.items())
        elif start.redis_seconds is not None and end.redis_seconds is not None:
            store = end.redis_seconds - start.redis_seconds
        else:
            store = None
        return workers, store
