"""``AccessRepository.quota_standing`` (pre-create's one read for quotas) on the stack's
PostgreSQL: the task's project and its quota, what the task's other inputs hold, and what the
project stores, against direct sums over the tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.access import Quota
from orchestrator.settings import Settings
from tests.slots import fill_slot, new_task

THREE_SLOTS = (("first", True), ("second", True), ("third", False))


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    services = build_services(Settings(**{k.lower(): v for k, v in stack.env.items()}))
    yield services
    services.close()


def test_an_unknown_task_has_no_standing(services: Services) -> None:
    assert services.access.quota_standing(str(uuid.uuid4()), besides="first") is None


def test_the_standing_names_the_project_its_quota_and_what_it_holds(services: Services) -> None:
    name = f"standing-{uuid.uuid4().hex[:8]}"
    services.access.set_quota(
        name, {"max_running": 3, "max_stored_bytes": 5000, "max_upload_bytes": 4000}
    )
    project_id = services.access.ensure_project(name)
    task = new_task(services.tasks, slots=THREE_SLOTS, project=project_id)
    other = new_task(services.tasks, project=project_id)
    fill_slot(services.tasks, task, "first", key=f"{task}/first", size=100)
    assert services.tasks.slot_reserved(  # declared while it uploads: held too
        task,
        "second",
        key=f"{task}/second",
        bucket="uploads",
        filename="second.bin",
        size=20,
        stalled_before=datetime.now(UTC),
    )
    fill_slot(services.tasks, other, "first", key=f"{other}/first", size=1000)

    standing = services.access.quota_standing(task, besides="third")
    assert standing is not None
    assert (standing.project_id, standing.project) == (project_id, name)
    # Each limit in its own field (the columns are read by position).
    assert standing.quota == Quota(max_running=3, max_stored_bytes=5000, max_upload_bytes=4000)
    assert standing.held == 100 + 20
    assert standing.stored == 100 + 20 + 1000  # the other task's input counts for the project

    # The slot being uploaded again is not counted as held by the task.
    again = services.access.quota_standing(task, besides="first")
    assert again is not None and again.held == 20
    # An upload that ended without filling its slot holds nothing.
    assert services.tasks.slot_freed(task, "second", f"{task}/second")
    freed = services.access.quota_standing(task, besides="third")
    assert freed is not None and (freed.held, freed.stored) == (100, 1100)


def test_a_project_without_limits_reads_none_for_each(services: Services) -> None:
    project_id = services.access.ensure_project(f"free-{uuid.uuid4().hex[:8]}")
    standing = services.access.quota_standing(
        new_task(services.tasks, project=project_id), besides="first"
    )
    assert standing is not None
    assert (standing.quota, standing.held, standing.stored) == (Quota(), 0, 0)
