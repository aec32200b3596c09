"""The thread that keeps a running task alive in PostgreSQL and watches for kill requests."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from orchestrator.db.repository import TaskRepository

log = logging.getLogger(__name__)


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
        repo: TaskRepository,
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
        self._kill_poll_s = kill_poll_s
        self.stop = stop or threading.Event()
        self.kill_requested = threading.Event()
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{task_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(timeout=max(self._interval_s, self._kill_poll_s) + 5)

    def _loop(self) -> None:
        next_beat = time.monotonic() + self._interval_s
        while not self._done.wait(min(self._kill_poll_s, self._interval_s)):
            try:
                if self._repo.kill_requested(self._task_id):
                    if not self.kill_requested.is_set():
                        log.info("kill requested", extra={"task_id": self._task_id})
                    self.kill_requested.set()
                    self.stop.set()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._interval_s
                    if not self._repo.heartbeat(self._task_id, self._worker_id):
                        log.warning(
                            "task no longer held by this worker; stopping its run",
                            extra={"task_id": self._task_id, "worker_id": self._worker_id},
                        )
                        self.lost.set()
                        self.stop.set()
            except Exception as exc:
                log.warning(
                    "heartbeat failed; will retry",
                    extra={"task_id": self._task_id, "error": str(exc)},
                )
