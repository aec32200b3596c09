"""Pure hook decisions: every hook type against every task/slot situation that matters.

Every request is a body recorded from the real tusd (``tests/unit/hooks/recorded``), as recorded
or with a few fields changed through ``tests.hookdata.hook_request``. In the recordings one
upload fills slot "pre" of ``TASK_ID`` (created, sent in two PATCHes, finished) and another is
created in slot "post" and deleted; both were named by pre-create with the nonce ``NONCE``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from hooks.decisions import (
    Accept,
    Decision,
    FailFinish,
    FreeSlot,
    HookContext,
    Ignore,
    KeepUpload,
    RecordFinish,
    RecordProgress,
    RecordStart,
    Refuse,
    Reject,
    Stop,
    Target,
    decide,
    holds,
    locate,
    new_object_id,
    object_id_of,
    respond,
    verify_stored,
)
from hooks.protocol import HookRequest, HookType, decode_request
from orchestrator.domain.capability import upload_url
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from pipelines.spec import InputSlot, MiB, PipelineSpec
from tests.hookdata import hook_request, recorded
from tests.taskviews import task_view

SECRET = "token-secret"
TASK_ID = "6f1c1a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
NONCE = "0123456789abcdef01234567"
PRE_ID: str = recorded("post-create")["Event"]["Upload"]["ID"]  # the upload filling "pre"
POST_ID: str = recorded("post-terminate")["Event"]["Upload"]["ID"]  # the one deleted in "post"
PRE_KEY = f"{TASK_ID}/pre/{NONCE}"  # its object id: the key of the object in the bucket
POST_KEY = f"{TASK_ID}/post/{NONCE}"
OTHER_ID = f"{TASK_ID}/pre/{'f' * 24}+b3RoZXItbXVsdGlwYXJ0"  # a second upload into "pre"
SIZE = 6291456  # the recorded upload's size; its first PATCH ends at HALF
HALF = 3145728
BUCKET = "uploads"

MAX_BYTES = 8 * MiB
SPEC = PipelineSpec(
    name="demo",
    description="",
    inputs=(
        InputSlot("pre", accept=(".las", ".laz"), max_bytes=MAX_BYTES),
        InputSlot("post", accept=(".las",), max_bytes=MAX_BYTES),
        InputSlot("notes", required=False, max_bytes=50),
    ),
)
TARGET = Target(TASK_ID, "pre")

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STALLED_AFTER = timedelta(seconds=60)
TUS_URL = "https://uploads.example/files/"
CTX = HookContext(
    uploads_bucket=BUCKET,
    tus_url=TUS_URL,
    stalled_after=STALLED_AFTER,
    max_metadata_bytes=256,
    now=NOW,
    nonce=NONCE,
)


# --- slot snapshots --------------------------------------------------------------------------
def _required(slot: str) -> bool:
    spec_slot = SPEC.slot(slot)
    return spec_slot is None or spec_slot.required


def free(slot: str = "pre") -> InputView:
    return InputView(
        slot=slot, required=_required(slot), state="empty", updated_at=NOW - timedelta(hours=1)
    )


def held(
    slot: str = "pre",
    *,
    by: str = PRE_ID,
    created: bool = True,
    offset: int = HALF,
    idle: timedelta = timedelta(seconds=10),
) -> InputView:
    """``slot`` is being uploaded by ``by``: bound to its object id at pre-create and, once
    post-create came (``created``), recorded by its full id; last progress ``idle`` ago."""
    return InputView(
        slot=slot,
        required=_required(slot),
        state="uploading",
        upload_id=by if created else None,
        filename="scan.las",
        size=SIZE,
        offset=offset,
        bucket=BUCKET,
        key=object_id_of(by),
        updated_at=NOW - idle,
    )


def filled(slot: str = "pre", *, by: str = PRE_ID) -> InputView:
    """``slot`` holds the finished object of upload ``by``."""
    return InputView(
        slot=slot,
        required=_required(slot),
        state="done",
        upload_id=by,
        filename="scan.las",
        size=SIZE,
        offset=SIZE,
        bucket=BUCKET,
        key=object_id_of(by),
        finished_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=5),
    )


def legacy(state: str, slot: str = "pre", *, by: str | None = PRE_ID) -> InputView:
    """A row bound before object ids were recorded: no key, only tusd's upload id."""
    return InputView(
        slot=slot,
        required=_required(slot),
        state=state,
        upload_id=by,
        size=SIZE,
        offset=SIZE if state == "done" else HALF,
        updated_at=NOW - timedelta(seconds=10),
    )


