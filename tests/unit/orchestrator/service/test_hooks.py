"""The tusd hook use case (orchestrator/service/uploads.py) against in-memory fakes of the
tasks table, the object store and the queue: what each hook records, queues or refuses.

The same flows run against PostgreSQL, MinIO, Redis and the real tusd in
tests/integration/orchestrator/api/test_hooks*.py and tests/e2e/test_tusd.py; these pin the use
case's own logic and run in milliseconds. Requests are the bodies recorded from the real tusd.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hooks.protocol import HookRequest, HookResponse
from orchestrator.db.repository import SlotPosition, UploadingSlot
from orchestrator.db.workers import WorkerView
from orchestrator.domain.access import Quota, QuotaStanding
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from orchestrator.errors import HookRefused, StorageError
from orchestrator.service.uploads import (
    RECOVER_AFTER_S,
    handle_hook,
    recover_finished_uploads,
)
from orchestrator.settings import Settings
from tests.taskviews import task_view
from tests.unit.hooks.test_decisions import SECRET, SIZE, SPEC, TASK_ID, pre_create, request

SETTINGS = Settings(upload_token_secret=SECRET, tus_public_url="https://up.example/files/")
CATALOG = {SPEC.name: SPEC}
BUCKET = SETTINGS.uploads_bucket
SIZES = {"pre": SIZE, "post": SIZE, "notes": 40}  # "notes" takes at most 50 bytes


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeSlots:
    """The tasks table's slot calls, with the same conditions as TaskRepository's UPDATEs."""

    rows: dict[str, TaskView]
    reads: int = 0  # calls of get: the hooks' reads of a task

    def get(self, task_id: str) -> TaskView | None:
        self.reads += 1
        return self.rows.get(task_id)

    def _slot(self, task_id: str, slot: str) -> InputView | None:
        task = self.rows.get(task_id)
        return task.input(slot) if task else None

    def _set(self, task_id: str, slot: str, **changes: Any) -> bool:
        task = self.rows[task_id]
        inputs = tuple(
            replace(i, **changes, updated_at=_now()) if i.slot == slot else i for i in task.inputs
        )
        self.rows[task_id] = replace(task, inputs=inputs)
        return True

    def _waiting(self, task_id: str) -> bool:
        task = self.rows.get(task_id)
        return task is not None and task.status is TaskStatus.WAITING

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
    ) -> bool:
        i = self._slot(task_id, slot)
        if i is None or not self._waiting(task_id):
            return False
        stalled = i.updated_at is not None and i.updated_at <= stalled_before
        if not (i.state == "empty" or (i.state == "uploading" and stalled)):
            return False
        return self._set(
            task_id,
            slot,
            state="uploading",
            upload_id=None,
            key=key,
            bucket=bucket,
            filename=filename,
            size=size,
            offset=0,
        )

    def slot_upload_created(self, task_id: str, slot: str, key: str, upload_id: str) -> bool:
        i = self._slot(task_id, slot)
        if i is None or i.state != "uploading" or i.key != key:
            return False
        return self._set(task_id, slot, upload_id=upload_id)

    def slot_progress(self, task_id: str, slot: str, key: str, offset: int) -> bool:
        i = self._slot(task_id, slot)
        if i is None or i.state != "uploading" or i.key != key or not self._waiting(task_id):
            return False
        return self._set(task_id, slot, offset=max(i.offset, offset))

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
    ) -> bool:
        i = self._slot(task_id, slot)
        if i is None or i.state == "done" or i.key != key:
            return False
        return self._set(
            task_id,
            slot,
            state="done",
            upload_id=upload_id,
            filename=filename,
            size=size,
            offset=size,
            bucket=bucket,
            key=key,
            finished_at=_now(),
        )

    def slot_freed(self, task_id: str, slot: str, key: str) -> bool:
        i = self._slot(task_id, slot)
        if i is None or i.key != key or not self._waiting(task_id):
            return False
        return self._set(
            task_id, slot, state="empty", upload_id=None, filename=None, size=None, key=None
        )

    def uploading_slots(
        self,
        idle_before: datetime,
        *,
        after: SlotPosition | None = None,
        limit: int = 500,
        changed_since: datetime | None = None,
    ) -> list[UploadingSlot]:
        quiet = [
            UploadingSlot(t.id, i.slot, i.upload_id or i.key, i.filename, i.size, i.bucket, i.key)
            for t in self.rows.values()
            if t.status is TaskStatus.WAITING
            for i in t.inputs
            if i.state == "uploading"
            and i.key
            and i.bucket
            and i.size is not None
            and i.updated_at is not None
            and i.updated_at < idle_before
            and (changed_since is None or i.updated_at >= changed_since)
        ]
        ordered = sorted(quiet, key=lambda u: u.position)
        return [u for u in ordered if after is None or u.position > after][:limit]

    def queue_if_complete(self, task_id: str, *, all_inputs: bool = False) -> bool:
        task = self.rows[task_id]
        counted = [i for i in task.inputs if all_inputs or i.required]
        if task.status is not TaskStatus.WAITING or not all(i.done for i in counted):
            return False
        self.rows[task_id] = replace(task, status=TaskStatus.PENDING)
        return True


@dataclass
class FakeStorage:
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    down: bool = False  # every call fails, as an unreachable object store

    def stat_size(self, bucket: str, key: str) -> int | None:
        if self.down:
            raise StorageError("object store unreachable")
        return self.sizes.get((bucket, key))


@dataclass
class FakeQueue:
    jobs: list[tuple[str, str]] = field(default_factory=list)

    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None:
        self.jobs.append((task_id, queue))


@dataclass
class FakeQuotas:
    """A project's quota and what it holds now."""

    quota: Quota = field(default_factory=Quota)
    held_by_task: int = 0
    stored: int = 0

    def quota_standing(self, task_id: str, *, besides: str) -> QuotaStanding | None:
        return QuotaStanding("p1", "mine-a", self.quota, self.held_by_task, self.stored)


