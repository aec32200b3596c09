"""create_task as a use case, against in-memory fakes of the task store and the worker registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.db.workers import WorkerView
from orchestrator.domain.capability import parse_upload_query, verify_slot_token
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from orchestrator.errors import InvalidRequest
from orchestrator.service.tasks import create_task
from orchestrator.settings import Settings
from pipelines.checksum.spec import SPEC as CHECKSUM
from pipelines.spec import GiB, Resources
from tests.taskviews import task_view

SECRET = "unit-test-secret"
SETTINGS = Settings(
    upload_token_secret=SECRET,
    tus_public_url="https://upload.example.com/files/",
    worker_lost_after_s=30,
)
CATALOG = {CHECKSUM.name: CHECKSUM}
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class FakeTasks:
    rows: dict[str, TaskView]

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
        project_id: str = "default",
        priority: int = 0,
    ) -> TaskView:
        task = task_view(
            id=task_id,
            pipeline=pipeline,
            params=params,
            resources=resources,
            queue=queue,
            created_at=NOW,
            inputs=tuple(InputView(slot, required, "empty") for slot, required in slots),
            notify_url=notify_url,
            priority=priority,
            project_id=project_id,
        )
        self.rows[task_id] = task
        return task


@dataclass
class FakeWorkers:
    live: list[WorkerView]

    def alive(self, lost_after_s: float) -> list[WorkerView]:
        return [w for w in self.live if w.last_seen_at >= NOW - timedelta(seconds=lost_after_s)]


def worker(
    queues: Sequence[str] = ("default",),
    cpus: float = 4,
    seen_s_ago: float = 1,
    images: list[str] | None = None,
) -> Any:
    capacity = {"cpus": cpus, "memory_bytes": 8 * GiB, "gpus": 0}
    return WorkerView(
        id=f"w-{cpus}-{'-'.join(queues)}",
        host="h",
        queues=list(queues),
        executor="docker",
        hardware={},
        capacity=capacity,
        free=capacity,
        running=[],
        state="up",
        started_at=NOW,
        last_seen_at=NOW - timedelta(seconds=seen_s_ago),
        images=images,
    )


def create(
    workers: list[WorkerView], pipeline: str = "checksum", **kw: Any
) -> tuple[FakeTasks, Any]:
    tasks = FakeTasks({})
    params = kw.pop("params", None)
    resources = kw.pop("resources", None)
    created = create_task(
        tasks, FakeWorkers(workers), SETTINGS, CATALOG, pipeline, params, resources, **kw
    )
    return tasks, created


def test_a_created_task_waits_with_one_signed_upload_url_per_slot() -> None:
    tasks, created = create([worker()], params={"sleep_s": 1})
    stored = tasks.rows[created.task.id]
    assert stored.status is TaskStatus.WAITING and stored.queue == "default"
    assert stored.params["sleep_s"] == 1 and stored.resources == CHECKSUM.resources
    assert [i.slot for i in stored.inputs] == [s.name for s in CHECKSUM.inputs]
    assert set(created.upload_urls) == {s.name for s in CHECKSUM.inputs}
    for slot, url in created.upload_urls.items():
        assert url.startswith(SETTINGS.tus_public_url)
        parsed = parse_upload_query(url)
        assert parsed is not None
        task_id, in_slot, token = parsed
        assert (task_id, in_slot) == (created.task.id, slot)
        assert verify_slot_token(SECRET, task_id, slot, token)


def test_an_unknown_pipeline_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown pipeline 'nope' \(known: checksum\)"):
        create([worker()], pipeline="nope")


def test_bad_parameters_are_refused_and_nothing_is_stored() -> None:
    tasks = FakeTasks({})
    with pytest.raises(InvalidRequest, match="sleep_s"):
        create_task(tasks, FakeWorkers([worker()]), SETTINGS, CATALOG, "checksum", {"sleep_s": "x"})
    assert tasks.rows == {}


def test_a_bad_notify_url_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="notify_url"):
        create([worker()], notify_url="ftp://example.com/hook")


def test_a_queue_no_live_worker_listens_on_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no live worker takes tasks from queue 'site-b'"):
        create([worker(("default",))], queue="site-b")
    # A worker silent for longer than worker_lost_after_s does not count.
    with pytest.raises(InvalidRequest, match="queue 'site-b'"):
        create([worker(("default",)), worker(("site-b",), seen_s_ago=60)], queue="site-b")
    _, created = create([worker(("site-b",))], queue="site-b")
    assert created.task.queue == "site-b"


def test_a_task_larger_than_every_worker_is_refused_naming_the_shortfall() -> None:
    with pytest.raises(InvalidRequest, match=r"needs 2 CPUs \(largest worker: 1\)"):
        create([worker(cpus=1)], resources={"cpus": 2})


def test_with_no_live_worker_at_all_a_task_waits_for_the_fleet() -> None:
    _, created = create([], resources={"cpus": 64})
    assert created.task.status is TaskStatus.WAITING


def test_a_pipeline_whose_image_no_live_worker_has_is_refused() -> None:
    other = worker(images=["pipeline-volcal_baseline:latest"])
    with pytest.raises(InvalidRequest, match="has the image 'pipeline-checksum:latest'"):
        create([other])
    tasks, created = create([other, worker(cpus=2, images=[CHECKSUM.image])])
    assert created.task.id in tasks.rows


def test_a_task_belongs_to_the_project_of_its_creator() -> None:
    tasks, created = create([worker()], project_id="p-contractor")
    assert tasks.rows[created.task.id].project_id == "p-contractor"
    assert create([worker()])[1].task.project_id == "default"