def task(*inputs: InputView, status: TaskStatus = TaskStatus.WAITING) -> TaskView:
    """A task of SPEC with the given slots (the others empty)."""
    given = {i.slot: i for i in inputs}
    return task_view(
        id=TASK_ID,
        pipeline="demo",
        status=status,
        created_at=NOW - timedelta(hours=1),
        inputs=tuple(given.get(s.name, free(s.name)) for s in SPEC.inputs),
    )


# --- requests --------------------------------------------------------------------------------
def request(hook_type: str, **changes: Any) -> HookRequest:
    """The recorded ``hook_type`` body with ``changes`` (see ``hook_request``), decoded as the
    API decodes it."""
    return decode_request(json.dumps(hook_request(hook_type, **changes)).encode())


def pre_create(slot: str = "pre", **changes: Any) -> HookRequest:
    """The recorded pre-create, sent to a valid upload URL of ``slot``."""
    return request("pre-create", uri=upload_url("/files/", SECRET, TASK_ID, slot), **changes)


def decide_on(
    req: HookRequest,
    snapshot: TaskView | None,
    spec: PipelineSpec | None = SPEC,
    ctx: HookContext = CTX,
) -> Decision:
    """Locate ``req`` as the service does, then decide it against ``snapshot``."""
    located = locate(req, SECRET)
    assert isinstance(located, Target), located
    return decide(req, located, snapshot, spec, ctx)


# --- object ids and holding a slot -----------------------------------------------------------
@pytest.mark.parametrize(
    ("upload_id", "object_id"),
    [
        (PRE_ID, PRE_KEY),
        (POST_ID, POST_KEY),
        ("a/b/c+mp", "a/b/c"),
        ("a+b+c", "a+b"),  # split at the last "+"
        ("plain", "plain"),  # not an s3store id: the whole id
    ],
)
def test_object_id_of(upload_id: str, object_id: str) -> None:
    assert object_id_of(upload_id) == object_id


def test_new_object_ids_lay_uploads_out_per_task_and_slot() -> None:
    assert new_object_id(TASK_ID, "pre", NONCE) == f"{TASK_ID}/pre/{NONCE}"
    # tusd's s3store named the recorded uploads after the object ids pre-create gave them.
    assert new_object_id(TASK_ID, "pre", NONCE) == object_id_of(PRE_ID)
    assert new_object_id(TASK_ID, "post", NONCE) == object_id_of(POST_ID)


@pytest.mark.parametrize(
    ("state", "upload_id", "holder"),
    [
        (held(created=False), PRE_ID, True),  # bound at pre-create, before post-create
        (held(), PRE_ID, True),
        (filled(), PRE_ID, True),
        (held(), f"{PRE_KEY}+another-multipart", True),  # the object id is what binds
        (held(), OTHER_ID, False),
        (held(), PRE_KEY + "x+mp", False),
        (held(by=OTHER_ID), PRE_ID, False),
        (filled(by=OTHER_ID), PRE_ID, False),
        (free(), PRE_ID, False),
    ],
)
def test_holds_by_object_id(state: InputView, upload_id: str, holder: bool) -> None:
    assert holds(state, upload_id) is holder


@pytest.mark.parametrize(
    ("state", "upload_id", "holder"),
    [
        (legacy("uploading"), PRE_ID, True),
        (legacy("done"), PRE_ID, True),
        (legacy("uploading"), OTHER_ID, False),
        (legacy("uploading"), f"{PRE_KEY}+another-multipart", False),  # needs the exact id
        (legacy("uploading", by=None), PRE_ID, False),
        (legacy("empty", by=None), PRE_ID, False),
    ],
)
def test_holds_legacy_rows_by_upload_id(state: InputView, upload_id: str, holder: bool) -> None:
    assert state.key is None
    assert holds(state, upload_id) is holder


