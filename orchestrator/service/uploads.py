"""The tusd hook use case: locate the task, take the pure decision, carry it out; and the sweep
that finishes uploads whose post-finish never arrived."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from hooks.decisions import (
    Accept,
    Decision,
    FreeSlot,
    HookContext,
    Ignore,
    RecordFinish,
    RecordProgress,
    RecordStart,
    Refuse,
    Reject,
    Target,
    decide,
    locate,
    object_id_of,
    respond,
    verify_stored,
)
from hooks.protocol import HookRequest, HookResponse, HookType
from orchestrator.db.repository import SlotPosition, UploadingSlot
from orchestrator.domain.access import QuotaStanding, upload_refusal
from orchestrator.domain.capacity import demand_of
from orchestrator.domain.planning import room_problem
from orchestrator.domain.task import TaskView
from orchestrator.errors import DependencyError, HookRefused, StorageError
from orchestrator.logs import task_context
from orchestrator.service.catalog import Catalog
from orchestrator.service.metrics import counting_hook, rejected_hook
from orchestrator.service.tasks import (
    Enqueue,
    LiveWorkers,
    QueueableTasks,
    candidates,
    queue_if_complete,
)
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


# A slot whose upload has been quiet this long is checked against storage by the sweep: tusd
# sends post-finish right after the last byte, so a finished upload quiet for 2 s lost it.
RECOVER_AFTER_S = 2.0
# Quiet uploading slots one recovery checks in storage (a HEAD each, slots). With N of them, a
# finished one is found within ceil(N / RECOVER_PAGE) passes (``recover_finished_uploads``).
RECOVER_PAGE = 500
# The reconciler checks the slots that went quiet within this long (s) on every pass (six
# passes at the default interval): a post-finish lost to a hook that failed is found within a
# pass, and one storage showed late within a minute. Slots quiet for longer are mostly
# abandoned uploads, kept until their task expires; its sweeps check those
# (``reconciler.UploadChecks``).
RECENT_QUIET_S = 60.0


class SlotStore(QueueableTasks, Protocol):
    """The calls the hooks make on the tasks table (``TaskRepository`` has them); each is a
    conditional write that answers whether it won."""

    def slot_reserved(
        self,
        task_id: str,
        slot: str,
        *,
        key: str,
        bucket: str,
        filename: str | None,
        size: int,
        stalled_before: datetime,
    ) -> bool: ...
    def slot_upload_created(self, task_id: str, slot: str, key: str, upload_id: str) -> bool: ...
    def slot_progress(self, task_id: str, slot: str, key: str, offset: int) -> bool: ...
    def slot_finished(
        self,
        task_id: str,
        slot: str,
        *,
        upload_id: str,
        filename: str | None,
        size: int,
        bucket: str,
        key: str,
    ) -> bool: ...
    def slot_freed(self, task_id: str, slot: str, key: str) -> bool: ...
    def uploading_slots(
        self,
        idle_before: datetime,
        *,
        after: SlotPosition | None = None,
        limit: int = 500,
        changed_since: datetime | None = None,
    ) -> list[UploadingSlot]: ...


class StoredSizes(Protocol):
    def stat_size(self, bucket: str, key: str) -> int | None: ...


class HookServices(Protocol):
    """What the hook use case uses (``Services`` has it; tests give in-memory fakes)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def tasks(self) -> SlotStore: ...
    @property
    def storage(self) -> StoredSizes: ...
    @property
    def queue(self) -> Enqueue: ...
    @property
    def access(self) -> QuotaReads: ...
    @property
    def workers(self) -> LiveWorkers: ...


class QuotaReads(Protocol):
    """What pre-create asks to enforce a project's byte quotas (``AccessRepository`` has it)."""

    def quota_standing(self, task_id: str, *, besides: str) -> QuotaStanding | None: ...


def quota_refusal(standing: QuotaStanding, decision: Accept) -> str | None:
    """Why the project's quotas refuse this upload, or None."""
    return upload_refusal(
        standing.quota,
        standing.project,
        adding=decision.size,
        task_bytes=standing.held,
        stored_bytes=standing.stored,
    )


def room_refusal(services: HookServices, task: TaskView, decision: Accept, held: int) -> str | None:
    """Why no live worker could run the task with this upload among its inputs (``held`` are
    the others): their sum, times the pipeline's ``disk_per_input``, plus its margin, exceeds
    the work dir of every live worker of its queue that could hold it."""
    resources = task.resources
    return room_problem(
        demand_of(resources),
        task.queue,
        candidates(services.workers, services.settings.worker_lost_after_s),
        resources.disk_bytes(held + decision.size),
    )


