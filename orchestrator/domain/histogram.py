"""The task histograms: their names, labels and bounds, and the arithmetic that turns counts
per bucket into Prometheus's cumulative ``le`` buckets. Pure.

They are observed when the events happen (the worker that ends a run observes its duration)
into a store every process shares (``adapters/histograms.py``), and read at scrape time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class HistogramSpec:
    """One histogram of task times: its metric name, label names and bucket bounds (s)."""

    name: str
    help: str
    labels: tuple[str, ...]
    bounds: tuple[float, ...]


TASK_DURATION = HistogramSpec(
    "orchestrator_task_duration_seconds",
    "Run time of runs a worker ended, from its claim to its final state, in seconds.",
    ("pipeline", "status"),
    DURATION_BUCKETS_S,
)
UPLOAD_TO_START = HistogramSpec(
    "orchestrator_upload_to_start_seconds",
    "Wait from all inputs uploaded (queued) to a worker starting the task, in seconds.",
    ("pipeline",),
    LATENCY_BUCKETS_S,
)
CREATE_TO_DONE = HistogramSpec(
    "orchestrator_task_create_to_done_seconds",
    "Time from create_task to done (uploads, queueing and the run), in seconds.",
    ("pipeline",),
    DURATION_BUCKETS_S,
)
TASK_HISTOGRAMS = (TASK_DURATION, UPLOAD_TO_START, CREATE_TO_DONE)


@dataclass(frozen=True)
class HistogramCounts:
    """Observations of one label set: the count in each bucket (one per bound, then +Inf;
    not cumulative) and the sum of the observed values."""

    labels: tuple[str, ...]
    per_bucket: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.per_bucket)

    def buckets(self, bounds: Sequence[float]) -> list[tuple[str, int]]:
        """``[(le, cumulative count), ..., ("+Inf", count)]``."""
        if len(self.per_bucket) != len(bounds) + 1:
            raise ValueError("one count per bound, and one for +Inf")
        running = list(itertools.accumulate(self.per_bucket))
        return cumulative_buckets(bounds, running[:-1], running[-1])
