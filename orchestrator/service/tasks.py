"""Task use cases: create, start, query, kill. State moves only through the repository's
conditional transitions; a lost race is re-read and answered from the state that won."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.bootstrap import Services
from orchestrator.db.notifications import NotificationView
from orchestrator.db.workers import WorkerView
from orchestrator.domain.access import DEFAULT_PROJECT
from orchestrator.domain.capability import upload_url
from orchestrator.domain.capacity import Capacity
from orchestrator.domain.planning import (
    Candidate,
    placement_problem,
    plan_task,
)
from orchestrator.domain.priority import band_of, band_queue, parse_priority
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultLink, TaskView
from orchestrator.domain.webhook import validate_notify_url
from orchestrator.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    NotFound,
    QueueError,
    StorageError,
)
from orchestrator.logs import task_context
from orchestrator.service.catalog import Catalog
from orchestrator.service.finished import FinishedTasks
from orchestrator.settings import Settings
from pipelines.spec import PipelineSpec, Resources

log = logging.getLogger(__name__)

KILL_REASON = "killed on request"
# A task can change state under us at most a few times (waiting → pending → running); after
# that many lost races something else is wrong.
MAX_RACES = 4


class NewTasks(Protocol):
    """The call ``create_task`` makes to store a task (``TaskRepository`` has it)."""

    def create(
        self,
        *,
        task_id: str,
        pipeline: str,
        params: dict[str, Any],
        resources: Resources,
        queue: str,
        slots: Sequence[tuple[str, bool]],
        notify_url: str | None = None,
        project_id: str = DEFAULT_PROJECT,
        priority: int = 0,
    ) -> TaskView: ...


class LiveWorkers(Protocol):
    """What ``create_task`` asks the worker registry (``WorkerRepository`` has it)."""

    def alive(self, lost_after_s: float) -> list[WorkerView]: ...


class TaskReader(Protocol):
    def get(self, task_id: str) -> TaskView | None: ...


class TaskReads(Protocol):
    """What reading a task uses (``Services`` has it)."""

    @property
    def tasks(self) -> TaskReader: ...
    @property
    def finished(self) -> FinishedTasks: ...


class Presigner(Protocol):
    def presign_get(self, bucket: str, key: str, expiry_s: int, filename: str) -> str: ...


class LinkSigning(Protocol):
    """What signing a done task's result links uses (``Services`` has it)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def storage(self) -> Presigner: ...
    @property
    def finished(self) -> FinishedTasks: ...


class QueueableTasks(TaskReader, Protocol):
    """The call that moves a waiting task with its inputs in to pending."""

    def queue_if_complete(self, task_id: str, *, all_inputs: bool = False) -> bool: ...


class Enqueue(Protocol):
    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None: ...


class Queueing(Protocol):
    """What ``queue_if_complete`` uses (``Services`` has it)."""

    @property
    def tasks(self) -> QueueableTasks: ...
    @property
    def queue(self) -> Enqueue: ...


class Starting(Protocol):
    """What ``start_task`` uses (``Services`` has it)."""

    @property
    def tasks(self) -> QueueableTasks: ...
    @property
    def queue(self) -> Enqueue: ...
    @property
    def finished(self) -> FinishedTasks: ...


class KillableTasks(TaskReader, Protocol):
    """The calls ``kill_task`` makes (``TaskRepository`` has them)."""

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        expected: TaskStatus | frozenset[TaskStatus] | None = None,
        reason: str | None = None,
    ) -> bool: ...

    def request_kill(self, task_id: str) -> bool: ...


@dataclass(frozen=True)
class Created:
    task: TaskView
    spec: PipelineSpec
    upload_urls: dict[str, str]


@dataclass(frozen=True)
class KillOutcome:
    task: TaskView
    kill_requested: bool  # True: running, the worker will stop it; False: killed already