# --- locate ----------------------------------------------------------------------------------
def test_pre_create_without_capability_is_refused() -> None:
    decision = locate(request("pre-create", uri="/files/"), SECRET)
    assert isinstance(decision, Reject) and decision.status == 400
    assert "upload URL" in decision.message


@pytest.mark.parametrize(
    "uri",
    [
        recorded("pre-create")["Event"]["HTTPRequest"]["URI"],  # token=x
        upload_url("/files/", "other-secret", TASK_ID, "pre"),
        # A valid token of one slot does not open another.
        upload_url("/files/", SECRET, TASK_ID, "notes").replace("slot=notes", "slot=pre"),
        upload_url("/files/", SECRET, TASK_ID, "pre").replace(TASK_ID, "0" * 36),
    ],
)
def test_pre_create_with_forged_token_is_refused(uri: str) -> None:
    decision = locate(request("pre-create", uri=uri), SECRET)
    assert decision == Reject(403, "invalid upload token for this task and slot")


@pytest.mark.parametrize("slot", ["pre", "notes"])
def test_pre_create_with_valid_capability_locates_its_slot(slot: str) -> None:
    assert locate(pre_create(slot), SECRET) == Target(TASK_ID, slot)


@pytest.mark.parametrize(
    ("hook_type", "slot"),
    [
        ("post-create", "pre"),
        ("post-receive", "pre"),
        ("pre-finish", "pre"),  # located like the others: no special case any more
        ("post-finish", "pre"),
        ("pre-terminate", "post"),
        ("post-terminate", "post"),
    ],
)
def test_later_hooks_locate_by_server_set_metadata(hook_type: str, slot: str) -> None:
    assert locate(request(hook_type), SECRET) == Target(TASK_ID, slot)


@pytest.mark.parametrize(
    "meta", [None, {}, {"filename": "x"}, {"task_id": TASK_ID}, {"slot": "pre", "task_id": ""}]
)
@pytest.mark.parametrize(
    "hook_type",
    ["post-create", "post-receive", "pre-finish", "post-finish", "pre-terminate", "post-terminate"],
)
def test_later_hooks_without_server_metadata_are_ignored(
    hook_type: str, meta: dict[str, str] | None
) -> None:
    assert isinstance(locate(request(hook_type, MetaData=meta), SECRET), Ignore)


# --- pre-create ------------------------------------------------------------------------------
def test_pre_create_accepts_the_recorded_upload() -> None:
    decision = decide_on(pre_create(), task())
    assert decision == Accept(
        task_id=TASK_ID,
        slot="pre",
        object_id=PRE_KEY,
        bucket=BUCKET,
        filename="scan.las",
        size=SIZE,
        metadata={"filename": "scan.las", "task_id": TASK_ID, "slot": "pre"},
    )
    # What tusd then reported after post-create: our id and metadata, as the response set them.
    assert isinstance(decision, Accept)
    later = request("post-create").upload
    assert object_id_of(later.ID) == decision.object_id
    assert later.meta == decision.metadata


def test_pre_create_sets_server_metadata_over_the_clients() -> None:
    meta = {"filename": "Scan.LAS", "task_id": "evil", "slot": "other", "x": "1"}
    decision = decide_on(pre_create(meta=meta), task())
    assert isinstance(decision, Accept)
    assert decision.metadata == {
        "filename": "Scan.LAS",
        "x": "1",
        "task_id": TASK_ID,
        "slot": "pre",
    }
    assert decision.filename == "Scan.LAS"


def test_pre_create_accepts_name_as_filename() -> None:
    decision = decide_on(pre_create(meta={"name": "a.laz"}), task())
    assert isinstance(decision, Accept)
    assert decision.filename == decision.metadata["filename"] == "a.laz"


