"""HTTP: jobhouse's API under wrk, next to a hello-world route on the same server stack.

The ceiling is `bench.apps.hello`: a bare Starlette route returning a small JSON body, served by
uvicorn with uvloop and httptools (what `jobhouse serve` runs on) in a process of its own. Then,
on each jobhouse store, one `jobhouse serve --no-workers`: ``GET /healthz`` (no key, no store),
``GET /api/jobs/{id}`` (one existing job) and ``POST /api/jobs`` (a new queued no-op job per
request). Every route gets the same `wrk -t2 -c32 --latency`, on the same cores as the server; each
jobhouse row carries its rate as a fraction of hello-world's. Peers have no HTTP API, so these are
absolute numbers.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port

HOST = "127.0.0.1"
HELLO = "hello-world"
#: What each jobhouse store's rows are called (the system names of `--systems`).
SYSTEMS = {"sqlite": "jobhouse-sqlite", "postgres": "jobhouse-pg"}


@dataclass(frozen=True, slots=True)
class HttpResult:
    endpoint: str
    requests_per_second: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency_ms: dict[str, float] = field(default_factory=dict)
    #: `hello-world`, `jobhouse-sqlite` or `jobhouse-pg`.
    system: str = "jobhouse-sqlite"
    #: This row's rate over hello-world's (None for hello-world itself, or when it was not measured).
    of_hello: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(endpoint: str, output: str) -> HttpResult:
    """The numbers from `wrk --latency` output."""
    latency: dict[str, float] = {}
    avg = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    if avg:
        latency["avg"] = _ms(avg[1])
        latency["max"] = _ms(avg[3])
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", output, re.M):
        latency[f"p{pct}"] = _ms(value)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not rate or not total:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return HttpResult(
        endpoint=endpoint,
        requests_per_second=float(rate[1]),
        requests=int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        latency_ms=latency,
    )


def _wrk(config: Config, url: str, script: Path | None = None) -> str:
    threads, connections, duration = config.http_threads, config.http_connections, config.http_duration
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    return run([*argv, url], timeout=config.http_duration + 60)


def _script(path: Path, key: str, body: str | None) -> Path:
    lines = [f'wrk.headers["X-API-Key"] = "{key}"']
    if body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = '{body}'", 'wrk.headers["Content-Type"] = "application/json"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _measured(system: str, endpoint: str, output: str) -> HttpResult:
    return replace(parse_wrk(endpoint, output), system=system)


def hello_world(config: Config, workdir: Path) -> HttpResult:
    """wrk on `bench.apps.hello`, in a process of its own."""
    port = _free_port()
    argv = [sys.executable, "-m", "bench.apps.hello", "--host", HOST, "--port", str(port)]
    with Process("hello-world", argv, {}, workdir / "hello-world.log") as server:
        wait_for_port(HOST, port, process=server)
        result = _measured(HELLO, "GET /hello", _wrk(config, f"http://{HOST}:{port}/hello"))
        server.check()
    return result


def routes(config: Config, workdir: Path, store: str, hello: HttpResult | None = None) -> list[HttpResult]:
    """wrk on `/healthz`, one job's GET and POST /api/jobs, on one `jobhouse serve --no-workers`; each
    row with its share of `hello`'s rate."""
    system = SYSTEMS[store]
    schema = config.pg_schema("http")
    db = workdir / f"http-{config.run_id}.db"
    url = f"sqlite:///{db}" if store == "sqlite" else f"{config.pg_url()}?schema={schema}"
    env = {"JOBHOUSE_LOG_LEVEL": "warning", "JOBHOUSE_SOURCES": "catalogs"}
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", "bench", "--database", url], env).strip()
        port = _free_port()
        argv = [tool("jobhouse"), "serve", "--no-workers", "--app", "bench.kinds:jobs", "--database", url,
                "--host", HOST, "--port", str(port)]  # fmt: skip
        with Process("jobhouse serve", argv, env, workdir / f"http-{store}.log") as server:
            wait_for_port(HOST, port, process=server)
            base = f"http://{HOST}:{port}"
            request = urllib.request.Request(
                f"{base}/api/jobs",
                data=b'{"type": "noop"}',
                headers={"X-API-Key": key, "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                job_id = json.load(response)["job"]["id"]
            get, post = _script(workdir / "get.lua", key, None), _script(workdir / "post.lua", key, '{"type":"noop"}')
            results = [
                _measured(system, "GET /healthz", _wrk(config, f"{base}/healthz")),
                _measured(system, "GET /api/jobs/{id}", _wrk(config, f"{base}/api/jobs/{job_id}", get)),
                _measured(system, "POST /api/jobs", _wrk(config, f"{base}/api/jobs", post)),
            ]
            server.check()
        ceiling = hello.requests_per_second if hello else 0.0
        return [replace(r, of_hello=r.requests_per_second / ceiling if ceiling else None) for r in results]
    finally:
        if store == "postgres":
            with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)


def measure(config: Config, workdir: Path, stores: list[str] | tuple[str, ...] = ("sqlite",)) -> list[HttpResult]:
    """The hello-world ceiling first, then each store's routes (`python -m bench` runs them one by one)."""
    hello = hello_world(config, workdir)
    return [hello, *(result for store in stores for result in routes(config, workdir, store, hello))]


def plot(rows: list[dict[str, Any]], directory: Path) -> list[Path]:
    """One chart: every route's req/s, hello-world's first, with 60 % of it and the creates goal marked."""
    from bench import plots

    if not rows:
        return []
    hello = next((row["requests_per_second"] for row in rows if row.get("system") == HELLO), None)
    marks = {"creates goal 3,000/s": 3000.0}
    if hello:
        marks["60% of hello-world"] = 0.6 * hello
    labels = [f"{row.get('system', SYSTEMS['sqlite'])} {row['endpoint']}" for row in rows]
    path = plots.bar_chart(
        directory / "bench-http.png",
        "HTTP: one server process, wrk -t2 -c32 on the same cores (higher is better)",
        labels,
        [row["requests_per_second"] for row in rows],
        "req/s",
        marks=marks,
    )
    return [path]
