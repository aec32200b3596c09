"""Tasks and their input slots made straight through the repository, as create_task and the
hooks would (for tests whose subject is not the API or the upload path): pre-create binds the
object key, post-finish records it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from orchestrator.db.repository import TaskRepository
from pipelines.spec import Resources

TWO_SLOTS = (("first", True), ("second", True))


def new_task(
    repo: TaskRepository,
    *,
    slots: Sequence[tuple[str, bool]] = TWO_SLOTS,
    project: str = "default",
    priority: int = 0,
) -> str:
    """A waiting checksum task with ``slots`` (name, required); its id."""
    task_id = str(uuid.uuid4())
    repo.create(
        task_id=task_id,
        pipeline="checksum",
        params={},
        resources=Resources(),
        queue="default",
        slots=list(slots),
        project_id=project,
        priority=priority,
    )
    return task_id


def fill_slot(
    repo: TaskRepository,
    task_id: str,
    slot: str,
    *,
    key: str,
    size: int,
    bucket: str = "uploads",
    filename: str = "input.bin",
    upload_id: str | None = None,
) -> None:
    assert repo.slot_reserved(
        task_id,
        slot,
        key=key,
        bucket=bucket,
        filename=filename,
        size=size,
        stalled_before=datetime.now(UTC),
    ), f"slot {slot!r} of {task_id} is not free"
    assert repo.slot_finished(
        task_id,
        slot,
        upload_id=upload_id or f"{key}+mp",
        filename=filename,
        size=size,
        bucket=bucket,
        key=key,
    )
