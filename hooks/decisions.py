"""What to do about each tusd hook, decided from the hook and a snapshot of the task. Pure.

The service layer loads the task, calls ``locate`` then ``decide`` and carries the decision out
(``Record*`` / ``FreeSlot`` write through the repository's idempotent slot updates). Every
decision is safe to take twice and in any order: tusd does not promise exactly-once delivery or
ordering, so anything that no longer applies (a replay, a late post-receive, an unknown upload)
is an ``Ignore`` with its reason, never an error.

Hooks other than pre-create find their task and slot in the upload's metadata, which pre-create
set server-side (``ChangeFileInfo.MetaData``) after checking the capability in the upload URL;
tusd stores it with the upload, so later hooks can trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hooks.protocol import FileInfoChanges, HookRequest, HookResponse, HookType, HTTPResponse
from orchestrator.domain.capability import parse_upload_query, verify_slot_token
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from pipelines.spec import PipelineSpec

# Metadata keys the server sets; a client's own values for them are dropped at pre-create.
TASK_KEY = "task_id"
SLOT_KEY = "slot"
FILENAME_KEYS = ("filename", "name")


@dataclass(frozen=True)
class Target:
    """The task and slot a hook concerns."""

    task_id: str
    slot: str


@dataclass(frozen=True)
class Reject:
    """pre-create: refuse the upload; the client sees ``status`` and ``message``."""

    status: int
    message: str


@dataclass(frozen=True)
class Accept:
    """pre-create: create the upload with this (server-completed) metadata."""

    metadata: dict[str, str]


@dataclass(frozen=True)
class RecordStart:
    task_id: str
    slot: str
    upload_id: str
    filename: str | None
    size: int | None


@dataclass(frozen=True)
class RecordProgress:
    task_id: str
    slot: str
    upload_id: str
    offset: int


@dataclass(frozen=True)
class Stop:
    """post-receive: stop a transfer nobody needs any more (task gone, slot filled)."""

    status: int
    message: str


@dataclass(frozen=True)
class RecordFinish:
    """post-finish: fill the slot once the object is seen in storage with ``size`` bytes."""

    task_id: str
    slot: str
    upload_id: str
    filename: str | None
    size: int
    bucket: str
    key: str


@dataclass(frozen=True)
class FreeSlot:
    task_id: str
    slot: str
    upload_id: str


@dataclass(frozen=True)
class KeepUpload:
    """pre-terminate: refuse a DELETE of an input a queued or running task still needs."""

    status: int
    message: str


@dataclass(frozen=True)
class Ignore:
    reason: str


Decision = (
    Reject
    | Accept
    | RecordStart
    | RecordProgress
    | Stop
    | RecordFinish
    | FreeSlot
    | KeepUpload
    | Ignore
)


def filename_of(metadata: dict[str, str]) -> str | None:
    for key in FILENAME_KEYS:
        value = metadata.get(key, "").strip()
        if value:
            return value
    return None


def locate(req: HookRequest, token_secret: str) -> Target | Reject | Ignore:
    """Which task and slot the hook is about, or the answer when that cannot be known."""
    if req.Type is HookType.PRE_CREATE:
        parsed = parse_upload_query(req.Event.HTTPRequest.URI)
        if parsed is None:
            return Reject(
                400,
                "this upload URL does not name a task slot; use an upload URL from create_task",
            )
        task_id, slot, token = parsed
        # The capability is checked before the task is looked up, so a forged URL learns
        # nothing about which tasks exist.
        if not verify_slot_token(token_secret, task_id, slot, token):
            return Reject(403, "invalid upload token for this task and slot")
        return Target(task_id, slot)
    if req.Type is HookType.PRE_FINISH:
        return Ignore("pre-finish needs no decision")
    meta = req.upload.meta
    meta_task, meta_slot = meta.get(TASK_KEY), meta.get(SLOT_KEY)
    if not meta_task or not meta_slot:
        return Ignore(f"upload {req.upload.ID!r} was not created through an upload URL")
    return Target(meta_task, meta_slot)


def decide(
    req: HookRequest, target: Target, task: TaskView | None, spec: PipelineSpec | None
) -> Decision:
    """The decision for ``req`` about ``target``, given the task as it is now (None: unknown)."""
    if req.Type is HookType.PRE_CREATE:
        return _pre_create(req, target, task, spec)
    if task is None:
        return Ignore(f"unknown task {target.task_id}")
    state = task.input(target.slot)
    if state is None:
        return Ignore(f"task has no input slot {target.slot!r}")
    handlers = {
        HookType.POST_CREATE: _post_create,
        HookType.POST_RECEIVE: _post_receive,
        HookType.POST_FINISH: _post_finish,
        HookType.PRE_TERMINATE: _pre_terminate,
        HookType.POST_TERMINATE: _post_terminate,
    }
    handler = handlers.get(req.Type)
    if handler is None:
        return Ignore(f"{req.Type.value} needs no decision")
    return handler(req, target, task, state)


def _pre_create(
    req: HookRequest, target: Target, task: TaskView | None, spec: PipelineSpec | None
) -> Reject | Accept:
    upload = req.upload
    if task is None:
        return Reject(404, f"unknown task {target.task_id}")
    if task.status is not TaskStatus.WAITING:
        return Reject(409, f"task is {task.status.value}; it accepts no more uploads")
    state = task.input(target.slot)
    slot = spec.slot(target.slot) if spec else None
    if state is None or slot is None:
        return Reject(404, f"task has no input slot {target.slot!r}")
    if state.done:
        return Reject(409, f"input {target.slot!r} is already uploaded")
    if upload.IsPartial or upload.IsFinal:
        return Reject(400, "concatenated (partial/final) uploads are not supported")
    if upload.SizeIsDeferred:
        return Reject(400, "Upload-Length is required: uploads of deferred length are refused")
    if upload.Size > slot.max_bytes:
        return Reject(
            413,
            f"file is {upload.Size} bytes; input {slot.name!r} accepts at most "
            f"{slot.max_bytes} bytes",
        )
    filename = filename_of(upload.meta)
    if slot.accept:
        expected = ", ".join(slot.accept)
        if filename is None:
            return Reject(
                400, f"filename metadata is required; input {slot.name!r} accepts {expected}"
            )
        if not slot.accepts(filename):
            return Reject(
                415, f"{filename!r} is not accepted by input {slot.name!r}; expected {expected}"
            )
    metadata = {k: v for k, v in upload.meta.items() if k not in (TASK_KEY, SLOT_KEY)}
    metadata |= {TASK_KEY: target.task_id, SLOT_KEY: target.slot}
    if filename is not None:
        metadata["filename"] = filename
    return Accept(metadata)


def _post_create(req: HookRequest, target: Target, task: TaskView, state: InputView) -> Decision:
    upload = req.upload
    if task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}")
    if state.done:
        return Ignore(f"input {target.slot!r} is already uploaded")
    if state.upload_id == upload.ID:
        # A replay, or post-receive got here first: re-binding would reset the progress.
        return Ignore(f"upload {upload.ID} is already bound to input {target.slot!r}")
    return RecordStart(
        target.task_id,
        target.slot,
        upload.ID,
        filename_of(upload.meta),
        None if upload.SizeIsDeferred else upload.Size,
    )


def _post_receive(req: HookRequest, target: Target, task: TaskView, state: InputView) -> Decision:
    upload = req.upload
    if state.done:
        if state.upload_id == upload.ID:
            return Ignore("progress after the upload finished")
        return Stop(409, f"input {target.slot!r} was filled by another upload")
    if task.status is not TaskStatus.WAITING:
        return Stop(409, f"task is {task.status.value}; it accepts no more uploads")
    if state.upload_id not in (None, upload.ID):
        return Ignore(f"upload {upload.ID} was superseded by {state.upload_id}")
    return RecordProgress(target.task_id, target.slot, upload.ID, upload.Offset)


def _post_finish(req: HookRequest, target: Target, task: TaskView, state: InputView) -> Decision:
    upload = req.upload
    if state.done and state.upload_id != upload.ID:
        return Ignore(f"input {target.slot!r} was filled by upload {state.upload_id}")
    # A replay of the finish that filled the slot is recorded again (a no-op) so the caller
    # re-checks the queueing that a failed first delivery may have left undone.
    if not state.done and task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}")
    storage = upload.Storage or {}
    bucket, key = storage.get("Bucket"), storage.get("Key")
    if not bucket or not key:
        return Ignore(f"upload {upload.ID} has no object storage location")
    if upload.SizeIsDeferred or upload.Offset != upload.Size:
        return Ignore(f"upload {upload.ID} is not complete ({upload.Offset} of {upload.Size})")
    return RecordFinish(
        target.task_id,
        target.slot,
        upload.ID,
        filename_of(upload.meta),
        upload.Size,
        bucket,
        key,
    )


def _pre_terminate(req: HookRequest, target: Target, task: TaskView, state: InputView) -> Decision:
    if task.status in (TaskStatus.PENDING, TaskStatus.RUNNING) and (
        state.upload_id == req.upload.ID
    ):
        return KeepUpload(409, f"task is {task.status.value} and needs this upload")
    return Ignore("termination allowed")


def _post_terminate(req: HookRequest, target: Target, task: TaskView, state: InputView) -> Decision:
    if task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}")
    if state.upload_id != req.upload.ID:
        return Ignore(f"upload {req.upload.ID} does not hold input {target.slot!r}")
    return FreeSlot(target.task_id, target.slot, req.upload.ID)


def verify_stored(decision: RecordFinish, stored_size: int | None) -> str | None:
    """Why a finished upload is not trusted yet (None: the object is there, whole)."""
    if stored_size is None:
        return f"object {decision.bucket}/{decision.key} not found"
    if stored_size != decision.size:
        return (
            f"object {decision.bucket}/{decision.key} has {stored_size} bytes, "
            f"upload reported {decision.size}"
        )
    return None


def _refusal(status: int, message: str) -> HTTPResponse:
    return HTTPResponse(
        StatusCode=status,
        Body=message,
        Header={"Content-Type": "text/plain; charset=utf-8"},
    )


def respond(decision: Decision) -> HookResponse:
    """The hook response that carries ``decision`` out on tusd's side."""
    if isinstance(decision, Reject):
        return HookResponse(
            RejectUpload=True, HTTPResponse=_refusal(decision.status, decision.message)
        )
    if isinstance(decision, Accept):
        return HookResponse(ChangeFileInfo=FileInfoChanges(MetaData=decision.metadata))
    if isinstance(decision, Stop):
        return HookResponse(
            StopUpload=True, HTTPResponse=_refusal(decision.status, decision.message)
        )
    if isinstance(decision, KeepUpload):
        return HookResponse(
            RejectTermination=True, HTTPResponse=_refusal(decision.status, decision.message)
        )
    return HookResponse()
