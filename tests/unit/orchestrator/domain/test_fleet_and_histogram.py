"""Worker state as listed, and the histogram shaping behind /metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.fleet import worker_state
from orchestrator.domain.histogram import (
    DURATION_BUCKETS_S,
    LATENCY_BUCKETS_S,
    TASK_HISTOGRAMS,
    HistogramCounts,
    cumulative_buckets,
    le_label,
)

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("recorded", "silent_s", "expected"),
    [
        ("up", 0, "up"),
        ("up", 30, "up"),  # exactly at the limit: still up
        ("up", 30.001, "lost"),
        ("up", 3600, "lost"),
        ("stopped", 0, "stopped"),
        ("stopped", 3600, "stopped"),  # a goodbye is never "lost"
    ],
)
def test_worker_state(recorded: str, silent_s: float, expected: str) -> None:
    seen = NOW - timedelta(seconds=silent_s)
    assert worker_state(recorded, seen, NOW, lost_after_s=30) == expected


def test_clock_ahead_of_the_database_is_up() -> None:
    assert worker_state("up", NOW + timedelta(seconds=2), NOW, 30) == "up"


def test_buckets_are_cumulative_with_inf_last() -> None:
    # 0.5 and 1 (le 1), 1.5 (le 2), 9 (le 10), 100 (+Inf)
    counts = HistogramCounts(labels=("p",), per_bucket=(2, 1, 1, 1), sum=112.0)
    assert counts.count == 5
    got = counts.buckets((1.0, 2.0, 10.0))
    assert got == [("1.0", 2), ("2.0", 3), ("10.0", 4), ("+Inf", 5)]
    with pytest.raises(ValueError, match="one count per bound"):
        counts.buckets((1.0, 2.0))


def test_bad_bucket_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one count per bound"):
        cumulative_buckets((1.0, 2.0), [1], 1)
    with pytest.raises(ValueError, match="ascend"):
        cumulative_buckets((2.0, 1.0), [1, 1], 1)
    with pytest.raises(ValueError, match="not decrease"):
        cumulative_buckets((1.0, 2.0), [2, 1], 2)
    with pytest.raises(ValueError, match="not decrease"):
        cumulative_buckets((1.0,), [3], 2)


def test_labels_and_bounds() -> None:
    assert le_label(math.inf) == "+Inf" and le_label(5) == "5.0" and le_label(0.25) == "0.25"
    for bounds in (DURATION_BUCKETS_S, LATENCY_BUCKETS_S):
        assert list(bounds) == sorted(set(bounds)) and bounds[0] > 0
    for spec in TASK_HISTOGRAMS:
        assert spec.name.startswith("orchestrator_") and spec.name.endswith("_seconds")