def test_pre_create_unknown_task() -> None:
    assert decide_on(pre_create(), None) == Reject(404, f"unknown task {TASK_ID}")


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not TaskStatus.WAITING])
def test_pre_create_needs_a_waiting_task(status: TaskStatus) -> None:
    decision = decide_on(pre_create(), task(status=status))
    assert isinstance(decision, Reject) and decision.status == 409
    assert status.value in decision.message


def test_pre_create_unknown_slot() -> None:
    decision = decide(pre_create(), Target(TASK_ID, "ghost"), task(), SPEC, CTX)
    assert decision == Reject(404, "task has no input slot 'ghost'")


def test_pre_create_for_a_pipeline_no_longer_installed() -> None:
    decision = decide_on(pre_create(), task(), spec=None)
    assert isinstance(decision, Reject) and decision.status == 404


@pytest.mark.parametrize("by", [PRE_ID, OTHER_ID])
def test_pre_create_into_a_filled_slot(by: str) -> None:
    decision = decide_on(pre_create(), task(filled(by=by)))
    assert decision == Reject(409, "input 'pre' is already uploaded")


def test_pre_create_while_another_upload_is_active_names_it() -> None:
    # The client is told which upload to resume, and how far it got, instead of a new one.
    decision = decide_on(pre_create(), task(held()))
    location = TUS_URL + PRE_ID
    assert decision == Reject(
        409,
        f"input 'pre' is being uploaded by upload {location} ({HALF} of {SIZE} bytes, "
        "last progress 10 s ago); resume that upload, or retry once it has made no "
        "progress for 60 s",
        (("Upload-Offset", str(HALF)), ("Location", location)),
    )


def test_pre_create_while_another_upload_is_being_created() -> None:
    # Bound at pre-create, post-create not in yet: there is no upload URL to name.
    decision = decide_on(pre_create(), task(held(created=False, offset=0)))
    assert isinstance(decision, Reject) and decision.status == 409
    assert "an upload being created" in decision.message and TUS_URL not in decision.message
    assert decision.headers == (("Upload-Offset", "0"),)


def test_pre_create_while_a_legacy_upload_is_active() -> None:
    decision = decide_on(pre_create(), task(legacy("uploading")))
    assert isinstance(decision, Reject) and decision.status == 409
    assert ("Location", TUS_URL + PRE_ID) in decision.headers


@pytest.mark.parametrize(
    ("idle", "superseded"),
    [
        (timedelta(0), False),
        (STALLED_AFTER - timedelta(seconds=1), False),
        (STALLED_AFTER, True),
        (timedelta(hours=1), True),
    ],
)
def test_pre_create_supersedes_a_stalled_upload(idle: timedelta, superseded: bool) -> None:
    decision = decide_on(pre_create(), task(held(idle=idle)))
    if superseded:
        assert isinstance(decision, Accept) and decision.object_id == PRE_KEY
    else:
        assert isinstance(decision, Reject) and decision.status == 409


@pytest.mark.parametrize(("size", "ok"), [(0, True), (MAX_BYTES, True), (MAX_BYTES + 1, False)])
def test_pre_create_size_limit(size: int, ok: bool) -> None:
    decision = decide_on(pre_create(size=size), task())
    if ok:
        assert isinstance(decision, Accept) and decision.size == size
    else:
        assert isinstance(decision, Reject) and decision.status == 413
        assert f"{MAX_BYTES + 1} bytes" in decision.message
        assert f"at most {MAX_BYTES}" in decision.message


def test_pre_create_deferred_length_is_refused() -> None:
    decision = decide_on(pre_create(size=0, deferred=True), task())
    assert isinstance(decision, Reject) and decision.status == 400
    assert "Upload-Length" in decision.message


@pytest.mark.parametrize("flag", ["IsPartial", "IsFinal"])
def test_pre_create_concatenation_is_refused(flag: str) -> None:
    flags: dict[str, Any] = {flag: True}
    decision = decide_on(pre_create("pre", **flags), task())
    assert isinstance(decision, Reject) and decision.status == 400
    assert "concatenated" in decision.message


