"""Dependencies the controllers receive: the process's services and pipeline catalog."""

from __future__ import annotations

from litestar.datastructures import State
from prometheus_client import CollectorRegistry

from orchestrator.bootstrap import Services
from orchestrator.service.catalog import Catalog


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_catalog(state: State) -> Catalog:
    catalog: Catalog = state.catalog
    return catalog


def provide_metrics(state: State) -> CollectorRegistry:
    registry: CollectorRegistry = state.metrics
    return registry
