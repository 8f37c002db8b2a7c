"""What one benchmark run is configured with, shared by every workload and system."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Config:
    #: Jobs enqueued in bulk and then drained, per drain run.
    jobs: int = 20_000
    #: Worker processes per system, and jobs at once in each.
    processes: int = 2
    concurrency: int = 10
    #: Jobs enqueued one at a time by `callers` concurrent callers, per enqueue run.
    single_jobs: int = 10_000
    callers: int = 50
    #: Jobs enqueued one after another, each after a random pause of up to `latency_gap` seconds.
    latency_samples: int = 200
    latency_gap: float = 0.05
    #: Runs of each queue workload per system; the tables show the medians.
    repeat: int = 3
    #: Seconds to wait for the machine to go quiet before each measurement.
    quiet_patience: float = 120.0
    time_limit: float = 300.0
    batch: int = 1000
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    #: The Redis database every Redis-backed system uses (it must be empty; flushed after each run).
    redis_db: int = 15
    pg_dsn: str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    http_duration: int = 10
    http_connections: int = 32
    http_threads: int = 2
    quick: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    def redis_url(self, db: int | None = None) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db if db is None else db}"

    def pg_schema(self, system: str) -> str:
        """A fresh schema name for one system's run; dropped at teardown."""
        return f"bench_{system.replace('-', '_')}_{self.run_id}_{secrets.token_hex(2)}"

    def pg_url(self) -> str:
        """The same database as a URL (jobhouse takes URLs)."""
        parts = self.pg_parts()
        user, host = parts.get("user", "postgres"), parts.get("host", "127.0.0.1")
        return f"postgresql://{user}@{host}:{parts.get('port', '5432')}/{parts.get('dbname', 'postgres')}"

    def pg_parts(self) -> dict[str, str]:
        """The conninfo's ``key=value`` pairs."""
        return dict(part.split("=", 1) for part in self.pg_dsn.split())


#: What ``--quick`` changes (options given explicitly still win): the queue workloads in a few minutes.
QUICK: dict[str, int | float] = {
    "jobs": 5_000,
    "single_jobs": 1_000,
    "latency_samples": 50,
    "repeat": 1,
    "quiet_patience": 15.0,
    "http_duration": 3,
}
