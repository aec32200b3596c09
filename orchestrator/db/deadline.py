"""PostgreSQL round trips with a client-side deadline, so a frozen server fails fast.

A server that is stopped (SIGSTOP, a frozen VM, a paused container) still has its kernel
accept TCP connections and acknowledge every byte, so neither TCP keepalives nor
``tcp_user_timeout`` notice it, and the server-side ``statement_timeout`` cannot fire either.
Without a deadline in the client, every request that touches the database waits for as long
as the server is frozen, and holds a worker thread meanwhile.

``DeadlineConnection`` bounds each wait on the socket (a statement, a commit, the pool's
ping: ``engine.ping_when_idle``) by the server's statement_timeout plus ``MARGIN_S``. Past it
the connection is closed, as its protocol state is unknown, and ``ServerTimeout`` is raised: a
``psycopg.OperationalError``, which SQLAlchemy wraps as its own ``OperationalError``, the
repositories' ``Database`` turns into ``DatabaseError``, and the API answers with 503.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.abc import PQGen
from sqlalchemy import Engine, event

RV = TypeVar("RV")

# How much longer than the server's statement_timeout the client waits, in seconds, so that a
# live server cancels a slow statement itself (and keeps the connection) before the client
# gives up on it.
MARGIN_S = 0.5


class ServerTimeout(psycopg.OperationalError):
    """PostgreSQL did not answer one round trip within the deadline."""


class DeadlineConnection(psycopg.Connection[Any]):
    # Set per connection by ``bound_round_trips``; None waits for ever (psycopg's default).
    deadline_s: float | None = None

    def wait(
        self,
        gen: PQGen[RV],
        interval: float = 0.1,
        timeout: float | None = None,
    ) -> RV:
        # An explicit timeout (LISTEN's notifies) is the caller's; every other wait gets ours.
        if timeout is not None or self.deadline_s is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.deadline_s)
        except errors._WaitTimeout as exc:
            self.pgconn.finish()
            raise ServerTimeout(f"PostgreSQL did not answer within {self.deadline_s:g} s") from exc


def bound_round_trips(engine: Engine, statement_timeout_s: float) -> None:
    """Open the engine's connections as ``DeadlineConnection``: the server cancels a statement
    after ``statement_timeout_s``, the client gives up ``MARGIN_S`` later."""
    deadline_s = statement_timeout_s + MARGIN_S

    @event.listens_for(engine, "do_connect")
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> DeadlineConnection:
        cparams["options"] = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
        conn = DeadlineConnection.connect(*cargs, **cparams)
        conn.deadline_s = deadline_s
        return conn
