"""The last resort against a task that outlives its job's timeout in a slot's process.

A slot runs its tasks in its own process (``worker.slot``), so nothing outside the task can
kill it the way RQ kills a forked work horse. RQ's own timeout raises ``JobTimeoutException``
in the slot's main thread, which ends a run that is stuck in Python code; a thread blocked in
I/O that never returns (a transfer to a storage that stopped answering) survives it, and the
run's heartbeat thread would keep the task held for ever. ``OverrunGuard`` ends the whole
process ``GRACE_S`` after the job's timeout: the heartbeat stops, the reconciler retries the
task, the supervisor starts a fresh slot, and that slot removes the container left behind.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Seconds past the job's timeout before the process is ended: time for RQ's timeout exception
# to unwind the run (stop the container, write the task's end).
GRACE_S = 60.0


class OverrunGuard:
    def __init__(self, grace_s: float = GRACE_S, end: Callable[[int], None] = os._exit) -> None:
        self._grace_s = grace_s
        self._end = end

    @contextmanager
    def watching(self, task_id: str, timeout_s: float) -> Iterator[None]:
        """Within the block, the process ends if it lasts ``timeout_s`` plus the grace."""
        timer = threading.Timer(timeout_s + self._grace_s, self._overran, args=(task_id,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()

    def _overran(self, task_id: str) -> None:
        log.error(
            "task outlived its job's timeout; ending this slot's process",
            extra={"task_id": task_id, "grace_s": self._grace_s},
        )
        self._end(1)