@dataclass
class FakeWorkers:
    """The live fleet: workers whose work dirs hold ``disk_bytes`` each (none: no worker)."""

    disks: list[int] = field(default_factory=list)

    def alive(self, lost_after_s: float) -> list[WorkerView]:
        return [
            WorkerView(
                id=f"h{i}:1",
                host=f"h{i}",
                queues=["default"],
                executor="docker",
                hardware={"disk_bytes": disk},
                capacity={"cpus": 8.0, "memory_bytes": 64 * 2**30, "gpus": 0},
                free={},
                running=[],
                state="up",
                started_at=_now(),
                last_seen_at=_now(),
            )
            for i, disk in enumerate(self.disks)
        ]


@dataclass
class World:
    settings: Settings
    tasks: FakeSlots
    storage: FakeStorage
    queue: FakeQueue
    access: FakeQuotas = field(default_factory=FakeQuotas)
    workers: FakeWorkers = field(default_factory=FakeWorkers)

    def hook(self, req: HookRequest) -> HookResponse:
        return handle_hook(self, CATALOG, req)

    def slot(self, name: str) -> InputView:
        task = self.tasks.get(TASK_ID)
        assert task is not None
        found = task.input(name)
        assert found is not None
        return found

    @property
    def status(self) -> TaskStatus:
        task = self.tasks.get(TASK_ID)
        assert task is not None
        return task.status


@pytest.fixture
def world() -> World:
    inputs = tuple(
        InputView(slot=s.name, required=s.required, state="empty", updated_at=_now())
        for s in SPEC.inputs
    )
    task = task_view(id=TASK_ID, pipeline=SPEC.name, inputs=inputs)
    return World(SETTINGS, FakeSlots({TASK_ID: task}), FakeStorage(), FakeQueue())


def created(world: World, slot: str) -> str:
    """pre-create (and post-create) of a new upload into ``slot``; returns its object id."""
    answer = world.hook(pre_create(slot, size=SIZES[slot], meta={"filename": f"{slot}.las"}))
    assert not answer.RejectUpload, answer
    assert answer.ChangeFileInfo is not None and answer.ChangeFileInfo.ID is not None
    key = answer.ChangeFileInfo.ID
    world.hook(request("post-create", **_upload(key, slot)))
    return key


def _upload(key: str, slot: str, **changes: Any) -> dict[str, Any]:
    """The fields tusd sends about the upload pre-create named ``key`` (s3store: object id, then
    "+" and the multipart id)."""
    return {
        "upload_id": f"{key}+multipart",
        "size": SIZES[slot],
        "meta": {"filename": f"{slot}.las", "slot": slot, "task_id": TASK_ID},
        "storage": {"Bucket": BUCKET, "Key": key, "Type": "s3store"},
        **changes,
    }


def finished(world: World, key: str, slot: str, **changes: Any) -> HookResponse:
    return world.hook(request("post-finish", **_upload(key, slot, offset=SIZES[slot], **changes)))


def uploaded(world: World, *slots: str) -> dict[str, str]:
    """Whole uploads into ``slots``, stored and finished; their object ids by slot."""
    keys = {slot: created(world, slot) for slot in slots}
    for slot, key in keys.items():
        world.storage.sizes[(BUCKET, key)] = SIZES[slot]
        finished(world, key, slot)
    return keys


