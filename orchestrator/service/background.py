"""Background loops of the API process (``orchestrator.ticker``): a pass every interval.

Every API replica runs them; ``Reconciler.run_pass`` takes a PostgreSQL advisory lock itself,
so only one replica's reconciler pass does work at a time.
"""

from __future__ import annotations

from typing import Any

from orchestrator.bootstrap import Services
from orchestrator.reconciler import Reconciler
from orchestrator.ticker import Ticker


class ReconcileLoop(Ticker):
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
