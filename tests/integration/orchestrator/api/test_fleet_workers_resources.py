"""GET /workers and per-task resources against the real registry (in-process app, real DB).

The stack's own worker may be announcing itself too, so every assertion is about the fake
workers written here, or holds whatever else is registered (demands no real host here meets).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from orchestrator.bootstrap import Services
from pipelines.spec import GiB

from .fleet import age_worker, delete_pipeline_tasks, fake_worker, insert_task

Local = tuple[TestClient[Any], Services]


def _workers(client: TestClient[Any]) -> dict[str, dict[str, Any]]:
    r = client.get("/workers")
    assert r.status_code == 200, r.text
    return {w["id"]: w for w in r.json()["workers"]}


def test_workers_lists_shape_and_states(local: Local) -> None:
    client, svc = local
    with (
        fake_worker(svc, queues=("default", "gpu"), cpus=8, gpus=2) as up_id,
        fake_worker(svc) as lost_id,
        fake_worker(svc) as stopped_id,
    ):
        age_worker(svc, lost_id, svc.settings.worker_lost_after_s + 5)
        svc.workers.stopped(stopped_id)
        listed = _workers(client)
        up = listed[up_id]
        assert set(up) == {
            "id",
            "host",
            "queues",
            "executor",
            "state",
            "hardware",
            "capacity",
            "free",
            "running",
            "started_at",
            "last_seen_at",
            "images",
        }
        assert up["state"] == "up" and up["queues"] == ["default", "gpu"]
        assert up["images"] is None  # a local-executor worker runs any pipeline
        assert up["host"] == "test-host" and up["executor"] == "local"
        assert up["capacity"] == {"cpus": 8, "memory_bytes": 4 * GiB, "gpus": 2}
        assert up["hardware"]["gpus"][1]["model"] == "Fake GPU"
        assert {"cpus", "memory_bytes", "disk_bytes"} <= set(up["hardware"])
        assert up["running"] == []
        assert listed[lost_id]["state"] == "lost"
        assert listed[stopped_id]["state"] == "stopped"
    assert not {up_id, lost_id, stopped_id} & set(_workers(client))


def test_a_dead_worker_no_longer_lists_the_tasks_re_run_elsewhere(local: Local) -> None:
    """The registry row keeps what a worker last announced; the listing drops what the tasks
    table no longer places on that worker."""
    client, svc = local
    pipeline = "workers-listing-test"
    alive_id = f"test-{uuid.uuid4().hex[:12]}"
    moved = insert_task(svc, pipeline, status="running", worker_id=f"{alive_id}/slot1")
    finished = insert_task(svc, pipeline, status="done", worker_id=f"{alive_id}/slot0")
    try:
        with (
            fake_worker(svc, worker_id=alive_id, running=(moved,)),
            fake_worker(svc, running=(moved, finished)) as dead_id,
        ):
            age_worker(svc, dead_id, svc.settings.worker_lost_after_s + 5)
            listed = _workers(client)
            assert listed[dead_id]["state"] == "lost"
            assert listed[dead_id]["running"] == []
            assert listed[alive_id]["running"] == [moved]
    finally:
        delete_pipeline_tasks(svc, pipeline)


def test_a_task_may_name_the_queue_of_a_worker_pool(local: Local) -> None:
    client, svc = local
    with fake_worker(svc, queues=("site-b",)):
        r = client.post("/create_task", json={"pipeline": "checksum", "queue": "site-b"})
        assert r.status_code == 201, r.text
        assert client.get(f"/query_task/{r.json()['task_id']}").json()["queue"] == "site-b"
        r = client.post("/create_task", json={"pipeline": "checksum", "queue": "nobody-listens"})
        assert r.status_code == 422, r.text
        assert "no live worker takes tasks from queue 'nobody-listens'" in r.json()["detail"]
        r = client.post("/create_task", json={"pipeline": "checksum", "queue": "Bad Name"})
        assert r.status_code == 422, r.text
        assert "queue 'Bad Name'" in r.json()["detail"]


def test_workers_needs_the_key(local: Local) -> None:
    client, svc = local
    if not svc.settings.api_key:
        pytest.skip("the stack runs without an API key")
    r = client.get("/workers", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def _create(client: TestClient[Any], **resources: Any) -> Any:
    return client.post(
        "/create_task", json={"pipeline": "checksum", "params": {}, "resources": resources}
    )


def test_overrides_are_stored_and_shown_with_the_queue(local: Local) -> None:
    client, svc = local
    with fake_worker(svc, queues=("default", "gpu"), cpus=4, memory_bytes=8 * GiB, gpus=1):
        r = _create(client, cpus=0.5, memory="1GiB", timeout_s=120)
        assert r.status_code == 201, r.text
        task = client.get(f"/query_task/{r.json()['task_id']}").json()
        assert task["queue"] == "default"
        assert task["resources"]["cpus"] == 0.5
        assert task["resources"]["memory_bytes"] == GiB
        assert task["resources"]["timeout_s"] == 120
        assert task["resources"]["gpus"] == 0

        r = _create(client, gpus=1, memory_bytes=2 * GiB)
        assert r.status_code == 201, r.text
        task = client.get(f"/tasks/{r.json()['task_id']}").json()
        assert task["queue"] == "gpu" and task["resources"]["gpus"] == 1


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpus": 0}, "resources.cpus"),
        ({"cpus": 1000}, "resources.cpus"),
        ({"memory": "lots"}, "resources.memory"),
        ({"memory_bytes": 2 * 1024 * GiB}, "resources.memory_bytes"),
        ({"gpus": 17}, "resources.gpus"),
        ({"timeout_s": 0}, "resources.timeout_s"),
        ({"timeout_s": 8 * 24 * 3600}, "resources.timeout_s"),
    ],
)
def test_out_of_bounds_overrides_are_422_naming_the_field(
    local: Local, resources: dict[str, Any], field: str
) -> None:
    client, _ = local
    r = _create(client, **resources)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


@pytest.mark.parametrize(
    ("resources", "where"), [({"cpus": "two"}, "resources.cpus"), ({"disk": 1}, "disk")]
)
def test_mistyped_or_unknown_fields_are_400_naming_them(
    local: Local, resources: dict[str, Any], where: str
) -> None:
    client, _ = local
    r = _create(client, **resources)
    assert r.status_code == 400, r.text
    assert where in r.text


def test_a_task_no_live_worker_could_hold_is_refused_with_the_shortfall(local: Local) -> None:
    client, svc = local
    with fake_worker(svc, queues=("default", "gpu"), cpus=2, memory_bytes=4 * GiB, gpus=0):
        # No real host here has 250 CPUs or 1000 GiB: whatever else is registered, this fails.
        r = _create(client, cpus=250, memory="1000GiB")
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "no registered worker can ever hold this task" in detail
        assert "250 CPUs (largest worker:" in detail
        assert "1e+03 GiB memory (largest worker:" in detail or "1000 GiB" in detail

        r = _create(client, gpus=4)
        assert r.status_code == 422, r.text
        assert "4 GPU(s) (most on one worker:" in r.json()["detail"]


def test_lost_workers_do_not_make_a_task_placeable(local: Local) -> None:
    client, svc = local
    with fake_worker(svc, cpus=2) as small, fake_worker(svc, cpus=255) as big:
        assert _create(client, cpus=250).status_code == 201  # the big one is live
        age_worker(svc, big, svc.settings.worker_lost_after_s + 5)
        r = _create(client, cpus=250)
        assert r.status_code == 422 and "250 CPUs" in r.json()["detail"], r.text
        svc.workers.stopped(big)
        assert _create(client, cpus=250).status_code == 422
        assert small


def test_query_task_documents_stats(local: Local) -> None:
    client, _ = local
    schema = client.get("/schema/openapi.json").json()
    stats = schema["components"]["schemas"]["TaskStatsRead"]["properties"]
    assert set(stats) == {"wall_s", "cpu_seconds", "peak_memory_bytes"}
    # create_task's body is one variant per pipeline (api/openapi.py): each takes resources.
    schemas = schema["components"]["schemas"]
    refs = schemas["TaskCreate"]["discriminator"]["mapping"].values()
    variants = [schemas[ref.rsplit("/", 1)[1]] for ref in refs]
    assert variants and all("resources" in v["properties"] for v in variants)
