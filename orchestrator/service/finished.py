"""A process's memory of finished tasks: their views, and the result links last signed for them.

A task in a terminal state does not change its state (``domain/status.py``), so its view can
be answered from memory, in every API process alike; the first read comes from PostgreSQL.
Two things change a finished task's view after its end: a delete, and retention removing its
results. The process that makes either change announces it (``adapters/evictions.py``) and
every process forgets the task (``forget``); ``generation`` then moves on, which retires the
whole answers kept by ``api/cache.py``. A task's webhook deliveries also change after its end;
they are not kept here: callers read those fresh.

Presigned result URLs are signed for ``presign_expiry_s`` and handed out again for at most
``link_reuse_s``: reused here for half of it, then kept in whole answers (``api/cache.py``)
for the other half. Every answer carries URLs valid for ``presign_expiry_s`` minus at most
``link_reuse_s``, and a task polled by many clients is signed twice a minute instead of on
every call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.domain.task import ResultLink, TaskView

# Finished tasks kept per process, least recently read forgotten first. A view with its
# inputs and results is a few KiB: 10,000 of them hold tens of MiB at most.
CAPACITY = 10_000
# The longest a signed result URL is handed out again, in seconds (see ``link_reuse_s``).
LINK_REUSE_MAX_S = 60.0


def link_reuse_s(expiry_s: float) -> float:
    """How long links signed for ``expiry_s`` are reused: a tenth of their life, at most a
    minute, so an answer's URLs always have 90 % of their lifetime left or more."""
    return min(LINK_REUSE_MAX_S, expiry_s / 10)


@dataclass
class _Entry:
    task: TaskView
    links: Sequence[ResultLink] | None = None
    signed_at: float = 0.0  # monotonic seconds when ``links`` were signed


class FinishedTasks:
    """Terminal tasks by id, with the result links last signed for them."""

    def __init__(self, *, reuse_s: float, capacity: int = CAPACITY) -> None:
        self._reuse_s = reuse_s
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Request threads and the event loop both read and write.
        self._lock = threading.Lock()
        self.generation = 0  # moves on at every forget: part of the whole answers' keys

    def view(self, task_id: str) -> TaskView | None:
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None:
                return None
            self._entries.move_to_end(task_id)
            return entry.task

    def keep(self, task: TaskView) -> None:
        """Remember ``task`` if it is finished; anything else may still change."""
        if not task.status.terminal:
            return
        with self._lock:
            if task.id in self._entries:
                return
            self._entries[task.id] = _Entry(task)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def links(self, task_id: str, now: float) -> Sequence[ResultLink] | None:
        """The links signed for ``task_id`` if they were signed within the reuse window."""
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None or entry.links is None or now - entry.signed_at >= self._reuse_s:
                return None
            return entry.links

    def keep_links(self, task_id: str, links: Sequence[ResultLink], now: float) -> None:
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is not None:
                entry.links, entry.signed_at = links, now

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._entries.pop(task_id, None)
            self.generation += 1

    def forget_all(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)
