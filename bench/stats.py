"""Percentiles and rates."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile of sorted values (linear between ranks); NaN when empty.

    Values may be infinite (something that never happened): a percentile that reaches one is
    infinite.
    """
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    if rank == low or ordered[high] == ordered[low]:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(value: float) -> float | None:
    """Milliseconds for the JSON: None for never (infinite) or no data (NaN)."""
    return None if math.isinf(value) or math.isnan(value) else round(value * 1000, 2)


def summary_ms(seconds: Sequence[float], never: int = 0) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds of durations in seconds, and how many.

    `never` counts things that never happened (an interaction never offered): they rank above
    every measured value, so a percentile they reach is reported as None, not flattered.
    """
    ordered = sorted([*seconds, *([math.inf] * never)])
    result: dict[str, float | int | None] = {
        key: _ms(percentile(ordered, q)) for key, q in (("p50", 50), ("p95", 95), ("p99", 99))
    }
    result["max"] = _ms(ordered[-1]) if ordered else None
    result["n"] = len(seconds)
    if never:
        result["never"] = never
    return result


def central_rate(times: Sequence[float], low: float = 10, high: float = 90) -> float:
    """Events per second between the `low` and `high` percentiles of their times."""
    ordered = sorted(times)
    if len(ordered) < 10:
        return math.nan
    first_index = int(len(ordered) * low / 100)
    last_index = int(len(ordered) * high / 100) - 1
    first, last = ordered[first_index], ordered[last_index]
    return (last_index - first_index) / (last - first) if last > first else math.nan
