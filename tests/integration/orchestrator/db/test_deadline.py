"""Every PostgreSQL round trip is bounded, against the stack's real PostgreSQL behind a
forwarder that can freeze: while frozen it accepts connections and keeps every byte without
passing any on, which is what a SIGSTOPped server looks like from the client's side."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from devstack.fleet import Forwarder
from orchestrator.db.database import Database
from orchestrator.db.deadline import ServerTimeout
from orchestrator.db.engine import Timeouts, make_engine
from orchestrator.errors import DatabaseError

TIMEOUTS = Timeouts(connect_s=2, statement_s=1.0, pool_s=1.0)
HANG_S = 30  # far beyond every timeout: a call still going then is hung


@pytest.fixture
def proxy(stack: Any) -> Iterator[Forwarder]:
    url = urlsplit(stack.env["DATABASE_URL"])
    p = Forwarder(("127.0.0.1", 0), (url.hostname or "127.0.0.1", url.port or 5432))
    yield p
    p.close()


def through(stack: Any, proxy: Forwarder, **options: Any) -> Engine:
    url = urlsplit(stack.env["DATABASE_URL"])
    netloc = url.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.listen[1]}"
    return make_engine(urlunsplit(url._replace(netloc=netloc)), TIMEOUTS, **options)


@pytest.fixture
def engine(stack: Any, proxy: Forwarder) -> Iterator[Engine]:
    e = through(stack, proxy)
    yield e
    e.dispose()


def _timed(engine: Engine, sql: str = "SELECT 1") -> tuple[BaseException | None, float]:
    """Run ``sql`` in a thread; the error it raised (None: none) and how long it took."""
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(HANG_S)
    assert outcome, f"{sql!r} still waiting after {HANG_S} s"
    return outcome[0], time.monotonic() - started


@pytest.mark.parametrize(
    "ping_idle_after_s",
    # 0: the connection is pinged at checkout, and the ping meets the frozen server; 3600: it
    # was used moments ago, so the statement does.
    [0.0, 3600.0],
    ids=["pinged", "not-pinged"],
)
def test_a_frozen_server_fails_a_pooled_connection_at_the_deadline(
    stack: Any, proxy: Forwarder, ping_idle_after_s: float
) -> None:
    engine = through(stack, proxy, ping_idle_after_s=ping_idle_after_s)
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    try:
        assert _timed(engine)[0] is None  # one connection in the pool (new: not pinged)
        connections = proxy.accepted
        proxy.freeze()
        error, took = _timed(engine)
        # The path under test: the ping met the frozen server, or the statement did.
        assert len(pings) == (1 if ping_idle_after_s == 0 else 0)
        assert isinstance(error, OperationalError), error
        assert isinstance(error.orig, ServerTimeout), error
        assert "did not answer within 1.5 s" in str(error)
        # It failed alone: no reconnection attempt spent a connect timeout on top.
        assert proxy.accepted == connections
        print(f"pooled connection, frozen server: failed after {took:.2f} s")
        proxy.thaw()
        assert _timed(engine)[0] is None  # the dead connection was dropped; a new one works
        assert proxy.accepted == connections + 1
    finally:
        engine.dispose()


def test_a_frozen_server_fails_a_new_connection_at_the_connect_timeout(
    engine: Engine, proxy: Forwarder
) -> None:
    proxy.freeze()
    error, took = _timed(engine)
    assert isinstance(error, OperationalError), error
    assert "timeout" in str(error).lower()
    print(f"new connection, frozen server: failed after {took:.2f} s")


def test_a_statement_over_the_timeout_is_cancelled_by_the_server(engine: Engine) -> None:
    error, _ = _timed(engine, "SELECT pg_sleep(5)")
    assert isinstance(error, OperationalError), error
    assert "statement timeout" in str(error)
    assert _timed(engine)[0] is None


def test_a_driver_read_that_times_out_is_a_database_error_and_its_connection_is_dropped(
    engine: Engine, proxy: Forwarder
) -> None:
    """``Database.driver`` (the listing's read without SQLAlchemy's execution path): the same
    deadline, translated to ``DatabaseError``, and the dead connection never handed out
    again."""
    db = Database(engine)
    with db.driver() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    connections = proxy.accepted
    with pytest.raises(DatabaseError, match=r"did not answer within 1\.5 s"), db.driver() as conn:
        proxy.freeze()  # after the checkout: the statement itself times out
        conn.execute("SELECT 1")
    proxy.thaw()
    with db.driver() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.autocommit
    assert proxy.accepted == connections + 1  # a new connection: the dead one was dropped
    with engine.connect() as conn:  # the pool's other users get it back out of autocommit
        assert not conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
