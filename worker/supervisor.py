"""The worker's main process: announces the worker and supervises its slot processes.

One ``python -m worker`` is one *worker* (id ``<host>:<pid>``, ``host`` from WORKER_HOST or
the machine's name) with a capacity (WORKER_CPUS / WORKER_MEMORY_BYTES, default all CPUs and
all memory but 512 MiB, every GPU found) shared by ``slots`` slot processes
(``worker.slot``), each an RQ worker that runs one task at a time in its own process. Why
processes: RQ's worker is single-job, and a process per slot keeps a crashing or timed-out job
(and RQ's signal handling) contained to its slot, which the supervisor restarts, while
admission under a PostgreSQL lock keeps the slots from over-committing the shared capacity.

Signals: the first SIGTERM/SIGINT is passed on to every slot as SIGTERM (RQ's warm shutdown:
running tasks finish), the second as a second SIGTERM (cold: runs are stopped and the
reconciler retries their tasks). The worker keeps announcing until its slots are gone, then
marks itself stopped. Slots run in their own process groups (a Ctrl-C reaches only this
process, which passes it on once) and die with it when it is killed outright.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import psutil

from orchestrator.db.repository import TaskRepository
from orchestrator.db.workers import WorkerRepository
from orchestrator.domain.capacity import Capacity
from orchestrator.settings import Settings
from orchestrator.ticker import Ticker
from worker.announce import build_announcement
from worker.hardware import Hardware

log = logging.getLogger("worker")

POLL_S = 0.5
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
# A slot that lived this long is healthy again: its next crash restarts it without delay.
HEALTHY_AFTER_S = 60.0


def slot_count(configured: int, cpus: int | None = None) -> int:
    """``configured`` slots, or one per CPU when 0; at least one."""
    if configured > 0:
        return configured
    return max(1, cpus if cpus is not None else (psutil.cpu_count(logical=True) or 1))


@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float = 0.0


@dataclass
class Supervisor:
    settings: Settings
    worker_id: str
    host: str
    capacity: Capacity
    slots: int
    tasks: TaskRepository
    workers: WorkerRepository
    sample_hardware: Callable[[], Hardware]
    # The pipeline images this worker has (None: any); announced so that create_task refuses
    # what no live worker can run.
    sample_images: Callable[[], list[str] | None] = lambda: None
    # Called on SIGHUP before it is passed to the slots: the pipeline files are re-read.
    reload: Callable[[], None] = lambda: None
    _slots: list[_Slot] = field(default_factory=list)
    _signals: int = 0
    _signalled: threading.Event = field(default_factory=threading.Event)

    # --- announcements ---------------------------------------------------------------------
    def announce_once(self) -> None:
        self.workers.announce(
            build_announcement(
                worker_id=self.worker_id,
                host=self.host,
                queues=self.settings.queues,
                executor=self.settings.executor,
                hardware=self.sample_hardware(),
                capacity=self.capacity,
                running=self.tasks.running_in_group(self.worker_id),
                images=self.sample_images(),
            )
        )

    # --- slots -----------------------------------------------------------------------------
    def slot_argv(self, index: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "worker.slot",
            "--group",
            self.worker_id,
            "--index",
            str(index),
            "--capacity",
            json.dumps(self.capacity.as_dict()),
        ]

    def _start(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen(
            self.slot_argv(slot.index), stdin=subprocess.DEVNULL, process_group=0
        )
        slot.started_at = time.monotonic()
        if self._signals:  # a stop arrived while it was being started
            slot.proc.send_signal(signal.SIGTERM)
        log.info("slot started", extra={"slot": slot.index, "pid": slot.proc.pid})

    def _reap(self, slot: _Slot) -> None:
        """Notice a slot that exited; schedule its restart unless the worker is stopping."""
        if slot.proc is None or slot.proc.poll() is None:
            return
        code = slot.proc.returncode
        slot.proc = None
        if self._signals:
            return
        lived = time.monotonic() - slot.started_at
        slot.crashes = 0 if lived > HEALTHY_AFTER_S else slot.crashes + 1
        delay = RESTART_BACKOFF_S[min(slot.crashes, len(RESTART_BACKOFF_S) - 1)]
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "slot exited; restarting",
            extra={"slot": slot.index, "exit_code": code, "restart_in_s": delay},
        )

    def _forward(self, sig: int) -> None:
        for slot in self._slots:
            if slot.proc is not None and slot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(sig)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        log.info(
            "stopping: warm shutdown (running tasks finish)"
            if self._signals == 1
            else "stopping now: running tasks are stopped and retried elsewhere",
            extra={"signal": signal.Signals(signum).name},
        )
        self._forward(signal.SIGTERM)
        self._signalled.set()

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        self.reload()
        self._forward(signal.SIGHUP)

    def run(self) -> int:
        """Announce, start the slots, supervise until signalled and every slot is gone."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)
        announcer = Ticker(
            "worker announcement", self.announce_once, self.settings.worker_announce_interval_s
        )
        announcer.tick_once()  # at once, so the API sees this worker before it takes any task
        announcer.start()
        self._slots = [_Slot(index=k) for k in range(self.slots)]
        try:
            while True:  # the first pass starts every slot (restart_at 0: due at once)
                for slot in self._slots:
                    self._reap(slot)
                    if (
                        slot.proc is None
                        and not self._signals
                        and time.monotonic() >= slot.restart_at
                    ):
                        self._start(slot)
                if self._signals and all(s.proc is None for s in self._slots):
                    break
                self._signalled.wait(POLL_S)
                self._signalled.clear()
        finally:
            announcer.stop()
            try:
                self.workers.stopped(self.worker_id)
            except Exception as exc:
                log.warning("cannot mark the worker stopped", extra={"error": str(exc)})
        log.info("worker stopped", extra={"worker_id": self.worker_id})
        return 0
