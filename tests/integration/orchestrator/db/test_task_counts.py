"""The task counts per state and priority band that the triggers of migrations 0005 and 0013
keep, against counting the table, on a scratch database: rows there before the migrations,
then every kind of write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orchestrator.bootstrap import build_services
from orchestrator.db.migrate import upgrade
from orchestrator.domain.priority import Band
from orchestrator.domain.status import TaskStatus
from tests.scratch import scratch_database, stack_settings
from tests.slots import new_task


@pytest.fixture(scope="module")
def scratch(stack: Any) -> Iterator[str]:
    with scratch_database(stack, "counts") as url:
        yield url


def counted(url: str) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """(what the triggers kept, what counting the table says) per (state, band), zeros left
    out; the band is the sign of the priority."""
    with create_engine(url).connect() as conn:
        kept = conn.execute(text("SELECT status, band, n FROM task_counts WHERE n <> 0")).all()
        real = conn.execute(
            text("SELECT status, sign(priority), count(*) FROM tasks GROUP BY 1, 2")
        ).all()
    return (
        {(str(s), int(b)): int(n) for s, b, n in kept},
        {(str(s), int(b)): int(n) for s, b, n in real},
    )


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
    upgrade(scratch, "0012")  # 0005 counts the tasks already there, per state
    # Rows with priorities (0010 added them), there before 0013 counts them per band too.
    with create_engine(scratch).begin() as conn:
        for status, priority in (("pending", 5), ("running", -2), ("waiting", 1)):
            conn.execute(
                text(
                    "INSERT INTO tasks (id, pipeline, params, resources, queue, status, "
                    "attempts, priority) VALUES (:id, 'checksum', '{}', '{}', 'default', "
                    ":status, 0, :priority)"
                ),
                {"id": str(uuid.uuid4()), "status": status, "priority": priority},
            )
    upgrade(scratch)
    services = build_services(base.model_copy(update={"database_url": scratch}))
    try:
        kept, real = counted(scratch)
        assert kept == real
        assert kept == {
            ("waiting", 0): 2,
            ("killed", 0): 1,
            ("pending", 1): 1,
            ("running", -1): 1,
            ("waiting", 1): 1,
        }
        assert services.queries.unfinished_by_band() == {
            Band.HIGH: 2,
            Band.NORMAL: 2,
            Band.LOW: 1,
        }

        after = [new_task(services.tasks, slots=(), priority=p) for p in (0, 0, 3, -4)]
        services.tasks.transition(after[0], TaskStatus.PENDING)
        services.tasks.transition(after[1], TaskStatus.ERROR, reason="r")
        services.tasks.transition(after[1], TaskStatus.KILLED, reason="r")  # refused: no move
        services.tasks.transition(after[2], TaskStatus.KILLED, reason="r")  # a high one ends
        with create_engine(scratch).begin() as conn:
            # Not a move: status written unchanged, and a column other than status.
            conn.execute(text("UPDATE tasks SET status = status, reason = 'x'"))
            conn.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": before[1]})
            # A priority changed: into another band, then within the band (no change).
            conn.execute(text("UPDATE tasks SET priority = 2 WHERE id = :id"), {"id": after[3]})
            conn.execute(text("UPDATE tasks SET priority = 7 WHERE id = :id"), {"id": after[3]})
            # Both at once, in one statement.
            conn.execute(
                text("UPDATE tasks SET status = 'running', priority = -1 WHERE id = :id"),
                {"id": after[0]},
            )
        kept, real = counted(scratch)
        assert kept == real
        assert kept == {
            ("waiting", 0): 1,
            ("waiting", 1): 2,
            ("pending", 1): 1,
            ("running", -1): 2,
            ("error", 0): 1,
            ("killed", 0): 1,
            ("killed", 1): 1,
        }
        assert services.queries.count_by_status() == {
            TaskStatus.WAITING: 3,
            TaskStatus.PENDING: 1,
            TaskStatus.RUNNING: 2,
            TaskStatus.DONE: 0,
            TaskStatus.ERROR: 1,
            TaskStatus.KILLED: 2,
        }
        assert services.queries.unfinished_by_band() == {
            Band.HIGH: 3,
            Band.NORMAL: 1,
            Band.LOW: 2,
        }

        with create_engine(scratch).begin() as conn:
            conn.execute(text("TRUNCATE tasks CASCADE"))
        assert counted(scratch) == ({}, {})
        assert services.queries.count_by_status() == dict.fromkeys(TaskStatus, 0)
        assert services.queries.unfinished_by_band() == dict.fromkeys(Band, 0)
        new_task(services.tasks, slots=(), priority=-1)
        assert services.queries.count_by_status()[TaskStatus.WAITING] == 1
        assert services.queries.unfinished_by_band()[Band.LOW] == 1
    finally:
        services.close()
