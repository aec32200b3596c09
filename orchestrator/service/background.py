"""Background loops of the API process: a pass run every interval in a daemon thread.

Every API replica runs them; ``Reconciler.run_pass`` takes a PostgreSQL advisory lock itself,
so only one replica's reconciler pass does work at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.bootstrap import Services
from orchestrator.reconciler import Reconciler

log = logging.getLogger(__name__)


class PassLoop:
    """Runs ``run_pass`` every ``interval_s`` in a thread named ``name`` until stopped; one
    failed pass (database down) is logged and does not end the loop."""

    def __init__(
        self, name: str, run_pass: Callable[[], object], interval_s: float, stop_timeout_s: float
    ) -> None:
        self._name = name
        self._run_pass = run_pass
        self._interval_s = interval_s
        self._stop_timeout_s = stop_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._stop_timeout_s if timeout_s is None else timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._run_pass()
            except Exception:
                log.exception("%s pass failed", self._name)


class ReconcileLoop(PassLoop):
    def __init__(
        self, services: Services, interval_s: float | None = None, reconciler: Any = None
    ) -> None:
        reconciler = reconciler or Reconciler(services)
        super().__init__(
            "reconciler",
            reconciler.run_pass,
            interval_s or services.settings.reconcile_interval_s,
            stop_timeout_s=10.0,
        )