def hook_context(services: HookServices) -> HookContext:
    s = services.settings
    return HookContext(
        uploads_bucket=s.uploads_bucket,
        tus_url=s.tus_public_url,
        stalled_after=timedelta(seconds=s.upload_stalled_after_s),
        max_metadata_bytes=s.max_upload_metadata_bytes,
        now=datetime.now(UTC),
        nonce=secrets.token_hex(12),
    )


def handle_hook(services: HookServices, catalog: Catalog, req: HookRequest) -> HookResponse:
    """Answer one hook. Transient failures raise ``DependencyError`` (→ 503, tusd retries);
    a forged post-finish raises ``HookRefused`` (→ 4xx)."""
    hook = req.Type.value
    with counting_hook(hook):
        response = _answer(services, catalog, req)
    if response.RejectUpload or response.StopUpload:
        rejected_hook(hook)
    return response


def _answer(services: HookServices, catalog: Catalog, req: HookRequest) -> HookResponse:
    located = locate(req, services.settings.upload_token_secret)
    if not isinstance(located, Target):
        _log(req, located)
        return respond(located)
    with task_context(located.task_id):
        progress = _progressed(services, req, located)
        if progress is not None:
            _log(req, progress, slot=located.slot)
            return respond(progress)
        task = services.tasks.get(located.task_id)
        spec = catalog.get(task.pipeline) if task else None
        ctx = hook_context(services)
        decision = _carry_out(services, decide(req, located, task, spec, ctx), ctx, task)
        _log(req, decision, slot=located.slot)
        if isinstance(decision, Refuse):
            raise HookRefused(decision.message)
        return respond(decision)


def _progressed(services: HookServices, req: HookRequest, target: Target) -> RecordProgress | None:
    """post-receive, once a second per upload: its progress recorded by one conditional
    statement, without reading the task first. It writes only where the decision would be
    ``RecordProgress`` (the upload holds the slot, which is not filled, and the task waits);
    None otherwise (and for other hooks): the task is then read to tell why (``Stop``...)."""
    if req.Type is not HookType.POST_RECEIVE:
        return None
    upload = req.upload
    progress = RecordProgress(target.task_id, target.slot, object_id_of(upload.ID), upload.Offset)
    recorded = services.tasks.slot_progress(
        progress.task_id, progress.slot, progress.key, progress.offset
    )
    return progress if recorded else None


def _carry_out(
    services: HookServices, decision: Decision, ctx: HookContext, task: TaskView | None
) -> Decision:
    """Apply a recording decision; returns what was actually done (an Ignore if nothing)."""
    repo = services.tasks
    if isinstance(decision, Accept):
        # Both checks count the task's other inputs: read once, with the quota.
        standing = services.access.quota_standing(decision.task_id, besides=decision.slot)
        held = standing.held if standing is not None else 0
        refusal = quota_refusal(standing, decision) if standing is not None else None
        if refusal is not None:
            # 413 like any size refusal; tusd hands status and message to the client.
            return Reject(413, refusal)
        assert task is not None  # an Accept is about a task that exists
        no_room = room_refusal(services, task, decision, held)
        if no_room is not None:
            # As create_task answers a task no live worker could run.
            return Reject(422, no_room)
        if not repo.slot_reserved(
            decision.task_id,
            decision.slot,
            key=decision.object_id,
            bucket=decision.bucket,
            filename=decision.filename,
            size=decision.size,
            stalled_before=ctx.now - ctx.stalled_after,
        ):
            # Another pre-create bound the slot between our read and our write.
            return Reject(
                409,
                f"input {decision.slot!r} was just taken by another upload; resume that "
                "one or retry later",
            )
    elif isinstance(decision, RecordStart):
        if not repo.slot_upload_created(
            decision.task_id, decision.slot, decision.key, decision.upload_id
        ):
            return Ignore("slot was filled or taken over meanwhile")
    elif isinstance(decision, RecordProgress):
        if not repo.slot_progress(decision.task_id, decision.slot, decision.key, decision.offset):
            return Ignore("slot was filled or taken over meanwhile")
    elif isinstance(decision, RecordFinish):
        return _finish(services, decision)
    elif isinstance(decision, FreeSlot) and not repo.slot_freed(
        decision.task_id, decision.slot, decision.key
    ):
        return Ignore("slot changed meanwhile")
    return decision