def create_task(
    tasks: NewTasks,
    workers: LiveWorkers,
    settings: Settings,
    catalog: Catalog,
    pipeline: str,
    params: dict[str, Any] | None,
    resources: Mapping[str, Any] | None = None,
    *,
    notify_url: str | None = None,
    queue: str | None = None,
    project_id: str = DEFAULT_PROJECT,
    priority: str | int | None = None,
) -> Created:
    """Validate, refuse what no live worker could ever run, store the task, sign upload URLs."""
    if notify_url is not None:
        try:
            validate_notify_url(notify_url)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
    try:
        level = parse_priority(priority)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    spec = catalog.get(pipeline)
    if spec is None:
        known = ", ".join(sorted(catalog)) or "none"
        raise InvalidRequest(f"unknown pipeline {pipeline!r} (known: {known})")
    try:
        plan = plan_task(spec, params, resources, queue=queue)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    problem = placement(
        workers,
        settings.worker_lost_after_s,
        plan.demand,
        plan.queue,
        spec.image,
        disk_bytes=plan.resources.disk_bytes(0),
    )
    if problem is not None:
        raise InvalidRequest(problem)
    task_id = str(uuid.uuid4())
    with task_context(task_id):
        task = tasks.create(
            task_id=task_id,
            pipeline=spec.name,
            params=plan.params,
            resources=plan.resources,
            queue=plan.queue,
            slots=[(slot.name, slot.required) for slot in spec.inputs],
            notify_url=notify_url,
            project_id=project_id,
            priority=level,
        )
        log.info(
            "task created",
            extra={
                "pipeline": spec.name,
                "queue": plan.queue,
                "project_id": project_id,
                "priority": level,
            },
        )
    urls = {
        slot.name: upload_url(
            settings.tus_public_url, settings.upload_token_secret, task_id, slot.name
        )
        for slot in spec.inputs
    }
    return Created(task=task, spec=spec, upload_urls=urls)


def placement(
    workers: LiveWorkers,
    lost_after_s: float,
    demand: Capacity,
    queue: str,
    image: str,
    *,
    disk_bytes: int = 0,
) -> str | None:
    """Why no live worker could ever run such a task (``domain/planning.placement_problem``)."""
    return placement_problem(
        demand, queue, candidates(workers, lost_after_s), image, disk_bytes=disk_bytes
    )


def candidates(workers: LiveWorkers, lost_after_s: float) -> list[Candidate]:
    """The live workers as placement sees them."""
    return [
        Candidate(
            w.queues,
            Capacity.of(w.capacity),
            None if w.images is None else frozenset(w.images),
            disk_bytes=w.hardware.get("disk_bytes") or None,
        )
        for w in workers.alive(lost_after_s)
    ]


def get_task(services: TaskReads, task_id: str, scope: str | None = None) -> TaskView:
    """The task, from memory once it has finished (``service/finished.py``). ``scope``: the
    one project the caller may see (None: all); another project's task is unknown."""
    task = services.finished.view(task_id)
    if task is None:
        task = _existing(services.tasks, task_id)
        services.finished.keep(task)
    return _seen(task, task_id, scope)


def finished_task(services: TaskReads, task_id: str, scope: str | None = None) -> TaskView | None:
    """The task if this process has it in memory (finished, read before): no I/O."""
    task = services.finished.view(task_id)
    return None if task is None else _seen(task, task_id, scope)


def _existing(tasks: TaskReader, task_id: str, scope: str | None = None) -> TaskView:
    task = tasks.get(task_id)
    if task is None:
        raise NotFound(f"unknown task {task_id}")
    return _seen(task, task_id, scope)


def _seen(task: TaskView, task_id: str, scope: str | None) -> TaskView:
    # Word for word the answer about a task that does not exist: existence must not leak.
    if scope is not None and task.project_id != scope:
        raise NotFound(f"unknown task {task_id}")
    if task.deleted_at is not None:
        raise Gone(
            f"task {task_id} was deleted at {task.deleted_at.isoformat()}: "
            f"{task.deleted_reason or 'no reason given'}",
            task_id=task_id,
            deleted_at=task.deleted_at,
            reason=task.deleted_reason,
        )
    return task


def enqueue(services: Queueing, task: TaskView) -> None:
    """Onto the RQ queue of its queue's priority band (``domain/priority.py``)."""
    band = band_of(task.priority)
    services.queue.enqueue(task.id, band_queue(task.queue, band), task.resources.timeout_s)
    log.info("task queued", extra={"queue": task.queue, "band": band.value})