# 16 bytes of filename metadata ("filename" + "scan.las"), then "x" and a value.
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("v" * (256 - 17), True),
        ("v" * (256 - 16), False),
        ("é" * 119, True),  # bytes, not characters: 2 each
        ("é" * 120, False),
    ],
)
def test_pre_create_metadata_limit(value: str, ok: bool) -> None:
    decision = decide_on(pre_create(meta={"filename": "scan.las", "x": value}), task())
    if ok:
        assert isinstance(decision, Accept)
    else:
        assert isinstance(decision, Reject) and decision.status == 400
        assert "Upload-Metadata holds 257 bytes; at most 256" in decision.message


@pytest.mark.parametrize("meta", [{}, {"filename": "  "}, {"other": "a.las"}])
def test_pre_create_needs_a_filename_when_extensions_matter(meta: dict[str, str]) -> None:
    decision = decide_on(pre_create(meta=meta), task())
    assert isinstance(decision, Reject) and decision.status == 400
    assert "filename" in decision.message and ".las" in decision.message


@pytest.mark.parametrize("name", ["scan.txt", "scan.las.zip", "las", "scan"])
def test_pre_create_wrong_extension(name: str) -> None:
    decision = decide_on(pre_create(meta={"filename": name}), task())
    assert isinstance(decision, Reject) and decision.status == 415
    assert name in decision.message and ".las, .laz" in decision.message


def test_pre_create_any_file_slot_needs_no_filename() -> None:
    decision = decide_on(pre_create("notes", meta={}, size=10), task())
    assert decision == Accept(
        task_id=TASK_ID,
        slot="notes",
        object_id=f"{TASK_ID}/notes/{NONCE}",
        bucket=BUCKET,
        filename=None,
        size=10,
        metadata={"task_id": TASK_ID, "slot": "notes"},
    )


# --- every hook after pre-create -------------------------------------------------------------
@pytest.mark.parametrize("hook_type", [t for t in HookType if t is not HookType.PRE_CREATE])
def test_unknown_task_or_slot_is_ignored_after_pre_create(hook_type: HookType) -> None:
    req = request(hook_type.value)
    assert isinstance(decide_on(req, None), Ignore)
    assert isinstance(decide(req, Target(TASK_ID, "ghost"), task(), SPEC, CTX), Ignore)


# --- post-create -----------------------------------------------------------------------------
def test_post_create_records_the_full_id_of_the_holder() -> None:
    decision = decide_on(request("post-create"), task(held(created=False, offset=0)))
    assert decision == RecordStart(TASK_ID, "pre", PRE_ID, PRE_KEY)


@pytest.mark.parametrize("state", [held(offset=0), legacy("uploading")])
def test_post_create_replay_keeps_progress(state: InputView) -> None:
    assert isinstance(decide_on(request("post-create"), task(state)), Ignore)


@pytest.mark.parametrize(
    "state",
    [
        free(),  # never bound (or freed since)
        held(by=OTHER_ID, created=False),  # this one stalled and was superseded
        held(by=OTHER_ID),
        filled(by=OTHER_ID),
        legacy("uploading", by=OTHER_ID),
    ],
)
def test_post_create_of_an_upload_not_holding_the_slot_is_ignored(state: InputView) -> None:
    assert isinstance(decide_on(request("post-create"), task(state)), Ignore)


def test_post_create_after_post_finish_is_ignored() -> None:
    assert isinstance(decide_on(request("post-create"), task(filled())), Ignore)


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR])
def test_post_create_on_a_task_no_longer_waiting_is_ignored(status: TaskStatus) -> None:
    snapshot = task(held(created=False), status=status)
    assert isinstance(decide_on(request("post-create"), snapshot), Ignore)


# --- post-receive ----------------------------------------------------------------------------
@pytest.mark.parametrize("state", [held(created=False, offset=0), held(offset=0)])
def test_post_receive_records_progress_of_the_holder(state: InputView) -> None:
    decision = decide_on(request("post-receive"), task(state))
    assert decision == RecordProgress(TASK_ID, "pre", PRE_KEY, HALF)


