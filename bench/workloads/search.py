"""Search: how right and how fast, on the machine the benchmark runs on.

A `jobhouse serve` on each store reads this machine's own sources (programs on PATH, desktop
entries, dpkg's records, apt's lists, the shipped catalog) and syncs them all in one
`source-sync` job (timed). Then:

- relevance: the judgement set of `bench.relevance`, made from this machine's facts, through
  ``POST /api/v1/run/search``: precision@1 and recall@3, by category;
- latency: 300 mixed queries one after another (names, typos, prefixes, desktop names, filters),
  p50/p99 as the client sees them, on a quiet server and again while a second full sync runs and
  in the first second after it ends (searches answer from the old index until the new one is
  swapped in);
- throughput: wrk at 1 and 16 connections over the same mix, with a generated catalog bringing
  the index to `TOTAL` candidates.

No peer has a search, so the numbers are absolute.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.config import Config
from bench.procs import Process, run, tool, wait_for_port
from bench.relevance import Judgement, Query, judge, queries
from bench.stats import percentile
from bench.workloads.http import HOST, _free_port, parse_wrk
from jobhouse.sources import configured_sources
from jobhouse.sources.catalog_file import WELL_KNOWN

TOTAL = 100_000
MIXED = 300
SYLLABLES = ["ka", "lo", "mir", "tex", "pro", "vi", "zen", "qua", "dro", "fi", "nex", "ul", "sa", "tor", "em"]
SUFFIXES = ["", " Studio", " Viewer", " Tools", " Editor", " Player", " Manager", "-cli", " Pro"]
EXTRA: list[dict[str, Any]] = [
    {"app": "firefox", "os": "linux", "kind": "gui"},
    {"app": "python3"},
    {"app": "vim", "kind": "gui"},
    {"app": "a"},
    {"app": "lib"},
    {"app": "chrom"},
    {"app": "code"},
    {"app": "browser"},
    {"app": "editor", "limit": 100},
    {"app": "safari", "os": "macos"},
    {"app": "gimp", "version": "2"},
    {"app": "qqqqzz"},
]


@dataclass(frozen=True, slots=True)
class SearchResult:
    system: str
    candidates: int
    sync_seconds: float
    relevance: dict[str, Any]
    latency: dict[str, Any]
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
        kind = rng.choice(["gui", "cli"])
        name = app.capitalize() + rng.choice(SUFFIXES)
        apps.append({"app": app, "name": name, "os": system, "kind": kind, "version": f"{rng.randint(0, 30)}.1"})
    path.write_text(json.dumps({"apps": apps}))
    return path


class Client:
    """One keep-alive connection to a jobhouse server, timing each call."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=600)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        self.connection.request(method, path, json.dumps(body) if body is not None else None, self.headers)
        response = self.connection.getresponse()
        data = json.loads(response.read())
        elapsed = (time.perf_counter() - started) * 1000
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data}")
        return elapsed, data

    def search(self, selector: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("POST", "/api/v1/run/search", selector)[1]["candidates"]
        return found

    def sync_all(self, *, force: bool = False) -> tuple[float, dict[str, Any]]:
        """Sync every source (reading each again if `force`); the seconds it took and the finished job."""
        started = time.perf_counter()
        job = self.call("POST", "/api/v1/run/sources/sync", {"force": force})[1]
        done = self.call("GET", f"/api/v1/run/jobs/{job['job_id']}?wait=done&timeout_ms=120000")[1]
        if done["status"] != "done":
            raise RuntimeError(f"the sync ended {done['status']}: {done.get('error')}")
        return time.perf_counter() - started, done


def mix(made: list[Query], count: int = MIXED, seed: int = 7) -> list[dict[str, Any]]:
    """`count` selectors: the judgement's queries of every category, and a few broad ones."""
    rng = random.Random(seed)
    picked = [dict(q.selector) for q in rng.sample(made, min(count - len(EXTRA), len(made)))]
    return [*picked, *EXTRA][:count]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"count": len(ordered), "p50": percentile(ordered, 50), "p99": percentile(ordered, 99),
            "max": ordered[-1] if ordered else 0.0}  # fmt: skip


