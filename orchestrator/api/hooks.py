"""POST /tusd_hook: tusd's v2 HTTP hooks, on the internal listener only."""

from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from hooks.protocol import HookRequest, HookResponse
from orchestrator.api.auth import INTERNAL, PUBLIC, hook_secret_guard
from orchestrator.bootstrap import Services
from orchestrator.service.catalog import Catalog
from orchestrator.service.uploads import handle_hook


class HookController(Controller):
    tags = ["tusd"]

    @post(
        "/tusd_hook",
        operation_id="tusd_hook",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        # The hook secret replaces the API key; it is checked before the body is parsed.
        guards=[hook_secret_guard],
        opt={PUBLIC: True, INTERNAL: True},
        # Served on the internal listener only: not part of the public API's schema.
        include_in_schema=False,
        summary="tusd v2 HTTP hook receiver (internal listener, Basic auth secret)",
    )
    def tusd_hook(
        self,
        data: JSONBody[HookRequest],
        services: NamedDependency[Services],
        catalog: NamedDependency[Catalog],
    ) -> HookResponse:
        return handle_hook(services, catalog, data)
