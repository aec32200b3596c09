"""The schema the migrations make, on a scratch database: it is the one the models describe, and
the reconciler's optional-inputs starter reads it through the index made for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text

from orchestrator.db.database import Database
from orchestrator.db.migrate import upgrade
from orchestrator.db.models import Base
from orchestrator.db.repository import TaskRepository
from tests.scratch import scratch_database

# Under ANALYZE's sample of 30,000 rows, so that it reads every row: the statistics, and so the
# plan, are the same on every run.
TASKS = 20_000
WAITING = 600
READY = 60


@pytest.fixture(scope="module")
def migrated(stack: Any) -> Iterator[str]:
    with scratch_database(stack, "schema") as url:
        upgrade(url)
        yield url


def test_migrations_make_the_models_schema(migrated: str) -> None:
    engine = create_engine(migrated)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def _grow(engine: Engine) -> None:
    """TASKS tasks, WAITING of them waiting and READY of those lacking no required input (the
    proportions bench/growth.py makes at 20,000 tasks), the rest done; then ANALYZE."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (id, pipeline, params, resources, queue, status, attempts,"
                " required_missing, created_at) "
                "SELECT gen_random_uuid()::text, 'checksum', '{}', '{}', 'default',"
                " CASE WHEN i <= :waiting THEN 'waiting' ELSE 'done' END, 0,"
                " CASE WHEN i <= :ready OR i > :waiting THEN 0 ELSE 1 END,"
                " now() - i * interval '1 minute' "
                "FROM generate_series(1, :tasks) AS i"
            ),
            {"tasks": TASKS, "waiting": WAITING, "ready": READY},
        )
        conn.execute(
            text(
                "INSERT INTO task_inputs (task_id, slot, position, required, state, updated_at) "
                "SELECT id, 'first', 0, true, "
                " CASE WHEN required_missing = 0 THEN 'done' ELSE 'empty' END, created_at "
                "FROM tasks"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE tasks"))
        conn.execute(text("VACUUM ANALYZE task_inputs"))


def test_the_optional_inputs_starter_reads_only_the_ready_tasks(migrated: str) -> None:
    engine = create_engine(migrated)
    sent: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def keep(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    try:
        _grow(engine)
        found = TaskRepository(Database(engine)).idle_with_required_inputs(
            datetime.now(UTC) - timedelta(seconds=1)
        )
        assert len(found) == READY
        (statement, params) = sent[-1]
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            row = raw.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params).fetchone()
        assert row is not None
        plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
        scans = list(_scans_of_tasks(plan[0]["Plan"]))
        # The ready tasks through the index of the waiting ones, with required_missing = 0 as its
        # condition: READY index entries read, not every waiting task's.
        assert [s["Index Name"] for s in scans] == ["ix_tasks_waiting"]
        assert scans[0]["Actual Rows"] == READY
        assert "required_missing = 0" in scans[0]["Index Cond"]
    finally:
        engine.dispose()


def _scans_of_tasks(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if node.get("Relation Name") == "tasks":
        yield node
    for child in node.get("Plans", ()):
        yield from _scans_of_tasks(child)
