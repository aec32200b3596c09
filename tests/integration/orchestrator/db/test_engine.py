"""The pool's ping on the stack's PostgreSQL: a connection broken while it idled in the pool is
replaced before use; one used within the ping window is handed out without a ping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from orchestrator.db.engine import Timeouts, make_engine

TIMEOUTS = Timeouts(connect_s=5, statement_s=10.0, pool_s=5.0)


@contextmanager
def engine(stack: Any, ping_idle_after_s: float) -> Iterator[Engine]:
    e = make_engine(stack.env["DATABASE_URL"], TIMEOUTS, ping_idle_after_s=ping_idle_after_s)
    try:
        yield e
    finally:
        e.dispose()


def backend_pid(e: Engine) -> int:
    with e.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(stack: Any, pid: int) -> None:
    """End the server side of a pooled connection, as a PostgreSQL restart would."""
    url = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row is not None and row[0] is True


def test_a_connection_broken_while_idle_is_replaced_before_use(stack: Any) -> None:
    with engine(stack, ping_idle_after_s=0.0) as e:  # every reuse is idle long enough
        broken = backend_pid(e)
        terminate(stack, broken)
        # Pinged at checkout, found dead, replaced: the caller never sees the break.
        assert backend_pid(e) != broken


def test_a_connection_used_within_the_window_is_not_pinged(stack: Any) -> None:
    with engine(stack, ping_idle_after_s=3600.0) as e:
        broken = backend_pid(e)
        terminate(stack, broken)
        # No ping (no extra round trip): the statement itself meets the break...
        with pytest.raises(OperationalError):
            backend_pid(e)
        # ...which invalidates the pool, so the next checkout connects afresh.
        assert backend_pid(e) != broken
