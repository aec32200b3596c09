"""The engine as the repositories use it: sessions and connections whose outage errors arrive
as the orchestrator's own ``DatabaseError``.

PostgreSQL down, restarting, frozen past the deadline or out of pooled connections is worth a
503 or a retry, unlike a bug (ProgrammingError) or bad data (IntegrityError), which pass
through unchanged. Translating here, once, keeps SQLAlchemy out of every caller's except
clauses (the API's error handlers, the worker's retry of a run's end).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import DatabaseError

_OUTAGES = (OperationalError, InterfaceError, PoolTimeoutError)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (*_OUTAGES, psycopg.OperationalError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"PostgreSQL unavailable: {type(cause).__name__}: {cause}") from exc


class Database:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Same pool; each statement commits by itself. A read in a transaction costs two
        # more round trips (BEGIN, and the ROLLBACK when the connection goes back).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads through the ORM: outside any transaction, as ``read``. Under READ COMMITTED
        # each statement takes its own snapshot anyway, so a transaction around reads only
        # added its BEGIN and ROLLBACK.
        self._read_sessions = sessionmaker(self._autocommit, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads, each statement committed by itself (writes go through
        ``transaction``)."""
        with _translated(), self._read_sessions() as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction committed at the end of the block (rolled back on error)."""
        with _translated(), self._sessions.begin() as s:
            yield s

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _translated(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection outside any transaction, for one statement that reads: each statement
        sees the latest committed data, so a read that needs one snapshot is one statement."""
        with _translated(), self._autocommit.connect() as conn:
            yield conn

    def autocommit(self) -> AbstractContextManager[Connection]:
        """``read``'s connection, for a write that is one statement: it commits by itself,
        without the round trips of BEGIN and COMMIT."""
        return self.read()

    @contextmanager
    def driver(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection as psycopg's own, outside any transaction, for the hottest
        reads: the pool's checkout (and its ping when idle) without SQLAlchemy's execution path.
        A connection that failed is dropped from the pool, as SQLAlchemy would."""
        with _translated():
            pooled = self._engine.raw_connection()
            conn: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
            try:
                conn.autocommit = True
                yield conn
            except psycopg.OperationalError:
                pooled.invalidate()
                raise
            finally:
                if not conn.closed:
                    conn.autocommit = False  # as the pool's other users expect it
                pooled.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction committed at the end of the block."""
        with _translated(), self._engine.begin() as conn:
            yield conn
