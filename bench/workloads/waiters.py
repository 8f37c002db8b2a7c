"""Waiters: thousands of clients waiting on one API process for their jobs to end.

On each jobhouse store, two fan-outs side by side, each on a fresh `jobhouse serve --no-workers`:

- long-polls: `LONG_POLLS` requests ``GET /api/jobs/{id}?wait=done&timeout_ms=120000``, `PER_JOB`
  on each of ``LONG_POLLS / PER_JOB`` queued no-op jobs;
- streams: `STREAMS` event streams ``GET /api/jobs/{id}/events``, `PER_JOB` on each of
  ``STREAMS / PER_JOB`` queued no-op jobs, each read until its job's terminal event.

Both are opened with plain asyncio sockets (not an HTTP library; on uvloop), so that the client
costs less than the server, in waves of `WAVE`, each once the server's ``/healthz`` counts the one
before. Once it counts them all, the workload records:

- memory: the growth of the server's resident memory (psutil) from before the first opened to
  when all are open;
- the store's work while they wait, over `IDLE` quiet seconds, next to the same window before any
  opened: on PostgreSQL the transactions of the run's own database (``pg_stat_database``,
  ``xact_commit + xact_rollback``; the run gets a database of its own so that nothing else is
  counted); on SQLite, which has no server to ask, the SQL statements the server process ran
  (`bench.apps.sqlite_counted` runs it with sqlite3's trace callback on every connection, leaving
  out the writer's ``PRAGMA data_version`` probe); and what opening cost per waiter, the same way;
- answers: then one ``jobhouse worker`` process starts and runs every job (they end within tens of
  milliseconds of each other); each answer's delay runs from its job's ``completedAt`` (stamped by
  the worker at commit, to the millisecond) to the arrival of the answer (the end of the
  long-poll's body, the stream's terminal frame): p50, p99 and max, and how long the last answer
  came after the last job ended; waiters that got no completed job are counted, with why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port
from bench.stats import percentile
from bench.workloads.http import HOST, SYSTEMS, _free_port

LONG_POLLS = 10_000
STREAMS = 5_000
#: Waiters on each job.
PER_JOB = 10
#: Quiet seconds over which the store's work is counted, with and without waiters.
IDLE = 10.0
QUICK = {"long_polls": 1_000, "streams": 500, "idle": 3.0}
APP = "bench.kinds:jobs"
#: Jobs at once in the worker process that runs them all once every waiter is open.
WORKER_CONCURRENCY = 50
WORKSPACE = "bench"
#: Waiters opened at once: each wave once the server holds the one before (see `_open`).
WAVE = 500
#: Seconds until PostgreSQL has counted an idle backend's transactions in ``pg_stat_database``.
PG_STATS_LAG = 11.0
#: How long a long-poll is asked to wait (the most the API takes), and how long anything may take.
TIMEOUT_MS = 120_000
DEADLINE = 150.0


@dataclass(frozen=True, slots=True)
class WaitersResult:
    system: str
    #: "long-poll" or "stream".
    kind: str
    waiters: int
    jobs: int
    open_seconds: float
    rss_before_mb: float
    rss_growth_mb: float
    #: What `store_work` counts: "transactions" (PostgreSQL) or "statements" (SQLite's server process).
    counted: str
    #: The count per second over `IDLE` seconds before any waiter opened, and while all wait; and the
    #: count while they opened, per waiter.
    store_work: dict[str, float]
    #: The server process's CPU (% of one core) while they wait.
    cpu_waiting_pct: float
    #: From each job's completion (its `completedAt`) to each answer's arrival, ms.
    answered_ms: dict[str, float] = field(default_factory=dict)
    #: From the first job's completion to the last's, and from the last completion to the last answer, ms.
    completions_span_ms: float = 0.0
    last_answer_ms: float = 0.0
    #: Waiters that got no completed job, and why: an error's status and code (e.g. "503
    #: STORE_UNAVAILABLE"), a long-poll's timeout ("still queued"), a lost connection ("no answer").
    missed: int = 0
    missed_why: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sizes(quick: bool) -> tuple[int, int, float]:
    """How many long-polls and streams, and how many quiet seconds, for a full or a quick run."""
    if quick:
        return int(QUICK["long_polls"]), int(QUICK["streams"]), float(QUICK["idle"])
    return LONG_POLLS, STREAMS, IDLE


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _raise_open_files() -> None:
    """Let this (client) process hold every waiter's socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the clients ------------------------------------------------------------------------------------

