"""The frozen-database drill, shared by the local stack and the compose deployment.

PostgreSQL's postmaster and every child are stopped with SIGSTOP, as a frozen VM or a stuck
storage volume would stop them. The kernel still accepts connections and acknowledges bytes,
so only the API's own deadlines can notice. While it is frozen, clients keep calling:

* an endpoint that needs the database (``GET /query_task``), from several threads at once;
* ``GET /pipelines``, which needs none;
* ``GET /health``.

Each call's status and latency are recorded; the caller asserts on them and prints them.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psutil
import requests

from orchestrator.settings import Settings

DB_CALLERS = 4  # concurrent callers of the database endpoint: more than one pooled connection


@dataclass
class Calls:
    """(status code or 0 for no answer, seconds) of each call to one endpoint."""

    seen: list[tuple[int, float]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    @property
    def codes(self) -> set[int]:
        return {code for code, _ in self.seen}

    @property
    def slowest_s(self) -> float:
        return max(s for _, s in self.seen)

    @property
    def median_s(self) -> float:
        return statistics.median(s for _, s in self.seen)

    def summary(self) -> str:
        return (
            f"{len(self.seen)} calls, codes {sorted(self.codes)}, "
            f"median {self.median_s:.2f} s, slowest {self.slowest_s:.2f} s"
        )


@dataclass
class Drill:
    database: Calls = field(default_factory=Calls)
    no_database: Calls = field(default_factory=Calls)
    health: Calls = field(default_factory=Calls)
    recovered_s: float = 0.0  # thaw → /health 200 and the database endpoint 200 again
    # What the API said after the thaw while it had not recovered yet (first and last answers):
    # the cause, when recovery is slow.
    not_yet: list[str] = field(default_factory=list)


def _call(calls: Calls, url: str, headers: dict[str, str]) -> None:
    started = time.monotonic()
    try:
        r = requests.get(url, headers=headers, timeout=30)
    except requests.RequestException:
        calls.seen.append((0, time.monotonic() - started))
        return
    calls.seen.append((r.status_code, time.monotonic() - started))
    calls.bodies.append(r.json() if r.headers.get("content-type", "").startswith("app") else r.text)


def _keep_calling(
    url: str,
    headers: dict[str, str],
    callers: int,
    pause_s: float,
    for_s: float,
    after_s: float = 0.0,
) -> Calls:
    """``callers`` threads calling ``url`` for ``for_s`` seconds, ``pause_s`` apart, from
    ``after_s`` on."""
    calls = Calls()
    time.sleep(after_s)
    until = time.monotonic() + for_s - after_s

    def loop() -> None:
        while time.monotonic() < until:
            _call(calls, url, headers)
            time.sleep(pause_s)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(for_s + 60)
    return calls


@contextmanager
def stopped(pids: Sequence[int]) -> Iterator[None]:
    """SIGSTOP every pid, SIGCONT them all on the way out whatever happens."""
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def process_tree(pid: int) -> list[int]:
    """The postmaster and its children (backends, checkpointer, walwriter...)."""
    root = psutil.Process(pid)
    return [root.pid, *(c.pid for c in root.children(recursive=True))]


def run(
    api_url: str,
    api_key: str,
    task_id: str,
    freeze: Callable[[], Any],
    frozen_s: float = 15.0,
) -> Drill:
    """Freeze with ``freeze()`` (a context manager) for ``frozen_s`` while calling the API."""
    drill = Drill()
    headers = {"X-API-Key": api_key}
    # /health may answer from a look taken up to HEALTH_CACHE_S before the freeze (its
    # documented staleness): its calls start once that has passed.
    fresh_after = Settings.model_fields["health_cache_s"].default
    probes = {
        "database": (f"{api_url}/query_task/{task_id}", DB_CALLERS, 0.1, 0.0),
        "no_database": (f"{api_url}/pipelines", 1, 0.1, 0.0),
        "health": (f"{api_url}/health", 1, 0.5, fresh_after),
    }
    with freeze(), ThreadPoolExecutor(len(probes)) as pool:
        futures = {
            name: pool.submit(_keep_calling, url, headers, n, pause_s, frozen_s, after_s)
            for name, (url, n, pause_s, after_s) in probes.items()
        }
        for name, future in futures.items():
            setattr(drill, name, future.result(timeout=frozen_s + 120))
    thawed = time.monotonic()
    deadline = thawed + 120
    while True:
        health = requests.get(f"{api_url}/health", timeout=30)
        query = requests.get(f"{api_url}/query_task/{task_id}", headers=headers, timeout=30)
        if health.status_code == 200 and query.status_code == 200:
            break
        answer = f"/health {health.status_code} {health.text[:300]} | query_task {query.text[:300]}"
        drill.not_yet[1:] = [answer] if drill.not_yet else []
        if not drill.not_yet:
            drill.not_yet.append(answer)
        assert time.monotonic() < deadline, (health.text, query.text)
        time.sleep(0.1)
    drill.recovered_s = time.monotonic() - thawed
    return drill


def check(drill: Drill) -> str:
    """The drill's requirements; returns the figures to print."""
    assert drill.database.seen and drill.no_database.seen and drill.health.seen
    # Every call that needs the database is refused, clearly and long before the thaw.
    assert drill.database.codes == {503}, drill.database.seen
    assert all("service unavailable" in b["detail"] for b in drill.database.bodies)
    assert drill.database.slowest_s < 4.0, drill.database.summary()
    # What needs no database is served as usual.
    assert drill.no_database.codes == {200}, drill.no_database.seen
    # Not even a wait for a thread: ~10 ms here; up to 1.9 s before the guards were coroutines
    # and the handler pool was sized from settings.
    assert drill.no_database.slowest_s < 1.0, drill.no_database.summary()
    # Readiness says the database is down instead of hanging with it.
    assert drill.health.codes == {503}, drill.health.seen
    assert all(b["checks"]["postgres"] != "ok" for b in drill.health.bodies)
    assert drill.health.slowest_s < 4.0, drill.health.summary()
    return (
        f"query_task: {drill.database.summary()}; /pipelines: {drill.no_database.summary()}; "
        f"/health: {drill.health.summary()}; recovered {drill.recovered_s:.2f} s after the thaw"
        + (f" (meanwhile: {' ... '.join(drill.not_yet)})" if drill.not_yet else "")
    )
