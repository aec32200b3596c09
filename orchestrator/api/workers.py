"""GET /workers: the registered fleet."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from orchestrator.api.auth import ADMIN
from orchestrator.api.openapi import KEY_REQUIRED, errors
from orchestrator.api.schemas import WorkersRead, workers_read
from orchestrator.bootstrap import Services
from orchestrator.service import workers


class WorkerController(Controller):
    tags = ["workers"]
    security = KEY_REQUIRED

    @get(
        "/workers",
        operation_id="list_workers",
        sync_to_thread=True,
        summary="Every registered worker: hardware, capacity, free, running tasks, up/lost/stopped",
        description="Admin keys only (403 for a project member's key): the fleet is shared.",
        opt={ADMIN: True},
        responses=errors(401, 403, 503),
    )
    def list_workers(self, services: NamedDependency[Services]) -> WorkersRead:
        return workers_read(workers.list_workers(services))
