"""Request and response bodies of the task API (create and read shapes kept apart)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from orchestrator.domain.task import TaskView
from orchestrator.service.tasks import ResultLink
from pipelines.spec import PipelineSpec


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    pipeline: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class InputSpecRead(msgspec.Struct):
    required: bool
    accept: list[str]
    max_bytes: int


class TaskCreated(msgspec.Struct):
    task_id: str
    status: str
    pipeline: str
    upload_urls: dict[str, str]
    inputs: dict[str, InputSpecRead]


class InputStateRead(msgspec.Struct):
    required: bool
    state: str  # empty | uploading | done
    filename: str | None
    bytes_received: int
    bytes_total: int | None
    done: bool


class ResultRead(msgspec.Struct):
    name: str
    url: str
    bytes: int
    sha256: str
    content_type: str


class TaskRead(msgspec.Struct, omit_defaults=True):
    task_id: str
    pipeline: str
    status: str
    reason: str | None
    params: dict[str, Any]
    resources: dict[str, Any]
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    inputs: dict[str, InputStateRead]
    kill_requested: bool = False
    stats: dict[str, Any] | None = None
    results: list[ResultRead] | None = None


class TaskStatusRead(msgspec.Struct, omit_defaults=True):
    task_id: str
    status: str
    kill_requested: bool = False


def task_created(task: TaskView, spec: PipelineSpec, urls: dict[str, str]) -> TaskCreated:
    return TaskCreated(
        task_id=task.id,
        status=task.status.value,
        pipeline=task.pipeline,
        upload_urls=urls,
        inputs={
            s.name: InputSpecRead(required=s.required, accept=list(s.accept), max_bytes=s.max_bytes)
            for s in spec.inputs
        },
    )


def task_read(task: TaskView, results: list[ResultLink] | None) -> TaskRead:
    return TaskRead(
        task_id=task.id,
        pipeline=task.pipeline,
        status=task.status.value,
        reason=task.reason,
        params=task.params,
        resources=task.resources,
        attempts=task.attempts,
        created_at=task.created_at,
        queued_at=task.queued_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        kill_requested=task.kill_requested_at is not None and not task.status.terminal,
        inputs={
            i.slot: InputStateRead(
                required=i.required,
                state=i.state,
                filename=i.filename,
                bytes_received=i.size if i.done and i.size is not None else i.offset,
                bytes_total=i.size,
                done=i.done,
            )
            for i in task.inputs
        },
        stats=task.stats,
        results=None
        if results is None
        else [
            ResultRead(
                name=r.name, url=r.url, bytes=r.bytes, sha256=r.sha256, content_type=r.content_type
            )
            for r in results
        ],
    )