def test_post_receive_records_progress_of_a_legacy_holder() -> None:
    decision = decide_on(request("post-receive", offset=HALF + 1), task(legacy("uploading")))
    assert isinstance(decision, RecordProgress) and decision.offset == HALF + 1


def test_post_receive_after_post_finish_is_ignored() -> None:
    assert isinstance(decide_on(request("post-receive"), task(filled())), Ignore)


def test_post_receive_stops_an_upload_into_a_slot_filled_by_another() -> None:
    decision = decide_on(request("post-receive"), task(filled(by=OTHER_ID)))
    assert isinstance(decision, Stop) and decision.status == 409
    assert "filled by another upload" in decision.message


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR, TaskStatus.PENDING])
@pytest.mark.parametrize("state", [held(), free()])
def test_post_receive_stops_uploads_of_tasks_no_longer_waiting(
    state: InputView, status: TaskStatus
) -> None:
    decision = decide_on(request("post-receive"), task(state, status=status))
    assert isinstance(decision, Stop) and decision.status == 409
    assert status.value in decision.message


@pytest.mark.parametrize("state", [held(by=OTHER_ID, created=False), held(by=OTHER_ID)])
def test_post_receive_stops_an_upload_whose_slot_was_taken_over(state: InputView) -> None:
    decision = decide_on(request("post-receive"), task(state))
    assert isinstance(decision, Stop) and decision.status == 409
    assert "taken over" in decision.message


# --- pre-finish ------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [held(), held(created=False), legacy("uploading")])
def test_pre_finish_of_the_holder_is_allowed(state: InputView) -> None:
    assert isinstance(decide_on(request("pre-finish"), task(state)), Ignore)


@pytest.mark.parametrize("status", [TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING])
def test_pre_finish_replay_after_the_slot_was_filled_is_allowed(status: TaskStatus) -> None:
    assert isinstance(decide_on(request("pre-finish"), task(filled(), status=status)), Ignore)


def test_pre_finish_of_an_upload_whose_slot_was_taken_over_fails() -> None:
    decision = decide_on(request("pre-finish"), task(held(by=OTHER_ID)))
    assert isinstance(decision, FailFinish) and decision.status == 409
    assert "taken over" in decision.message and "will not be used" in decision.message


def test_pre_finish_of_an_upload_into_a_slot_filled_by_another_fails() -> None:
    decision = decide_on(request("pre-finish"), task(filled(by=OTHER_ID)))
    assert isinstance(decision, FailFinish) and decision.status == 409
    assert "filled by another upload" in decision.message


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR, TaskStatus.PENDING])
def test_pre_finish_into_a_task_no_longer_waiting_fails(status: TaskStatus) -> None:
    decision = decide_on(request("pre-finish"), task(held(), status=status))
    assert isinstance(decision, FailFinish) and decision.status == 409
    assert status.value in decision.message and "will not be used" in decision.message


# --- post-finish -----------------------------------------------------------------------------
def test_post_finish_records_the_upload() -> None:
    decision = decide_on(request("post-finish"), task(held()))
    assert decision == RecordFinish(TASK_ID, "pre", PRE_ID, "scan.las", SIZE, BUCKET, PRE_KEY)


def test_post_finish_records_the_holder_whose_post_create_was_lost() -> None:
    assert isinstance(decide_on(request("post-finish"), task(held(created=False))), RecordFinish)


def test_post_finish_records_a_legacy_holder() -> None:
    decision = decide_on(request("post-finish"), task(legacy("uploading")))
    assert decision == RecordFinish(TASK_ID, "pre", PRE_ID, "scan.las", SIZE, BUCKET, PRE_KEY)


def test_post_finish_replay_is_recorded_again_idempotently() -> None:
    # Recording again is a no-op in the repository but lets the caller re-check queueing.
    snapshot = task(filled(), status=TaskStatus.PENDING)
    assert isinstance(decide_on(request("post-finish"), snapshot), RecordFinish)


