"""The per-state task counts the triggers of migration 0005 keep, against counting the table,
on a scratch database: rows there before the migration, then every kind of write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orchestrator.bootstrap import build_services
from orchestrator.db.migrate import upgrade
from orchestrator.domain.status import TaskStatus
from tests.scratch import scratch_database, stack_settings
from tests.slots import new_task


@pytest.fixture(scope="module")
def scratch(stack: Any) -> Iterator[str]:
    with scratch_database(stack, "counts") as url:
        yield url


def counted(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """(what the triggers kept, what counting the table says), zeros left out."""
    with create_engine(url).connect() as conn:
        kept = conn.execute(text("SELECT status, n FROM task_counts WHERE n <> 0")).all()
        real = conn.execute(text("SELECT status, count(*) FROM tasks GROUP BY status")).all()
    return {str(k): int(v) for k, v in kept}, {str(k): int(v) for k, v in real}


def test_counts_follow_every_write(stack: Any, scratch: str) -> None:
    base = stack_settings(stack)
    upgrade(scratch, "0004")
    # Rows as the schema of 0004 holds them (the repository writes today's columns).
    before = [str(uuid.uuid4()) for _ in range(3)]
    with create_engine(scratch).begin() as conn:
        for task_id, status in zip(before, ("killed", "waiting", "waiting"), strict=True):
            conn.execute(
                text(
                    "INSERT INTO tasks (id, pipeline, params, resources, queue, status, "
                    "attempts, reason) VALUES (:id, 'checksum', '{}', '{}', 'default', "
                    ":status, 0, 'r')"
                ),
                {"id": task_id, "status": status},
            )
    upgrade(scratch)  # the migration counts the tasks already there
    services = build_services(base.model_copy(update={"database_url": scratch}))
    try:
        kept, real = counted(scratch)
        assert kept == real == {"waiting": 2, "killed": 1}

        after = [new_task(services.tasks, slots=()) for _ in range(4)]
        services.tasks.transition(after[0], TaskStatus.PENDING)
        services.tasks.transition(after[1], TaskStatus.ERROR, reason="r")
        services.tasks.transition(after[1], TaskStatus.KILLED, reason="r")  # refused: no move
        with create_engine(scratch).begin() as conn:
            # Not a move: status written unchanged, and a column other than status.
            conn.execute(text("UPDATE tasks SET status = status, reason = 'x'"))
            conn.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": before[1]})
        kept, real = counted(scratch)
        assert kept == real == {"waiting": 3, "pending": 1, "error": 1, "killed": 1}

        with create_engine(scratch).begin() as conn:
            conn.execute(text("TRUNCATE tasks CASCADE"))
        assert counted(scratch) == ({}, {})
        assert services.queries.count_by_status() == dict.fromkeys(TaskStatus, 0)
        new_task(services.tasks, slots=())
        assert services.queries.count_by_status()[TaskStatus.WAITING] == 1
    finally:
        services.close()
