"""The thread that keeps a running task alive in PostgreSQL and watches for kill requests."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Protocol

from orchestrator.ticker import Ticker

log = logging.getLogger(__name__)


class HeartbeatStore(Protocol):
    """The two calls a heartbeat makes (``TaskRepository`` has them)."""

    def heartbeat(self, task_id: str, worker_id: str) -> bool: ...
    def kill_requested(self, task_id: str) -> bool: ...


class Heartbeat:
    """Beat ``repo.heartbeat`` every ``interval_s`` and poll ``repo.kill_requested`` every
    ``kill_poll_s`` while a task runs.

    ``stop`` is set when the run must end: a kill was requested (``kill_requested`` set too) or
    the task is no longer held by this worker (``lost`` set: the reconciler gave it away while
    this worker was stalled, so its result would be discarded anyway). Database errors are
    logged and retried: a short outage must not kill a run, and a long one ends in the
    reconciler's retry.
    """

    def __init__(
        self,
        repo: HeartbeatStore,
        task_id: str,
        worker_id: str,
        *,
        interval_s: float,
        kill_poll_s: float,
        stop: threading.Event | None = None,
    ) -> None:
        self._repo = repo
        self._task_id = task_id
        self._worker_id = worker_id
        self._interval_s = interval_s
        self.stop = stop or threading.Event()
        self.kill_requested = threading.Event()
        self.lost = threading.Event()
        self._next_beat = 0.0
        self._ticker = Ticker(
            f"heartbeat-{task_id}",
            self._tick,
            min(kill_poll_s, interval_s),
            stop_timeout_s=max(interval_s, kill_poll_s) + 5,
            log_extra={"task_id": task_id, "worker_id": worker_id},
        )

    def __enter__(self) -> Heartbeat:
        self._next_beat = time.monotonic() + self._interval_s
        self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ticker.stop()

    def _tick(self) -> None:
        if self._repo.kill_requested(self._task_id):
            if not self.kill_requested.is_set():
                log.info("kill requested", extra={"task_id": self._task_id})
            self.kill_requested.set()
            self.stop.set()
        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + self._interval_s
            if not self._repo.heartbeat(self._task_id, self._worker_id):
                log.warning(
                    "task no longer held by this worker; stopping its run",
                    extra={"task_id": self._task_id, "worker_id": self._worker_id},
                )
                self.lost.set()
                self.stop.set()
