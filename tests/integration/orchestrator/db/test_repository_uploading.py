"""``TaskRepository.uploading_slots`` (the reconciler's pages of uploads that may have lost
their post-finish) on the stack's PostgreSQL: least recently changed first, a page after the
last one's end, only quiet uploading slots of waiting tasks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.status import TaskStatus
from orchestrator.settings import Settings
from tests.raw import raw_engine, stack_reconciler_held_off
from tests.slots import new_task

# Older than anything other tests leave on the shared database: these come first.
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    services = build_services(Settings(**{k.lower(): v for k, v in stack.env.items()}))
    yield services
    services.close()


@pytest.fixture(autouse=True)
def made(services: Services) -> Iterator[list[str]]:
    """The tasks a test made, deleted after it (their slots would come first in every later
    run); the stack's reconciler is held off meanwhile, so that it moves none of them."""
    ids: list[str] = []
    with stack_reconciler_held_off(services):
        yield ids
    with raw_engine(services).begin() as conn:
        conn.execute(text("DELETE FROM tasks WHERE id = ANY(:ids)"), {"ids": ids})


def uploading(services: Services, made: list[str], minutes: int, slot: str = "first") -> str:
    """A waiting task whose ``slot`` uploads, last changed ``minutes`` after LONG_AGO."""
    task_id = new_task(services.tasks)
    made.append(task_id)
    assert services.tasks.slot_reserved(
        task_id,
        slot,
        key=f"{task_id}/{slot}",
        bucket="uploads",
        filename="f.bin",
        size=10,
        stalled_before=datetime.now(UTC),
    )
    with raw_engine(services).begin() as conn:
        conn.execute(
            text("UPDATE task_inputs SET updated_at = :at WHERE task_id = :id AND slot = :slot"),
            {"at": LONG_AGO + timedelta(minutes=minutes), "id": task_id, "slot": slot},
        )
    return task_id


def test_pages_go_on_after_the_last_slot_of_the_previous_one(
    services: Services, made: list[str]
) -> None:
    later, earlier = uploading(services, made, 2), uploading(services, made, 1)
    ended = uploading(services, made, 0)
    assert services.tasks.transition(ended, TaskStatus.KILLED, reason="test")  # not waiting
    idle_before = LONG_AGO + timedelta(minutes=10)
    with raw_engine(services).begin() as conn:  # the same time twice: the ids break the tie
        conn.execute(
            text("UPDATE task_inputs SET updated_at = :at WHERE task_id = ANY(:ids)"),
            {"at": LONG_AGO + timedelta(minutes=1), "ids": [earlier, later]},
        )
    first, second = sorted([earlier, later])

    [a] = services.tasks.uploading_slots(idle_before, limit=1)
    assert (a.task_id, a.slot, a.key, a.size) == (first, "first", f"{first}/first", 10)
    [b] = services.tasks.uploading_slots(idle_before, after=a.position, limit=1)
    assert b.task_id == second
    rest = services.tasks.uploading_slots(idle_before, after=b.position, limit=1)
    assert rest == []  # nothing else quiet since before idle_before: the killed task's slot
    # A slot that changed after idle_before is not quiet yet.
    assert services.tasks.uploading_slots(LONG_AGO + timedelta(seconds=30)) == []


def test_a_filled_slot_is_no_longer_listed(services: Services, made: list[str]) -> None:
    task_id = uploading(services, made, 5, slot="second")
    idle_before = LONG_AGO + timedelta(minutes=6)
    listed = services.tasks.uploading_slots(idle_before, limit=100)
    assert task_id in {s.task_id for s in listed}
    assert services.tasks.slot_finished(
        task_id,
        "second",
        upload_id=f"{task_id}/second+{uuid.uuid4().hex}",
        filename="f.bin",
        size=10,
        bucket="uploads",
        key=f"{task_id}/second",
    )
    assert task_id not in {s.task_id for s in services.tasks.uploading_slots(idle_before)}