Arrival = tuple[float, int, bytes]  # when the answer arrived (time.time()), its HTTP status, what it said


async def _long_poll(host: str, port: int, request: bytes) -> Arrival | None:
    """One long-poll: the body of its answer once the whole of it has arrived."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            return time.time(), int(head.split(b" ", 2)[1]), body
        finally:
            writer.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


async def _stream(host: str, port: int, request: bytes) -> Arrival | None:
    """One event stream, read until its terminal frame (the first to carry a `completedAt`)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        try:
            while line := await reader.readline():
                if line.startswith(b"data: ") and b'"completedAt":"' in line:
                    return time.time(), 200, line[6:]
            return None
        finally:
            writer.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


def _completed_at(kind: str, arrival: Arrival | None) -> float | str:
    """The completion stamp of the job in an answer, or why there is none."""
    if arrival is None:
        return "no answer"
    _, status, body = arrival
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} (not JSON)"
    if status != 200:
        return f"{status} {data.get('error_code', '')}".strip()
    job = data["job"] if kind == "long-poll" else data
    if job.get("status") != "completed" or not job.get("completedAt"):
        return f"still {job.get('status')}"
    return _stamp(job["completedAt"])


# -- what the store does ----------------------------------------------------------------------------


class _Counter:
    """Reads a cumulative count of the store's work: PostgreSQL transactions of one database, or the
    SQL statements the (SQLite) server process ran, from the file `bench.apps.sqlite_counted` keeps."""

    def __init__(self, config: Config, database: str | None, pid: int, statements: Path) -> None:
        self.config = config
        self.database = database
        self.process = psutil.Process(pid)
        self.statements = statements
        self.what = "transactions" if database else "statements"
        #: PostgreSQL counts a backend's transactions when it flushes its statistics: at most once a
        #: second while busy, and up to 10 s after it went idle. Counts are read after that long.
        self.settle = PG_STATS_LAG if database else 0.0

    def read(self) -> int:
        if self.database is None:
            time.sleep(0.25)  # the file is rewritten every 0.1 s
            return int(self.statements.read_text() or 0)
        with psycopg.connect(self.config.pg_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (self.database,)
            ).fetchone()
        return int(row[0]) if row else 0

    async def rate(self, seconds: float) -> tuple[float, float]:
        """The count per second over the next `seconds`, and the server's CPU (% of a core) meanwhile."""
        before, cpu = await asyncio.to_thread(self.read), self.process.cpu_times()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        after, cpu_after = await asyncio.to_thread(self.read), self.process.cpu_times()
        elapsed = time.monotonic() - started
        used = (cpu_after.user + cpu_after.system) - (cpu.user + cpu.system)
        return (after - before) / elapsed, 100 * used / elapsed


# -- one fan-out ------------------------------------------------------------------------------------


Client = Callable[[str, int, bytes], Coroutine[Any, Any, Arrival | None]]
Tasks = list[asyncio.Task[Arrival | None]]


