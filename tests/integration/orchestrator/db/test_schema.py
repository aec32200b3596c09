"""The schema the migrations make, on a scratch database: it is the one the models describe, and
the reconciler's optional-inputs starter reads the waiting tasks through an index, not the
table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text

from orchestrator.db.database import Database
from orchestrator.db.migrate import upgrade
from orchestrator.db.models import Base
from orchestrator.db.repository import TaskRepository
from tests.scratch import driver_url, scratch_database

# Under ANALYZE's sample of 30,000 rows, so that it reads every row: the statistics, and so the
# plan, are the same on every run.
TASKS = 20_000
WAITING = 600
READY = 60
PRIME = 7919  # coprime with TASKS: i * PRIME mod TASKS visits every k once


@pytest.fixture(scope="module")
def migrated(stack: Any) -> Iterator[str]:
    with scratch_database(stack, "schema") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def modelled(stack: Any) -> Iterator[str]:
    """A database made from the models alone (``create_all``)."""
    with scratch_database(stack, "models") as url:
        engine = create_engine(url)
        try:
            Base.metadata.create_all(engine)
        finally:
            engine.dispose()
        yield url


# Every index and constraint of the models' tables, as PostgreSQL itself spells it: partial
# indexes' predicates and CHECK expressions included, which Alembic's comparison leaves out.
# Column defaults are not compared: the migrations give the database its own, the models
# mostly fill them in Python.
DEFINITIONS = """
SELECT 'index ' || indexname, indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename = ANY(%(tables)s)
UNION ALL
SELECT 'constraint ' || c.conname, c.conrelid::regclass || ': ' || pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname = 'public' AND c.conrelid::regclass::text = ANY(%(tables)s)
"""


def _definitions(url: str) -> dict[str, str]:
    with psycopg.connect(driver_url(url)) as conn:
        rows = conn.execute(DEFINITIONS, {"tables": list(Base.metadata.tables)}).fetchall()
    return {str(name): str(definition) for name, definition in rows}


def test_migrations_make_the_models_schema(migrated: str, modelled: str) -> None:
    engine = create_engine(migrated)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
    made, described = _definitions(migrated), _definitions(modelled)
    assert {k: v for k, v in made.items() if described.get(k) != v} == {}
    assert {k: v for k, v in described.items() if made.get(k) != v} == {}


def _grow(engine: Engine) -> None:
    """TASKS tasks, WAITING of them waiting and READY of those lacking no required input (the
    proportions bench/growth.py makes at 20,000 tasks), the rest done; then ANALYZE.

    Task k (1 to TASKS) is made k minutes ago, and the tasks are written in the order of a fixed
    permutation of k (i * PRIME mod TASKS): the waiting ones are the newest, scattered through
    the table's pages as tasks made over weeks are, and every run writes the same table."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (id, pipeline, params, resources, queue, status, attempts,"
                " required_missing, created_at) "
                "SELECT gen_random_uuid()::text, 'checksum', '{}', '{}', 'default',"
                " CASE WHEN k <= :waiting THEN 'waiting' ELSE 'done' END, 0,"
                " CASE WHEN k <= :ready OR k > :waiting THEN 0 ELSE 1 END,"
                " now() - k * interval '1 minute' "
                "FROM (SELECT i * :prime % :tasks + 1 AS k"
                " FROM generate_series(1, :tasks) AS i) AS order_written"
            ),
            {"tasks": TASKS, "waiting": WAITING, "ready": READY, "prime": PRIME},
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


# The indexes the starter may read the waiting tasks through: the planner picks between them
# by their statistics (bench/growth.py's table of 100,000 got ix_tasks_waiting, this one gets
# the status index); either reads the waiting tasks only.
WAITING_INDEXES = {"ix_tasks_waiting", "ix_tasks_status_created"}


def test_the_optional_inputs_starter_reads_only_the_waiting_tasks(migrated: str) -> None:
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
        query = sent[-1]
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            plans = {"as migrated": _plan(raw, query)}
            # As on a table whose waiting rows changed since the last VACUUM (they are the
            # newest, most written rows): no index-only scan.
            raw.execute("SET enable_indexonlyscan = off")
            plans["no index-only scan"] = _plan(raw, query)
            # The control: without those indexes the same check fails.
            raw.execute("DROP INDEX ix_tasks_waiting")
            raw.execute("DROP INDEX ix_tasks_status_created")
            control = _plan(raw, query)
            raw.rollback()
    finally:
        engine.dispose()
    for name, plan in plans.items():
        assert _problems(plan) == [], (name, plan)
    assert _problems(control) != [], control


def _problems(plan: dict[str, Any]) -> list[str]:
    """What makes the plan's cost follow the table rather than its waiting tasks."""
    problems = []
    nodes = list(_nodes(plan))
    for node in nodes:
        if node["Node Type"] in ("Seq Scan", "Hash", "Hash Join", "Merge Join"):
            problems.append(f"{node['Node Type']} on {node.get('Relation Name')}")
    for node in nodes:
        if node.get("Relation Name") != "tasks":
            continue
        if node.get("Index Name") not in WAITING_INDEXES:
            problems.append(f"tasks read by {node['Node Type']} {node.get('Index Name')}")
        elif node["Actual Rows"] + node.get("Rows Removed by Filter", 0) > WAITING:
            problems.append(f"more than the {WAITING} waiting tasks read")
    return problems


def _plan(conn: psycopg.Connection[Any], query: tuple[str, Any]) -> dict[str, Any]:
    """The executed plan of ``query`` (statement, parameters)."""
    statement, params = query
    row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return dict(plan[0]["Plan"])


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)