def _finish(services: HookServices, decision: RecordFinish) -> Decision:
    stored = services.storage.stat_size(decision.bucket, decision.key)
    if stored is None:
        # tusd sends post-finish after the object is complete, so a missing object is most
        # likely storage lagging: 503 makes tusd retry.
        problem = verify_stored(decision, stored)
        raise StorageError(f"upload {decision.upload_id} not verified: {problem}")
    return _fill(services, decision, stored)


def _fill(services: HookServices, decision: RecordFinish, stored: int) -> Decision:
    """Fill the slot with the finished upload once storage holds ``stored`` bytes of it."""
    problem = verify_stored(decision, stored)
    if problem is not None:
        # A wrong size never heals by retrying; the slot stays unfilled, visibly uploading.
        log.warning("finished upload not trusted: %s", problem)
        return Ignore(problem)
    won = services.tasks.slot_finished(
        decision.task_id,
        decision.slot,
        upload_id=decision.upload_id,
        filename=decision.filename,
        size=decision.size,
        bucket=decision.bucket,
        key=decision.key,
    )
    # Also on a replay: the first delivery may have recorded the slot and then failed (503)
    # before the task was queued. Only once every slot is filled: a client may still be about
    # to upload an optional input; with optional slots left empty the task starts on
    # start_task or, after settings.optional_inputs_grace_s without upload activity, by the
    # reconciler.
    queue_if_complete(services, decision.task_id, all_inputs=True)
    return decision if won else Ignore(f"input {decision.slot!r} was already recorded")


@dataclass(frozen=True)
class Recovery:
    """What one ``recover_finished_uploads`` did, and where the next one goes on."""

    filled: list[str]  # <task>/<slot> of the slots it filled
    resume_after: SlotPosition | None  # the next call's ``after``; None: from the first slot
    quiet_before: datetime  # the slots checked were quiet since before this
    interrupted: bool = False  # storage could not be read: the page was not checked through


def recover_finished_uploads(
    services: HookServices,
    now: datetime | None = None,
    *,
    after: SlotPosition | None = None,
    limit: int = RECOVER_PAGE,
    changed_since: datetime | None = None,
) -> Recovery:
    """Finish, exactly as post-finish would, every bound upload that is complete in storage,
    among one page of ``limit`` quiet uploading slots after ``after`` (given
    ``changed_since``: among those whose upload last changed then or later only).

    tusd sends post-finish at most ``-hooks-http-retry`` times about a second apart and never
    again; an API that was down then (a restart, a deploy) would leave the input "uploading"
    for ever. The object exists at the bound key only once tusd completed the multipart upload,
    so the object with the announced size is the proof post-finish would have carried.
    Abandoned uploads stay quiet and uploading until their expiry, so the pages go on where the
    last one ended, and start again from the first after the last, in (task, slot) order: no
    slot waits behind a page of abandoned ones. When storage cannot be read, the next call
    checks the same page.
    """
    now = now or datetime.now(UTC)
    idle_before = now - timedelta(seconds=RECOVER_AFTER_S)
    slots = services.tasks.uploading_slots(
        idle_before, after=after, limit=limit, changed_since=changed_since
    )
    filled: list[str] = []
    for slot in slots:
        with task_context(slot.task_id):
            if slot.bucket != services.settings.uploads_bucket:
                continue
            decision = RecordFinish(
                slot.task_id,
                slot.slot,
                slot.upload_id,
                slot.filename,
                slot.size,
                slot.bucket,
                slot.key,
            )
            try:
                stored = services.storage.stat_size(slot.bucket, slot.key)
            except DependencyError as exc:
                log.warning("upload recovery: cannot check storage: %s", exc)
                return Recovery(filled, after, idle_before, interrupted=True)
            if stored is None:
                continue  # still uploading, or abandoned: nothing to finish
            if isinstance(_fill(services, decision, stored), RecordFinish):
                log.info(
                    "upload recovered without post-finish",
                    extra={"slot": slot.slot, "upload_id": slot.upload_id, "bytes": stored},
                )
                filled.append(f"{slot.task_id}/{slot.slot}")
    return Recovery(filled, slots[-1].position if len(slots) == limit else None, idle_before)


def _log(req: HookRequest, decision: Decision, slot: str | None = None) -> None:
    # post-receive arrives for every chunk; the rest is rare and worth seeing.
    level = logging.DEBUG if isinstance(decision, RecordProgress) else logging.INFO
    log.log(
        level,
        "hook %s: %s",
        req.Type.value,
        type(decision).__name__,
        extra={"upload_id": req.upload.ID, "slot": slot, "decision": repr(decision)},
    )