async def _open(
    http: httpx.AsyncClient, held: str, client: Client, host: str, port: int, requests: list[bytes], tasks: Tasks
) -> None:
    """Open the waiters `WAVE` at a time, each wave once the server's /healthz counts all before it
    (a waiter that already ended, on an error, counts too): never more than a wave of requests on
    their way in at once, so that what is measured is holding them, not a stampede of opening ones.
    The tasks go to `tasks` as they start."""
    deadline = time.monotonic() + DEADLINE
    for start in range(0, len(requests), WAVE):
        tasks += [asyncio.create_task(client(host, port, request)) for request in requests[start : start + WAVE]]
        while (await http.get("/healthz")).json()[held] + sum(task.done() for task in tasks) < len(tasks):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {len(requests)} waiters open after {DEADLINE}s")
            await asyncio.sleep(0.05)


async def _fan_out(
    kind: str, base: str, key: str, server_pid: int, counter: _Counter, waiters: int, idle: float,
    worker: Process,
) -> dict[str, Any]:  # fmt: skip
    host, port = base.removeprefix("http://").split(":")
    server = psutil.Process(server_pid)
    jobs_count = max(waiters // PER_JOB, 1)
    # A connection per request: uvicorn closes one idle for 5 s, which a request may meet on its way.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60, limits=fresh) as http:
        jobs: list[str] = []
        for _ in range(0, jobs_count, 50):
            made = await asyncio.gather(*(http.post("/api/jobs", json={"type": "noop"}) for _ in range(50)))
            jobs += [response.json()["job"]["id"] for response in made]
        jobs = jobs[:jobs_count]
        await asyncio.gather(*(http.get(f"/api/jobs/{job}") for job in jobs[:100]))  # warm
        await asyncio.sleep(max(1.0, counter.settle))

        quiet_rate, _ = await counter.rate(idle)
        rss_before = server.memory_info().rss
        opened_from = await asyncio.to_thread(counter.read)
        if kind == "long-poll":
            path, client, watching = "/api/jobs/{}?wait=done&timeout_ms=" + str(TIMEOUT_MS), _long_poll, "long_polls"
        else:
            path, client, watching = "/api/jobs/{}/events", _stream, "streams"
        requests = [f"GET {path.format(job)} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n\r\n".encode()
                    for job in jobs for _ in range(PER_JOB)][:waiters]  # fmt: skip
        started = time.perf_counter()
        tasks: Tasks = []
        try:
            await _open(http, watching, client, host, int(port), requests, tasks)
            open_seconds = time.perf_counter() - started
            await asyncio.sleep(1.0)  # let what opening left (buffers, tasks) settle
            rss_grown = server.memory_info().rss - rss_before
            await asyncio.sleep(counter.settle)
            opening_count = await asyncio.to_thread(counter.read) - opened_from
            waiting_rate, cpu = await counter.rate(idle)

            worker.start()
            try:
                done, pending = await asyncio.wait(tasks, timeout=DEADLINE)
            finally:
                worker.stop()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    delays: list[float] = []
    ends: list[float] = []
    arrivals: list[float] = []
    why: dict[str, int] = {"no answer": len(pending)} if pending else {}
    for task in done:
        arrival = task.result()
        completed = _completed_at(kind, arrival)
        if arrival is None or isinstance(completed, str):
            why[str(completed)] = why.get(str(completed), 0) + 1
            continue
        delays.append((arrival[0] - completed) * 1000)
        ends.append(completed)
        arrivals.append(arrival[0])
    delays.sort()
    summary: dict[str, float] = {"count": len(delays)}
    if delays:
        summary |= {"p50": round(percentile(delays, 50), 1), "p99": round(percentile(delays, 99), 1),
                    "max": round(delays[-1], 1)}  # fmt: skip
    return {
        "kind": kind,
        "waiters": len(tasks),
        "jobs": len(jobs),
        "open_seconds": round(open_seconds, 2),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_growth_mb": round(rss_grown / 2**20, 1),
        "counted": counter.what,
        "store_work": {
            "quiet_per_second": round(quiet_rate, 1),
            "waiting_per_second": round(waiting_rate, 1),
            "opening_per_waiter": round(opening_count / max(len(tasks), 1), 2),
        },
        "cpu_waiting_pct": round(cpu, 1),
        "answered_ms": summary,
        "completions_span_ms": round((max(ends) - min(ends)) * 1000, 1) if ends else 0.0,
        "last_answer_ms": round((max(arrivals) - max(ends)) * 1000, 1) if ends else 0.0,
        "missed": sum(why.values()),
        "missed_why": why,
    }


def _run_client(work: Awaitable[Any]) -> Any:
    """Run the clients on uvloop when it is installed (it is a pin of jobhouse's): the cheaper the
    client, the more of the two cores the server has."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(work)  # type: ignore[arg-type]
    return uvloop.run(work)  # type: ignore[arg-type]


def measure(config: Config, workdir: Path, store: str) -> list[WaitersResult]:
    """Both fan-outs on one store, each on a fresh server (same store); fewer waiters with `config.quick`."""
    long_polls, streams, idle = sizes(config.quick)
    _raise_open_files()
    database = f"bench_waiters_{config.run_id}_{secrets.token_hex(2)}" if store == "postgres" else None
    if database is None:
        url = f"sqlite:///{workdir / f'waiters-{config.run_id}.db'}"
    else:
        url = f"{config.pg_url().rsplit('/', 1)[0]}/{database}"
        with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
    env = {"JOBHOUSE_LOG_LEVEL": "warning", "JOBHOUSE_DATABASE_URL": url, "JOBHOUSE_SOURCES": "catalogs"}
    results = []
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", WORKSPACE], env).strip()
        for kind, count in (("long-poll", long_polls), ("stream", streams)):
            port = _free_port()
            statements = workdir / f"waiters-{store}-{kind}.statements"
            argv = ["serve", "--no-workers", "--app", APP, "--host", HOST, "--port", str(port)]
            if database is None:  # count the statements the server runs
                argv = [sys.executable, "-m", "bench.apps.sqlite_counted", str(statements), *argv]
            else:
                argv = [tool("jobhouse"), *argv]
            worker_argv = [tool("jobhouse"), "worker", "--app", APP, "--concurrency", str(WORKER_CONCURRENCY)]
            worker = Process("jobhouse worker", worker_argv, env, workdir / f"waiters-{store}-{kind}-worker.log")
            with Process("jobhouse serve", argv, env, workdir / f"waiters-{store}-{kind}.log") as server:
                wait_for_port(HOST, port, process=server)
                counter = _Counter(config, database, server.pid, statements)
                row = _run_client(
                    _fan_out(kind, f"http://{HOST}:{port}", key, server.pid, counter, count, idle, worker)
                )
                server.check()
            results.append(WaitersResult(system=SYSTEMS[store], **row))
        return results
    finally:
        if database is not None:
            with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        else:
            db = workdir / f"waiters-{config.run_id}.db"
            for suffix in ("", "-wal", "-shm"):
                db.with_name(db.name + suffix).unlink(missing_ok=True)


def plot(rows: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Two charts: when the waiters heard their jobs end (p50, p99, max), and what they cost in memory."""
    from bench import plots

    if not rows:
        return []
    labels = [f"{row['system']}, {row['waiters']:,} {row['kind']}s" for row in rows]
    answered = [row["answered_ms"] for row in rows]
    times = plots.grouped_bar_chart(
        directory / "bench-waiters-answers.png",
        "Waiters on one API process: job completion to answer (lower is better)",
        labels,
        {name: [summary.get(name) for summary in answered] for name in ("p50", "p99", "max")},
        "ms",
        marks={"goal 1 s": 1000.0},
    )
    memory = plots.bar_chart(
        directory / "bench-waiters-memory.png",
        "Waiters on one API process: growth of its resident memory (lower is better)",
        labels,
        [row["rss_growth_mb"] for row in rows],
        "MB",
        marks={"goal, 10,000 long-polls": 150.0},
    )
    return [times, memory]
