"""Deleting tasks and retention, on the real stack's PostgreSQL, Redis and MinIO.

Tasks are made in the repository on a queue no worker listens on, their objects written to
the buckets where tusd and the workers put them (``<task id>/...``), and moved to each state
through the repository's own transitions. The API is an in-process app over the same services;
the sweep is ``Sweeper.run`` called here, with retention periods the test sets and timestamps
it moves back, so nothing waits for a clock.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from minio import Minio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from orchestrator.app import create_app
from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.access import Role
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultFile
from orchestrator.service.lifecycle import (
    Sweeper,
    SweepReport,
    apply_rules,
    rules_problem,
    wanted_rules,
)
from orchestrator.settings import Settings, split_endpoint
from pipelines.catalog import shipped
from pipelines.checksum.spec import SPEC
from tests.raw import raw_engine
from tests.slots import fill_slot

WORKER = "lifecycle-test-host/slot0"
DAY_S = 86_400
# The periods the tests sweep with, and how far they move times back, stay well below the
# running API's (its defaults: a day or more), so that its own reconciler never takes the
# tests' tasks first.
HOUR_S = 3600


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    settings = Settings(**{k.lower(): v for k, v in stack.env.items()})
    svc = build_services(settings)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def s3(services: Services) -> Minio:
    s = services.settings
    host, secure = split_endpoint(s.s3_endpoint)
    return Minio(host, s.s3_access_key, s.s3_secret_key, secure=secure, region=s.s3_region)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(services, catalog=shipped(), reconcile=False)) as c:
        c.headers["X-API-Key"] = services.settings.api_key
        yield c


class Objects:
    """A task's objects in both buckets, as the product lays them out."""

    def __init__(self, services: Services, s3: Minio, task_id: str) -> None:
        self.s3 = s3
        self.task_id = task_id
        self.uploads = services.settings.uploads_bucket
        self.results = services.settings.results_bucket

    def put(self, bucket: str, name: str, data: bytes = b"x" * 100) -> str:
        key = f"{self.task_id}/{name}"
        self.s3.put_object(bucket, key, io.BytesIO(data), len(data))
        return key

    def listed(self, bucket: str) -> list[str]:
        return sorted(
            o.object_name or ""
            for o in self.s3.list_objects(bucket, prefix=f"{self.task_id}/", recursive=True)
        )

    def unfinished(self) -> list[str]:
        # MinIO lists multipart uploads by exact key only when given a prefix: list them all.
        page = self.s3._list_multipart_uploads(self.uploads)
        return [u.object_name for u in page.uploads if u.object_name.startswith(self.task_id)]

    def start_multipart(self, name: str) -> str:
        key = f"{self.task_id}/{name}"
        self.s3._create_multipart_upload(self.uploads, key, {})
        return key

    def all(self) -> dict[str, list[str]]:
        return {
            "uploads": self.listed(self.uploads),
            "results": self.listed(self.results),
            "unfinished": self.unfinished(),
        }


def new_task(services: Services, project_id: str = "default", priority: int = 0) -> str:
    task_id = str(uuid.uuid4())
    services.tasks.create(
        task_id=task_id,
        pipeline=SPEC.name,
        params=SPEC.validate_params({}),
        resources=SPEC.resources,
        queue=f"test-lifecycle-{uuid.uuid4().hex[:8]}",
        slots=[(s.name, s.required) for s in SPEC.inputs],
        project_id=project_id,
        priority=priority,
    )
    return task_id


def with_inputs(services: Services, objects: Objects) -> None:
    """Both slots filled: the first finished, the second's upload... also finished, plus an
    abandoned multipart upload of an earlier try at the second slot."""
    for slot in ("first", "second"):
        key = objects.put(objects.uploads, f"{slot}/n1")
        objects.put(objects.uploads, f"{slot}/n1.info", b"{}")
        fill_slot(services.tasks, objects.task_id, slot, key=key, size=100)
    objects.start_multipart("second/n0")


