"""What the numbers were measured on: the machine, the services and the package versions."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import re
import subprocess
import time
from typing import Any, cast

import psycopg
import redis

from bench.config import ROOT, Config


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


def _git() -> dict[str, Any]:
    """The commit measured, and whether jobhouse's source had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"), "src_changed": bool(git("status", "--porcelain", "src"))}


def describe(config: Config, packages: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in packages},
        "git": _git(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        with psycopg.connect(config.pg_dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    except psycopg.Error as exc:
        info["postgresql"] = f"unreachable ({exc})"
    try:
        client = redis.Redis(config.redis_host, config.redis_port, socket_connect_timeout=5)
        info["redis"] = cast("dict[str, Any]", client.info("server"))["redis_version"]
        client.close()
    except redis.RedisError as exc:
        info["redis"] = f"unreachable ({exc})"
    return info


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def cpu_busy(interval: float = 1.0) -> float:
    """The fraction of all CPUs busy over the next `interval` seconds (Linux)."""
    busy0, total0 = _cpu_times()
    await asyncio.sleep(interval)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / max(total1 - total0, 1)


async def wait_quiet(threshold: float = 0.2, patience: float = 120.0) -> float:
    """Wait (up to `patience` seconds) until the machine is mostly idle; how busy it was at the end."""
    deadline = time.monotonic() + patience
    busy = await cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = await cpu_busy()
    return busy
