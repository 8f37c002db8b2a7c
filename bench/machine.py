"""What the numbers were measured on: the machine, the services and the package versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from typing import Any

import psycopg
import redis

from bench.config import Config


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    match = re.search(r"^Model name:\s+(.+)$", out, re.M)
    return match[1].strip() if match else platform.processor()


def _memory_gib() -> float:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return round(pages / 2**30, 1)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(config: Config, packages: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in packages},
    }
    try:
        with psycopg.connect(config.pg_dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    except psycopg.Error as exc:
        info["postgresql"] = f"unreachable ({exc})"
    try:
        client = redis.Redis(config.redis_host, config.redis_port, socket_connect_timeout=5)
        info["redis"] = client.info("server")["redis_version"]
        client.close()
    except redis.RedisError as exc:
        info["redis"] = f"unreachable ({exc})"
    return info