def in_state(services: Services, s3: Minio, state: TaskStatus) -> tuple[str, Objects]:
    """A task in ``state`` with objects in both buckets where that state has them."""
    task_id = new_task(services)
    objects = Objects(services, s3, task_id)
    repo = services.tasks
    if state is TaskStatus.WAITING:
        # One input in, the other half uploaded (tusd's .info, and its multipart upload).
        key = objects.put(objects.uploads, "first/n1")
        fill_slot(repo, task_id, "first", key=key, size=100)
        objects.put(objects.uploads, "second/n2.info", b"{}")
        objects.start_multipart("second/n2")
        return task_id, objects
    with_inputs(services, objects)
    assert repo.queue_if_complete(task_id)
    if state is TaskStatus.PENDING:
        return task_id, objects
    assert repo.claim(task_id, WORKER) is not None
    if state is TaskStatus.RUNNING:
        return task_id, objects
    results = [
        ResultFile(name, 100, "0" * 64, "text/plain", objects.put(objects.results, name))
        for name in ("logs.txt", "checksums.json")
    ]
    reason = None if state is TaskStatus.DONE else f"test: {state.value}"
    assert repo.transition(
        task_id, state, expected=TaskStatus.RUNNING, reason=reason, results=results
    )
    return task_id, objects


@pytest.mark.parametrize(
    "state",
    [TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED],
)
def test_delete_removes_every_object_and_leaves_a_tombstone(
    services: Services, s3: Minio, client: TestClient[Any], state: TaskStatus
) -> None:
    task_id, objects = in_state(services, s3, state)
    before = objects.all()
    assert before["uploads"], before
    assert before["unfinished"], before
    assert bool(before["results"]) == state.terminal
    assert client.get(f"/query_task/{task_id}").status_code == 200  # kept in memory if ended

    r = client.delete(f"/tasks/{task_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data_removed"] is True and body["reason"] == "deleted on request"
    expected_status = state.value if state.terminal else "killed"
    assert body["status"] == expected_status
    assert objects.all() == {"uploads": [], "results": [], "unfinished": []}

    gone = client.get(f"/query_task/{task_id}")
    assert gone.status_code == 410, gone.text
    assert gone.json()["deleted_at"] == body["deleted_at"]
    assert "deleted on request" in gone.json()["detail"]
    for method, path in (
        ("GET", f"/tasks/{task_id}"),
        ("POST", f"/start_task/{task_id}"),
        ("POST", f"/kill_task/{task_id}"),
        ("GET", f"/tasks/{task_id}/logs?follow=false"),
    ):
        assert client.request(method, path).status_code == 410, (method, path)
    listed = client.get("/tasks", params={"limit": 500}).json()["tasks"]
    assert task_id not in {t["task_id"] for t in listed}

    again = client.delete(f"/tasks/{task_id}")  # idempotent: the same tombstone
    assert again.status_code == 200 and again.json() == body
    view = services.tasks.get(task_id)
    assert view is not None and view.inputs_removed_at and view.results_removed_at


def test_a_running_task_is_stopped_first_and_its_data_goes_once_it_has_ended(
    services: Services, s3: Minio, client: TestClient[Any]
) -> None:
    task_id, objects = in_state(services, s3, TaskStatus.RUNNING)
    r = client.delete(f"/tasks/{task_id}")
    assert r.status_code == 202, r.text
    assert r.json()["data_removed"] is False and r.json()["status"] == "running"
    assert client.get(f"/query_task/{task_id}").status_code == 410
    assert services.tasks.kill_requested(task_id)
    # Its worker stops it: stores the stopped run's log, then ends it.
    log_key = objects.put(objects.results, "logs.txt")
    assert services.tasks.transition(
        task_id,
        TaskStatus.KILLED,
        expected=TaskStatus.RUNNING,
        reason="killed on request",
        held_by=WORKER,
        results=[ResultFile("logs.txt", 100, "0" * 64, "text/plain", log_key)],
    )
    assert objects.all()["results"] == [log_key]
    report = drain(services)
    assert task_id in report.purged
    assert objects.all() == {"uploads": [], "results": [], "unfinished": []}
    assert task_id not in drain(services).purged  # once


def test_unknown_and_other_projects_tasks_answer_404(
    services: Services, client: TestClient[Any]
) -> None:
    assert client.delete(f"/tasks/{uuid.uuid4()}").status_code == 404
    key = services.access.create_key(f"lifecycle-{uuid.uuid4().hex[:6]}", Role.MEMBER).key
    task_id = new_task(services)  # in the default project
    r = client.delete(f"/tasks/{task_id}", headers={"X-API-Key": key})
    assert r.status_code == 404, r.text
    assert client.get(f"/query_task/{task_id}").status_code == 200


