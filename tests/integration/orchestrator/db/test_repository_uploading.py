"""``TaskRepository.uploading_slots`` (the reconciler's pages of uploads that may have lost
their post-finish) on the stack's PostgreSQL: a page after the last one's end, only quiet
uploading slots of waiting tasks."""

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

# Older than anything other tests leave on the shared database: only these are quiet since
# the times the tests ask for.
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
    with raw_engine(services).begin() as conn:  # left by a run that was stopped midway
        conn.execute(
            text(
                "DELETE FROM tasks WHERE id IN (SELECT task_id FROM task_inputs"
                " WHERE updated_at < :before)"
            ),
            {"before": LONG_AGO + timedelta(days=365)},
        )
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
    quiet = [uploading(services, made, m) for m in (1, 2, 3)]
    ended = uploading(services, made, 0)
    assert services.tasks.transition(ended, TaskStatus.KILLED, reason="test")  # not waiting
    uploading(services, made, 60 * 24)  # changed after idle_before: not quiet yet
    idle_before = LONG_AGO + timedelta(minutes=10)

    seen: list[str] = []
    after = None
    for _ in quiet:
        [page] = services.tasks.uploading_slots(idle_before, after=after, limit=1)
        assert (page.slot, page.key, page.size) == ("first", f"{page.task_id}/first", 10)
        seen.append(page.task_id)
        after = page.position
    assert seen == sorted(quiet)  # each page after the last: in (task, slot) order, once each
    assert services.tasks.uploading_slots(idle_before, after=after, limit=1) == []
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