@pytest.mark.parametrize("state", [filled(by=OTHER_ID), held(by=OTHER_ID), free()])
def test_post_finish_of_an_upload_not_holding_the_slot_is_ignored(state: InputView) -> None:
    assert isinstance(decide_on(request("post-finish"), task(state)), Ignore)


@pytest.mark.parametrize("status", [TaskStatus.KILLED, TaskStatus.ERROR, TaskStatus.PENDING])
def test_post_finish_into_a_task_no_longer_waiting_is_ignored(status: TaskStatus) -> None:
    assert isinstance(decide_on(request("post-finish"), task(held(), status=status)), Ignore)


@pytest.mark.parametrize(
    "storage",
    [
        None,
        {"Type": "filestore", "Path": "/x"},
        {"Type": "s3store", "Bucket": BUCKET},
        {"Type": "s3store", "Key": PRE_KEY},
    ],
)
def test_post_finish_without_object_location_is_ignored(storage: dict[str, str] | None) -> None:
    assert isinstance(decide_on(request("post-finish", storage=storage), task(held())), Ignore)


@pytest.mark.parametrize(
    "changes", [{"offset": SIZE - 1}, {"offset": 0}, {"deferred": True}], ids=str
)
def test_post_finish_of_an_incomplete_upload_is_ignored(changes: dict[str, Any]) -> None:
    assert isinstance(decide_on(request("post-finish", **changes), task(held())), Ignore)


@pytest.mark.parametrize("bucket", ["results", "uploads-other", "Uploads"])
def test_post_finish_naming_another_bucket_is_refused(bucket: str) -> None:
    storage = {"Type": "s3store", "Bucket": bucket, "Key": PRE_KEY}
    decision = decide_on(request("post-finish", storage=storage), task(held()))
    assert isinstance(decision, Refuse) and decision.status == 403
    assert repr(bucket) in decision.message


@pytest.mark.parametrize(
    "key",
    [
        POST_KEY,  # another slot's object
        f"{'0' * 8}-0000-0000-0000-{'0' * 12}/pre/{NONCE}",  # another task's object
        f"{PRE_KEY}/../secret",
        PRE_ID,
    ],
)
@pytest.mark.parametrize("state", [held(), legacy("uploading")])
def test_post_finish_naming_another_object_is_refused(state: InputView, key: str) -> None:
    storage = {"Type": "s3store", "Bucket": BUCKET, "Key": key}
    decision = decide_on(request("post-finish", storage=storage), task(state))
    assert isinstance(decision, Refuse) and decision.status == 403
    assert repr(key) in decision.message


def test_verify_stored() -> None:
    decision = RecordFinish(TASK_ID, "pre", PRE_ID, None, 100, BUCKET, PRE_KEY)
    assert verify_stored(decision, 100) is None
    assert "not found" in (verify_stored(decision, None) or "")
    assert "99 bytes" in (verify_stored(decision, 99) or "")


# --- terminate -------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [held("post", by=POST_ID), filled("post", by=POST_ID)])
def test_post_terminate_frees_the_slot_of_a_waiting_task(state: InputView) -> None:
    decision = decide_on(request("post-terminate"), task(state))
    assert decision == FreeSlot(TASK_ID, "post", POST_KEY)


@pytest.mark.parametrize(
    "state", [free("post"), held("post", by=OTHER_ID), filled("post", by=OTHER_ID)]
)
def test_post_terminate_of_another_upload_is_ignored(state: InputView) -> None:
    assert isinstance(decide_on(request("post-terminate"), task(state)), Ignore)


@pytest.mark.parametrize(
    "status", [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.DONE, TaskStatus.KILLED]
)
def test_post_terminate_never_touches_a_started_task(status: TaskStatus) -> None:
    snapshot = task(filled("post", by=POST_ID), status=status)
    assert isinstance(decide_on(request("post-terminate"), snapshot), Ignore)


