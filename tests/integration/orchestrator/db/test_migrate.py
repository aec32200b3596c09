"""Two processes migrating one database at once: the one waiting for the migration lock holds
no snapshot meanwhile, so the lock holder's ``CREATE INDEX CONCURRENTLY`` (migrations 0014 and
0015 build their indexes so) does not wait for it. Queued in ``pg_advisory_lock``, the waiter
held its statement's snapshot, the build waited for it, and PostgreSQL ended one of the two as
a deadlock."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from orchestrator.db.migrate import MIGRATION_LOCK_ID, upgrade
from tests.scratch import driver_url, scratch_database

WAIT_S = 60


def _waiter_tried(holder: psycopg.Connection[Any]) -> bool:
    """Whether another session of this database has asked for an advisory lock."""
    row = holder.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND query LIKE '%advisory_lock%'"
    ).fetchone()
    return row is not None and row[0] > 0


def test_a_migration_waiting_for_the_lock_lets_an_index_build_finish(stack: Any) -> None:
    with scratch_database(stack, "lock") as url:
        upgrade(url)
        failures: list[BaseException] = []

        def second_process() -> None:
            try:
                upgrade(url)
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        with psycopg.connect(driver_url(url), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
            waiter = threading.Thread(target=second_process, name="second-migration")
            waiter.start()
            deadline = time.monotonic() + WAIT_S
            while not _waiter_tried(holder):
                assert time.monotonic() < deadline, "the second migration never asked for the lock"
                time.sleep(0.05)
            # What a migration does while it holds the lock.
            holder.execute("CREATE INDEX CONCURRENTLY ix_probe ON tasks (pipeline)")
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
            waiter.join(WAIT_S)
        assert not waiter.is_alive(), "the second migration never took the lock"
        assert failures == []
