"""Small statistics helpers."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(ordered: Sequence[float], p: float) -> float:
    """The `p`-th percentile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
