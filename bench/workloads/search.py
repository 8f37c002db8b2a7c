"""Search: 100,000 candidates indexed, the time of a full sync, and synchronous search latency.

The candidates are this machine's real Debian package lists (tens of thousands of programs, where
apt has lists) plus a generated catalog file that brings the total to `TOTAL`. A `jobhouse serve`
on each store syncs every source in one `source-sync` job, then wrk drives `POST
/api/v1/run/search` with a rotating mix of queries (exact names, prefixes, words, typos, filters)
from 1 and from 16 connections. No peer has a search, so the numbers are absolute.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port
from bench.workloads.http import HOST, _free_port, parse_wrk

TOTAL = 100_000
SYLLABLES = ["ka", "lo", "mir", "tex", "pro", "vi", "zen", "qua", "dro", "fi", "nex", "ul", "sa", "tor", "em"]
SUFFIXES = ["", " Studio", " Viewer", " Tools", " Editor", " Player", " Manager", "-cli", " Pro"]
QUERIES: list[dict[str, Any]] = [
    {"app": "firefox", "os": "linux", "kind": "gui"},
    {"app": "python3"},
    {"app": "vim", "kind": "cli"},
    {"app": "htop"},
    {"app": "lib"},
    {"app": "gnome"},
    {"app": "firefx"},
    {"app": "pyhton3"},
    {"app": "thunderbrid"},
    {"app": "browser"},
    {"app": "editor", "limit": 100},
    {"app": "safari", "os": "macos"},
    {"app": "ka", "os": "windows"},
    {"app": "kalomir"},
    {"app": "tex studio"},
    {"app": "zenpro", "limit": 10},
    {"app": "gimp", "version": "2"},
    {"app": "node", "kind": "cli", "os": "linux"},
    {"app": "viewer", "os": "macos", "kind": "gui"},
    {"app": "qqqqzz"},
]


@dataclass(frozen=True, slots=True)
class SearchResult:
    system: str
    candidates: int
    sync_seconds: float
    first_search_ms: float
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generated_catalog(path: Path, count: int, seed: int = 20261124) -> Path:
    """A catalog file of `count` made-up applications across the three systems."""
    rng = random.Random(seed)
    apps, seen = [], set()
    while len(apps) < count:
        app = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))
        system = rng.choice(["linux", "macos", "windows"])
        if (app, system) in seen:
            continue
        seen.add((app, system))
        entry = {
            "app": app,
            "name": app.capitalize() + rng.choice(SUFFIXES),
            "os": system,
            "kind": rng.choice(["gui", "cli"]),
            "version": f"{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        }
        apps.append(entry)
    path.write_text(json.dumps({"apps": apps}))
    return path


def _post(base: str, key: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        result: dict[str, Any] = json.load(response)
        return result


def _get(base: str, key: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}{path}", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=600) as response:
        result: dict[str, Any] = json.load(response)
        return result


def _script(path: Path, key: str) -> Path:
    bodies = ",\n".join("  " + json.dumps(json.dumps(query)) for query in QUERIES)
    path.write_text(
        f"local bodies = {{\n{bodies}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        f'  return wrk.format("POST", "/api/v1/run/search", {{["X-API-Key"] = "{key}",'
        ' ["Content-Type"] = "application/json"}, bodies[i])\n'
        "end\n"
    )
    return path


def measure(config: Config, workdir: Path, store: str) -> SearchResult:
    """One store ("sqlite" or "postgres"): sync everything, then search from 1 and 16 connections."""
    apt = _apt_count()
    catalog = generated_catalog(workdir / "generated.json", max(TOTAL - apt, 0))
    schema = config.pg_schema("search")
    database = (
        f"sqlite:///{workdir / f'search-{config.run_id}.db'}"
        if store == "sqlite"
        else (f"{config.pg_url()}?schema={schema}")
    )
    env = {
        "JOBHOUSE_LOG_LEVEL": "warning",
        "JOBHOUSE_SOURCES": "apt,catalogs",
        "JOBHOUSE_CATALOGS": str(catalog),
        "JOBHOUSE_DATABASE_URL": database,
    }
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", "bench"], env).strip()
        port = _free_port()
        argv = [tool("jobhouse"), "serve", "--host", HOST, "--port", str(port), "--concurrency", "2"]
        with Process("jobhouse serve", argv, env, workdir / f"search-{store}.log") as server:
            wait_for_port(HOST, port, process=server)
            base = f"http://{HOST}:{port}"
            started = time.perf_counter()
            job = _post(base, key, "/api/v1/run/sources/sync")
            done = _get(base, key, f"/api/v1/run/jobs/{job['job_id']}?wait=done&timeout_ms=120000")
            sync_seconds = time.perf_counter() - started
            if done["status"] != "done":
                raise RuntimeError(f"the sync ended {done['status']}: {done.get('error')}")
            indexed = sum(source["candidates"] for source in done["result"]["sources"].values())
            started = time.perf_counter()
            _post(base, key, "/api/v1/run/search", {"app": "firefox"})  # builds this process's index
            first_ms = (time.perf_counter() - started) * 1000
            runs = []
            for threads, connections in ((1, 1), (2, 16)):
                output = run(
                    ["wrk", f"-t{threads}", f"-c{connections}", f"-d{config.http_duration}s", "--latency",
                     "-s", str(_script(workdir / "search.lua", key)), base],
                    timeout=config.http_duration + 60,
                )  # fmt: skip
                measured = parse_wrk(f"search c={connections}", output)
                runs.append({"connections": connections, **measured.to_dict()})
            server.check()
        return SearchResult(f"jobhouse-{store}", indexed, round(sync_seconds, 2), round(first_ms, 1), runs)
    finally:
        if store == "postgres":
            with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _apt_count() -> int:
    """How many programs this machine's apt lists hold (the generated catalog makes up the rest)."""
    from jobhouse.sources import AptSource

    return len(AptSource().scan())
