"""PNG bar charts of a run's results, one per scenario, for ``docs/benchmarks.md``.

`bar_chart` and `grouped_bar_chart` draw any scenario (one horizontal bar per system, or per
endpoint, with its value written beside it); `write_queue_plots` draws the queue workloads'
charts from a run's rows. Figures are made with matplotlib's object API (no pyplot, so no global
figure state and no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

#: jobhouse's bars stand out; the peers' are grey.
JOBHOUSE = "#1f6feb"
PEER = "#8c959f"
#: Colours of a grouped chart's series, in order (e.g. p50 then p99).
SERIES = ("#1f6feb", "#f0883e", "#2da44e", "#a371f7")
#: Goal lines.
MARK = "#cf222e"


def _label(value: float, unit: str) -> str:
    if value >= 100:
        text = f"{value:,.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _figure(rows: int, groups: int = 1) -> tuple[Figure, Any]:
    height = 1.4 + 0.42 * rows * max(1.0, groups * 0.7)
    figure = Figure(figsize=(8, max(height, 2.6)), dpi=110, layout="constrained")
    return figure, figure.subplots()


def bar_chart(
    path: Path,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    unit: str,
    *,
    highlight: Sequence[str] = (),
    marks: Mapping[str, float] | None = None,
    log: bool = False,
) -> Path:
    """One horizontal bar per label (top to bottom in the given order), its value written beside it.

    Labels in `highlight` (by default those starting with ``jobhouse``) are drawn in jobhouse's
    colour; a missing value (None) leaves its row empty, marked "n/a". `marks` draws labelled
    dashed lines (e.g. a goal); `log` uses a logarithmic axis, for values that span decades.
    """
    chosen = set(highlight) or {label for label in labels if label.startswith("jobhouse")}
    figure, axes = _figure(len(labels))
    colors = [JOBHOUSE if label in chosen else PEER for label in labels]
    _bars(axes, list(range(len(labels))), values, unit, 0.8, colors, None, 8)
    _finish(axes, title, labels, unit, values, marks, log)
    return _save(figure, path)


def grouped_bar_chart(
    path: Path,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str,
    *,
    marks: Mapping[str, float] | None = None,
    log: bool = False,
) -> Path:
    """Like `bar_chart`, with several bars per label, one per series (e.g. ``{"p50": [...], "p99": [...]}``)."""
    figure, axes = _figure(len(labels), len(series))
    height = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        positions = [row - 0.4 + height * (index + 0.5) for row in range(len(labels))]
        _bars(axes, positions, values, unit, height, SERIES[index % len(SERIES)], name, 7)
    _finish(axes, title, labels, unit, [v for values in series.values() for v in values], marks, log)
    return _save(figure, path)


def _bars(
    axes: Any,
    positions: Sequence[float],
    values: Sequence[float | None],
    unit: str,
    height: float,
    color: str | Sequence[str],
    name: str | None,
    fontsize: int,
) -> None:
    """Bars for `values` (missing ones left out), each with its value, or "n/a", written at its end."""
    shown = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None and v > 0]
    colors = color if isinstance(color, str) else [c for c, v in zip(color, values, strict=True) if v and v > 0]
    axes.barh([p for p, _ in shown], [v for _, v in shown], height=height, color=colors, label=name)
    for position, value in zip(positions, values, strict=True):
        if value is not None and value > 0:
            axes.text(value, position, f" {_label(value, unit)}", va="center", fontsize=fontsize)
        else:
            axes.text(0, position, " n/a", va="center", fontsize=fontsize, transform=axes.get_yaxis_transform())


def _finish(
    axes: Any,
    title: str,
    labels: Sequence[str],
    unit: str,
    values: Sequence[float | None],
    marks: Mapping[str, float] | None,
    log: bool,
) -> None:
    axes.set_yticks(list(range(len(labels))), labels=list(labels), fontsize=9)
    for tick in axes.get_yticklabels():
        if tick.get_text().startswith("jobhouse"):
            tick.set_fontweight("bold")
    axes.set_ylim(len(labels) - 0.5, -0.5)  # the first label on top
    axes.set_title(title, fontsize=10, loc="left", pad=18)
    axes.set_xlabel(unit)
    known = [v for v in [*values, *(marks or {}).values()] if v is not None and v > 0] or [1.0]
    if log:
        axes.set_xscale("log")
        axes.set_xlim(10 ** math.floor(math.log10(min(known) * 0.8)), max(known) * 4)
    else:
        axes.set_xlim(0, max(known) * 1.25)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    for index, (name, value) in enumerate((marks or {}).items()):
        axes.axvline(value, color=MARK, linestyle=("--", ":", "-.")[index % 3], linewidth=1, label=name)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=4, fontsize=7, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


# -- the queue workloads ----------------------------------------------------------------------------


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> list[float | None]:
    return [row.get(key) for row in rows]


def _caption(config: Mapping[str, Any]) -> str:
    return f"{config.get('processes', 2)} worker processes x {config.get('concurrency', 10)} at once"


def drain(rows: Sequence[Mapping[str, Any]], directory: Path, config: Mapping[str, Any]) -> Path:
    labels = [row["system"] for row in rows]
    jobs = int(rows[0]["jobs"]) if rows else 0
    return bar_chart(
        directory / "bench-drain.png",
        f"Drain: {jobs:,} queued jobs, {_caption(config)} (higher is better)",
        labels,
        _column(rows, "drain_rate"),
        "jobs/s",
        marks={"goal 10,000/s": 10_000},
    )


def enqueue(
    drain_rows: Sequence[Mapping[str, Any]], enqueue_rows: Sequence[Mapping[str, Any]], directory: Path
) -> Path:
    """Bulk (from the drain runs) and one-at-a-time enqueue rates side by side, per system."""
    bulk = {row["system"]: row["bulk_rate"] for row in drain_rows}
    single = {row["system"]: row["rate"] for row in enqueue_rows}
    labels = list(dict.fromkeys([*bulk, *single]))
    callers = int(enqueue_rows[0]["callers"]) if enqueue_rows else 50
    return grouped_bar_chart(
        directory / "bench-enqueue.png",
        f"Enqueue: in bulk, and one at a time from {callers} callers (higher is better)",
        labels,
        {
            "bulk": [bulk.get(name) for name in labels],
            f"one at a time, {callers} callers": [single.get(name) for name in labels],
        },
        "jobs/s",
        marks={"goal, bulk": 50_000, "goal, one at a time": 5_000},
        log=True,
    )


def start_latency(rows: Sequence[Mapping[str, Any]], directory: Path, config: Mapping[str, Any]) -> Path:
    labels = [row["system"] for row in rows]
    return grouped_bar_chart(
        directory / "bench-start-latency.png",
        f"Enqueue to handler start on idle workers, {_caption(config)} (lower is better)",
        labels,
        {"p50": _column(rows, "p50_ms"), "p99": _column(rows, "p99_ms")},
        "ms",
        log=True,
    )


def write_queue_plots(run: Mapping[str, Any], directory: Path, config: Mapping[str, Any]) -> list[Path]:
    """The queue workloads' charts for whichever of them `run` holds; the paths written."""
    written = []
    if run.get("drain"):
        written.append(drain(run["drain"], directory, config))
    if run.get("drain") or run.get("enqueue"):
        written.append(enqueue(run.get("drain", []), run.get("enqueue", []), directory))
    if run.get("latency"):
        written.append(start_latency(run["latency"], directory, config))
    return written
