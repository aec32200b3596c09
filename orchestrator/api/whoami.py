"""GET /whoami: which project and role the caller's key has (what clients show)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get

from orchestrator.api.auth import principal_of
from orchestrator.api.openapi import KEY_REQUIRED, errors


class WhoAmIRead(msgspec.Struct):
    project: Annotated[str, msgspec.Meta(description="the project new tasks are created in")]
    role: Annotated[str, msgspec.Meta(description="admin (sees every project) or member")]
    key_id: Annotated[
        str | None, msgspec.Meta(description="the key's id; null for the bootstrap API_KEY")
    ]


class WhoAmIController(Controller):
    tags = ["access"]
    security = KEY_REQUIRED

    @get(
        "/whoami",
        operation_id="whoami",
        summary="The caller's project and role",
        responses=errors(401),
    )
    async def whoami(self, request: Request) -> WhoAmIRead:
        who = principal_of(request)
        return WhoAmIRead(project=who.project_name, role=who.role.value, key_id=who.key_id)
