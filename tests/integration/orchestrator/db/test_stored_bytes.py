"""The bytes per project and bucket the triggers of migration 0011 keep, against summing the
tables, on a scratch database: rows there before the migration, then every kind of write that
changes what a project stores, the reconciler's fold, and a TRUNCATE."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orchestrator.bootstrap import build_services
from orchestrator.db.migrate import upgrade
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultFile
from tests.scratch import scratch_database, stack_settings
from tests.slots import fill_slot, new_task

# What the counts must equal: the sums /metrics made over every task before migration 0011.
SUMMED = """
SELECT project_id, kind, sum(bytes) FROM (
    SELECT t.project_id, 'uploads' AS kind, i.size AS bytes
      FROM task_inputs i JOIN tasks t ON t.id = i.task_id
     WHERE t.inputs_removed_at IS NULL AND i.state IN ('uploading', 'done')
    UNION ALL
    SELECT t.project_id, 'results', (r ->> 'bytes')::bigint
      FROM tasks t, jsonb_array_elements(t.results) r
     WHERE t.results_removed_at IS NULL AND jsonb_typeof(t.results) = 'array'
) x GROUP BY project_id, kind HAVING sum(bytes) <> 0
"""


@pytest.fixture(scope="module")
def scratch(stack: Any) -> Iterator[str]:
    with scratch_database(stack, "stored") as url:
        yield url


def summed(url: str) -> dict[tuple[str, str], int]:
    with create_engine(url).connect() as conn:
        rows = conn.execute(text(SUMMED)).all()
    return {(str(kind), str(project)): int(n) for project, kind, n in rows}


def changes(url: str) -> int:
    with create_engine(url).connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM stored_bytes_changes")).scalar() or 0)


def result(name: str, size: int) -> ResultFile:
    return ResultFile(name, size, "0" * 64, "text/plain", f"results/{name}")


def test_counts_follow_every_write(stack: Any, scratch: str) -> None:
    base = stack_settings(stack)
    upgrade(scratch, "0010")
    # A finished task with an input and two results, as the schema of 0010 holds them.
    before = str(uuid.uuid4())
    with create_engine(scratch).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (id, pipeline, params, resources, queue, status, attempts, "
                "results) VALUES (:id, 'checksum', '{}', '{}', 'default', 'done', 1, "
                "CAST(:results AS jsonb))"
            ),
            {"id": before, "results": json.dumps([{"bytes": 7}, {"bytes": 5}])},
        )
        conn.execute(
            text(
                "INSERT INTO task_inputs (task_id, slot, position, required, state, size) "
                "VALUES (:id, 'first', 0, true, 'done', 100), (:id, 'second', 1, true, "
                "'empty', NULL)"
            ),
            {"id": before},
        )
    upgrade(scratch)  # the migration counts the bytes already there
    services = build_services(base.model_copy(update={"database_url": scratch}))
    try:

        def same() -> dict[tuple[str, str], int]:
            kept = services.queries.stored_bytes()
            assert kept == summed(scratch)
            return kept

        def stored_of(task_id: str) -> int:
            """The task's project's bytes, as pre-create reads them."""
            standing = services.access.quota_standing(task_id, besides="")
            assert standing is not None
            return standing.stored

        assert same() == {("uploads", "default"): 100, ("results", "default"): 12}

        other = services.access.ensure_project(f"p-{uuid.uuid4().hex[:8]}")
        a, b = new_task(services.tasks), new_task(services.tasks, project=other)
        assert services.tasks.slot_reserved(  # declared: counted while it uploads
            a,
            "first",
            key="a1",
            bucket="uploads",
            filename="f",
            size=40,
            stalled_before=datetime.now(UTC),
        )
        same()
        assert services.tasks.slot_freed(a, "first", "a1")  # terminated: no longer held
        fill_slot(services.tasks, a, "first", key="a2", size=30)
        fill_slot(services.tasks, a, "second", key="a3", size=20)
        fill_slot(services.tasks, b, "first", key="b1", size=1000)
        assert same()[("uploads", other)] == 1000
        assert stored_of(b) == 1000

        assert services.tasks.queue_if_complete(a)
        services.tasks.transition(a, TaskStatus.RUNNING, expected=TaskStatus.PENDING)
        services.tasks.transition(
            a, TaskStatus.DONE, expected=TaskStatus.RUNNING, results=[result("out", 9)]
        )
        assert same()[("results", "default")] == 21
        assert stored_of(a) == 100 + 50 + 21

        services.lifecycle.inputs_removed(a)  # retention, then a delete of the other
        services.lifecycle.inputs_removed(a)  # again: nothing more comes off
        same()
        assert services.lifecycle.mark_deleted(b, "deleted on request")
        services.lifecycle.purged(b)
        assert ("uploads", other) not in same()

        assert changes(scratch) > 0
        services.lifecycle.fold_stored_bytes()
        assert changes(scratch) == 0
        assert same() == {("uploads", "default"): 100, ("results", "default"): 21}

        services.lifecycle.results_removed(a)
        with create_engine(scratch).begin() as conn:
            conn.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": before})
        assert same() == {}
        assert services.lifecycle.fold_stored_bytes() > 0
        assert same() == {}

        c = new_task(services.tasks)
        fill_slot(services.tasks, c, "first", key="c1", size=3)
        with create_engine(scratch).begin() as conn:
            conn.execute(text("TRUNCATE task_inputs"))
        assert same() == {}
        fill_slot(services.tasks, new_task(services.tasks), "first", key="d1", size=4)
        with create_engine(scratch).begin() as conn:
            conn.execute(text("TRUNCATE tasks CASCADE"))
        assert same() == {}
    finally:
        services.close()
