"""Events: how soon a watcher sees a change.

On each store, a `jobhouse serve` with workers runs the example `collect` kind (four steps):

- step latency: `JOBS` jobs (`QUICK_JOBS` with ``--quick``) one after another, each watched from
  its creation on its event stream; for every event that arrives after the stream is open, the
  delay from the change's commit (``updatedAt``, stamped by the writing process) to its arrival;
  p50/p99 over all of them, and for the terminal events alone next to the same jobs' long-polls
  (``?wait=done``, measured the same way from ``completedAt``);
- across nodes (PostgreSQL only): two API nodes without workers and one worker process; the job is
  created on the first node and watched on the second.

What thousands of open streams and long-polls cost one process is the `waiters` workload's.

Timestamps are to the millisecond, so each delay is ±1 ms. No peer has event streams; the numbers
are absolute (the latency workload compares how soon each system's clients see a job end).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port
from bench.stats import percentile
from bench.workloads.http import HOST, SYSTEMS, _free_port

JOBS = 30
#: Jobs watched with ``--quick``.
QUICK_JOBS = 10
APP = "examples.battlecard:jobs"


@dataclass(frozen=True, slots=True)
class EventsResult:
    system: str
    step_latency_ms: dict[str, float]
    terminal_latency_ms: dict[str, float]
    long_poll_latency_ms: dict[str, float]
    cross_node_latency_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"count": 0}
    return {"count": len(ordered), "p50": round(percentile(ordered, 50), 2), "p99": round(percentile(ordered, 99), 2),
            "max": round(ordered[-1], 2)}  # fmt: skip


async def _watch(watcher: httpx.AsyncClient, path: str) -> tuple[list[float], float | None]:
    """Follow one job's stream to its end: the delays (ms) of the events that came live, and the
    terminal one's."""
    opened = time.time()
    delays: list[float] = []
    terminal = None
    data: dict[str, Any] = {}
    async with watcher.stream("GET", path) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data:
                arrived = time.time()
                changed = _stamp(data["updatedAt"])
                if changed >= opened:
                    delays.append((arrived - changed) * 1000)
                if data.get("completedAt") is not None:
                    terminal = (arrived - _stamp(data["completedAt"])) * 1000
                data = {}
    return delays, terminal


async def _jobs_watched(creator: httpx.AsyncClient, watcher: httpx.AsyncClient, count: int) -> dict[str, Any]:
    steps: list[float] = []
    terminals: list[float] = []
    polls: list[float] = []
    for _ in range(count):
        created = await creator.post("/api/jobs", json={"type": "collect", "input": {"seconds_per_step": 0.05}})
        job = created.json()["job"]["id"]
        poll = asyncio.create_task(watcher.get(f"/api/jobs/{job}", params={"wait": "done", "timeout_ms": 60000}))
        delays, terminal = await _watch(watcher, f"/api/jobs/{job}/events")
        answered = await poll
        polled = time.time()
        steps.extend(delays)
        if terminal is not None:
            terminals.append(terminal)
        polls.append((polled - _stamp(answered.json()["job"]["completedAt"])) * 1000)
    return {"steps": _summary(steps), "terminal": _summary(terminals), "long_poll": _summary(polls)}


def measure(config: Config, workdir: Path, store: str) -> EventsResult:
    schema = config.pg_schema("events")
    if store == "sqlite":
        database = f"sqlite:///{workdir / f'events-{config.run_id}.db'}"
    else:
        database = f"{config.pg_url()}?schema={schema}"
    env = {"JOBHOUSE_LOG_LEVEL": "warning", "JOBHOUSE_DATABASE_URL": database, "JOBHOUSE_SOURCES": "catalogs"}
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", "bench"], env).strip()
        count = jobs_watched(config)
        watched = _serve(workdir, store, env, ["--concurrency", "4"], lambda url, _: _both(url, url, key, count))
        cross: dict[str, Any] = {}
        if store == "postgres":
            cross = _across_nodes(workdir, env, key, count)
        return EventsResult(SYSTEMS[store], watched["steps"], watched["terminal"], watched["long_poll"], cross)
    finally:
        if store == "postgres":
            with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def jobs_watched(config: Config) -> int:
    return QUICK_JOBS if config.quick else JOBS


async def _both(creator_url: str, watcher_url: str, key: str, count: int) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    async with (
        httpx.AsyncClient(base_url=creator_url, headers=headers, timeout=120) as creator,
        httpx.AsyncClient(base_url=watcher_url, headers=headers, timeout=120) as watcher,
    ):
        return await _jobs_watched(creator, watcher, count)


def _serve(workdir: Path, name: str, env: dict[str, str], args: list[str], work: Any) -> Any:
    port = _free_port()
    argv = [tool("jobhouse"), "serve", "--host", HOST, "--port", str(port), "--app", APP, *args]
    with Process("jobhouse serve", argv, env, workdir / f"events-{name}-{port}.log") as server:
        wait_for_port(HOST, port, process=server)
        result = asyncio.run(work(f"http://{HOST}:{port}", server.pid))
        server.check()
        return result


def _across_nodes(workdir: Path, env: dict[str, str], key: str, count: int) -> dict[str, Any]:
    ports = [_free_port(), _free_port()]
    nodes = [
        Process(
            "jobhouse serve",
            [tool("jobhouse"), "serve", "--host", HOST, "--port", str(p), "--app", APP, "--no-workers"],
            env,
            workdir / f"events-node-{p}.log",
        )
        for p in ports
    ]
    worker = Process("jobhouse worker", [tool("jobhouse"), "worker", "--app", APP], env, workdir / "events-worker.log")
    with nodes[0], nodes[1], worker:
        for port, node in zip(ports, nodes, strict=True):
            wait_for_port(HOST, port, process=node)
        first, second = (f"http://{HOST}:{port}" for port in ports)
        result: dict[str, Any] = asyncio.run(_both(first, second, key, count))
    return result
