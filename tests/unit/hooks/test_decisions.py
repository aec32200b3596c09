"""Pure hook decisions: every hook type against every task/slot situation that matters."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from hooks.decisions import (
    Accept,
    FreeSlot,
    Ignore,
    KeepUpload,
    RecordFinish,
    RecordProgress,
    RecordStart,
    Reject,
    Stop,
    Target,
    decide,
    locate,
    respond,
    verify_stored,
)
from hooks.protocol import FileInfo, HookEvent, HookRequest, HookType, HTTPRequest
from orchestrator.domain.capability import upload_url
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from pipelines.spec import InputSlot, PipelineSpec

SECRET = "token-secret"
TASK_ID = "6f1c1a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
UPLOAD = "abc123+mp-1"
SPEC = PipelineSpec(
    name="demo",
    description="",
    inputs=(
        InputSlot("pre", accept=(".las", ".laz"), max_bytes=1000),
        InputSlot("notes", required=False, max_bytes=50),
    ),
)
TARGET = Target(TASK_ID, "pre")


def task(
    status: TaskStatus = TaskStatus.WAITING,
    *,
    state: str = "empty",
    upload_id: str | None = None,
) -> TaskView:
    return TaskView(
        id=TASK_ID,
        pipeline="demo",
        status=status,
        params={},
        resources={},
        queue="default",
        reason=None,
        attempts=0,
        worker_id=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        inputs=(
            InputView(slot="pre", required=True, state=state, upload_id=upload_id),
            InputView(slot="notes", required=False, state="empty"),
        ),
    )


def hook(
    hook_type: HookType,
    *,
    upload_id: str = UPLOAD,
    size: int = 100,
    offset: int = 0,
    meta: dict[str, str] | None = None,
    uri: str = "",
    storage: dict[str, str] | None = None,
    **upload: object,
) -> HookRequest:
    if meta is None:
        meta = {"task_id": TASK_ID, "slot": "pre", "filename": "scan.las"}
    info = FileInfo(ID=upload_id, Size=size, Offset=offset, MetaData=meta, Storage=storage)
    info = msgspec.structs.replace(info, **upload)
    return HookRequest(
        Type=hook_type, Event=HookEvent(Upload=info, HTTPRequest=HTTPRequest(URI=uri))
    )


def pre_create(slot: str = "pre", meta: dict[str, str] | None = None, **kw: object) -> HookRequest:
    url = upload_url("/files/", SECRET, TASK_ID, slot)
    return hook(
        HookType.PRE_CREATE,
        upload_id="",
        uri=url,
        meta={"filename": "scan.las"} if meta is None else meta,
        **kw,  # type: ignore[arg-type]
    )


def decide_pre_create(req: HookRequest, snapshot: TaskView | None = None) -> object:
    located = locate(req, SECRET)
    assert isinstance(located, Target)
    return decide(req, located, task() if snapshot is None else snapshot, SPEC)


# --- locate ----------------------------------------------------------------------------------
def test_pre_create_without_capability_is_refused() -> None:
    decision = locate(hook(HookType.PRE_CREATE, uri="/files/"), SECRET)
    assert isinstance(decision, Reject) and decision.status == 400
    assert "upload URL" in decision.message


@pytest.mark.parametrize(
    "uri",
    [
        upload_url("/files/", "other-secret", TASK_ID, "pre"),
        # A valid token of one slot does not open another.
        upload_url("/files/", SECRET, TASK_ID, "notes").replace("slot=notes", "slot=pre"),
        upload_url("/files/", SECRET, TASK_ID, "pre").replace(TASK_ID, "0" * 36),
    ],
)
def test_pre_create_with_forged_token_is_refused(uri: str) -> None:
    decision = locate(hook(HookType.PRE_CREATE, uri=uri), SECRET)
    assert decision == Reject(403, "invalid upload token for this task and slot")


def test_pre_create_with_valid_capability_locates_its_slot() -> None:
    assert locate(pre_create("notes"), SECRET) == Target(TASK_ID, "notes")


@pytest.mark.parametrize(
    "hook_type",
    [HookType.POST_CREATE, HookType.POST_RECEIVE, HookType.POST_FINISH, HookType.POST_TERMINATE],
)
def test_later_hooks_locate_by_server_set_metadata(hook_type: HookType) -> None:
    assert locate(hook(hook_type), SECRET) == TARGET
    assert isinstance(locate(hook(hook_type, meta={"filename": "x"}), SECRET), Ignore)


def test_pre_finish_is_ignored() -> None:
    assert isinstance(locate(hook(HookType.PRE_FINISH), SECRET), Ignore)


# --- pre-create ------------------------------------------------------------------------------
def test_pre_create_accepts_and_sets_server_metadata() -> None:
    req = pre_create(meta={"filename": "Scan.LAS", "task_id": "evil", "slot": "other", "x": "1"})
    decision = decide_pre_create(req)
    assert decision == Accept({"filename": "Scan.LAS", "x": "1", "task_id": TASK_ID, "slot": "pre"})


def test_pre_create_accepts_name_as_filename() -> None:
    decision = decide_pre_create(pre_create(meta={"name": "a.laz"}))
    assert isinstance(decision, Accept)
    assert decision.metadata["filename"] == "a.laz"


def test_pre_create_unknown_task() -> None:
    req = pre_create()
    assert decide(req, TARGET, None, SPEC) == Reject(404, f"unknown task {TASK_ID}")


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not TaskStatus.WAITING])
def test_pre_create_needs_a_waiting_task(status: TaskStatus) -> None:
    decision = decide_pre_create(pre_create(), task(status))
    assert isinstance(decision, Reject) and decision.status == 409
    assert status.value in decision.message


def test_pre_create_unknown_slot() -> None:
    req = pre_create()
    decision = decide(req, Target(TASK_ID, "ghost"), task(), SPEC)
    assert isinstance(decision, Reject) and decision.status == 404


def test_pre_create_for_a_pipeline_no_longer_installed() -> None:
    decision = decide(pre_create(), TARGET, task(), None)
    assert isinstance(decision, Reject) and decision.status == 404


def test_pre_create_into_a_filled_slot() -> None:
    decision = decide_pre_create(pre_create(), task(state="done", upload_id="old"))
    assert decision == Reject(409, "input 'pre' is already uploaded")


def test_pre_create_while_another_upload_is_running_is_allowed() -> None:
    # A client restarting from scratch after losing its upload URL must not be locked out.
    decision = decide_pre_create(pre_create(), task(state="uploading", upload_id="old"))
    assert isinstance(decision, Accept)


@pytest.mark.parametrize(("size", "ok"), [(0, True), (1000, True), (1001, False)])
def test_pre_create_size_limit(size: int, ok: bool) -> None:
    decision = decide_pre_create(pre_create(size=size))
    if ok:
        assert isinstance(decision, Accept)
    else:
        assert isinstance(decision, Reject) and decision.status == 413
        assert "1001 bytes" in decision.message and "at most 1000" in decision.message


def test_pre_create_deferred_length_is_refused() -> None:
    decision = decide_pre_create(pre_create(size=0, SizeIsDeferred=True))
    assert isinstance(decision, Reject) and decision.status == 400
    assert "Upload-Length" in decision.message


@pytest.mark.parametrize("flag", ["IsPartial", "IsFinal"])
def test_pre_create_concatenation_is_refused(flag: str) -> None:
    flags: dict[str, object] = {flag: True}
    decision = decide_pre_create(pre_create("pre", None, **flags))
    assert isinstance(decision, Reject) and decision.status == 400


@pytest.mark.parametrize("meta", [{}, {"filename": "  "}, {"other": "a.las"}])
def test_pre_create_needs_a_filename_when_extensions_matter(meta: dict[str, str]) -> None:
    decision = decide_pre_create(pre_create(meta=meta))
    assert isinstance(decision, Reject) and decision.status == 400
    assert "filename" in decision.message and ".las" in decision.message


@pytest.mark.parametrize("name", ["scan.txt", "scan.las.zip", "las", "scan"])
def test_pre_create_wrong_extension(name: str) -> None:
    decision = decide_pre_create(pre_create(meta={"filename": name}))
    assert isinstance(decision, Reject) and decision.status == 415
    assert name in decision.message and ".las, .laz" in decision.message


def test_pre_create_any_file_slot_needs_no_filename() -> None:
    decision = decide_pre_create(pre_create("notes", meta={}, size=10))
    assert decision == Accept({"task_id": TASK_ID, "slot": "notes"})


# --- post-create -----------------------------------------------------------------------------
def test_post_create_binds_the_upload() -> None:
    decision = decide(hook(HookType.POST_CREATE), TARGET, task(), SPEC)
    assert decision == RecordStart(TASK_ID, "pre", UPLOAD, "scan.las", 100)


def test_post_create_of_a_new_upload_supersedes_the_old() -> None:
    snapshot = task(state="uploading", upload_id="older")
    assert isinstance(decide(hook(HookType.POST_CREATE), TARGET, snapshot, SPEC), RecordStart)


def test_post_create_replay_keeps_progress() -> None:
    snapshot = task(state="uploading", upload_id=UPLOAD)
    assert isinstance(decide(hook(HookType.POST_CREATE), TARGET, snapshot, SPEC), Ignore)


def test_post_create_after_post_finish_is_ignored() -> None:
    snapshot = task(state="done", upload_id=UPLOAD)
    assert isinstance(decide(hook(HookType.POST_CREATE), TARGET, snapshot, SPEC), Ignore)


def test_post_create_on_a_killed_task_is_ignored() -> None:
    snapshot = task(TaskStatus.KILLED)
    assert isinstance(decide(hook(HookType.POST_CREATE), TARGET, snapshot, SPEC), Ignore)


@pytest.mark.parametrize("hook_type", list(HookType))
def test_unknown_task_or_slot_is_ignored_after_pre_create(hook_type: HookType) -> None:
    if hook_type is HookType.PRE_CREATE:
        return
    assert isinstance(decide(hook(hook_type), TARGET, None, SPEC), Ignore)
    assert isinstance(decide(hook(hook_type), Target(TASK_ID, "ghost"), task(), SPEC), Ignore)


# --- post-receive ----------------------------------------------------------------------------
@pytest.mark.parametrize("bound", [None, UPLOAD])
def test_post_receive_records_progress(bound: str | None) -> None:
    snapshot = task(state="uploading" if bound else "empty", upload_id=bound)
    decision = decide(hook(HookType.POST_RECEIVE, offset=42), TARGET, snapshot, SPEC)
    assert decision == RecordProgress(TASK_ID, "pre", UPLOAD, 42)


def test_post_receive_after_post_finish_is_ignored() -> None:
    snapshot = task(state="done", upload_id=UPLOAD)
    assert isinstance(decide(hook(HookType.POST_RECEIVE), TARGET, snapshot, SPEC), Ignore)


def test_post_receive_of_a_superseded_upload_is_ignored() -> None:
    snapshot = task(state="uploading", upload_id="newer")
    assert isinstance(decide(hook(HookType.POST_RECEIVE), TARGET, snapshot, SPEC), Ignore)


def test_post_receive_stops_an_upload_into_a_slot_filled_by_another() -> None:
    snapshot = task(state="done", upload_id="other")
    decision = decide(hook(HookType.POST_RECEIVE), TARGET, snapshot, SPEC)
    assert isinstance(decision, Stop) and decision.status == 409


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR])
def test_post_receive_stops_uploads_of_finished_tasks(status: TaskStatus) -> None:
    decision = decide(hook(HookType.POST_RECEIVE), TARGET, task(status), SPEC)
    assert isinstance(decision, Stop) and status.value in decision.message


# --- post-finish -----------------------------------------------------------------------------
STORAGE = {"Type": "s3store", "Bucket": "uploads", "Key": "abc123"}


def finish(**kw: object) -> HookRequest:
    args: dict[str, object] = {"size": 100, "offset": 100, "storage": STORAGE, **kw}
    return hook(HookType.POST_FINISH, **args)  # type: ignore[arg-type]


def test_post_finish_records_the_upload() -> None:
    decision = decide(finish(), TARGET, task(state="uploading", upload_id=UPLOAD), SPEC)
    assert decision == RecordFinish(TASK_ID, "pre", UPLOAD, "scan.las", 100, "uploads", "abc123")


def test_post_finish_replay_is_recorded_again_idempotently() -> None:
    # Recording again is a no-op in the repository but lets the caller re-check queueing.
    snapshot = task(TaskStatus.PENDING, state="done", upload_id=UPLOAD)
    assert isinstance(decide(finish(), TARGET, snapshot, SPEC), RecordFinish)


def test_post_finish_of_a_second_upload_into_a_filled_slot_is_ignored() -> None:
    snapshot = task(state="done", upload_id="first-upload")
    assert isinstance(decide(finish(), TARGET, snapshot, SPEC), Ignore)


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR, TaskStatus.PENDING])
def test_post_finish_into_a_task_no_longer_waiting_is_ignored(status: TaskStatus) -> None:
    snapshot = task(status, state="uploading", upload_id=UPLOAD)
    assert isinstance(decide(finish(), TARGET, snapshot, SPEC), Ignore)


@pytest.mark.parametrize(
    "storage", [None, {"Type": "filestore", "Path": "/x"}, {"Type": "s3store", "Bucket": "b"}]
)
def test_post_finish_without_object_location_is_ignored(storage: dict[str, str] | None) -> None:
    req = hook(HookType.POST_FINISH, size=100, offset=100, storage=storage)
    assert isinstance(decide(req, TARGET, task(), SPEC), Ignore)


def test_post_finish_of_an_incomplete_upload_is_ignored() -> None:
    assert isinstance(decide(finish(offset=99), TARGET, task(), SPEC), Ignore)


def test_verify_stored() -> None:
    decision = RecordFinish(TASK_ID, "pre", UPLOAD, None, 100, "uploads", "k")
    assert verify_stored(decision, 100) is None
    assert "not found" in (verify_stored(decision, None) or "")
    assert "99 bytes" in (verify_stored(decision, 99) or "")


# --- terminate -------------------------------------------------------------------------------
def test_post_terminate_frees_the_slot_of_a_waiting_task() -> None:
    snapshot = task(state="done", upload_id=UPLOAD)
    decision = decide(hook(HookType.POST_TERMINATE), TARGET, snapshot, SPEC)
    assert decision == FreeSlot(TASK_ID, "pre", UPLOAD)


def test_post_terminate_of_another_upload_is_ignored() -> None:
    snapshot = task(state="done", upload_id="other")
    assert isinstance(decide(hook(HookType.POST_TERMINATE), TARGET, snapshot, SPEC), Ignore)


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.DONE])
def test_post_terminate_never_touches_a_started_task(status: TaskStatus) -> None:
    snapshot = task(status, state="done", upload_id=UPLOAD)
    assert isinstance(decide(hook(HookType.POST_TERMINATE), TARGET, snapshot, SPEC), Ignore)


@pytest.mark.parametrize(
    ("status", "keep"),
    [
        (TaskStatus.WAITING, False),
        (TaskStatus.PENDING, True),
        (TaskStatus.RUNNING, True),
        (TaskStatus.DONE, False),
    ],
)
def test_pre_terminate_keeps_inputs_of_queued_or_running_tasks(
    status: TaskStatus, keep: bool
) -> None:
    snapshot = task(status, state="done", upload_id=UPLOAD)
    decision = decide(hook(HookType.PRE_TERMINATE), TARGET, snapshot, SPEC)
    assert isinstance(decision, KeepUpload) is keep


# --- responses -------------------------------------------------------------------------------
def test_respond_reject() -> None:
    response = respond(Reject(413, "too big"))
    assert response.RejectUpload is True
    assert response.HTTPResponse is not None
    assert (response.HTTPResponse.StatusCode, response.HTTPResponse.Body) == (413, "too big")


def test_respond_accept() -> None:
    response = respond(Accept({"slot": "pre"}))
    assert response.RejectUpload is False
    assert response.ChangeFileInfo is not None
    assert response.ChangeFileInfo.MetaData == {"slot": "pre"}


def test_respond_stop_and_keep() -> None:
    assert respond(Stop(409, "no")).StopUpload is True
    assert respond(KeepUpload(409, "no")).RejectTermination is True


@pytest.mark.parametrize(
    "decision",
    [
        Ignore("x"),
        RecordStart(TASK_ID, "pre", UPLOAD, None, None),
        RecordProgress(TASK_ID, "pre", UPLOAD, 1),
        RecordFinish(TASK_ID, "pre", UPLOAD, None, 1, "b", "k"),
        FreeSlot(TASK_ID, "pre", UPLOAD),
    ],
)
def test_recording_decisions_answer_with_an_empty_response(decision: object) -> None:
    response = respond(decision)  # type: ignore[arg-type]
    assert not response.RejectUpload and not response.StopUpload
    assert response.HTTPResponse is None and response.ChangeFileInfo is None
