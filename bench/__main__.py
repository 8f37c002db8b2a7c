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
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import machine, plots, report, stats
from bench.config import QUICK, ROOT, Config
from bench.recorder import RecordServer
from bench.systems import SYSTEMS, load
from bench.systems.base import System
from bench.workloads import QUEUE_WORKLOADS, WORKLOADS, drain, enqueue, latency

DESCRIPTION = f"""\
Benchmark jobhouse against its peers, one system after another on this machine.

workloads (drain, enqueue and latency run every system, each job recording itself in Redis):
  drain       enqueue N jobs in bulk (batches of 1,000: bulk enqueue/s), then start the worker
              processes and time the first job's start to the last job's end (drain jobs/s),
              with worker and store CPU per job
  enqueue     N jobs enqueued one at a time by 50 concurrent callers, no worker running
  latency     one job at a time, random 0-50 ms apart, on idle workers: enqueue to the handler's
              start, as the handler records it (p50, p99)
  http        wrk on a hello-world Starlette route (the ceiling: same uvicorn, uvloop, httptools),
              then on jobhouse serve --no-workers per store: GET /healthz, GET /api/jobs/{{id}},
              POST /api/jobs, each with its share of hello-world's req/s; jobhouse only
  search      this machine's sources synced (timed), relevance judged on its own facts (P@1, top-3),
              300 mixed queries timed quiet, during a sync and after it; wrk on 100,000
              candidates at 1 and 16 connections; on each jobhouse store; jobhouse only
  events      event streams: change-to-arrival delay of every step (one node, and across two
              nodes on PostgreSQL), next to long-polls; on each jobhouse store; jobhouse only
  waiters     10,000 long-polls and 5,000 event streams (--quick: 1,000 and 500), 10 per queued
              job, on one API process per store: memory, the store's queries while they wait,
              completion to answer once a worker runs the jobs; jobhouse only

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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a quick pass of the queue workloads, in a few minutes: fewer jobs and samples, one run each (the"
        " options below say how many); results go to bench/results/<date>-quick.json, no plots unless --plots",
    )

    def number(flag: str, kind: type, field: str, text: str) -> None:
        quick = f"; --quick: {QUICK[field]:,}" if field in QUICK else ""
        default = getattr(defaults, field)
        metavar = "N" if kind is int else "SECONDS"
        parser.add_argument(
            flag, type=kind, default=None, dest=field, metavar=metavar, help=f"{text} ({default:,}{quick})"
        )

    number("--jobs", int, "jobs", "jobs per drain run")
    number("--processes", int, "processes", "worker processes per system")
    number("--concurrency", int, "concurrency", "jobs at once per worker process")
    number("--single-jobs", int, "single_jobs", "jobs per enqueue run")
    number("--callers", int, "callers", "concurrent callers in the enqueue workload")
    number("--samples", int, "latency_samples", "latency samples per system")
    number("--repeat", int, "repeat", "runs of each queue workload per system (the tables show medians)")
    number("--quiet-patience", float, "quiet_patience", "seconds to wait for a quiet machine before each measurement")
    number("--time-limit", float, "time_limit", "seconds a drain may take before it is cut short")
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="where the PNG charts go (default docs/img; a --quick run draws none unless this is given)",
    )
    parser.add_argument("--no-plots", action="store_true", help="draw no charts")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="jobs per bulk enqueue call (%(default)s)")
    parser.add_argument("--redis-db", type=int, default=defaults.redis_db, help="Redis database (%(default)s)")
    parser.add_argument("--pg", default=defaults.pg_dsn, help="PostgreSQL conninfo (%(default)s)")
    number("--http-duration", int, "http_duration", "seconds per wrk run")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON results file (default bench/results/<date>.json, or <date>-quick.json; a day's runs are merged)",
    )
    args = parser.parse_args(argv)
    for workload in args.only:
        if workload not in WORKLOADS:
            parser.error(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    for name in args.systems:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return args


def config_from(args: argparse.Namespace) -> Config:
    """The run's configuration: the defaults, then --quick's, then every option given."""
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    names = {f.name for f in dataclasses.fields(Config)}
    values.update({name: value for name, value in vars(args).items() if name in names and value is not None})
    values.update(quick=args.quick, redis_db=args.redis_db, pg_dsn=args.pg)
    return Config(**values)


def _systems(names: list[str], config: Config, workdir: Path, record_url: str, skipped: dict[str, str]) -> list[System]:
    systems = []
    for name in names:
        try:
            systems.append(load(name)(config, workdir, record_url))
        except ImportError as exc:
            skipped[name] = f"not installed: {exc}"
    return systems


#: Each queue workload's measurement, and its table.
MEASURE: dict[str, Callable[[System, RecordServer, Config], Awaitable[Any]]] = {
    "drain": drain.measure,
    "enqueue": enqueue.measure,
    "latency": latency.measure,
}
TABLES = {"drain": report.drain_table, "enqueue": report.enqueue_table, "latency": report.latency_table}


def _title(workload: str, config: Config) -> str:
    workers = f"{config.processes} worker processes at concurrency {config.concurrency}"
    return {
        "drain": f"drain: {config.jobs:,} jobs enqueued in bulk, then {workers}",
        "enqueue": f"enqueue: {config.single_jobs:,} jobs one at a time from {config.callers} concurrent callers",
        "latency": f"latency: enqueue to handler start, {config.latency_samples} jobs on idle workers ({workers})",
    }[workload]


async def run_queue_workloads(
    wanted: list[str], systems: list[System], records: RecordServer, config: Config, skipped: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Run each wanted queue workload ``config.repeat`` times over every system (in rounds); median rows."""
    results: dict[str, list[dict[str, Any]]] = {}
    for workload in wanted:
        runs: dict[str, list[dict[str, Any]]] = {system.name: [] for system in systems}
        failed: set[str] = set()
        for round_ in range(config.repeat):
            for system in systems:
                if system.name in failed:
                    continue
                # Other work on this machine skews every number: wait for it to go quiet, and record how
                # busy it was before and after each measurement.
                busy = await machine.wait_quiet(patience=config.quiet_patience)
                print(
                    f"  {workload} {round_ + 1}/{config.repeat}: {system.name} (cpu busy before: {busy:.0%}) ...",
                    file=sys.stderr,
                    flush=True,
                )
                started = time.monotonic()
                try:
                    result = await MEASURE[workload](system, records, config)
                except Exception as exc:
                    traceback.print_exc()
                    failed.add(system.name)
                    skipped[f"{workload}:{system.name}"] = f"failed: {exc}".splitlines()[0]
                    continue
                print(f"    took {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
                load = round(os.getloadavg()[0], 2)
                runs[system.name].append({**result.to_dict(), "cpu_busy_before": round(busy, 2), "load_1m_after": load})
        results[workload] = [stats.median_row(rows) for rows in runs.values() if rows]
    return results


async def main(args: argparse.Namespace) -> int:
    config = config_from(args)
    today = datetime.date.today().isoformat()
    output: Path = args.output or ROOT / "bench" / "results" / f"{today}{'-quick' if config.quick else ''}.json"
    skipped: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="jobhouse-bench-"))
    records = RecordServer(workdir)
    systems = _systems(args.systems, config, workdir, records.url, skipped)
    stores = {s.name: s.store.split(" (")[0] for s in systems}
    packages = sorted({"jobhouse", "uvloop", "psycopg", "redis", *(s.package for s in systems)})
    run: dict[str, Any] = {
        "date": today,
        "machine": machine.describe(config, packages),
        "systems": {s.name: s.describe() for s in systems},
    }
    print(f"logs in {workdir}", file=sys.stderr)

    queue_workloads = [workload for workload in QUEUE_WORKLOADS if workload in args.only]
    if queue_workloads and systems:
        await records.start()
        try:
            queue_results = await run_queue_workloads(queue_workloads, systems, records, config, skipped)
        finally:
            await records.stop()
        run.update(queue_results)
        for workload, rows in queue_results.items():
            print(f"\n{_title(workload, config)} (medians of {config.repeat})")
            print(TABLES[workload](rows, stores))
        if len(queue_results) > 1:
            print("\nqueue workloads, side by side")
            print(report.queue_summary_table(run, stores))

    stores_wanted = [store for name, store in (("jobhouse-sqlite", "sqlite"), ("jobhouse-pg", "postgres"))
                     if name in args.systems]  # fmt: skip
    if "http" in args.only and stores_wanted:
        from bench.workloads import http

        rows = []
        try:
            busy = await machine.wait_quiet(patience=config.quiet_patience)
            print(f"  http: hello-world (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
            hello = await asyncio.to_thread(http.hello_world, config, workdir)
            rows.append({**hello.to_dict(), "cpu_busy_before": round(busy, 2)})
        except Exception as exc:
            traceback.print_exc()
            skipped["http:hello-world"] = f"failed: {exc}".splitlines()[0]
            hello = None
        for store in stores_wanted:
            busy = await machine.wait_quiet(patience=config.quiet_patience)
            print(f"  http: jobhouse on {store} (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
            try:
                results = await asyncio.to_thread(http.routes, config, workdir, store, hello)
            except Exception as exc:
                traceback.print_exc()
                skipped[f"http:{store}"] = f"failed: {exc}".splitlines()[0]
                continue
            rows += [{**r.to_dict(), "cpu_busy_before": round(busy, 2)} for r in results]
        run["http"] = rows
        print(
            f"\nhttp: one server process each (jobhouse serve --no-workers), wrk -t{config.http_threads}"
            f" -c{config.http_connections} -d{config.http_duration}s --latency"
        )
        print(report.http_table(rows))

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
            busy = await machine.wait_quiet(patience=config.quiet_patience)
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
            f"\nevents: {events.jobs_watched(config)} four-step jobs watched one after another"
            " (delay from commit to arrival)"
        )
        print(report.events_table(rows))

    if "waiters" in args.only and stores_wanted:
        from bench.workloads import waiters

        rows = []
        for store in stores_wanted:
            busy = await machine.wait_quiet(patience=config.quiet_patience)
            print(f"  waiters: jobhouse on {store} (cpu busy before: {busy:.0%}) ...", file=sys.stderr, flush=True)
            try:
                results = await asyncio.to_thread(waiters.measure, config, workdir, store)
            except Exception as exc:
                traceback.print_exc()
                skipped[f"waiters:{store}"] = f"failed: {exc}".splitlines()[0]
                continue
            rows += [{**r.to_dict(), "cpu_busy_before": round(busy, 2)} for r in results]
        run["waiters"] = rows
        long_polls, streams, idle = waiters.sizes(config.quick)
        print(
            f"\nwaiters: {long_polls:,} long-polls, then {streams:,} event streams, {waiters.PER_JOB} per job, on one"
            f" jobhouse serve --no-workers; the store's work counted over {idle:.0f} quiet seconds; then a worker"
            " runs every job"
        )
        print(report.waiters_table(rows))

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
    plot_dir = None if args.no_plots else args.plots or (None if config.quick else ROOT / "docs" / "img")
    if plot_dir is not None:
        for path in plots.write_queue_plots(run, plot_dir, dataclasses.asdict(config)):
            print(f"plot {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        from bench.workloads import http, waiters

        for path in [*http.plot(run.get("http", []), plot_dir), *waiters.plot(run.get("waiters", []), plot_dir)]:
            print(f"plot {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if not skipped:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"saved {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 1 if any(reason.startswith("failed") for reason in skipped.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
