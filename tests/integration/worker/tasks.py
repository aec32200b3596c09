"""Checksum tasks made straight in the repository, inputs in the uploads bucket, pending."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from orchestrator.bootstrap import Services
from orchestrator.domain.task import TaskView
from pipelines.checksum.spec import SPEC
from pipelines.spec import Resources
from tests.slots import fill_slot


def create_pending(
    services: Services,
    tmp_path: Path,
    files: dict[str, bytes],
    *,
    queue: str,
    params: dict[str, Any] | None = None,
    resources: Resources | None = None,
    missing: tuple[str, ...] = (),
    priority: int = 0,
) -> str:
    """A checksum task on ``queue`` whose inputs are uploaded, moved to pending (not enqueued)."""
    repo = services.tasks
    task_id = str(uuid.uuid4())
    repo.create(
        task_id=task_id,
        pipeline=SPEC.name,
        params=SPEC.validate_params(params),
        resources=resources or SPEC.resources,
        queue=queue,
        slots=[(s.name, s.required) for s in SPEC.inputs],
        priority=priority,
    )
    bucket = services.settings.uploads_bucket
    for slot, data in files.items():
        key = f"test-job/{task_id}/{slot}"
        if slot not in missing:
            src = tmp_path / f"upload-{slot}-{task_id}"
            src.write_bytes(data)
            services.storage.upload(bucket, key, str(src), "application/octet-stream")
        fill_slot(
            repo,
            task_id,
            slot,
            key=key,
            size=len(data),
            bucket=bucket,
            filename=f"{slot}.dat",
            upload_id=f"u-{slot}",
        )
    assert repo.queue_if_complete(task_id)
    return task_id


def get(services: Services, task_id: str) -> TaskView:
    task = services.tasks.get(task_id)
    assert task is not None
    return task
