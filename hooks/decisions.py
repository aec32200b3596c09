"""What to do about each tusd hook, decided from the hook and a snapshot of the task. Pure.

The service layer loads the task, calls ``locate`` then ``decide`` and carries the decision out
(``Accept`` / ``Record*`` / ``FreeSlot`` write through the repository's conditional slot
updates). Every decision is safe to take twice and in any order: tusd does not promise
exactly-once delivery or ordering, so anything that no longer applies (a replay, a late
post-receive, an unknown upload) is an ``Ignore`` with its reason, never an error.

Ownership of a slot: pre-create names the upload (``ChangeFileInfo.ID``) ``<task>/<slot>/<nonce>``
and binds that object id to the slot, only while no other upload is active there. tusd's s3store
then calls the upload ``<objectId>+<multipartId>`` and writes it at key ``<objectId>``; every later
hook is honoured only for the upload that holds the slot (``holds``), and post-finish only for
that very key in the uploads bucket. Hooks other than pre-create find their task and slot in the
metadata pre-create set server-side (``ChangeFileInfo.MetaData``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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
class HookContext:
    """What decisions need besides the hook and the task: settings, the clock, a fresh nonce."""

    uploads_bucket: str
    tus_url: str  # TUS_PUBLIC_URL: an upload's URL is this plus its id
    stalled_after: timedelta
    max_metadata_bytes: int
    now: datetime
    nonce: str  # random, URL-safe: the unguessable part of a new upload's object id


@dataclass(frozen=True)
class Target:
    """The task and slot a hook concerns."""

    task_id: str
    slot: str


@dataclass(frozen=True)
class Reject:
    """pre-create: refuse the upload; the client sees ``status``, ``message`` and ``headers``."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Accept:
    """pre-create: bind ``object_id`` to the slot, then let tusd create the upload under it with
    this (server-completed) metadata."""

    task_id: str
    slot: str
    object_id: str
    bucket: str
    filename: str | None
    size: int
    metadata: dict[str, str]


@dataclass(frozen=True)
class RecordStart:
    """post-create: the upload holding the slot now has its full tusd id."""

    task_id: str
    slot: str
    upload_id: str
    key: str


@dataclass(frozen=True)
class RecordProgress:
    task_id: str
    slot: str
    key: str
    offset: int


@dataclass(frozen=True)
class Stop:
    """post-receive: stop a transfer nobody needs any more (task gone, slot lost)."""

    status: int
    message: str


@dataclass(frozen=True)
class FailFinish:
    """pre-finish: the upload is complete in storage but will not be used; the final PATCH
    answers ``status`` instead of 204 so that the client does not believe it succeeded."""

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
class Refuse:
    """A hook that names storage the upload does not own (forged or misrouted): answered with
    a 4xx so that tusd logs it, and nothing is recorded."""

    status: int
    message: str


@dataclass(frozen=True)
class FreeSlot:
    task_id: str
    slot: str
    key: str


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
    | FailFinish
    | RecordFinish
    | Refuse
    | FreeSlot
    | KeepUpload
    | Ignore
)


def object_id_of(upload_id: str) -> str:
    """tusd's s3store upload ids are ``<objectId>+<multipartId>`` (split at the last ``+``); the
    object id is also the key of the finished object."""
    head, plus, _ = upload_id.rpartition("+")
    return head if plus else upload_id


def new_object_id(task_id: str, slot: str, nonce: str) -> str:
    # tusd accepts [A-Za-z0-9-._~%!$'()*+,;=/:@] in an id, with no leading or trailing "/";
    # task ids are UUIDs and slot names identifiers, so this lays uploads out per task.
    return f"{task_id}/{slot}/{nonce}"


def holds(state: InputView, upload_id: str) -> bool:
    """Whether the upload ``upload_id`` is the one bound to the slot."""
    if state.key is not None:
        return object_id_of(upload_id) == state.key
    return state.upload_id is not None and state.upload_id == upload_id


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
    meta = req.upload.meta
    meta_task, meta_slot = meta.get(TASK_KEY), meta.get(SLOT_KEY)
    if not meta_task or not meta_slot:
        return Ignore(f"upload {req.upload.ID!r} was not created through an upload URL")
    return Target(meta_task, meta_slot)


def decide(
    req: HookRequest,
    target: Target,
    task: TaskView | None,
    spec: PipelineSpec | None,
    ctx: HookContext,
) -> Decision:
    """The decision for ``req`` about ``target``, given the task as it is now (None: unknown)."""
    if req.Type is HookType.PRE_CREATE:
        return _pre_create(req, target, task, spec, ctx)
    if task is None:
        return Ignore(f"unknown task {target.task_id}")
    state = task.input(target.slot)
    if state is None:
        return Ignore(f"task has no input slot {target.slot!r}")
    handlers = {
        HookType.POST_CREATE: _post_create,
        HookType.POST_RECEIVE: _post_receive,
        HookType.PRE_FINISH: _pre_finish,
        HookType.POST_FINISH: _post_finish,
        HookType.PRE_TERMINATE: _pre_terminate,
        HookType.POST_TERMINATE: _post_terminate,
    }
    handler = handlers.get(req.Type)
    if handler is None:
        return Ignore(f"{req.Type.value} needs no decision")
    return handler(req, target, task, state, ctx)


def _metadata_bytes(meta: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())


