"""The engine, built by the bootstrap from settings (never at import)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine

from orchestrator.db.deadline import bound_round_trips


@dataclass(frozen=True)
class Timeouts:
    """How long a caller waits on PostgreSQL, in seconds (see ``Settings.db_*_timeout_s``)."""

    connect_s: int
    statement_s: float
    pool_s: float


def make_engine(database_url: str, timeouts: Timeouts, pool_size: int = 20) -> Engine:
    engine = create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=10,
        pool_timeout=timeouts.pool_s,
        # pool_pre_ping: PostgreSQL restarts must not leave dead connections in the pool.
        pool_pre_ping=True,
        connect_args={"connect_timeout": timeouts.connect_s},
    )
    bound_round_trips(engine, timeouts.statement_s)
    return engine
