"""What one benchmark run is configured with, shared by every workload and system."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Config:
    jobs: int = 20_000
    concurrency: int = 50
    latency_samples: int = 200
    time_limit: float = 300.0
    batch: int = 1000
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    #: The Redis database every Redis-backed system uses (flushed before and after each run).
    redis_db: int = 15
    #: Celery's result backend (its completion record) lives in this database.
    redis_results_db: int = 14
    pg_dsn: str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    http_duration: int = 10
    http_connections: int = 32
    http_threads: int = 2
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    def redis_url(self, db: int | None = None) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db if db is None else db}"

    def pg_schema(self, system: str) -> str:
        """A fresh schema name for one system's run; dropped at teardown."""
        return f"bench_{system.replace('-', '_')}_{self.run_id}_{secrets.token_hex(2)}"

    def pg_url(self) -> str:
        """The same database as a URL (jobhouse takes URLs)."""
        parts = dict(part.split("=", 1) for part in self.pg_dsn.split())
        user, host = parts.get("user", "postgres"), parts.get("host", "127.0.0.1")
        return f"postgresql://{user}@{host}:{parts.get('port', '5432')}/{parts.get('dbname', 'postgres')}"
