"""GET /health: liveness plus readiness of PostgreSQL, Redis and S3."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from orchestrator.api.auth import PUBLIC
from orchestrator.bootstrap import Services
from orchestrator.service.health import check


class HealthController(Controller):
    tags = ["health"]

    @get(
        "/health",
        operation_id="health",
        sync_to_thread=True,
        opt={PUBLIC: True},
        summary="200 when PostgreSQL, Redis and S3 all answer; 503 naming each that does not",
    )
    def health(self, services: NamedDependency[Services]) -> Response[dict[str, Any]]:
        checks = check(services)
        ok = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )
