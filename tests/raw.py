"""Direct database and Redis access for tests that set up or inspect state the product's own
interfaces do not expose (``Services`` carries repositories and adapters, not raw clients)."""

from __future__ import annotations

from functools import cache

from redis import Redis
from sqlalchemy import Engine, create_engine

from orchestrator.bootstrap import Services


@cache
def _engine(url: str) -> Engine:
    return create_engine(url, pool_size=2)


@cache
def _redis(url: str) -> Redis:
    return Redis.from_url(url)


def raw_engine(services: Services) -> Engine:
    return _engine(services.settings.database_url)


def raw_redis(services: Services) -> Redis:
    return _redis(services.settings.redis_url)
