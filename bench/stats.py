"""Small statistics helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def percentile(ordered: Sequence[float], p: float) -> float:
    """The `p`-th percentile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median of `values` (the mean of the middle two for an even count)."""
    return percentile(sorted(values), 50)


def median_row(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs: the median of each number, the first run's value of anything else.

    Booleans (such as *capped*) are true if any run's was; the runs themselves are kept under ``runs``.
    """
    if not runs:
        raise ValueError("no runs")
    row: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [run.get(key) for run in runs]
        if isinstance(first, bool):
            row[key] = any(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            middle = median(values)  # type: ignore[arg-type]
            row[key] = int(middle) if all(isinstance(v, int) for v in values) and middle.is_integer() else middle
        else:
            row[key] = first
    row["repeats"] = len(runs)
    row["runs"] = list(runs)
    return row
