"""GET /health: readiness of PostgreSQL, Redis and S3 (cached for HEALTH_CACHE_S); GET
/health/live: the process answers, no I/O."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from orchestrator.api.auth import PUBLIC
from orchestrator.service.health import Readiness, healthy


class HealthRead(msgspec.Struct):
    status: Annotated[str, msgspec.Meta(description='"ok", or "unavailable" (503)')]
    checks: Annotated[
        dict[str, str],
        msgspec.Meta(
            description='postgres, redis, s3: "ok" or "error: <what failed>"; lifecycle (the '
            'buckets\' expiration rules match the retention settings): "ok" or "warning: '
            '<what differs>", which does not make the answer 503'
        ),
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
    def health(self, state: State) -> Response[HealthRead]:
        readiness: Readiness = state.readiness
        checks = readiness.checks()
        ok = healthy(checks)
        return Response(
            HealthRead(status="ok" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )

    @get(
        "/health/live",
        operation_id="liveness",
        sync_to_thread=False,
        opt={PUBLIC: True},
        summary="200 while the process serves requests; touches no backing service",
    )
    def live(self) -> HealthRead:
        return HealthRead(status="ok", checks={})
