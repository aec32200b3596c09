"""Apply Alembic migrations programmatically (the API does this at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The session advisory lock a process holds while it migrates (migrations/env.py).
MIGRATION_LOCK_ID = 0x6F726368  # "orch"
# Seconds between tries of that lock while another process migrates.
MIGRATION_LOCK_POLL_S = 0.5


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
