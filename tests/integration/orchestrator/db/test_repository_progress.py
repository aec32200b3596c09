"""``TaskRepository.slot_progress`` (tusd's post-receive) on the stack's PostgreSQL: offsets
past 2 GiB, only the upload that holds the slot, never backwards, never after the task left
``waiting``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.status import TaskStatus
from orchestrator.settings import Settings
from tests.raw import raw_engine
from tests.slots import new_task

GiB = 1 << 30


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    services = build_services(Settings(**{k.lower(): v for k, v in stack.env.items()}))
    yield services
    services.close()


def reserved(services: Services, key: str, size: int = 20 * GiB) -> str:
    """A waiting task whose slot ``first`` is held by the upload ``key``."""
    task_id = new_task(services.tasks)
    assert services.tasks.slot_reserved(
        task_id,
        "first",
        key=key,
        bucket="uploads",
        filename="cloud.laz",
        size=size,
        stalled_before=datetime.now(UTC),
    )
    return task_id


def received(services: Services, task_id: str) -> int:
    task = services.tasks.get(task_id)
    assert task is not None
    slot = task.input("first")
    assert slot is not None
    return slot.offset


def unique(key: str) -> str:
    return f"{uuid.uuid4().hex}/{key}"


def test_offsets_past_two_gib_are_recorded_and_never_move_back(services: Services) -> None:
    key = unique("first/obj")
    task_id = reserved(services, key)
    assert services.tasks.slot_progress(task_id, "first", key, 3 * GiB)
    assert received(services, task_id) == 3 * GiB
    assert services.tasks.slot_progress(task_id, "first", key, 17 * GiB + 5)
    assert received(services, task_id) == 17 * GiB + 5
    # A late, out-of-order post-receive still matches, but the offset stays.
    assert services.tasks.slot_progress(task_id, "first", key, GiB)
    assert received(services, task_id) == 17 * GiB + 5


def test_only_the_upload_holding_the_slot_records(services: Services) -> None:
    holder = unique("first/a_b%c")
    task_id = reserved(services, holder)
    # LIKE's wildcards in a key match only themselves.
    for other in (holder.replace("_", "x").replace("%", "y"), holder[:-2], unique("first/obj")):
        assert not services.tasks.slot_progress(task_id, "first", other, 10)
    assert services.tasks.slot_progress(task_id, "first", holder, 10)
    assert received(services, task_id) == 10


def test_rows_bound_before_keys_were_kept_match_by_upload_id(services: Services) -> None:
    key = unique("first/a_b")
    task_id = reserved(services, key)
    with raw_engine(services).begin() as conn:
        conn.execute(
            text(
                "UPDATE task_inputs SET key = NULL, upload_id = :upload "
                "WHERE task_id = :id AND slot = 'first'"
            ),
            {"id": task_id, "upload": f"{key}+mp-1"},
        )
    assert not services.tasks.slot_progress(task_id, "first", key.replace("_", "x"), 4)
    assert services.tasks.slot_progress(task_id, "first", key, 4)
    assert received(services, task_id) == 4


def test_nothing_is_recorded_once_the_task_left_waiting(services: Services) -> None:
    key = unique("first/obj")
    task_id = reserved(services, key)
    assert services.tasks.transition(
        task_id, TaskStatus.KILLED, expected=TaskStatus.WAITING, reason="killed by a test"
    )
    assert not services.tasks.slot_progress(task_id, "first", key, 99)
    assert received(services, task_id) == 0
