"""Readiness of each backing service, named, with its error; and a short-lived cache of it so
that a flood of health checks does not become a flood of PostgreSQL, Redis and S3 requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from orchestrator.bootstrap import Services
from orchestrator.service.lifecycle import rules_problem

Checks = dict[str, str]


def check(services: Services) -> Checks:
    probes: dict[str, Callable[[], None]] = {
        "postgres": services.tasks.ping,
        "redis": services.queue.ping,
        "s3": services.storage.ping,
    }
    results: Checks = {}
    for name, probe in probes.items():
        try:
            probe()
        except Exception as exc:  # any failure is the answer, not an error of /health
            results[name] = f"error: {type(exc).__name__}: {exc}"
        else:
            results[name] = "ok"
    if results["s3"] == "ok":
        results["lifecycle"] = _lifecycle(services)
    return results


def _lifecycle(services: Services) -> str:
    """The buckets' expiration rules as the settings want them; a drift is a warning (the
    sweep still removes what is due), not a reason to take the API out of service."""
    try:
        problem = rules_problem(services.storage, services.settings)
    except Exception as exc:
        return f"warning: cannot read the buckets' lifecycle: {exc}"
    return "ok" if problem is None else f"warning: {problem}"


def healthy(checks: Checks) -> bool:
    return all(v == "ok" or v.startswith("warning:") for v in checks.values())


class Readiness:
    """``probe``'s answer, at most ``max_age_s`` old. One caller probes at a time and the
    callers that arrive meanwhile take its answer: never one older than ``max_age_s``, so an
    outage shows within that time, and never more than one probe in flight."""

    def __init__(
        self,
        probe: Callable[[], Checks],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Checks | None = None
        self._at = 0.0

    def _fresh_at(self, arrived: float) -> Checks | None:
        """The last answer if it is less than ``max_age_s`` older than the caller's arrival;
        one that finished after the caller came always is (even with ``max_age_s`` 0)."""
        if self._last is not None and arrived - self._at < self._max_age_s:
            return self._last
        return None

    def checks(self) -> Checks:
        arrived = self._clock()
        fresh = self._fresh_at(arrived)
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._fresh_at(arrived)  # a look that finished while we waited
            if fresh is not None:
                return fresh
            self._last = self._probe()
            self._at = self._clock()
            return self._last
