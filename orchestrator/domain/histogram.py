"""Histogram arithmetic for metrics computed from the database at scrape time. Pure.

The database counts observations at or below each bound (``count(*) FILTER (WHERE v <= b)``),
which is already Prometheus's cumulative ``le`` form; this module names the bounds and shapes
those counts into buckets.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

# Handling time of one tusd hook (s): a few ms is the norm, tusd gives up at 10 s.
HOOK_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    10,
)

# Task run time, finished_at - started_at (s): from a quick checksum to a day-long job.
DURATION_BUCKETS_S: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    21600,
    86400,
)
# Upload-to-start latency, started_at - queued_at (s): how long a queued task waits for a worker.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
    900,
    3600,
)


def le_label(bound: float) -> str:
    """Prometheus's spelling of a bucket bound ("+Inf" for infinity, "0.5", "10.0")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def cumulative_buckets(
    bounds: Sequence[float], at_or_below: Sequence[int], total: int
) -> list[tuple[str, int]]:
    """Buckets ``[(le, count), ..., ("+Inf", total)]`` from counts at or below each bound."""
    if len(bounds) != len(at_or_below):
        raise ValueError("one count per bound")
    if list(bounds) != sorted(bounds):
        raise ValueError("bounds must ascend")
    counts = [*at_or_below, total]
    if any(a > b for a, b in itertools.pairwise(counts)):
        raise ValueError("cumulative counts must not decrease")
    return [(le_label(b), int(c)) for b, c in zip([*bounds, math.inf], counts, strict=True)]


def count_at_or_below(values: Iterable[float], bounds: Sequence[float]) -> list[int]:
    """What the SQL computes, for values in memory: observations <= each bound."""
    data = list(values)
    return [sum(1 for v in data if v <= b) for b in bounds]
