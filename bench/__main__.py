"""``python -m bench``: run the workloads over jobhouse and its peers, print tables, save JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.config import ROOT, Config
from bench.systems import SYSTEMS, load
from bench.systems.base import System
from bench.workloads import WORKLOADS, latency, throughput

DESCRIPTION = f"""\
Benchmark jobhouse against its peers, one system after another on this machine.

workloads:
  throughput  enqueue N no-op jobs in bulk, then run one worker process until all have ended
  latency     one job at a time on an idle worker: enqueue to completion, seen by the client
  http        jobhouse's HTTP API under wrk (GET /api/jobs/{{id}}, POST /api/jobs); jobhouse only
  search      this machine's sources synced (timed), relevance judged on its own facts (P@1, top-3),
              300 mixed queries timed quiet, during a sync and after it; wrk on 100,000
              candidates at 1 and 16 connections; on each jobhouse store; jobhouse only
  events      event streams: change-to-arrival delay of every step (one node, and across two
              nodes on PostgreSQL), next to long-polls; 5,000 streams on one process (memory,
              time for all to hear an end); on each jobhouse store; jobhouse only

systems: {", ".join(SYSTEMS)}
"""


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", type=_csv, default=list(WORKLOADS), help="workloads to run (comma list; default all)")
    parser.add_argument("--systems", type=_csv, default=list(SYSTEMS), help="systems to run (comma list; default all)")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="jobs per throughput run (%(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="jobs at once per worker process (%(default)s)"
    )
    parser.add_argument(
        "--samples", type=int, default=defaults.latency_samples, help="latency samples per system (%(default)s)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=defaults.time_limit,
        help="seconds a throughput run may process before it is cut short and its rate so far reported (%(default)s)",
    )
    parser.add_argument("--batch", type=int, default=defaults.batch, help="jobs per bulk enqueue call (%(default)s)")
    parser.add_argument("--redis-db", type=int, default=defaults.redis_db, help="Redis database (%(default)s)")
    parser.add_argument(
        "--redis-results-db", type=int, default=defaults.redis_results_db, help="celery's results (%(default)s)"
    )
    parser.add_argument("--pg", default=defaults.pg_dsn, help="PostgreSQL conninfo (%(default)s)")
    parser.add_argument(
        "--http-duration", type=int, default=defaults.http_duration, help="seconds per wrk run (%(default)s)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON results file (default bench/results/<date>.json; runs on the same day are merged)",
    )
    args = parser.parse_args(argv)
    for workload in args.only:
        if workload not in WORKLOADS:
            parser.error(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    for name in args.systems:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return args


def _systems(names: list[str], config: Config, workdir: Path, skipped: dict[str, str]) -> list[System]:
    systems = []
    for name in names:
        try:
            systems.append(load(name)(config, workdir))
        except ImportError as exc:
            skipped[name] = f"not installed: {exc}"
    return systems


async def _run_each(
    systems: list[System], workload: str, skipped: dict[str, str], measure: Any
) -> list[dict[str, Any]]:
    rows = []
    for system in systems:
        # Other work on this machine skews every number: wait for it to go quiet, and record how
        # busy it was before and after each measurement.
        busy = await machine.wait_quiet()
        print(f"  {workload}: {system.name} (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
        try:
            result = await measure(system)
        except Exception as exc:
            traceback.print_exc()
            skipped[f"{workload}:{system.name}"] = f"failed: {exc}".splitlines()[0]
            continue
        load = round(os.getloadavg()[0], 2)
        rows.append({**result.to_dict(), "cpu_busy_before": round(busy, 2), "load_1m_after": load})
    return rows


async def main(args: argparse.Namespace) -> int:
    config = Config(
        jobs=args.jobs,
        concurrency=args.concurrency,
        latency_samples=args.samples,
        time_limit=args.time_limit,
        batch=args.batch,
        redis_db=args.redis_db,
        redis_results_db=args.redis_results_db,
        pg_dsn=args.pg,
        http_duration=args.http_duration,
    )
    today = datetime.date.today().isoformat()
    output: Path = args.output or ROOT / "bench" / "results" / f"{today}.json"
    skipped: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="jobhouse-bench-"))
    systems = _systems(args.systems, config, workdir, skipped)
    stores = {s.name: s.store.split(" (")[0] for s in systems}
    packages = sorted({"jobhouse", "uvloop", "psycopg", "redis", *(s.package for s in systems)})
    run: dict[str, Any] = {
        "date": today,
        "machine": machine.describe(config, packages),
        "systems": {s.name: s.describe() for s in systems},
    }
    print(f"logs in {workdir}", file=sys.stderr)

    if "throughput" in args.only:

        async def measure_throughput(system: System) -> Any:
            return await throughput.measure(system, config.jobs, config.time_limit)

        rows = await _run_each(systems, "throughput", skipped, measure_throughput)
        run["throughput"] = rows
        print(f"\nthroughput: {config.jobs} no-op jobs, one worker process, concurrency {config.concurrency}")
        print(report.throughput_table(rows, stores))

    if "latency" in args.only:

        async def measure_latency(system: System) -> Any:
            return await latency.measure(system, config.latency_samples)

        rows = await _run_each(systems, "latency", skipped, measure_latency)
        run["latency"] = rows
        print(f"\nlatency: enqueue to completion seen by the client, {config.latency_samples} sequential jobs")
        print(report.latency_table(rows, stores))

    if "http" in args.only and any(s.is_jobhouse for s in systems):
        from bench.workloads import http

        busy = await machine.wait_quiet()
        print(f"  http: jobhouse serve (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
        try:
            results = await asyncio.to_thread(http.measure, config, workdir)
        except Exception as exc:
            traceback.print_exc()
            skipped["http"] = f"failed: {exc}".splitlines()[0]
        else:
            run["http"] = [{**r.to_dict(), "cpu_busy_before": round(busy, 2)} for r in results]
            print(
                f"\nhttp: jobhouse serve --no-workers (SQLite), wrk -t{config.http_threads}"
                f" -c{config.http_connections} -d{config.http_duration}s"
            )
            print(report.http_table(run["http"]))

    stores_wanted = [store for name, store in (("jobhouse-sqlite", "sqlite"), ("jobhouse-pg", "postgres"))
                     if name in args.systems]  # fmt: skip
    if "search" in args.only and stores_wanted:
        from bench.workloads import search

        rows = []
        for store in stores_wanted:
            busy = await machine.wait_quiet()
            print(f"  search: jobhouse on {store} (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
            try:
                result = await asyncio.to_thread(search.measure, config, workdir, store)
            except Exception as exc:
                traceback.print_exc()
                skipped[f"search:{store}"] = f"failed: {exc}".splitlines()[0]
                continue
            rows.append({**result.to_dict(), "cpu_busy_before": round(busy, 2)})
        run["search"] = rows
        print(
            f"\nsearch: this machine's sources; {search.MIXED} mixed queries one at a time (quiet, during a full"
            f" sync, the second after it); wrk -d{config.http_duration}s on {search.TOTAL:,} candidates"
        )
        print(report.search_table(rows))
        print(report.relevance_table(rows))

    if "events" in args.only and stores_wanted:
        from bench.workloads import events

        rows = []
        for store in stores_wanted:
            busy = await machine.wait_quiet()
            print(f"  events: jobhouse on {store} (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
            try:
                result = await asyncio.to_thread(events.measure, config, workdir, store)
            except Exception as exc:
                traceback.print_exc()
                skipped[f"events:{store}"] = f"failed: {exc}".splitlines()[0]
                continue
            rows.append({**result.to_dict(), "cpu_busy_before": round(busy, 2)})
        run["events"] = rows
        print(
            f"\nevents: {events.JOBS} four-step jobs watched one after another (delay from commit to arrival);"
            f" {events.SUBSCRIBERS:,} streams on one job of one process"
        )
        print(report.events_table(rows))

    print("\nratios: jobhouse ÷ peer for rates, peer ÷ jobhouse for latencies; above 1 means jobhouse is better")
    if skipped:
        print("skipped:")
        for name, reason in skipped.items():
            print(f"  {name}: {reason}")
    run["skipped"] = skipped
    run["runs"] = [
        {
            "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "workloads": args.only,
            "systems": [s.name for s in systems],
            "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "run_id"},
        }
    ]
    report.save(output, run)
    if not skipped:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"saved {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 1 if any(reason.startswith("failed") for reason in skipped.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
