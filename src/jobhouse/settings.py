"""Settings: one frozen dataclass, read from ``JOBHOUSE_*`` environment variables and CLI flags.

=============================  ============================  ================================
setting                        environment variable          default
=============================  ============================  ================================
database                       JOBHOUSE_DATABASE_URL         sqlite:///jobhouse.db
                                                             or postgresql://host/db
host, port                     JOBHOUSE_HOST, JOBHOUSE_PORT  127.0.0.1, 8000
concurrency (0: no workers)    JOBHOUSE_CONCURRENCY          16
lease                          JOBHOUSE_LEASE                30 s
heartbeat                      JOBHOUSE_HEARTBEAT            5 s
poll_interval                  JOBHOUSE_POLL_INTERVAL        1 s
rescue_interval                JOBHOUSE_RESCUE_INTERVAL      1 s
refresh_interval               JOBHOUSE_REFRESH_INTERVAL     1 s
shutdown_grace                 JOBHOUSE_SHUTDOWN_GRACE       10 s
cancel_grace                   JOBHOUSE_CANCEL_GRACE         0.5 s
max_body                       JOBHOUSE_MAX_BODY             1048576 bytes
pool_size (PostgreSQL)         JOBHOUSE_POOL_SIZE            10 connections
store_timeout                  JOBHOUSE_STORE_TIMEOUT        5 s
max_queued (per workspace)     JOBHOUSE_MAX_QUEUED           0 (no quota)
idempotency_ttl                JOBHOUSE_IDEMPOTENCY_TTL      86400 s
retain_completed               JOBHOUSE_RETAIN_COMPLETED     604800 s (7 days; 0 keeps forever)
retain_failed                  JOBHOUSE_RETAIN_FAILED        2592000 s (30 days)
retain_cancelled               JOBHOUSE_RETAIN_CANCELLED     604800 s (7 days)
prune_interval                 JOBHOUSE_PRUNE_INTERVAL       60 s
apps                           JOBHOUSE_APP (comma list)     none
sources                        JOBHOUSE_SOURCES (comma list) path,desktop,dpkg,apt,catalogs
catalogs                       JOBHOUSE_CATALOGS (comma)     the shipped well-known.yaml
apt_lists                      JOBHOUSE_APT_LISTS            /var/lib/apt/lists
dpkg_dir                       JOBHOUSE_DPKG_DIR             /var/lib/dpkg
scan_workers                   JOBHOUSE_SCAN_WORKERS         2 (0: read sources on a thread)
=============================  ============================  ================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobhouse.job import JobStatus
from jobhouse.retry import Backoff
from jobhouse.sources import BUILT_IN, WELL_KNOWN
from jobhouse.worker import WorkerOptions


@dataclass(frozen=True, slots=True)
class Settings:
    database: str = "sqlite:///jobhouse.db"
    host: str = "127.0.0.1"
    port: int = 8000
    concurrency: int = 16
    lease: float = 30.0
    heartbeat: float = 5.0
    poll_interval: float = 1.0
    rescue_interval: float = 1.0
    refresh_interval: float = 1.0
    shutdown_grace: float = 10.0
    cancel_grace: float = 0.5
    max_body: int = 1024 * 1024
    pool_size: int = 10
    store_timeout: float = 5.0
    max_queued: int = 0
    idempotency_ttl: float = 24 * 3600.0
    retain_completed: float = 7 * 24 * 3600.0
    retain_failed: float = 30 * 24 * 3600.0
    retain_cancelled: float = 7 * 24 * 3600.0
    prune_interval: float = 60.0
    apps: tuple[str, ...] = ()
    sources: tuple[str, ...] = BUILT_IN
    catalogs: tuple[str, ...] = (WELL_KNOWN,)
    apt_lists: str = "/var/lib/apt/lists"
    dpkg_dir: str = "/var/lib/dpkg"
    scan_workers: int = 2
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then the environment, then `overrides` (CLI flags; None means not given)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            env = "JOBHOUSE_DATABASE_URL" if field.name == "database" else f"JOBHOUSE_{field.name.upper()}"
            if field.name == "apps":
                env = "JOBHOUSE_APP"
            raw = environ.get(env)
            if raw:
                values[field.name] = _convert(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None and v != ()})
        return cls(**values)

    def retention(self) -> dict[JobStatus, float]:
        """Seconds each finished status is kept after the job ends (0: forever)."""
        return {
            JobStatus.COMPLETED: self.retain_completed,
            JobStatus.FAILED: self.retain_failed,
            JobStatus.CANCELLED: self.retain_cancelled,
        }

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            concurrency=max(self.concurrency, 1),
            lease=self.lease,
            heartbeat=self.heartbeat,
            poll_interval=self.poll_interval,
            shutdown_grace=self.shutdown_grace,
            cancel_grace=self.cancel_grace,
            backoff=Backoff(),
        )


def _convert(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError:
        raise ValueError(f"environment setting for {name} must be a number, not {raw!r}") from None
    if kind in ("tuple[str, ...]", tuple[str, ...]):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
