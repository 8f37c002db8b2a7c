"""Tables for the terminal (with jobhouse ÷ peer ratios) and the JSON record of a run."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(
            str(cell).rjust(w) if i else str(cell).ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ratio_columns(
    rows: Sequence[Row], metrics: Sequence[tuple[str, str, bool]]
) -> tuple[list[str], Callable[[Row], list[str]]]:
    """Ratio columns against every jobhouse row: jobhouse ÷ peer for rates, peer ÷ jobhouse for times."""
    bases = [row for row in rows if str(row["system"]).startswith("jobhouse")]
    headers = [f"{label} vs {base['system'].removeprefix('jobhouse-')}" for base in bases for _, label, _ in metrics]

    def cells(row: Row) -> list[str]:
        out = []
        for base in bases:
            for key, _, higher_is_better in metrics:
                out.append(_ratio(base[key], row[key]) if higher_is_better else _ratio(row[key], base[key]))
        return out

    return headers, cells


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def drain_table(rows: Sequence[Row], stores: dict[str, str]) -> str:
    ratio_headers, ratios = _ratio_columns(
        rows, [("drain_rate", "drain", True), ("bulk_rate", "bulk", True), ("worker_cpu_ms", "cpu", False)]
    )
    headers = ["system", "store", "drain jobs/s", "bulk enqueue/s", "start-up s", "worker cpu ms/job",
               "store cpu ms/job", *ratio_headers]  # fmt: skip
    body = [
        [
            row["system"] + (" (capped)" if row["capped"] else ""),
            stores.get(row["system"], ""),
            f"{row['drain_rate']:,.0f}",
            f"{row['bulk_rate']:,.0f}",
            f"{row['startup_seconds']:.2f}",
            _ms(row["worker_cpu_ms"]),
            _ms(row["store_cpu_ms"]),
            *ratios(row),
        ]
        for row in rows
    ]
    return table(headers, body)


def enqueue_table(rows: Sequence[Row], stores: dict[str, str]) -> str:
    ratio_headers, ratios = _ratio_columns(rows, [("rate", "enq", True)])
    headers = ["system", "store", "one-at-a-time enqueue/s", "callers", *ratio_headers]
    body = [
        [row["system"], stores.get(row["system"], ""), f"{row['rate']:,.0f}", f"{row['callers']:.0f}", *ratios(row)]
        for row in rows
    ]
    return table(headers, body)


def latency_table(rows: Sequence[Row], stores: dict[str, str]) -> str:
    ratio_headers, ratios = _ratio_columns(rows, [("p50_ms", "p50", False), ("p99_ms", "p99", False)])
    headers = ["system", "store", "p50 ms", "p95 ms", "p99 ms", "max ms", *ratio_headers]
    body = [
        [
            row["system"],
            stores.get(row["system"], ""),
            f"{row['p50_ms']:.2f}",
            f"{row['p95_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['max_ms']:.2f}",
            *ratios(row),
        ]
        for row in rows
    ]
    return table(headers, body)


def queue_summary_table(run: dict[str, Any], stores: dict[str, str]) -> str:
    """The issue's one table: drain jobs/s | bulk enqueue/s | one-at-a-time enqueue/s | start p50 / p99 ms."""
    by_workload = {name: {row["system"]: row for row in run.get(name, [])} for name in ("drain", "enqueue", "latency")}
    names = list(dict.fromkeys(name for rows in by_workload.values() for name in rows))
    headers = ["system", "store", "drain jobs/s", "bulk enqueue/s", "one-at-a-time enqueue/s", "start p50 / p99 ms"]
    body = []
    for name in names:
        drain, single, latency = (by_workload[w].get(name) for w in ("drain", "enqueue", "latency"))
        body.append(
            [
                name,
                stores.get(name, ""),
                f"{drain['drain_rate']:,.0f}" if drain else "-",
                f"{drain['bulk_rate']:,.0f}" if drain else "-",
                f"{single['rate']:,.0f}" if single else "-",
                f"{latency['p50_ms']:.2f} / {latency['p99_ms']:.2f}" if latency else "-",
            ]
        )
    return table(headers, body)


def http_table(rows: Sequence[Row]) -> str:
    headers = ["system", "endpoint", "req/s", "of hello-world", "requests", "non-2xx", "errors", "avg ms", "p50 ms",
               "p90 ms", "p99 ms"]  # fmt: skip
    body = []
    for row in rows:
        lat = row["latency_ms"]
        share = row.get("of_hello")
        body.append(
            [
                row.get("system", "jobhouse-sqlite"),
                row["endpoint"],
                f"{row['requests_per_second']:,.0f}",
                "-" if share is None else f"{share:.1%}",
                str(row["requests"]),
                str(row["non_2xx"]),
                str(row["socket_errors"]),
                *(f"{lat.get(k, 0):.2f}" for k in ("avg", "p50", "p90", "p99")),
            ]
        )
    return table(headers, body)


