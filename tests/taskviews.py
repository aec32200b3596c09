"""Task snapshots for unit tests: every field set, the ones a test cares about overridden."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from pipelines.spec import Resources

_BASE = TaskView(
    id="t1",
    pipeline="checksum",
    status=TaskStatus.WAITING,
    params={},
    resources=Resources(),
    queue="default",
    reason=None,
    attempts=0,
    worker_id=None,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def task_view(**changes: Any) -> TaskView:
    return replace(_BASE, **changes)