def test_pre_create_binds_the_slot_to_a_fresh_object_id(world: World) -> None:
    answer = world.hook(pre_create("pre", size=SIZE, meta={"filename": "scan.las"}))
    assert not answer.RejectUpload
    assert answer.ChangeFileInfo is not None and answer.ChangeFileInfo.ID is not None
    key = answer.ChangeFileInfo.ID
    assert key.startswith(f"{TASK_ID}/pre/")
    slot = world.slot("pre")
    assert (slot.state, slot.key, slot.bucket, slot.size) == ("uploading", key, BUCKET, SIZE)


@pytest.mark.parametrize(
    ("quota", "held", "stored", "words"),
    [
        (Quota(max_upload_bytes=SIZE + 99), 100, 0, "allows"),
        (Quota(max_stored_bytes=SIZE + 99), 0, 100, "may store"),
    ],
)
def test_a_project_byte_quota_refuses_the_upload_with_413(
    world: World, quota: Quota, held: int, stored: int, words: str
) -> None:
    world.access = FakeQuotas(quota, held_by_task=held, stored=stored)
    answer = world.hook(pre_create("pre", size=SIZE, meta={"filename": "scan.las"}))
    assert answer.RejectUpload and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 413
    assert "project 'mine-a'" in (answer.HTTPResponse.Body or "") and words in (
        answer.HTTPResponse.Body or ""
    )
    assert world.slot("pre").state == "empty"  # nothing was bound
    # One byte less and it fits.
    world.access = FakeQuotas(
        quota, held_by_task=held - 1 if held else 0, stored=max(stored - 1, 0)
    )
    assert not world.hook(pre_create("pre", size=SIZE, meta={"filename": "scan.las"})).RejectUpload