@pytest.mark.parametrize(
    ("status", "keep"),
    [
        (TaskStatus.WAITING, False),
        (TaskStatus.PENDING, True),
        (TaskStatus.RUNNING, True),
        (TaskStatus.DONE, False),
        (TaskStatus.ERROR, False),
        (TaskStatus.KILLED, False),
    ],
)
def test_pre_terminate_keeps_inputs_of_queued_or_running_tasks(
    status: TaskStatus, keep: bool
) -> None:
    snapshot = task(filled("post", by=POST_ID), status=status)
    decision = decide_on(request("pre-terminate"), snapshot)
    assert isinstance(decision, KeepUpload) is keep
    if isinstance(decision, KeepUpload):
        assert decision.status == 409 and status.value in decision.message


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING])
def test_pre_terminate_of_an_upload_not_holding_the_slot_is_allowed(status: TaskStatus) -> None:
    snapshot = task(filled("post", by=OTHER_ID), status=status)
    assert isinstance(decide_on(request("pre-terminate"), snapshot), Ignore)


# --- responses -------------------------------------------------------------------------------
def test_respond_reject() -> None:
    response = respond(Reject(413, "too big"))
    assert response.RejectUpload is True
    assert response.HTTPResponse is not None
    assert (response.HTTPResponse.StatusCode, response.HTTPResponse.Body) == (413, "too big")
    assert response.HTTPResponse.Header == {"Content-Type": "text/plain; charset=utf-8"}


def test_respond_reject_of_a_busy_slot_carries_its_headers() -> None:
    decision = decide_on(pre_create(), task(held()))
    assert isinstance(decision, Reject)
    response = respond(decision)
    assert response.RejectUpload is True and response.HTTPResponse is not None
    assert response.HTTPResponse.StatusCode == 409
    assert response.HTTPResponse.Body == decision.message
    assert response.HTTPResponse.Header == {
        "Content-Type": "text/plain; charset=utf-8",
        "Upload-Offset": str(HALF),
        "Location": TUS_URL + PRE_ID,
    }


def test_respond_accept_names_the_upload_and_sets_its_metadata() -> None:
    decision = decide_on(pre_create(), task())
    response = respond(decision)
    assert response.RejectUpload is False and response.HTTPResponse is None
    assert response.ChangeFileInfo is not None
    assert response.ChangeFileInfo.ID == PRE_KEY
    assert response.ChangeFileInfo.MetaData == {
        "filename": "scan.las",
        "task_id": TASK_ID,
        "slot": "pre",
    }
    assert response.ChangeFileInfo.Storage is None
    assert json.loads(msgspec.json.encode(response)) == {
        "ChangeFileInfo": {
            "ID": PRE_KEY,
            "MetaData": {"filename": "scan.las", "task_id": TASK_ID, "slot": "pre"},
        }
    }


def test_respond_fail_finish_changes_the_answer_only() -> None:
    response = respond(FailFinish(409, "not used"))
    assert not response.RejectUpload and not response.StopUpload
    assert not response.RejectTermination and response.ChangeFileInfo is None
    assert response.HTTPResponse is not None
    assert (response.HTTPResponse.StatusCode, response.HTTPResponse.Body) == (409, "not used")


def test_respond_stop_and_keep() -> None:
    stop = respond(Stop(409, "no"))
    assert stop.StopUpload is True and not stop.RejectUpload
    assert stop.HTTPResponse is not None and stop.HTTPResponse.StatusCode == 409
    keep = respond(KeepUpload(409, "no"))
    assert keep.RejectTermination is True and not keep.StopUpload
    assert keep.HTTPResponse is not None and keep.HTTPResponse.StatusCode == 409


@pytest.mark.parametrize(
    "decision",
    [
        Ignore("x"),
        RecordStart(TASK_ID, "pre", PRE_ID, PRE_KEY),
        RecordProgress(TASK_ID, "pre", PRE_KEY, 1),
        RecordFinish(TASK_ID, "pre", PRE_ID, None, 1, BUCKET, PRE_KEY),
        FreeSlot(TASK_ID, "pre", PRE_KEY),
    ],
)
def test_recording_decisions_answer_with_an_empty_response(decision: Decision) -> None:
    assert msgspec.json.encode(respond(decision)) == b"{}"
