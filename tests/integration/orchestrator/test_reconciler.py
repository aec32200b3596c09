"""The reconciler on real PostgreSQL and Redis (the test stack).

Tasks here live on queues no worker listens on, so the stack's own worker never touches them.
The stack's API reconciles the same database every 10 s: each test holds that reconciler's lock
(``stack_reconciler_held_off``) and runs its own under another key, so that no pass of the
stack's takes the test's tasks first.
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import text

from orchestrator.adapters.queue import PROMOTE_PAGE
from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.priority import Band, band_queue
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.reconciler import LOCK_KEY, Reconciler
from orchestrator.settings import Settings
from pipelines.checksum.spec import SPEC
from tests.raw import raw_engine, raw_redis, stack_reconciler_held_off
from tests.slots import fill_slot


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    settings = Settings(**{k.lower(): v for k, v in stack.env.items()})
    services = build_services(settings.model_copy(update={"max_attempts": 3}))
    yield services
    services.close()


@pytest.fixture
def queue_name() -> str:
    return f"test-reconciler-{uuid.uuid4().hex[:8]}"


# The lock of the tests' own reconcilers.
TEST_LOCK_KEY = LOCK_KEY + 1


@pytest.fixture(autouse=True)
def reconciler_held_off(services: Services) -> Iterator[None]:
    with stack_reconciler_held_off(services):
        yield


def make_reconciler(services: Services, **options: Any) -> Reconciler:
    return Reconciler(services, lock_key=TEST_LOCK_KEY, **options)


@pytest.fixture
def reconciler(services: Services) -> Reconciler:
    return make_reconciler(services, pending_grace_s=0)


def new_task(services: Services, queue: str, slots: list[tuple[str, bool]]) -> str:
    """A checksum task, waiting, with these (name, required) input slots."""
    task_id = str(uuid.uuid4())
    services.tasks.create(
        task_id=task_id,
        pipeline=SPEC.name,
        params=SPEC.validate_params({}),
        resources=SPEC.resources,
        queue=queue,
        slots=slots,
    )
    return task_id


def pending_task(services: Services, queue: str) -> str:
    task_id = new_task(services, queue, [])  # nothing to upload: straight to pending
    assert services.tasks.queue_if_complete(task_id)
    return task_id


def age(services: Services, task_id: str, seconds: int) -> None:
    """Pretend the task's last update and heartbeat were ``seconds`` ago."""
    with raw_engine(services).begin() as conn:
        conn.execute(
            text(
                "UPDATE tasks SET updated_at = now() - make_interval(secs => :s),"
                " heartbeat_at = CASE WHEN heartbeat_at IS NULL THEN NULL"
                " ELSE now() - make_interval(secs => :s) END WHERE id = :id"
            ),
            {"s": seconds, "id": task_id},
        )


def get(services: Services, task_id: str) -> TaskView:
    task = services.tasks.get(task_id)
    assert task is not None
    return task


def fill(services: Services, task_id: str, slot: str, key: str) -> None:
    fill_slot(services.tasks, task_id, slot, key=key, size=1, filename="a.bin", upload_id=key)


def queued_ids(services: Services, queue: str) -> list[str]:
    return list(Queue(queue, connection=raw_redis(services)).job_ids)


def pending_count(services: Services) -> int:
    with raw_engine(services).connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'pending'")).scalar_one()
        )


