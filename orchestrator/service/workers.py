"""The fleet as the API lists it: each registered worker with its derived state."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.bootstrap import Services
from orchestrator.db.workers import WorkerView
from orchestrator.domain.fleet import WorkerState, worker_state


@dataclass(frozen=True)
class ListedWorker:
    worker: WorkerView
    state: WorkerState


def list_workers(services: Services) -> list[ListedWorker]:
    """Every registered worker; "lost" is judged by the database's clock, as it wrote
    ``last_seen_at`` itself."""
    now = services.workers.now()
    lost_after_s = services.settings.worker_lost_after_s
    return [
        ListedWorker(w, worker_state(w.state, w.last_seen_at, now, lost_after_s))
        for w in services.workers.all()
    ]
