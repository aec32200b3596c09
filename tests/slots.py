"""Filling an input slot straight through the repository, as the hooks would (for tests whose
subject is not the upload path): pre-create binds the object key, post-finish records it."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.db.repository import TaskRepository


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
