"""Runs reconciler passes in a background thread of the API process.

Every API replica runs this loop; a PostgreSQL advisory lock, held on a dedicated connection for
the length of one pass, lets only one replica reconcile at a time.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from sqlalchemy import text

from orchestrator.bootstrap import Services

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock id every replica agrees on ("reconcil" in ASCII).
ADVISORY_LOCK_ID = 0x7265636F6E63696C


def _load_reconciler(services: Services) -> Any | None:
    try:
        module = importlib.import_module("orchestrator.reconciler")
    except ImportError as exc:
        log.warning("reconciler not available, not reconciling: %s", exc)
        return None
    return module.Reconciler(services)


class ReconcileLoop:
    def __init__(self, services: Services, interval_s: float | None = None) -> None:
        self._services = services
        self._interval_s = interval_s or services.settings.reconcile_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        reconciler = _load_reconciler(self._services)
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
                self.run_locked(reconciler)
            except Exception:  # one failed pass must not end the loop
                log.exception("reconciler pass failed")

    def run_locked(self, reconciler: Any) -> bool:
        """One pass if this replica gets the lock; False when another replica holds it."""
        with self._services.engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            if not got.scalar():
                return False
            try:
                reconciler.run_pass()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                conn.commit()
        return True