def test_pending_task_without_a_job_is_enqueued_again(
    services: Services, reconciler: Reconciler, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = pending_task(services, queue_name)
    age(services, task_id, 60)
    assert queued_ids(services, queue_name) == []

    # A pass checks a page of pending tasks, oldest first, and the next goes on from there.
    # Pages of a quarter of them: this task, the newest, is in the fourth or fifth page (later
    # if the passes themselves move older tasks to pending; 8 passes leave room for that).
    page = -(-pending_count(services) // 4)
    monkeypatch.setattr("orchestrator.reconciler.PENDING_PAGE", page)
    passes = 8
    requeued: list[str] = []
    for _ in range(passes):
        requeued += reconciler.run_pass().requeued
        if task_id in requeued:
            break
    assert task_id in requeued
    assert queued_ids(services, queue_name) == [f"task-{task_id}"]
    assert services.queue.is_live(task_id)

    # A live job is left alone: no duplicate from a pass whose page holds every pending task.
    monkeypatch.setattr("orchestrator.reconciler.PENDING_PAGE", pending_count(services) + 100)
    assert task_id not in make_reconciler(services, pending_grace_s=0).run_pass().requeued
    assert queued_ids(services, queue_name) == [f"task-{task_id}"]


def test_fresh_pending_task_gets_a_grace_period(services: Services, queue_name: str) -> None:
    task_id = pending_task(services, queue_name)
    report = make_reconciler(services, pending_grace_s=15).run_pass()
    assert task_id not in report.requeued
    assert queued_ids(services, queue_name) == []


def test_lost_worker_is_retried_then_failed_after_max_attempts(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id = pending_task(services, queue_name)
    for attempt in (1, 2, 3):
        worker = f"dead-host:{attempt}"
        assert services.tasks.claim(task_id, worker) is not None
        report = reconciler.run_pass()
        assert task_id not in report.retried  # still heart-beating (just claimed)
        age(services, task_id, 120)
        report = reconciler.run_pass()
        task = get(services, task_id)
        if attempt < 3:
            assert task_id in report.retried
            assert task.status is TaskStatus.PENDING
            assert task.worker_id is None and task.heartbeat_at is None
            assert task.attempts == attempt
            assert services.queue.is_live(task_id)
            Queue(queue_name, connection=raw_redis(services)).empty()
    assert task_id in report.failed
    assert (task.status, task.reason) == (
        TaskStatus.ERROR,
        "worker lost 3 times (last: dead-host:3)",
    )


def test_lost_worker_with_a_kill_request_ends_killed(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id = pending_task(services, queue_name)
    assert services.tasks.claim(task_id, "dead-host:9") is not None
    assert services.tasks.request_kill(task_id)
    age(services, task_id, 120)
    report = reconciler.run_pass()
    assert task_id in report.killed
    task = get(services, task_id)
    assert (task.status, task.reason) == (TaskStatus.KILLED, "killed on request")


def test_a_worker_that_beats_again_keeps_its_task(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id = pending_task(services, queue_name)
    assert services.tasks.claim(task_id, "slow-host:1") is not None
    age(services, task_id, 120)
    assert services.tasks.heartbeat(task_id, "slow-host:1")
    report = reconciler.run_pass()
    assert task_id not in report.retried + report.failed + report.killed
    assert get(services, task_id).status is TaskStatus.RUNNING


def test_only_one_replica_reconciles_at_a_time(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id = pending_task(services, queue_name)
    age(services, task_id, 60)
    with raw_engine(services).begin() as other_replica:
        assert other_replica.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": TEST_LOCK_KEY}
        ).scalar()
        report = reconciler.run_pass()
        assert not report.ran and report.changed == 0
    assert queued_ids(services, queue_name) == []
    assert reconciler.run_pass().ran


def waiting_with_optional(services: Services, queue: str) -> str:
    """A task whose required slot is filled and whose optional slot stays empty."""
    task_id = new_task(services, queue, [("data", True), ("extra", False)])
    fill(services, task_id, "data", "u1")
    return task_id


def test_optional_inputs_left_empty_start_after_quiet_period(
    services: Services, queue_name: str
) -> None:
    task_id = waiting_with_optional(services, queue_name)
    # Hooks only queue a task once every slot is in: the optional one is still empty.
    assert not services.tasks.queue_if_complete(task_id, all_inputs=True)

    patient = make_reconciler(
        dataclasses.replace(
            services,
            settings=services.settings.model_copy(update={"optional_inputs_grace_s": 3600}),
        )
    )
    report = patient.run_pass()
    assert task_id not in report.started
    assert get(services, task_id).status is TaskStatus.WAITING

    eager = make_reconciler(
        dataclasses.replace(
            services, settings=services.settings.model_copy(update={"optional_inputs_grace_s": 0})
        )
    )
    report = eager.run_pass()
    assert task_id in report.started
    assert get(services, task_id).status is TaskStatus.PENDING
    assert Queue(queue_name, connection=raw_redis(services)).count == 1


def test_waiting_task_missing_a_required_input_never_starts(
    services: Services, queue_name: str
) -> None:
    task_id = new_task(services, queue_name, [("data", True), ("extra", False)])
    fill(services, task_id, "extra", "u2")
    eager = make_reconciler(
        dataclasses.replace(
            services, settings=services.settings.model_copy(update={"optional_inputs_grace_s": 0})
        )
    )
    assert task_id not in eager.run_pass().started
    assert get(services, task_id).status is TaskStatus.WAITING


# --- uploads whose post-finish never came ------------------------------------------------------
def uploading_task(
    services: Services, queue: str, data: bytes, *, store: bool, quiet_s: int = 5
) -> tuple[str, str]:
    """A waiting task with one input slot bound to an upload, as pre-create leaves it; the
    object is in the uploads bucket (``store``) as tusd leaves a finished upload."""
    task_id = new_task(services, queue, [("data", True)])
    key = f"{task_id}/data/{uuid.uuid4().hex[:24]}"
    bucket = services.settings.uploads_bucket
    stalled_before = datetime.now(UTC) - timedelta(days=1)
    assert services.tasks.slot_reserved(
        task_id,
        "data",
        key=key,
        bucket=bucket,
        filename="d.bin",
        size=len(data),
        stalled_before=stalled_before,
    )
    assert services.tasks.slot_upload_created(task_id, "data", key, f"{key}+mp-1")
    if store:
        path = Path(tempfile.mkstemp()[1])
        path.write_bytes(data)
        services.storage.upload(bucket, key, str(path), "application/octet-stream")
        path.unlink()
    with raw_engine(services).begin() as conn:  # the last upload activity was a while ago
        conn.execute(
            text(
                "UPDATE task_inputs SET updated_at = now() - make_interval(secs => :quiet) "
                "WHERE task_id = :id"
            ),
            {"id": task_id, "quiet": quiet_s},
        )
    return task_id, key


def test_a_complete_upload_without_post_finish_is_finished_and_queued(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id, key = uploading_task(services, queue_name, b"abc" * 100, store=True)
    report = reconciler.run_pass()
    assert f"{task_id}/data" in report.recovered
    task = get(services, task_id)
    slot = task.input("data")
    assert slot is not None and slot.done and (slot.key, slot.size) == (key, 300)
    assert slot.upload_id == f"{key}+mp-1"
    assert task.status is TaskStatus.PENDING
    assert f"task-{task_id}" in queued_ids(services, queue_name)
    # A second pass finds nothing more to do.
    assert f"{task_id}/data" not in reconciler.run_pass().recovered


def swept(reconciler: Reconciler) -> list[str]:
    """Passes until one ends a sweep of every quiet upload (a page a pass); what they filled."""
    filled: list[str] = []
    for _ in range(20):
        report = reconciler.run_pass()
        filled += report.recovered
        if report.uploads_swept:
            return filled
    raise AssertionError("no sweep of the quiet uploads ended in 20 passes")


def test_uploads_quiet_for_long_are_checked_by_the_sweeps_only(
    services: Services, queue_name: str
) -> None:
    """Between sweeps a pass checks the uploads that went quiet lately; one quiet for longer
    (most are abandoned) waits for the next sweep. A new reconciler sweeps at once."""
    hour = 3600
    seldom = make_reconciler(services, upload_sweep_s=hour)
    old_first, _ = uploading_task(services, queue_name, b"a" * 10, store=True, quiet_s=hour)
    assert f"{old_first}/data" in swept(seldom)

    old, _ = uploading_task(services, queue_name, b"b" * 10, store=True, quiet_s=hour)
    recent, _ = uploading_task(services, queue_name, b"c" * 10, store=True)
    report = seldom.run_pass()
    assert not report.uploads_swept
    assert f"{recent}/data" in report.recovered
    assert f"{old}/data" not in report.recovered  # quiet for an hour: not until the next sweep
    assert get(services, old).input("data").state == "uploading"  # type: ignore[union-attr]

    # Once the next sweep is due (here: at every pass after one ended), it finds it.
    often = make_reconciler(services, upload_sweep_s=0)
    swept(often)  # its first sweep, from the process's start, may have found ``old`` already
    later, _ = uploading_task(services, queue_name, b"d" * 10, store=True, quiet_s=hour)
    assert f"{later}/data" in swept(often)


def test_an_upload_still_in_progress_is_left_alone(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id, _ = uploading_task(services, queue_name, b"xyz", store=False)
    assert f"{task_id}/data" not in reconciler.run_pass().recovered
    slot = get(services, task_id).input("data")
    assert slot is not None and slot.state == "uploading"


def test_an_object_of_the_wrong_size_is_not_trusted(
    services: Services, reconciler: Reconciler, queue_name: str
) -> None:
    task_id, key = uploading_task(services, queue_name, b"12345", store=False)
    path = Path(tempfile.mkstemp()[1])
    path.write_bytes(b"1234")  # not the size pre-create was told
    services.storage.upload(services.settings.uploads_bucket, key, str(path), "text/plain")
    path.unlink()
    assert f"{task_id}/data" not in reconciler.run_pass().recovered
    assert not get(services, task_id).input("data").done  # type: ignore[union-attr]


def test_required_missing_counts_down_once_per_required_slot(
    services: Services, queue_name: str
) -> None:
    task_id = new_task(services, queue_name, [("a", True), ("b", True), ("extra", False)])

    def missing() -> int:
        with raw_engine(services).connect() as conn:
            return int(
                conn.execute(
                    text("SELECT required_missing FROM tasks WHERE id = :id"), {"id": task_id}
                ).scalar_one()
            )

    def ready() -> bool:
        return task_id in services.tasks.idle_with_required_inputs(
            datetime.now(UTC) + timedelta(seconds=1), limit=10**6
        )

    assert missing() == 2
    fill(services, task_id, "a", "ka")
    assert missing() == 1
    # A replay of the finish that filled "a" changes nothing.
    assert not services.tasks.slot_finished(
        task_id, "a", upload_id="ka", filename="a.bin", size=1, bucket="uploads", key="ka"
    )
    fill(services, task_id, "extra", "kx")
    assert (missing(), ready()) == (1, False)
    fill(services, task_id, "b", "kb")
    assert (missing(), ready()) == (0, True)


def test_jobs_waiting_past_the_ageing_period_move_up_one_band(
    services: Services, queue_name: str
) -> None:
    low, normal, high = (band_queue(queue_name, b) for b in (Band.LOW, Band.NORMAL, Band.HIGH))
    ids = [pending_task(services, queue_name) for _ in range(2)]
    for task_id in ids:
        services.queue.enqueue(task_id, low, 60)
    fresh = pending_task(services, queue_name)
    services.queue.enqueue(fresh, normal, 60)

    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert services.queue.promote(low, normal, long_ago) == []  # none waited that long
    assert services.queue.promote(low, normal, datetime.now(UTC) + timedelta(seconds=1)) == ids
    depths = services.queue.depths()
    assert (depths.get(low, 0), depths[normal]) == (0, 3)
    # Behind the task already there: ageing moves a job to the back of the band above.
    assert Queue(normal, connection=raw_redis(services)).get_job_ids() == [
        f"task-{t}" for t in [fresh, *ids]
    ]
    # Moved just now: their wait in the normal band starts again.
    assert services.queue.promote(normal, high, long_ago) == []


def test_ageing_reads_past_a_page_and_stops_at_the_first_job_queued_since(
    services: Services, queue_name: str
) -> None:
    low, normal = (band_queue(queue_name, b) for b in (Band.LOW, Band.NORMAL))
    due = [pending_task(services, queue_name) for _ in range(PROMOTE_PAGE + 20)]
    for task_id in due:
        services.queue.enqueue(task_id, low, 60)
    cutoff = datetime.now(UTC)
    later = [pending_task(services, queue_name) for _ in range(3)]
    for task_id in later:
        services.queue.enqueue(task_id, low, 60)
    assert services.queue.promote(low, normal, cutoff) == due
    assert Queue(low, connection=raw_redis(services)).get_job_ids() == [f"task-{t}" for t in later]


def test_live_answers_for_many_tasks_at_once(services: Services, queue_name: str) -> None:
    queued = pending_task(services, queue_name)
    services.queue.enqueue(queued, queue_name, 60)
    orphan = pending_task(services, queue_name)  # pending, but its job never made it to Redis
    assert services.queue.live([queued, orphan, str(uuid.uuid4())]) == {queued}
    assert services.queue.live([]) == set()