def _pre_create(
    req: HookRequest,
    target: Target,
    task: TaskView | None,
    spec: PipelineSpec | None,
    ctx: HookContext,
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
    if state.state == "uploading" and not state.stalled(ctx.now, ctx.stalled_after):
        return _slot_busy(target, state, ctx)
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
    meta_bytes = _metadata_bytes(upload.meta)
    if meta_bytes > ctx.max_metadata_bytes:
        return Reject(
            400,
            f"Upload-Metadata holds {meta_bytes} bytes; at most {ctx.max_metadata_bytes} "
            "are accepted",
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
    return Accept(
        task_id=target.task_id,
        slot=target.slot,
        object_id=new_object_id(target.task_id, target.slot, ctx.nonce),
        bucket=ctx.uploads_bucket,
        filename=filename,
        size=upload.Size,
        metadata=metadata,
    )


def _slot_busy(target: Target, state: InputView, ctx: HookContext) -> Reject:
    """Another upload is active in the slot: say which, and how far it got, so that the client
    resumes that one instead of starting over."""
    holder = state.upload_id  # tusd's id, recorded by post-create; None until then
    total = "?" if state.size is None else str(state.size)
    idle = int((ctx.now - state.updated_at).total_seconds()) if state.updated_at else 0
    stalled = int(ctx.stalled_after.total_seconds())
    where = f"upload {ctx.tus_url}{holder}" if holder else "an upload being created"
    message = (
        f"input {target.slot!r} is being uploaded by {where} ({state.offset} of {total} bytes, "
        f"last progress {idle} s ago); resume that upload, or retry once it has made no "
        f"progress for {stalled} s"
    )
    headers: tuple[tuple[str, str], ...] = (("Upload-Offset", str(state.offset)),)
    if holder:
        headers += (("Location", f"{ctx.tus_url}{holder}"),)
    return Reject(409, message, headers)


def _post_create(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    upload = req.upload
    if not holds(state, upload.ID):
        return Ignore(f"upload {upload.ID} does not hold input {target.slot!r}")
    if state.done or task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}, input {target.slot!r} is {state.state}")
    if state.upload_id == upload.ID:
        return Ignore(f"upload {upload.ID} is already recorded")  # a replay
    return RecordStart(target.task_id, target.slot, upload.ID, object_id_of(upload.ID))


def _post_receive(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    upload = req.upload
    mine = holds(state, upload.ID)
    if state.done:
        if mine:
            return Ignore("progress after the upload finished")
        return Stop(409, f"input {target.slot!r} was filled by another upload")
    if task.status is not TaskStatus.WAITING:
        return Stop(409, f"task is {task.status.value}; it accepts no more uploads")
    if not mine:
        return Stop(
            409, f"input {target.slot!r} was taken over by another upload after this one stalled"
        )
    return RecordProgress(target.task_id, target.slot, object_id_of(upload.ID), upload.Offset)


def _pre_finish(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    if not holds(state, req.upload.ID):
        what = "was filled by another upload" if state.done else "was taken over by another upload"
        return FailFinish(
            409, f"input {target.slot!r} {what}; this upload is complete but will not be used"
        )
    if not state.done and task.status is not TaskStatus.WAITING:
        return FailFinish(
            409, f"task is {task.status.value}; this upload is complete but will not be used"
        )
    return Ignore("finish allowed")


def _post_finish(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    upload = req.upload
    if not holds(state, upload.ID):
        return Ignore(f"upload {upload.ID} does not hold input {target.slot!r}")
    storage = upload.Storage or {}
    bucket, key = storage.get("Bucket"), storage.get("Key")
    if not bucket or not key:
        return Ignore(f"upload {upload.ID} has no object storage location")
    if bucket != ctx.uploads_bucket:
        return Refuse(403, f"bucket {bucket!r} is not the uploads bucket")
    expected = state.key or object_id_of(upload.ID)
    if key != expected:
        return Refuse(403, f"key {key!r} is not the object of upload {upload.ID}")
    # A replay of the finish that filled the slot is recorded again (a no-op) so the caller
    # re-checks the queueing that a failed first delivery may have left undone.
    if not state.done and task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}")
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


def _pre_terminate(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    if task.status in (TaskStatus.PENDING, TaskStatus.RUNNING) and holds(state, req.upload.ID):
        return KeepUpload(409, f"task is {task.status.value} and needs this upload")
    return Ignore("termination allowed")


def _post_terminate(
    req: HookRequest, target: Target, task: TaskView, state: InputView, ctx: HookContext
) -> Decision:
    if task.status is not TaskStatus.WAITING:
        return Ignore(f"task is {task.status.value}")
    if not holds(state, req.upload.ID):
        return Ignore(f"upload {req.upload.ID} does not hold input {target.slot!r}")
    return FreeSlot(target.task_id, target.slot, object_id_of(req.upload.ID))


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


def _refusal(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> HTTPResponse:
    return HTTPResponse(
        StatusCode=status,
        Body=message,
        Header={"Content-Type": "text/plain; charset=utf-8", **dict(headers)},
    )


def respond(decision: Decision) -> HookResponse:
    """The hook response that carries ``decision`` out on tusd's side."""
    if isinstance(decision, Reject):
        return HookResponse(
            RejectUpload=True,
            HTTPResponse=_refusal(decision.status, decision.message, decision.headers),
        )
    if isinstance(decision, Accept):
        return HookResponse(
            ChangeFileInfo=FileInfoChanges(ID=decision.object_id, MetaData=decision.metadata)
        )
    if isinstance(decision, FailFinish):
        return HookResponse(HTTPResponse=_refusal(decision.status, decision.message))
    if isinstance(decision, Stop):
        return HookResponse(
            StopUpload=True, HTTPResponse=_refusal(decision.status, decision.message)
        )
    if isinstance(decision, KeepUpload):
        return HookResponse(
            RejectTermination=True, HTTPResponse=_refusal(decision.status, decision.message)
        )
    return HookResponse()
