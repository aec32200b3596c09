"""Direct database and Redis access for tests that set up or inspect state the product's own
interfaces do not expose (``Services`` carries repositories and adapters, not raw clients)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from redis import Redis
from sqlalchemy import Engine, create_engine, text

from orchestrator.bootstrap import Services
from orchestrator.reconciler import LOCK_KEY


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


@contextmanager
def stack_reconciler_held_off(services: Services) -> Iterator[None]:
    """Hold the stack's reconciler lock for the block, once a pass in progress has ended (a
    blocking wait on the lock): the stack's passes skip meanwhile, so they never move the rows
    a test set up. Transaction-scoped, as the reconciler's own: it ends with the block,
    whatever the test did."""
    with raw_engine(services).begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        yield
