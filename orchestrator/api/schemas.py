"""Request and response bodies of the API (create and read shapes kept apart)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec

from orchestrator.db.notifications import NotificationView
from orchestrator.db.queries import TaskSummary
from orchestrator.domain.priority import name_of
from orchestrator.domain.task import InputView, ResultLink, RunStats, TaskView
from orchestrator.service.listing import TaskPage
from orchestrator.service.workers import ListedWorker
from pipelines.spec import PipelineSpec


class ResourcesRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Per-task overrides of the pipeline's default limits; omitted fields keep the default.

    Bounds (else 422 naming the field): 0 < cpus <= 256, 0 < memory <= 1 TiB, 0 <= gpus <= 16,
    0 < timeout_s <= 7 days. A task with gpus > 0 goes to the ``gpu`` queue.
    """

    cpus: Annotated[float | None, msgspec.Meta(description="CPUs, may be fractional")] = None
    memory_bytes: Annotated[int | None, msgspec.Meta(description="memory limit in bytes")] = None
    memory: Annotated[
        int | str | None,
        msgspec.Meta(description='memory limit as bytes or a size: "512MiB", "2GiB", "4GB"'),
    ] = None
    gpus: Annotated[int | None, msgspec.Meta(description="whole GPUs")] = None
    timeout_s: Annotated[int | None, msgspec.Meta(description="wall-clock limit, seconds")] = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    pipeline: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    resources: ResourcesRequest | None = None
    notify_url: Annotated[
        str | None,
        msgspec.Meta(
            description="http(s) URL POSTed the task (signed, see README) on done/error/killed"
        ),
    ] = None
    queue: Annotated[
        str | None,
        msgspec.Meta(
            description="the worker pool to run on: a queue some live worker listens on "
            "(GET /workers lists them; 422 otherwise). Default: 'gpu' when the task needs GPUs, "
            "else 'default'"
        ),
    ] = None
    priority: Annotated[
        str | int | None,
        msgspec.Meta(
            description="high, normal (the default) or low, or an integer from -100 to 100 "
            "(above 0: the high band, below: the low one). Workers start every waiting task of "
            "a higher band first; a task waiting PRIORITY_AGEING_S in its band moves up one."
        ),
    ] = None


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


class InputStateRead(msgspec.Struct, omit_defaults=True):
    required: bool
    # empty | uploading | stalled (no progress for UPLOAD_STALLED_AFTER_S: another upload may
    # take the slot over) | done
    state: str
    filename: str | None
    bytes_received: int
    bytes_total: int | None
    done: bool
    # While uploading or stalled: the upload that holds the slot, to resume with any tus client.
    upload_url: str | None = None
    # Last upload activity on this slot (binding, progress or finish).
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SlotDisplay:
    """What showing a slot needs besides the task: the clock, the stall limit, the tus URL."""

    now: datetime
    stalled_after: timedelta
    tus_url: str


def input_state_read(i: InputView, display: SlotDisplay | None) -> InputStateRead:
    # upload_id of an uploading slot is tusd's id, recorded by post-create (None before it).
    active = i.state == "uploading" and i.upload_id is not None
    return InputStateRead(
        required=i.required,
        state=i.shown_state(display.now, display.stalled_after) if display else i.state,
        filename=i.filename,
        bytes_received=i.size if i.done and i.size is not None else i.offset,
        bytes_total=i.size,
        done=i.done,
        upload_url=f"{display.tus_url}{i.upload_id}" if display and active else None,
        updated_at=i.updated_at,
    )


class ResultRead(msgspec.Struct):
    name: str
    url: str
    bytes: int
    sha256: str
    content_type: str
    picture: Annotated[
        bool,
        msgspec.Meta(
            description="a picture to show inline (declared by the pipeline's outputs, else "
            "PNG, JPEG, GIF, WebP or SVG)"
        ),
    ] = False


class TaskStatsRead(msgspec.Struct):
    """Resource accounting of the task's last run, from the container's cgroup counters.

    ``wall_s``: run time in seconds; ``cpu_seconds``: CPU time used (user + system) in seconds;
    ``peak_memory_bytes``: highest memory use in bytes. None where the executor could not tell.
    """

    wall_s: float | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None


