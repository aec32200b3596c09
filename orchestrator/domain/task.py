"""Plain snapshots of a task as read from the database; what the rest of the code passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
    bucket: str | None = None
    key: str | None = None
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.state == "done"


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
