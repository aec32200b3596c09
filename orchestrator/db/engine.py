"""Engine and session factory, built by the bootstrap from settings (never at import)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, pool_size: int = 5) -> Engine:
    # pool_pre_ping: PostgreSQL restarts must not leave dead connections in the pool.
    return create_engine(database_url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
