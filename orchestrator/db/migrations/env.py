"""Alembic environment: runs migrations online against the configured URL.

Concurrent API replicas may start together; a PostgreSQL advisory lock serialises them so only
one applies each migration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from orchestrator.db.models import Base

MIGRATION_LOCK_ID = 0x6F726368  # "orch"

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        # The lock is the session's: it outlives this transaction, which ends here so that
        # Alembic begins (and commits) its own, as a migration's autocommit block expects.
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


run_migrations_online()
