"""The Litestar app factory. Nothing connects at import: services are built in the lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from litestar import Litestar

from orchestrator.api.auth import AccessMiddleware
from orchestrator.api.cache import STORE, BoundedMemoryStore, response_cache
from orchestrator.api.coalescer import Coalescer
from orchestrator.api.deps import providers
from orchestrator.api.errors import EXCEPTION_HANDLERS
from orchestrator.api.health import HealthController
from orchestrator.api.hooks import HookController
from orchestrator.api.metrics import MetricsController, count_request
from orchestrator.api.openapi import (
    StrictStructSchemaPlugin,
    complete_document,
    openapi_config,
)
from orchestrator.api.pages import PageController, static_router
from orchestrator.api.pipelines import PipelineController
from orchestrator.api.ratelimit import STORE as RATE_STORE
from orchestrator.api.ratelimit import rate_limit
from orchestrator.api.tasks import TaskController, task_document
from orchestrator.api.whoami import WhoAmIController
from orchestrator.api.workers import WorkerController
from orchestrator.bootstrap import Services, build_services
from orchestrator.notifier import NotifyLoop
from orchestrator.processes import on_sighup
from orchestrator.service.background import ReconcileLoop
from orchestrator.service.catalog import Catalog, CatalogSource
from orchestrator.service.finished import link_reuse_s
from orchestrator.service.health import Readiness, check
from orchestrator.service.lifecycle import apply_rules
from orchestrator.service.logs import FOLLOWER_THREADS
from orchestrator.service.metrics import build_registry
from orchestrator.settings import Settings
from pipelines.catalog import FixedCatalog, PipelineCatalog


def create_app(
    services: Services | None = None,
    *,
    catalog: Catalog | None = None,
    reconcile: bool = True,
    notify: bool | None = None,
) -> Litestar:
    """Build the API.

    ``services`` given: the caller owns (and closes) them; otherwise they are built from the
    environment at startup and closed at shutdown. ``catalog`` defaults to the pipeline files
    of PIPELINES_PATH, re-read when they change or on SIGHUP; a given one is fixed.
    ``reconcile=False`` leaves out the background reconciler (tests); ``notify``
    (default: as ``reconcile``) runs the webhook notifier (orchestrator.notifier).
    """

    # Read once here: the response cache's lifetime depends on it, and the lifespan builds the
    # services from the same settings.
    settings = services.settings if services is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = services is None
        svc: Services = (
            services
            if services is not None
            else await anyio.to_thread.run_sync(build_services, settings)
        )
        source: CatalogSource = (
            PipelineCatalog(settings.pipeline_dirs, check_every_s=settings.pipelines_reload_s)
            if catalog is None
            else FixedCatalog(catalog)
        )
        app.state.catalog = source
        on_sighup(source.invalidate)
        app.state.services = svc
        complete_document(app.openapi_schema, source.current())
        # Sync handlers run in the loop's default executor, which asyncio sizes from the CPU
        # count (6 threads on 2 cores): a few requests stuck on a slow database would hold them
        # all. Sized from settings instead.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(svc.settings.api_threads, thread_name_prefix="api-handler")
        )
        app.state.metrics = build_registry(svc)
        app.state.readiness = Readiness(lambda: check(svc), svc.settings.health_cache_s)
        # Threads for live log followers, apart from the pool of the sync endpoints.
        app.state.log_limiter = anyio.CapacityLimiter(FOLLOWER_THREADS)
        # Listing pages polled by many clients at once are read once per round (GET /tasks).
        app.state.listings = Coalescer()
        # Every process forgets what it kept of a task another one deleted or expired.
        evictions = svc.evictions.listen(svc.finished.forget, svc.finished.forget_all)
        loop = ReconcileLoop(svc) if reconcile else None
        if loop is not None:
            # The process that sweeps for retention also sets the store's own rules.
            await anyio.to_thread.run_sync(apply_rules, svc.storage, svc.settings)
            loop.start()
        run_notifier = reconcile if notify is None else notify
        notifier = NotifyLoop(svc, task_document) if run_notifier else None
        if notifier is not None:
            notifier.start()
        # What startup made (the app, the routes, the clients, the imported modules) lives as
        # long as the process: out of the collector's reach, a full collection no longer walks
        # it. Those collections were the p99 of a cached query_task (65 ms at 32 connections).
        gc.collect()  # startup's garbage first: freezing it would keep it for ever
        gc.freeze()
        try:
            yield
        finally:
            if notifier is not None:
                await anyio.to_thread.run_sync(notifier.stop)
            if loop is not None:
                await anyio.to_thread.run_sync(loop.stop)
            await anyio.to_thread.run_sync(evictions.stop)
            if owned:
                svc.close()

    app = Litestar(
        route_handlers=[
            TaskController,
            WorkerController,
            WhoAmIController,
            MetricsController,
            HookController,
            HealthController,
            PipelineController,
            # The browser UI: public pages and static files (orchestrator/web).
            PageController,
            static_router(),
        ],
        dependencies=providers(lambda: app.state),
        before_send=[count_request],
        # The key first: the limit counts per key, and an unknown key is refused uncounted.
        middleware=[AccessMiddleware]
        + ([rate_limit(settings.rate_limit_per_s).middleware] if settings.rate_limit_per_s else []),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        # Logging is configured once per process by orchestrator.logs (JSON lines).
        logging_config=None,
        openapi_config=openapi_config(),
        plugins=[StrictStructSchemaPlugin()],
        # The other half of the links' reuse (the first is in Services.finished).
        response_cache_config=response_cache(link_reuse_s(settings.presign_expiry_s) / 2),
        stores={STORE: BoundedMemoryStore(), RATE_STORE: BoundedMemoryStore()},
    )
    return app