def search_table(rows: Sequence[Row]) -> str:
    headers = ["store", "entries", "full sync s", "P@1", "top-3", "p50 ms", "p99 ms", "sync p99", "after p99"]
    for connections in (1, 16):
        headers += [f"100k c{connections} req/s", f"c{connections} p99 ms"]
    lines = []
    for row in rows:
        relevance, latency = row["relevance"], row["latency"]
        cells = [
            row["system"], str(row["candidates"]), f"{row['sync_seconds']:.2f}",
            f"{relevance['precision_at_1']:.1%}", f"{relevance['recall_at_3']:.1%}",
            f"{latency['quiet']['p50']:.2f}", f"{latency['quiet']['p99']:.2f}",
            f"{latency['during_sync']['p99']:.2f}", f"{latency['first_second_after']['p99']:.2f}",
        ]  # fmt: skip
        for measured in row["runs"]:
            cells += [f"{measured['requests_per_second']:.0f}", f"{measured['latency_ms']['p99']:.2f}"]
        lines.append(cells)
    return table(headers, lines)


def events_table(rows: Sequence[Row]) -> str:
    def ms(summary: dict[str, Any]) -> str:
        return f"{summary['p50']:.1f} / {summary['p99']:.1f}" if summary.get("count") else "-"

    headers = ["system", "step p50/p99 ms", "end p50/p99 ms", "long-poll p50/p99 ms", "other node p50/p99 ms"]
    body = [
        [
            row["system"],
            ms(row["step_latency_ms"]),
            ms(row["terminal_latency_ms"]),
            ms(row["long_poll_latency_ms"]),
            ms(row["cross_node_latency_ms"].get("steps", {})),
        ]
        for row in rows
    ]
    return table(headers, body)


def waiters_table(rows: Sequence[Row]) -> str:
    """Long-polls and event streams on one process, side by side: memory, the store's work, answers."""
    headers = ["system", "waiting", "jobs", "open s", "RSS growth MB", "KB each", "counted", "quiet /s", "waiting /s",
               "opening each", "cpu waiting", "answered p50/p99/max ms", "last answer ms", "missed"]  # fmt: skip
    body = []
    for row in rows:
        work, answered = row["store_work"], row["answered_ms"]
        times = "/".join(f"{answered[k]:.0f}" for k in ("p50", "p99", "max")) if answered.get("count") else "-"
        body.append(
            [
                row["system"],
                f"{row['waiters']:,} {row['kind']}s",
                f"{row['jobs']:,}",
                f"{row['open_seconds']:.1f}",
                f"{row['rss_growth_mb']:.1f}",
                f"{row['rss_growth_mb'] * 1024 / max(row['waiters'], 1):.1f}",
                row["counted"],
                f"{work['quiet_per_second']:.1f}",
                f"{work['waiting_per_second']:.1f}",
                f"{work['opening_per_waiter']:.2f}",
                f"{row['cpu_waiting_pct']:.1f}%",
                times,
                f"{row['last_answer_ms']:.0f}",
                ", ".join([f"{row['missed']:,}", *(f"{why} {n:,}" for why, n in row.get("missed_why", {}).items())]),
            ]
        )
    return table(headers, body)


def relevance_table(rows: Sequence[Row]) -> str:
    headers = ["store", "category", "queries", "P@1", "top-3"]
    lines = []
    for row in rows:
        for category, found in row["relevance"]["by_category"].items():
            lines.append([row["system"], category, str(found["queries"]), f"{found['precision_at_1']:.1%}",
                          f"{found['recall_at_3']:.1%}"])  # fmt: skip
    return table(headers, lines)


def _row_key(workload: str, row: Row) -> tuple[str, str]:
    """What a row stands for across runs: its system, and its endpoint (http) or kind of waiter (waiters)."""
    detail = {"http": "endpoint", "waiters": "kind"}.get(workload)
    return row.get("system", "jobhouse-sqlite"), row[detail] if detail else ""


def save(path: Path, run: dict[str, Any]) -> None:
    """Write the run to `path`, merged into what an earlier run that day wrote (by workload and system)."""
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    per_row = ("throughput", "drain", "enqueue", "latency", "http", "waiters")
    merged = {**old, **{k: v for k, v in run.items() if k not in (*per_row, "systems", "runs")}}
    merged["systems"] = {**old.get("systems", {}), **run.get("systems", {})}
    merged["skipped"] = {**old.get("skipped", {}), **run.get("skipped", {})}
    merged["runs"] = [*old.get("runs", []), *run.get("runs", [])]
    for workload in per_row:
        if workload not in run:
            continue
        fresh = {_row_key(workload, row): row for row in run[workload]}
        kept = [row for row in old.get(workload, []) if _row_key(workload, row) not in fresh]
        merged[workload] = kept + list(fresh.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
