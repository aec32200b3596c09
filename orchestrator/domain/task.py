"""Plain snapshots of a task as read from the database; what the rest of the code passes around.

Everything in a snapshot is typed: the repository converts the JSON columns once, when it reads
and when it writes them, so no other layer parses a task's dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.domain.status import TaskStatus
from pipelines.spec import Resources


@dataclass(frozen=True)
class ResultFile:
    """One stored result of a task: what it holds and its object in the results bucket."""

    name: str  # path relative to the run's output directory, "/"-separated
    bytes: int
    sha256: str
    content_type: str
    key: str  # object key in the results bucket (orchestrator.defaults.result_key)
    picture: bool = False  # clients show it inline (the pipeline's outputs say, or its type)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultFile:
        return cls(
            name=str(data["name"]),
            bytes=int(data["bytes"]),
            sha256=str(data["sha256"]),
            content_type=str(data.get("content_type") or "application/octet-stream"),
            key=str(data["key"]),
            picture=bool(data.get("picture", False)),
        )


@dataclass(frozen=True)
class ResultLink:
    """A result as a client downloads it: a presigned URL and what it will get."""

    name: str
    url: str
    bytes: int
    sha256: str
    content_type: str
    picture: bool = False


@dataclass(frozen=True)
class RunStats:
    """What one run used: wall time (s), CPU time (s), peak memory (bytes); None: not measured."""

    wall_s: float = 0.0
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_seconds": None if self.cpu_seconds is None else round(self.cpu_seconds, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStats:
        cpu, peak = data.get("cpu_seconds"), data.get("peak_memory_bytes")
        return cls(
            wall_s=float(data.get("wall_s") or 0.0),
            cpu_seconds=None if cpu is None else float(cpu),
            peak_memory_bytes=None if peak is None else int(peak),
        )


def resources_from_dict(data: Mapping[str, Any]) -> Resources:
    """A task's stored limits; keys this version does not know are ignored."""
    known = Resources.__dataclass_fields__
    return Resources(**{k: v for k, v in data.items() if k in known})


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
    resources: Resources
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
    results: tuple[ResultFile, ...] | None = None
    stats: RunStats | None = None
    inputs: tuple[InputView, ...] = field(default_factory=tuple)
    notify_url: str | None = None  # where terminal states are POSTed (webhooks)
    project_id: str = "default"  # the project of the key that created it
    priority: int = 0  # orchestrator.domain.priority
    deleted_at: datetime | None = None  # a tombstone: its data is gone or going
    deleted_reason: str | None = None
    inputs_removed_at: datetime | None = None  # retention removed them (domain/lifecycle.py)
    results_removed_at: datetime | None = None

    def input(self, slot: str) -> InputView | None:
        return next((i for i in self.inputs if i.slot == slot), None)

    @property
    def missing_inputs(self) -> list[str]:
        return [i.slot for i in self.inputs if i.required and not i.done]
