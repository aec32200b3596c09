"""GET /health: liveness plus readiness of PostgreSQL, Redis and S3."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from orchestrator.api.auth import PUBLIC
from orchestrator.bootstrap import Services
from orchestrator.service.health import check


class HealthRead(msgspec.Struct):
    status: Annotated[str, msgspec.Meta(description='"ok", or "unavailable" (503)')]
    checks: Annotated[
        dict[str, str],
        msgspec.Meta(description='postgres, redis, s3: "ok" or "error: <what failed>"'),
    ]


class HealthController(Controller):
    tags = ["health"]

    @get(
        "/health",
        operation_id="health",
        sync_to_thread=True,
        opt={PUBLIC: True},
        summary="200 when PostgreSQL, Redis and S3 all answer; 503 naming each that does not",
        responses={
            503: ResponseSpec(
                HealthRead,
                description="One or more backing services do not answer (named in checks)",
                generate_examples=False,
            )
        },
    )
    def health(self, services: NamedDependency[Services]) -> Response[HealthRead]:
        checks = check(services)
        ok = all(v == "ok" for v in checks.values())
        return Response(
            HealthRead(status="ok" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )
