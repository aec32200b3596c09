"""Plain snapshots of a task as read from the database; what the rest of the code passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.domain.status import TaskStatus


@dataclass(frozen=True)
class InputView:
    slot: str
    required: bool
    state: str  # empty | uploading | done
    upload_id: str | None = None
    filename: str | None = None
    size: int | None = None
    offset: int = 0
    # While uploading: the uploads bucket and the object id pre-create gave the upload that
    # holds the slot (tusd's s3store writes it at that key). Once done: where the input is.
    bucket: str | None = None
    key: str | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None  # last upload activity (binding, progress, finish)

    @property
    def done(self) -> bool:
        return self.state == "done"

    def stalled(self, now: datetime, after: timedelta) -> bool:
        """An upload holds the slot but has made no progress for ``after``."""
        return (
            self.state == "uploading"
            and self.updated_at is not None
            and now - self.updated_at >= after
        )

    def shown_state(self, now: datetime, stalled_after: timedelta) -> str:
        """empty | uploading | stalled | done, as query_task shows it."""
        return "stalled" if self.stalled(now, stalled_after) else self.state


@dataclass(frozen=True)
class TaskView:
    id: str
    pipeline: str
    status: TaskStatus
    params: dict[str, Any]
    resources: dict[str, Any]
    queue: str
    reason: str | None
    attempts: int
    worker_id: str | None
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    kill_requested_at: datetime | None = None
    results: list[dict[str, Any]] | None = None
    stats: dict[str, Any] | None = None
    inputs: tuple[InputView, ...] = field(default_factory=tuple)
    notify_url: str | None = None  # where terminal states are POSTed (webhooks)

    def input(self, slot: str) -> InputView | None:
        return next((i for i in self.inputs if i.slot == slot), None)

    @property
    def missing_inputs(self) -> list[str]:
        return [i.slot for i in self.inputs if i.required and not i.done]