# --- retention -------------------------------------------------------------------------------
def backdate(services: Services, task_id: str, seconds: int) -> None:
    """Move the task's creation, end and input activity ``seconds`` into the past."""
    with raw_engine(services).begin() as conn:
        conn.execute(
            text(
                "UPDATE tasks SET created_at = created_at - make_interval(secs => :s),"
                " finished_at = finished_at - make_interval(secs => :s) WHERE id = :id"
            ),
            {"s": seconds, "id": task_id},
        )
        conn.execute(
            text(
                "UPDATE task_inputs SET updated_at = updated_at - make_interval(secs => :s)"
                " WHERE task_id = :id"
            ),
            {"s": seconds, "id": task_id},
        )


def drain(services: Services, now: datetime | None = None) -> SweepReport:
    """Sweep until nothing is left to do (a stack that ran before holds more than one pass's
    batch), and what every pass did."""
    total = SweepReport()
    while True:
        report = Sweeper(services).run(now or datetime.now(UTC))
        for name in ("purged", "inputs_removed", "results_removed", "expired"):
            getattr(total, name).extend(getattr(report, name))
        total.uploads_aborted += report.uploads_aborted
        if not report.changed:
            return total


def retention(services: Services, **periods: float) -> Services:
    settings = services.settings.model_copy(update=periods)
    return dataclasses.replace(services, settings=settings)


def test_inputs_then_results_expire_after_their_periods(
    services: Services, s3: Minio, client: TestClient[Any]
) -> None:
    task_id, objects = in_state(services, s3, TaskStatus.DONE)
    swept = retention(services, input_retention_s=3 * HOUR_S, result_retention_s=10 * HOUR_S)
    backdate(services, task_id, 2 * HOUR_S)  # ended two hours ago: nothing due yet
    report = drain(swept)
    assert task_id not in report.inputs_removed + report.results_removed
    assert objects.all()["uploads"] and objects.all()["results"]

    backdate(services, task_id, 2 * HOUR_S)  # four hours: inputs due, results kept
    report = drain(swept)
    assert task_id in report.inputs_removed and task_id not in report.results_removed
    assert objects.all()["uploads"] == [] and objects.all()["unfinished"] == []
    assert len(objects.all()["results"]) == 2
    task = client.get(f"/query_task/{task_id}").json()
    assert task["inputs_removed_at"] and task["results"] and not task.get("results_removed_at")

    backdate(services, task_id, 7 * HOUR_S)  # eleven hours: results due
    report = drain(swept)
    assert task_id in report.results_removed
    assert objects.all() == {"uploads": [], "results": [], "unfinished": []}
    task = client.get(f"/query_task/{task_id}").json()
    assert task["status"] == "done" and task.get("results") is None
    assert task["results_removed_at"] and "results_expire_at" not in task


def test_results_expire_at_is_shown_from_the_end(
    services: Services, s3: Minio, client: TestClient[Any]
) -> None:
    task_id, _ = in_state(services, s3, TaskStatus.DONE)
    task = client.get(f"/query_task/{task_id}").json()
    ended = datetime.fromisoformat(task["finished_at"])
    expires = datetime.fromisoformat(task["results_expire_at"])
    assert expires - ended == timedelta(seconds=services.settings.result_retention_s)


def test_a_waiting_task_without_upload_activity_expires(services: Services, s3: Minio) -> None:
    idle, _ = in_state(services, s3, TaskStatus.WAITING)
    busy, _ = in_state(services, s3, TaskStatus.WAITING)
    swept = retention(services, waiting_expiry_s=2 * HOUR_S)
    backdate(services, idle, 3 * HOUR_S)
    backdate(services, busy, 3 * HOUR_S)
    with raw_engine(services).begin() as conn:  # an upload of ``busy`` made progress today
        conn.execute(
            text(
                "UPDATE task_inputs SET updated_at = now() WHERE task_id = :id AND slot = 'first'"
            ),
            {"id": busy},
        )
    report = drain(swept)
    assert idle in report.expired and busy not in report.expired
    idle_view, busy_view = services.tasks.get(idle), services.tasks.get(busy)
    assert idle_view is not None and busy_view is not None
    assert idle_view.status is TaskStatus.KILLED
    assert idle_view.reason == "expired: no uploads for 2 hours"
    assert busy_view.status is TaskStatus.WAITING


