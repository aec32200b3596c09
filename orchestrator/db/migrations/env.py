"""Alembic environment: runs migrations online against the configured URL.

Concurrent API replicas may start together; a PostgreSQL advisory lock serialises them so only
one applies each migration.
"""

from __future__ import annotations

import time

from alembic import context
from sqlalchemy import Connection, create_engine, text

from orchestrator.db.migrate import MIGRATION_LOCK_ID, MIGRATION_LOCK_POLL_S
from orchestrator.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        _take_lock(connection)
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


def _take_lock(connection: Connection) -> None:
    """Take the migration lock, trying it between sleeps rather than queueing for it.

    A session blocked in ``pg_advisory_lock`` holds its statement's snapshot meanwhile, and
    ``CREATE INDEX CONCURRENTLY`` (migrations 0014, 0015) waits for every older snapshot: the
    process that holds the lock would wait for the one queued behind it, and PostgreSQL ends
    one of them as a deadlock. The tries run outside a transaction: between them this session
    holds no snapshot.
    """
    polling = connection.execution_options(isolation_level="AUTOCOMMIT")
    while not polling.execute(
        text("SELECT pg_try_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
    ).scalar_one():
        time.sleep(MIGRATION_LOCK_POLL_S)
    # The lock is the session's: it outlives this statement. Alembic begins (and commits) its
    # own transactions from here, as a migration's autocommit block expects.
    polling.commit()
    connection.execution_options(isolation_level=connection.default_isolation_level)


run_migrations_online()
