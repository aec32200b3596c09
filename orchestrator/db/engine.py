"""The engine, built by the bootstrap from settings (never at import)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry

from orchestrator.db.deadline import ServerTimeout, bound_round_trips

# A pooled connection handed out within this many seconds of its last use is not pinged first.
# SQLAlchemy's pool_pre_ping pings at every checkout: one more round trip per statement, and on
# a loaded host one more wait for PostgreSQL and for a core (each hook's single statement took
# two round trips). A connection idle longer is pinged, so one that a PostgreSQL restart broke
# while it sat in the pool is replaced before use, as with pool_pre_ping; one used within the
# window was working a moment ago.
# The price: a restart within that second fails the statements of the connections used in it
# (a 503, or a hook tusd retries), where the ping would have replaced them first.
PING_IDLE_AFTER_S = 1.0

_RETURNED_AT = "returned_at"  # time.monotonic() of the connection's last checkin


@dataclass(frozen=True)
class Timeouts:
    """How long a caller waits on PostgreSQL, in seconds (see ``Settings.db_*_timeout_s``)."""

    connect_s: int
    statement_s: float
    pool_s: float


def make_engine(
    database_url: str,
    timeouts: Timeouts,
    pool_size: int = 20,
    ping_idle_after_s: float = PING_IDLE_AFTER_S,
) -> Engine:
    engine = create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=10,
        pool_timeout=timeouts.pool_s,
        # Last in, first out: the connections in use stay the few used most recently, within
        # the ping window; the others idle, and are pinged when next needed.
        pool_use_lifo=True,
        connect_args={"connect_timeout": timeouts.connect_s},
    )
    ping_when_idle(engine, ping_idle_after_s)
    bound_round_trips(engine, timeouts.statement_s)
    return engine


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a connection at checkout when it was last returned more than ``idle_s`` ago; a
    failed ping replaces it and every connection made before it (a restart broke them all)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        # None: connected just now (the record's info is cleared when it reconnects).
        if returned_at is None or time.monotonic() - returned_at < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except ServerTimeout:
            # A frozen server (``deadline.py``): fail now. Connecting again would spend a
            # connect timeout on top of the deadline before the caller learns anything; the
            # pool drops this connection, and the next checkout connects anew.
            raise
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_connection, None):
                raise  # not a broken connection: the caller's error, as with pool_pre_ping
            # Broken, as every connection made before it: the pool connects again and retries
            # the checkout.
            raise InvalidatePoolError(f"ping failed: {exc}") from exc
