"""PostgreSQL advisory locks that let one process of many do a periodic pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select

from orchestrator.db.database import Database


class PassLock:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def try_hold(self, key: int) -> Iterator[datetime | None]:
        """Hold lock ``key`` for the block when no other process holds it, yielding the
        database's clock; yield None at once when another does.

        The lock is transaction-scoped: it ends with the block's transaction even if the pass
        crashes half-way, where a session lock could stay stuck on a pooled connection."""
        with self._db.begin() as conn:
            if not conn.scalar(select(func.pg_try_advisory_xact_lock(key))):
                yield None
                return
            yield conn.execute(select(func.now())).scalar_one()