def latency_around_a_sync(client: Client, port: int, key: str, selectors: list[dict[str, Any]]) -> dict[str, Any]:
    """Search one after another while another connection syncs every source, and for a second after."""
    samples: list[tuple[float, float]] = []  # (when it was sent, ms)
    ended: list[float] = []

    def sync() -> None:
        Client(port, key).sync_all(force=True)
        ended.append(time.perf_counter())

    syncing = threading.Thread(target=sync)
    syncing.start()
    position = 0
    while not ended or time.perf_counter() - ended[0] < 1.0:
        sent = time.perf_counter()
        elapsed, _ = client.call("POST", "/api/v1/run/search", selectors[position % len(selectors)])
        samples.append((sent, elapsed))
        position += 1
    syncing.join()
    during = [ms for sent, ms in samples if sent < ended[0]]
    after = [ms for sent, ms in samples if sent >= ended[0]]
    return {"during_sync": _percentiles(during), "first_second_after": _percentiles(after)}


def measure(config: Config, workdir: Path, store: str) -> SearchResult:
    """One store ("sqlite" or "postgres"): sync, judge, time searches; then wrk on a 100,000 index."""
    schema = config.pg_schema("search")
    database = (
        f"sqlite:///{workdir / f'search-{config.run_id}.db'}"
        if store == "sqlite"
        else (f"{config.pg_url()}?schema={schema}")
    )
    env = {"JOBHOUSE_LOG_LEVEL": "warning", "JOBHOUSE_DATABASE_URL": database}
    try:
        key = run([tool("jobhouse"), "keys", "create", "--workspace", "bench"], env).strip()
        port = _free_port()
        argv = [tool("jobhouse"), "serve", "--host", HOST, "--port", str(port), "--concurrency", "2"]
        with Process("jobhouse serve", argv, env, workdir / f"search-{store}.log") as server:
            wait_for_port(HOST, port, process=server)
            client = Client(port, key)
            sync_seconds, done = client.sync_all()
            indexed = sum(s.get("candidates", 0) for s in done["result"]["sources"].values())
            facts = [e for source in configured_sources(
                ["path", "desktop", "dpkg", "apt", "catalogs"], os.environ, catalogs=[WELL_KNOWN]
            ) for e in source.scan()]  # fmt: skip
            made = queries(facts)
            judgement = judge(made, client.search)
            relevance = _relevance(made, judgement)
            selectors = mix(made)
            quiet = [client.call("POST", "/api/v1/run/search", s)[0] for s in selectors]
            latency = {"quiet": _percentiles(quiet), **latency_around_a_sync(client, port, key, selectors)}
            server.check()
        runs = _throughput(config, workdir, store, database, key, selectors)
        return SearchResult(f"jobhouse-{store}", indexed, round(sync_seconds, 2), relevance, latency, runs)
    finally:
        if store == "postgres":
            with psycopg.connect(config.pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _relevance(made: list[Query], judgement: Judgement) -> dict[str, Any]:
    by_category = {
        category: {"queries": n, "precision_at_1": round(p, 4), "recall_at_3": round(r, 4)}
        for category, (n, p, r) in judgement.by_category().items()
    }
    return {
        "queries": len(made),
        "precision_at_1": round(judgement.precision_at_1, 4),
        "recall_at_3": round(judgement.recall_at_3, 4),
        "by_category": by_category,
        "misses": [[q.selector, q.want, rank] for q, rank in judgement.misses()[:20]],
    }


def _throughput(
    config: Config, workdir: Path, store: str, database: str, key: str, selectors: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """wrk over the mix, with a generated catalog bringing the index to `TOTAL` candidates."""
    catalog = generated_catalog(workdir / "generated.json", TOTAL)
    env = {"JOBHOUSE_LOG_LEVEL": "warning", "JOBHOUSE_DATABASE_URL": database,
           "JOBHOUSE_CATALOGS": f"{WELL_KNOWN},{catalog}"}  # fmt: skip
    port = _free_port()
    argv = [tool("jobhouse"), "serve", "--host", HOST, "--port", str(port), "--concurrency", "2"]
    with Process("jobhouse serve", argv, env, workdir / f"search-{store}-100k.log") as server:
        wait_for_port(HOST, port, process=server)
        Client(port, key).sync_all()
        script = _script(workdir / "search.lua", key, selectors)
        runs = []
        for threads, connections in ((1, 1), (2, 16)):
            output = run(
                ["wrk", f"-t{threads}", f"-c{connections}", f"-d{config.http_duration}s", "--latency",
                 "-s", str(script), f"http://{HOST}:{port}"],
                timeout=config.http_duration + 60,
            )  # fmt: skip
            runs.append({"connections": connections, **parse_wrk(f"search c={connections}", output).to_dict()})
        server.check()
    return runs


def _script(path: Path, key: str, selectors: list[dict[str, Any]]) -> Path:
    bodies = ",\n".join("  " + json.dumps(json.dumps(selector)) for selector in selectors)
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