def queue_if_complete(services: Queueing, task_id: str, *, all_inputs: bool = False) -> bool:
    """waiting → pending when every required (``all_inputs``: every) input is in; the caller
    that wins enqueues.

    PostgreSQL is the truth and Redis only carries work: when the enqueue fails, the task stays
    pending and the reconciler enqueues it again, so the failure is logged, not raised (a 503
    would only make tusd retry a hook that has nothing left to do).
    """
    if not services.tasks.queue_if_complete(task_id, all_inputs=all_inputs):
        return False
    try:
        enqueue(services, _existing(services.tasks, task_id))
    except QueueError as exc:
        log.warning("task pending but not enqueued; the reconciler will retry: %s", exc)
    return True


def start_task(services: Starting, task_id: str, scope: str | None = None) -> TaskView:
    with task_context(task_id):
        task = get_task(services, task_id, scope)
        for _ in range(MAX_RACES):
            if task.status is not TaskStatus.WAITING:
                break
            queue_if_complete(services, task_id)
            task = get_task(services, task_id)
            # Still waiting with nothing missing: the last input was filled after the attempt
            # read the slots (a hook commits its fill, then queues in a second transaction).
            # Another attempt sees the fill.
            if task.missing_inputs:
                break
        if task.status is TaskStatus.WAITING:
            missing = task.missing_inputs
            raise Conflict(
                f"inputs not uploaded yet: {', '.join(missing)}",
                status=task.status.value,
                missing=missing,
            )
        if task.status in (TaskStatus.ERROR, TaskStatus.KILLED):
            raise Conflict(f"task is already {task.status.value}", status=task.status.value)
        # pending, running, done: starting again is a no-op.
        return task


def kill_task(tasks: KillableTasks, task_id: str, scope: str | None = None) -> KillOutcome:
    """waiting/pending → killed at once; running → a kill request its worker acts on."""
    with task_context(task_id):
        for _ in range(MAX_RACES):
            task = _existing(tasks, task_id, scope)
            if task.status in (TaskStatus.WAITING, TaskStatus.PENDING):
                if tasks.transition(
                    task_id, TaskStatus.KILLED, expected=task.status, reason=KILL_REASON
                ):
                    log.info("task killed", extra={"was": task.status.value})
                    return KillOutcome(_existing(tasks, task_id), kill_requested=False)
            elif task.status is TaskStatus.RUNNING:
                if tasks.request_kill(task_id):
                    log.info("kill requested for running task")
                    return KillOutcome(_existing(tasks, task_id), kill_requested=True)
            else:
                raise Conflict(f"task is already {task.status.value}", status=task.status.value)
        raise Conflict("task changed state during the kill; try again", status=task.status.value)


def result_links(services: LinkSigning, task: TaskView) -> list[ResultLink] | None:
    """Presigned download URLs for a done task's results (None before done): signed now, or
    within the last ``link_reuse_s`` (no I/O either way: signing is local)."""
    if task.status is not TaskStatus.DONE or task.results is None or task.results_removed_at:
        return None
    now = time.monotonic()
    kept = services.finished.links(task.id, now)
    if kept is not None:
        return list(kept)
    settings = services.settings
    links = []
    for item in task.results:
        try:
            url = services.storage.presign_get(
                settings.results_bucket, item.key, settings.presign_expiry_s, item.name
            )
        except Exception as exc:  # presigning is local, so this is a storage config problem
            raise StorageError(f"cannot presign {item.key}: {exc}") from exc
        links.append(
            ResultLink(
                name=item.name,
                url=url,
                bytes=item.bytes,
                sha256=item.sha256,
                content_type=item.content_type,
                picture=item.picture,
            )
        )
    services.finished.keep_links(task.id, links, now)
    return links


def notifications_of(services: Services, task: TaskView) -> list[NotificationView] | None:
    """The task's webhook notifications and their attempts; None when it has no notify_url."""
    if task.notify_url is None:
        return None
    return services.notifications.for_task(task.id)
