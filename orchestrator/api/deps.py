"""Dependencies the controllers receive: the process's services, pipeline catalog and metrics
registry, as the lifespan put them in the app's ``State``.

The providers take no parameters: Litestar parses a provider's parameters on every request,
and a ``state: State`` parameter cost a cached query_task about a twentieth of its CPU. They
read the app's ``State`` through a callable given when the app is built (``providers``)."""

from __future__ import annotations

from collections.abc import Callable

from litestar.datastructures import State
from litestar.di import Provide
from prometheus_client import CollectorRegistry

from orchestrator.bootstrap import Services
from orchestrator.service.catalog import Catalog, CatalogSource


def providers(state: Callable[[], State]) -> dict[str, Provide]:
    """The app's dependencies, read from the ``State`` that ``state()`` returns."""

    def services() -> Services:
        value: Services = state().services
        return value

    def catalog() -> Catalog:
        # The snapshot of the moment: one request sees one version of every pipeline.
        source: CatalogSource = state().catalog
        return source.current()

    def catalog_source() -> CatalogSource:
        source: CatalogSource = state().catalog
        return source

    def metrics() -> CollectorRegistry:
        value: CollectorRegistry = state().metrics
        return value

    return {
        "services": Provide(services, sync_to_thread=False),
        "catalog": Provide(catalog, sync_to_thread=False),
        "catalog_source": Provide(catalog_source, sync_to_thread=False),
        "metrics": Provide(metrics, sync_to_thread=False),
    }