class AttemptRead(msgspec.Struct):
    """One webhook delivery attempt: the receiver's status code, or the error when none came."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_s: float | None = None


class NotificationRead(msgspec.Struct):
    """A webhook notification of a terminal state. ``state``: pending | delivered | failed;
    ``delivery_id``: the X-Orchestrator-Delivery header; ``next_attempt_at``: while pending."""

    event: str
    state: str
    delivery_id: str
    attempts: list[AttemptRead]
    next_attempt_at: datetime | None


def notification_read(n: NotificationView) -> NotificationRead:
    return NotificationRead(
        event=n.event,
        state=n.state.value,
        delivery_id=n.id,
        attempts=[
            AttemptRead(
                at=datetime.fromisoformat(a["at"]),
                status_code=a.get("status_code"),
                error=a.get("error"),
                duration_s=a.get("duration_s"),
            )
            for a in n.attempts
        ],
        next_attempt_at=n.next_attempt_at,
    )


class TaskRead(msgspec.Struct, omit_defaults=True):
    task_id: str
    pipeline: str
    status: str
    reason: str | None
    params: dict[str, Any]
    # The limits the task runs under: cpus, memory_bytes, gpus, timeout_s (s), pids.
    resources: dict[str, Any]
    # The RQ queue it is routed to: the one create_task named, else "gpu" when it needs GPUs,
    # else "default".
    queue: str
    # orchestrator.domain.priority: the number, and its band's name (high | normal | low).
    priority: int
    priority_name: str
    attempts: int
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    inputs: dict[str, InputStateRead]
    kill_requested: bool = False
    # Retention (RESULT_RETENTION_S, INPUT_RETENTION_S): when the results go, and when
    # retention removed the inputs / results (results are then null).
    results_expire_at: datetime | None = None
    inputs_removed_at: datetime | None = None
    results_removed_at: datetime | None = None
    # The worker that holds (or last held) the task.
    worker_id: str | None = None
    stats: TaskStatsRead | None = None
    results: list[ResultRead] | None = None
    # Webhooks: only when the task was created with a notify_url. A notification appears
    # within about a second of the terminal state.
    notify_url: str | None = None
    notifications: list[NotificationRead] | None = None


class TaskStatusRead(msgspec.Struct, omit_defaults=True):
    task_id: str
    status: str
    kill_requested: bool = False


class TaskDeletedRead(msgspec.Struct):
    """A deleted task's tombstone. ``data_removed``: its objects are gone (false while a
    running task is being stopped; they go within a reconciler pass of its end)."""

    task_id: str
    status: str
    deleted_at: datetime
    reason: str
    data_removed: bool


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


def task_read(
    task: TaskView,
    results: list[ResultLink] | None,
    notifications: list[NotificationView] | None = None,
    display: SlotDisplay | None = None,
    results_expire_at: datetime | None = None,
) -> TaskRead:
    return TaskRead(
        task_id=task.id,
        pipeline=task.pipeline,
        status=task.status.value,
        reason=task.reason,
        params=task.params,
        resources=asdict(task.resources),
        queue=task.queue,
        priority=task.priority,
        priority_name=name_of(task.priority),
        attempts=task.attempts,
        created_at=task.created_at,
        queued_at=task.queued_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        kill_requested=task.kill_requested_at is not None and not task.status.terminal,
        inputs={i.slot: input_state_read(i, display) for i in task.inputs},
        worker_id=task.worker_id,
        stats=stats_read(task.stats),
        results=None
        if results is None
        else [
            ResultRead(
                name=r.name,
                url=r.url,
                bytes=r.bytes,
                sha256=r.sha256,
                content_type=r.content_type,
                picture=r.picture,
            )
            for r in results
        ],
        notify_url=task.notify_url,
        notifications=None
        if notifications is None
        else [notification_read(n) for n in notifications],
        results_expire_at=None if task.results_removed_at else results_expire_at,
        inputs_removed_at=task.inputs_removed_at,
        results_removed_at=task.results_removed_at,
    )


def stats_read(stats: RunStats | None) -> TaskStatsRead | None:
    if stats is None:
        return None
    return TaskStatsRead(
        wall_s=stats.wall_s,
        cpu_seconds=stats.cpu_seconds,
        peak_memory_bytes=stats.peak_memory_bytes,
    )


# --- listing ---------------------------------------------------------------------------------
class TaskSummaryRead(msgspec.Struct):
    task_id: str
    pipeline: str
    status: str
    reason: str | None
    queue: str
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    priority: int = 0
    priority_name: str = "normal"


class TaskPageRead(msgspec.Struct):
    """Newest first. ``next_cursor``: pass as ``cursor`` for the next page; null on the last."""

    tasks: list[TaskSummaryRead]
    next_cursor: str | None


def summary_read(t: TaskSummary) -> TaskSummaryRead:
    return TaskSummaryRead(
        task_id=t.id,
        pipeline=t.pipeline,
        status=t.status.value,
        reason=t.reason,
        queue=t.queue,
        created_at=t.created_at,
        queued_at=t.queued_at,
        started_at=t.started_at,
        finished_at=t.finished_at,
        priority=t.priority,
        priority_name=name_of(t.priority),
    )


def page_read(page: TaskPage) -> TaskPageRead:
    return TaskPageRead(tasks=[summary_read(t) for t in page.tasks], next_cursor=page.next_cursor)


# --- workers ---------------------------------------------------------------------------------
class WorkerRead(msgspec.Struct):
    """A worker as it last announced itself.

    ``state``: up | lost (up but silent longer than WORKER_LOST_AFTER_S) | stopped (exited).
    ``hardware``: cpus, memory_bytes, disk_bytes, gpus [{index, model, memory_bytes,
    utilisation_pct}]. ``capacity``/``free``: cpus, memory_bytes, gpus tasks may use in total /
    now. ``running``: ids of the tasks it runs. ``images``: the pipeline images it has, as the
    pipeline files name them; null: it runs any (the local executor).
    """

    id: str
    host: str
    queues: list[str]
    executor: str
    state: str
    hardware: dict[str, Any]
    capacity: dict[str, Any]
    free: dict[str, Any]
    running: list[str]
    started_at: datetime
    last_seen_at: datetime
    images: list[str] | None = None


class WorkersRead(msgspec.Struct):
    workers: list[WorkerRead]


def workers_read(listed: list[ListedWorker]) -> WorkersRead:
    return WorkersRead(
        workers=[
            WorkerRead(
                id=item.worker.id,
                host=item.worker.host,
                queues=item.worker.queues,
                executor=item.worker.executor,
                state=item.state,
                hardware=item.worker.hardware,
                capacity=item.worker.capacity,
                free=item.worker.free,
                running=item.worker.running,
                started_at=item.worker.started_at,
                last_seen_at=item.worker.last_seen_at,
                images=item.worker.images,
            )
            for item in listed
        ]
    )
