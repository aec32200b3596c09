"""Runs reconciler passes in a background thread of the API process.

Every API replica runs this loop; ``Reconciler.run_pass`` takes a PostgreSQL advisory lock
itself, so only one replica's pass does work at a time.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from orchestrator.bootstrap import Services

log = logging.getLogger(__name__)


def _load_reconciler(services: Services) -> Any | None:
    # Imported lazily so the API still serves (without reconciling) where it is absent.
    try:
        module = importlib.import_module("orchestrator.reconciler")
    except ImportError as exc:
        log.warning("reconciler not available, not reconciling: %s", exc)
        return None
    return module.Reconciler(services)


class ReconcileLoop:
    def __init__(
        self, services: Services, interval_s: float | None = None, reconciler: Any = None
    ) -> None:
        self._services = services
        self._interval_s = interval_s or services.settings.reconcile_interval_s
        self._reconciler = reconciler
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        reconciler = self._reconciler or _load_reconciler(self._services)
        if reconciler is None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(reconciler,), name="reconciler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, reconciler: Any) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                reconciler.run_pass()
            except Exception:  # one failed pass (database down) must not end the loop
                log.exception("reconciler pass failed")
