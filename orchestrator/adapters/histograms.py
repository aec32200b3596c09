"""Histograms every process observes into and the API reads at scrape time (Redis hashes).

Task durations are observed by the worker that ends a run, when it ends it; the API's /metrics
reads the sums. One hash per histogram, ``orchestrator:histogram:<name>``, holds per label set
the count in each bucket (not cumulative: one increment per observation) and the sum.
Observing is one pipelined round trip; a scrape reads one hash per histogram, however many
tasks the database holds.

The counts live as long as Redis keeps them (it is the queue's store: persistent in the
project's deployments). Prometheus reads a reset as it reads any counter's.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError

from orchestrator.domain.histogram import HistogramCounts, HistogramSpec
from orchestrator.errors import QueueError

KEY_PREFIX = "orchestrator:histogram:"
_SUM = "sum"


class Observations(Protocol):
    """The call that records one observation (``RedisHistograms`` has it)."""

    def observe(self, spec: HistogramSpec, labels: Sequence[str], value: float) -> None: ...


class RedisHistograms:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def observe(self, spec: HistogramSpec, labels: Sequence[str], value: float) -> None:
        """Count ``value`` in the first bucket whose bound is at least it (or in +Inf)."""
        value = max(value, 0.0)  # clock steps may make a difference slightly negative
        bucket = bisect.bisect_left(spec.bounds, value)
        key, prefix = KEY_PREFIX + spec.name, _field_prefix(labels)
        try:
            # MULTI/EXEC: a scrape never sees a bucket counted without its sum.
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, f"{prefix}{bucket}", 1)
                pipe.hincrbyfloat(key, f"{prefix}{_SUM}", value)
                pipe.execute()
        except RedisError as exc:
            raise QueueError(f"cannot record {spec.name}: {exc}") from exc

    def read(self, spec: HistogramSpec) -> list[HistogramCounts]:
        try:
            raw: dict[bytes, bytes] = self._redis.hgetall(KEY_PREFIX + spec.name)  # type: ignore[assignment]
        except RedisError as exc:
            raise QueueError(f"cannot read {spec.name}: {exc}") from exc
        bounds = spec.bounds
        by_labels: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            labels, _, part = field.decode().rpartition("|")
            by_labels.setdefault(labels, {})[part] = float(value)
        found = []
        for labels, parts in sorted(by_labels.items()):
            per_bucket = [int(parts.get(str(i), 0)) for i in range(len(bounds) + 1)]
            found.append(
                HistogramCounts(
                    labels=tuple(json.loads(labels)),
                    per_bucket=tuple(per_bucket),
                    sum=parts.get(_SUM, 0.0),
                )
            )
        return found


def _field_prefix(labels: Sequence[str]) -> str:
    # JSON: label values may hold any character, "|" included (it is split off the right).
    return json.dumps(list(labels), separators=(",", ":")) + "|"
