"""create / start / query / kill against the running API and the real PostgreSQL, S3, Redis."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime
from typing import Any

import pytest
import requests
from minio import Minio

from orchestrator.bootstrap import Services
from orchestrator.domain.capability import parse_upload_query, verify_slot_token
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultFile, RunStats
from orchestrator.settings import Settings
from tests.slots import fill_slot

from .conftest import Api


def fill_slots(services: Services, task_id: str, *slots: str) -> None:
    """Mark slots uploaded directly in the database (the hook path is tested elsewhere)."""
    for slot in slots:
        fill_slot(services.tasks, task_id, slot, key=f"k-{slot}", size=3, filename=f"{slot}.bin")


def make_pending(api: Api, services: Services) -> str:
    """A pending task with no job in the queue, so no worker takes it during the test."""
    task_id: str = api.create()["task_id"]
    fill_slots(services, task_id, "first", "second")
    assert services.tasks.queue_if_complete(task_id)
    return task_id


def make_running(api: Api, services: Services) -> str:
    task_id = make_pending(api, services)
    assert services.tasks.claim(task_id, "test-worker") is not None
    return task_id


# --- create ----------------------------------------------------------------------------------
def test_create_returns_upload_urls_per_slot(api: Api, settings: Settings) -> None:
    body = api.create()
    task_id = body["task_id"]
    assert uuid.UUID(task_id).version == 4
    assert body["status"] == "waiting"
    assert body["pipeline"] == "checksum"
    assert set(body["upload_urls"]) == {"first", "second"} == set(body["inputs"])
    assert body["inputs"]["first"] == {"required": True, "accept": [], "max_bytes": 1024**3}
    for slot, url in body["upload_urls"].items():
        assert url.startswith(settings.tus_public_url)
        parsed = parse_upload_query(url)
        assert parsed is not None and parsed[:2] == (task_id, slot)
        assert verify_slot_token(settings.upload_token_secret, task_id, slot, parsed[2])


def test_create_stores_validated_params_and_resources(api: Api) -> None:
    task = api.query(api.create(sleep_s=2)["task_id"])
    assert task["params"] == {"algorithm": "sha256", "sleep_s": 2, "allocate_mb": 0, "tick_s": 0}
    assert task["resources"]["memory_bytes"] > 0 and task["resources"]["timeout_s"] > 0
    assert task["status"] == "waiting" and task["attempts"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pipeline": "no-such-pipeline"}, "unknown pipeline 'no-such-pipeline'"),
        ({"pipeline": "checksum", "params": {"sleep_s": -1}}, "'sleep_s' must be >= 0"),
        ({"pipeline": "checksum", "params": {"sleep_s": "x"}}, "'sleep_s' must be an integer"),
        ({"pipeline": "checksum", "params": {"colour": "red"}}, "unknown parameter"),
    ],
)
def test_create_bad_pipeline_or_params_is_422(api: Api, body: dict[str, Any], message: str) -> None:
    r = api.post("/create_task", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "JSON is malformed"),
        (b"[1, 2]", "Validation failed"),
        (b'{"params": {}}', "Validation failed"),
        (b'{"pipeline": 7}', "Validation failed"),
        (b'{"pipeline": "checksum", "extra": 1}', "Validation failed"),
    ],
)
def test_create_malformed_body_is_400(api: Api, raw: bytes, message: str) -> None:
    r = api.post("/create_task", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]


# --- query -----------------------------------------------------------------------------------
def test_query_shows_state_times_and_inputs(api: Api) -> None:
    task_id = api.create()["task_id"]
    task = api.query(task_id)
    assert task["task_id"] == task_id and task["reason"] is None
    datetime.fromisoformat(task["created_at"])
    assert task["queued_at"] is None and task["started_at"] is None
    first = dict(task["inputs"]["first"])
    datetime.fromisoformat(first.pop("updated_at"))
    assert first == {
        "required": True,
        "state": "empty",
        "filename": None,
        "bytes_received": 0,
        "bytes_total": None,
        "done": False,
    }
    assert "results" not in task
    assert api.get(f"/tasks/{task_id}").json() == task


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "x" * 80])
def test_query_unknown_is_404(api: Api, task_id: str) -> None:
    r = api.get(f"/query_task/{task_id}")
    assert r.status_code == 404
    assert "unknown task" in r.json()["detail"]


def test_query_done_task_presigns_fresh_result_urls(
    api: Api, services: Services, settings: Settings, s3: Minio
) -> None:
    task_id = make_running(api, services)
    content = b'{"first": "abc"}'
    key = f"{task_id}/checksums.json"
    s3.put_object(settings.results_bucket, key, io.BytesIO(content), len(content))
    results = [
        ResultFile(
            name="checksums.json",
            key=key,
            bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            content_type="application/json",
        )
    ]
    assert services.tasks.transition(
        task_id,
        TaskStatus.DONE,
        expected=TaskStatus.RUNNING,
        results=results,
        stats=RunStats(wall_s=1.5),
    )
    task = api.query(task_id)
    assert task["status"] == "done" and task["finished_at"]
    # Every accounting field is listed; the ones the worker did not measure are null.
    assert task["stats"] == {"wall_s": 1.5, "cpu_seconds": None, "peak_memory_bytes": None}
    [item] = task["results"]
    assert {k: item[k] for k in ("name", "bytes", "sha256", "content_type")} == {
        k: results[0].as_dict()[k] for k in ("name", "bytes", "sha256", "content_type")
    }
    assert requests.get(item["url"], timeout=30).content == content
    assert "X-Amz-Expires=" + str(settings.presign_expiry_s) in item["url"]


# --- start -----------------------------------------------------------------------------------
def test_start_with_missing_inputs_is_409_listing_them(api: Api, services: Services) -> None:
    task_id = api.create()["task_id"]
    r = api.post(f"/start_task/{task_id}")
    assert r.status_code == 409
    assert r.json()["missing"] == ["first", "second"]
    fill_slots(services, task_id, "first")
    r = api.post(f"/start_task/{task_id}")
    assert r.status_code == 409 and r.json()["missing"] == ["second"]
    assert api.query(task_id)["status"] == "waiting"


def test_start_queues_a_complete_task(api: Api, services: Services) -> None:
    task_id = api.create()["task_id"]
    fill_slots(services, task_id, "first", "second")
    r = api.post(f"/start_task/{task_id}")
    assert r.status_code == 200, r.text
    assert r.json() == {"task_id": task_id, "status": "pending"}
    assert services.queue.is_live(task_id)
    # The job would fail on the fake keys: take it out of the worker's way.
    services.tasks.transition(task_id, TaskStatus.KILLED, reason="test cleanup")


@pytest.mark.parametrize("make", [make_pending, make_running])
def test_start_is_idempotent_on_started_tasks(api: Api, services: Services, make: Any) -> None:
    task_id = make(api, services)
    before = services.tasks.get(task_id)
    assert before is not None
    for _ in range(2):
        r = api.post(f"/start_task/{task_id}")
        assert r.status_code == 200 and r.json()["status"] == before.status.value
    assert services.tasks.get(task_id) == before


def test_start_of_a_killed_task_is_409(api: Api) -> None:
    task_id = api.create()["task_id"]
    assert api.post(f"/kill_task/{task_id}").status_code == 200
    r = api.post(f"/start_task/{task_id}")
    assert r.status_code == 409 and "killed" in r.json()["detail"]


def test_start_unknown_is_404(api: Api) -> None:
    assert api.post(f"/start_task/{uuid.uuid4()}").status_code == 404


# --- kill ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", ["waiting", "pending"])
def test_kill_waiting_or_pending_is_immediate(api: Api, services: Services, make: str) -> None:
    task_id = api.create()["task_id"] if make == "waiting" else make_pending(api, services)
    r = api.post(f"/kill_task/{task_id}")
    assert r.status_code == 200, r.text
    assert r.json() == {"task_id": task_id, "status": "killed"}
    task = api.query(task_id)
    assert task["status"] == "killed" and task["reason"] == "killed on request"
    assert task["finished_at"]


def test_kill_running_asks_the_worker(api: Api, services: Services) -> None:
    task_id = make_running(api, services)
    r = api.post(f"/kill_task/{task_id}")
    assert r.status_code == 202, r.text
    assert r.json() == {"task_id": task_id, "status": "running", "kill_requested": True}
    assert services.tasks.kill_requested(task_id)
    assert api.query(task_id)["kill_requested"] is True
    # Asking twice is harmless.
    assert api.post(f"/kill_task/{task_id}").status_code == 202
    services.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")


@pytest.mark.parametrize("final", [TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED])
def test_kill_finished_is_409(api: Api, services: Services, final: TaskStatus) -> None:
    task_id = make_running(api, services)
    services.tasks.transition(task_id, final, reason="because")
    before = services.tasks.get(task_id)
    r = api.post(f"/kill_task/{task_id}")
    assert r.status_code == 409
    assert r.json()["detail"] == f"task is already {final.value}"
    assert services.tasks.get(task_id) == before


def test_kill_unknown_is_404(api: Api) -> None:
    assert api.post(f"/kill_task/{uuid.uuid4()}").status_code == 404
