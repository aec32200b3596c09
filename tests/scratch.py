"""Scratch databases on the test stack's PostgreSQL, for tests that need a database of their own
(exact counts, a migration from an older revision) rather than the shared one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from orchestrator.settings import Settings


def stack_settings(stack: Any) -> Settings:
    return Settings(**{k.lower(): v for k, v in stack.env.items()})


def driver_url(url: str) -> str:
    """``url`` (SQLAlchemy's, ``postgresql+psycopg://``) as psycopg itself takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(stack: Any, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named ``prefix_<random>``, dropped afterwards."""
    url = make_url(stack_settings(stack).database_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = driver_url(url.render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