def test_unfinished_multipart_uploads_are_aborted_after_their_period(
    services: Services, s3: Minio
) -> None:
    task_id, objects = in_state(services, s3, TaskStatus.WAITING)
    assert objects.unfinished() == [f"{task_id}/second/n2"]
    swept = retention(services, multipart_abort_s=3600)
    report = drain(swept)  # started just now: kept
    assert objects.unfinished() == [f"{task_id}/second/n2"]
    report = drain(swept, datetime.now(UTC) + timedelta(seconds=3601))
    assert report.uploads_aborted >= 1
    assert objects.unfinished() == []
    task = services.tasks.get(task_id)
    assert task is not None and task.status is TaskStatus.WAITING  # the task itself stays


def test_bucket_rules_are_set_and_checked(services: Services) -> None:
    apply_rules(services.storage, services.settings)
    assert rules_problem(services.storage, services.settings) is None
    results = services.settings.results_bucket
    have = services.storage.expiry(results)
    assert have is not None
    assert have.object_days == wanted_rules(services.settings)[results].object_days == 30
    other = services.settings.model_copy(update={"result_retention_s": 5 * DAY_S})
    problem = rules_problem(services.storage, other)
    assert problem == (
        f"bucket {results} expires objects after 30 days, not 5 as RESULT_RETENTION_S says"
    )
    # Results kept for ever: the 30-day rule must go, not linger from the earlier settings.
    forever = services.settings.model_copy(update={"result_retention_s": 0})
    assert rules_problem(services.storage, forever) == (
        f"bucket {results} expires objects after 30 days, but the settings keep them"
    )
    try:
        apply_rules(services.storage, forever)
        kept = services.storage.expiry(results)
        assert kept is None or kept.object_days is None
        assert rules_problem(services.storage, forever) is None
    finally:  # the running API's rules, as its /health expects them
        apply_rules(services.storage, services.settings)
    assert rules_problem(services.storage, services.settings) is None


# --- /metrics --------------------------------------------------------------------------------
def scrape(client: TestClient[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_show_bytes_per_bucket_and_project_tasks_per_band_and_removals(
    services: Services, s3: Minio, client: TestClient[Any]
) -> None:
    s = services.settings
    project = f"lifecycle-{uuid.uuid4().hex[:8]}"
    project_id = services.access.ensure_project(project)
    task_id = new_task(services, project_id, priority=10)
    objects = Objects(services, s3, task_id)
    before = scrape(client)
    band = ("orchestrator_unfinished_tasks", (("priority", "high"),))
    for slot, size in (("first", 100), ("second", 250)):
        key = objects.put(objects.uploads, f"{slot}/n1", b"x" * size)
        fill_slot(services.tasks, task_id, slot, key=key, size=size)
    assert services.tasks.queue_if_complete(task_id)
    assert services.tasks.claim(task_id, WORKER) is not None
    result = ResultFile(
        "out.txt", 40, "0" * 64, "text/plain", objects.put(objects.results, "out.txt")
    )
    assert services.tasks.transition(
        task_id, TaskStatus.DONE, expected=TaskStatus.RUNNING, results=[result]
    )
    after = scrape(client)
    stored = "orchestrator_stored_bytes"
    assert after[(stored, (("bucket", s.uploads_bucket), ("project", project_id)))] == 350
    assert after[(stored, (("bucket", s.results_bucket), ("project", project_id)))] == 40
    assert after[band] == before[band] - 1  # counted in the high band while waiting

    new_task(services, priority=-10)
    low = ("orchestrator_unfinished_tasks", (("priority", "low"),))
    assert scrape(client)[low] == after.get(low, 0) + 1

    removed = ("orchestrator_objects_removed_total", (("kind", "deleted"),))
    assert client.delete(f"/tasks/{task_id}").status_code == 200
    final = scrape(client)
    assert final[removed] - after.get(removed, 0) == 3  # two inputs and one result
    # Deleted: its bytes are no longer counted.
    assert (stored, (("bucket", s.uploads_bucket), ("project", project_id))) not in final
