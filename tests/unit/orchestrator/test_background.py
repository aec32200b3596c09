"""The API's reconciler loop: runs passes on its interval, survives failures, stops."""

from __future__ import annotations

import threading
import time
from typing import Any

from orchestrator.service.background import ReconcileLoop


class FlakyReconciler:
    def __init__(self) -> None:
        self.passes = 0
        self.enough = threading.Event()

    def run_pass(self) -> None:
        self.passes += 1
        if self.passes >= 3:
            self.enough.set()
        if self.passes == 1:
            raise RuntimeError("database down")


def test_loop_runs_passes_past_a_failure_and_stops() -> None:
    reconciler = FlakyReconciler()
    services: Any = object()  # never touched when a reconciler is given
    loop = ReconcileLoop(services, interval_s=0.01, reconciler=reconciler)
    loop.start()
    assert loop.running
    assert reconciler.enough.wait(5)
    loop.stop()
    assert not loop.running
    passes = reconciler.passes
    time.sleep(0.05)
    assert reconciler.passes == passes