def test_an_upload_no_live_workers_disk_could_stage_is_refused_with_422(world: World) -> None:
    # SPEC's defaults: the inputs once, plus a 256 MiB margin for outputs.
    need = SIZE + 256 * 2**20
    world.workers = FakeWorkers([need - 1, need // 2])
    answer = world.hook(pre_create("pre", size=SIZE, meta={"filename": "scan.las"}))
    assert answer.RejectUpload and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 422
    assert "no live worker on queue 'default' has room for this task" in (
        answer.HTTPResponse.Body or ""
    )
    assert world.slot("pre").state == "empty"
    world.workers = FakeWorkers([need])
    assert not world.hook(pre_create("pre", size=SIZE, meta={"filename": "scan.las"})).RejectUpload


def test_a_second_upload_into_a_busy_slot_is_refused_with_409(world: World) -> None:
    first = created(world, "pre")
    answer = world.hook(pre_create("pre", size=SIZE))
    assert answer.RejectUpload and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 409
    assert world.slot("pre").key == first  # the first upload keeps it


def test_a_forged_upload_token_is_refused_before_the_task_is_looked_up(world: World) -> None:
    forged = request("pre-create", uri=f"/files/?task={TASK_ID}&slot=pre&token={'0' * 64}")
    answer = world.hook(forged)
    assert answer.RejectUpload and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 403
    assert world.slot("pre").state == "empty"


def test_the_last_finished_input_queues_the_task_once(world: World) -> None:
    keys = uploaded(world, "pre", "post", "notes")
    assert all(world.slot(s).done for s in keys)
    assert world.status is TaskStatus.PENDING
    assert world.queue.jobs == [(TASK_ID, "default")]
    # tusd retries a hook it did not hear back from: a replay records and queues nothing.
    finished(world, keys["notes"], "notes")
    assert world.queue.jobs == [(TASK_ID, "default")]


def test_required_inputs_alone_do_not_queue_while_an_optional_slot_is_empty(
    world: World,
) -> None:
    uploaded(world, "pre", "post")
    # A client may still be about to upload "notes": start_task or the grace period starts it.
    assert world.status is TaskStatus.WAITING and world.queue.jobs == []


def test_post_finish_before_storage_has_the_object_is_a_retryable_error(world: World) -> None:
    key = created(world, "pre")
    with pytest.raises(StorageError):
        finished(world, key, "pre")
    assert world.slot("pre").state == "uploading"


def test_an_object_of_the_wrong_size_never_fills_the_slot(world: World) -> None:
    key = created(world, "pre")
    world.storage.sizes[(BUCKET, key)] = SIZE - 1
    finished(world, key, "pre")
    assert world.slot("pre").state == "uploading"


def test_post_finish_naming_another_bucket_is_refused(world: World) -> None:
    key = created(world, "pre")
    world.storage.sizes[("results", key)] = SIZE
    with pytest.raises(HookRefused):
        finished(world, key, "pre", storage={"Bucket": "results", "Key": key, "Type": "s3store"})
    assert world.slot("pre").state == "uploading"


def test_deleting_an_input_of_a_queued_task_is_refused(world: World) -> None:
    keys = uploaded(world, "pre", "post", "notes")
    answer = world.hook(request("pre-terminate", **_upload(keys["pre"], "pre")))
    assert answer.RejectTermination and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 409


def test_a_terminated_upload_frees_its_slot_for_another(world: World) -> None:
    key = created(world, "post")
    world.hook(request("post-terminate", **_upload(key, "post")))
    assert world.slot("post").state == "empty"
    assert created(world, "post") != key


def test_progress_is_recorded_without_reading_the_task(world: World) -> None:
    key = created(world, "pre")
    reads = world.tasks.reads
    answer = world.hook(request("post-receive", **_upload(key, "pre", offset=SIZE // 2)))
    assert answer == HookResponse()
    assert world.tasks.reads == reads  # one conditional write, no read first
    assert world.slot("pre").offset == SIZE // 2


def test_progress_for_a_task_that_no_longer_waits_stops_the_upload(world: World) -> None:
    key = created(world, "pre")
    task = world.tasks.rows[TASK_ID]
    world.tasks.rows[TASK_ID] = replace(task, status=TaskStatus.KILLED)
    answer = world.hook(request("post-receive", **_upload(key, "pre", offset=10)))
    assert answer.StopUpload and answer.HTTPResponse is not None
    assert answer.HTTPResponse.StatusCode == 409
    assert "task is killed" in (answer.HTTPResponse.Body or "")
    assert world.slot("pre").offset == 0


def test_progress_of_an_upload_that_lost_its_slot_stops_it(world: World) -> None:
    key = created(world, "pre")
    world.tasks._set(TASK_ID, "pre", key="another")  # taken over after this one stalled
    answer = world.hook(request("post-receive", **_upload(key, "pre", offset=10)))
    assert answer.StopUpload and answer.HTTPResponse is not None
    assert "taken over by another upload" in (answer.HTTPResponse.Body or "")


def test_a_lost_post_finish_is_recovered_from_storage(world: World) -> None:
    key = created(world, "pre")
    world.hook(request("post-receive", **_upload(key, "pre", offset=SIZE)))
    world.storage.sizes[(BUCKET, key)] = SIZE
    later = _now() + timedelta(seconds=10)
    assert recover_finished_uploads(world, later).filled == [f"{TASK_ID}/pre"]
    assert world.slot("pre").done
    assert recover_finished_uploads(world, later).filled == []  # nothing left to recover


def test_recovery_pages_past_abandoned_uploads_and_starts_again_after_the_last(
    world: World,
) -> None:
    created(world, "notes")  # first in (task, slot) order; abandoned: never in storage
    finished = created(world, "post")
    world.storage.sizes[(BUCKET, finished)] = SIZE
    later = _now() + timedelta(seconds=10)

    first = recover_finished_uploads(world, later, limit=1)
    assert first.filled == [] and first.resume_after is not None  # the abandoned one's page
    second = recover_finished_uploads(world, later, after=first.resume_after, limit=1)
    assert second.filled == [f"{TASK_ID}/post"]
    assert world.slot("post").done
    last = recover_finished_uploads(world, later, after=second.resume_after, limit=1)
    assert last.filled == [] and last.resume_after is None  # past the newest: from the oldest


def test_recovery_checks_the_same_page_again_when_storage_cannot_be_read(world: World) -> None:
    created(world, "notes")
    finished = created(world, "post")
    world.storage.sizes[(BUCKET, finished)] = SIZE
    later = _now() + timedelta(seconds=10)
    first = recover_finished_uploads(world, later, limit=1)

    world.storage.down = True
    failed = recover_finished_uploads(world, later, after=first.resume_after, limit=1)
    assert failed.filled == [] and failed.resume_after == first.resume_after
    assert failed.interrupted and not first.interrupted
    world.storage.down = False
    again = recover_finished_uploads(world, later, after=failed.resume_after, limit=1)
    assert again.filled == [f"{TASK_ID}/post"]


def test_a_recovery_since_a_time_checks_only_the_uploads_changed_since(world: World) -> None:
    key = created(world, "pre")
    world.storage.sizes[(BUCKET, key)] = SIZE
    later = _now() + timedelta(seconds=10)
    after_it = _now() + timedelta(seconds=1)
    skipped = recover_finished_uploads(world, later, changed_since=after_it)
    assert skipped.filled == [] and not world.slot("pre").done
    assert skipped.quiet_before == later - timedelta(seconds=RECOVER_AFTER_S)
    before_it = _now() - timedelta(seconds=1)
    assert recover_finished_uploads(world, later, changed_since=before_it).filled == [
        f"{TASK_ID}/pre"
    ]
