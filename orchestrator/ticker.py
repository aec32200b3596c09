"""One background loop for every process: a function called on an interval in a daemon thread.

The API's reconciler and webhook notifier, the worker's announcements and each running task's
heartbeat are all this loop. A tick that raises is logged and the loop goes on: background work
must outlive an outage of the services it calls (PostgreSQL down, Redis restarting).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Ticker:
    """Calls ``tick`` every ``interval_s`` seconds (the first call one interval after ``start``)
    in a daemon thread named ``name``, until ``stop``.

    A failing tick is logged as a warning with its error; the first of a run of failures also
    with its traceback, and the first success after them says the loop works again.
    """

    def __init__(
        self,
        name: str,
        tick: Callable[[], object],
        interval_s: float,
        *,
        stop_timeout_s: float | None = None,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.name = name
        # Fields every log line of this loop carries (a heartbeat's task id: threads do not
        # inherit the task context of the code that started them).
        self._log_extra = dict(log_extra or {})
        self._tick = tick
        self._interval_s = interval_s
        # How long ``stop`` waits for a tick in progress, s; default: one interval and 5 s.
        self._stop_timeout_s = interval_s + 5 if stop_timeout_s is None else stop_timeout_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self._stop_timeout_s if timeout_s is None else timeout_s)

    def tick_once(self) -> bool:
        """One tick now, in the caller's thread; False when it failed (and was logged)."""
        try:
            self._tick()
        except Exception as exc:
            log.warning(
                "%s failed; will retry",
                self.name,
                exc_info=not self._failing,
                extra={**self._log_extra, "error": str(exc)},
            )
            self._failing = True
            return False
        if self._failing:
            log.info("%s works again", self.name, extra=self._log_extra)
        self._failing = False
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self.tick_once()
