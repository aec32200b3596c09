"""GET /metrics and GET /tasks/{id}/logs over the real PostgreSQL, Redis and S3."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from litestar.testing import TestClient
from minio import Minio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from orchestrator.app import create_app
from orchestrator.bootstrap import Services
from orchestrator.domain.histogram import DURATION_BUCKETS_S, LATENCY_BUCKETS_S, le_label
from orchestrator.domain.status import TaskStatus
from tests.hookdata import hook_request
from tests.raw import raw_redis

from .fleet import delete_pipeline_tasks, fake_worker, insert_task, serve

Local = tuple[TestClient[Any], Services]
T0 = datetime(2021, 6, 1, tzinfo=UTC)


def scrape(client: TestClient[Any], **headers: str) -> dict[str, list[Sample]]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    hits = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(hits) == 1, (name, labels, samples[:20])
    return hits[0]


# --- /metrics --------------------------------------------------------------------------------
def test_metrics_show_tasks_by_state_queues_and_workers(local: Local) -> None:
    client, svc = local
    with fake_worker(svc) as lost:
        from .fleet import age_worker

        age_worker(svc, lost, svc.settings.worker_lost_after_s + 5)
        families = scrape(client)
    for state in TaskStatus:
        assert value(families["orchestrator_tasks"], "orchestrator_tasks", state=state.value) >= 0
    waiting = value(families["orchestrator_tasks"], "orchestrator_tasks", state="waiting")
    assert waiting == len(svc.tasks.by_status([TaskStatus.WAITING], limit=10**6)) or waiting > 0
    for q in ("default", "gpu"):
        assert value(families["orchestrator_queue_depth"], "orchestrator_queue_depth", queue=q) >= 0
    assert value(families["orchestrator_workers"], "orchestrator_workers", state="lost") >= 1
    for source in ("postgres", "redis"):
        up = families["orchestrator_scrape_source_up"]
        assert value(up, "orchestrator_scrape_source_up", source=source) == 1


def test_metrics_auth(local: Local) -> None:
    client, svc = local
    key = svc.settings.api_key
    if not key:
        pytest.skip("the stack runs without an API key")
    assert client.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
    bare = TestClient(client.app)
    with bare:
        assert bare.get("/metrics").status_code == 401
        assert bare.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert bare.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.fixture
def timed_pipeline(local: Local) -> Iterator[str]:
    name = f"metrics-{uuid.uuid4().hex[:10]}"
    yield name
    delete_pipeline_tasks(local[1], name)


def test_histograms_bucket_the_database_times(local: Local, timed_pipeline: str) -> None:
    client, svc = local
    runs = {"done": [0.5, 3.0, 45.0], "error": [4000.0]}
    waits = [0.05, 0.3, 7.0, 7.0]
    i = 0
    for status, durations in runs.items():
        for d in durations:
            queued = T0 + timedelta(hours=i)
            started = queued + timedelta(seconds=waits[i])
            insert_task(
                svc,
                timed_pipeline,
                status=status,
                queued_at=queued,
                started_at=started,
                finished_at=started + timedelta(seconds=d),
            )
            i += 1
    insert_task(svc, timed_pipeline, status="running", queued_at=T0, started_at=T0)
    families = scrape(client)

    duration = families["orchestrator_task_duration_seconds"]
    name = "orchestrator_task_duration_seconds"
    for status, durations in runs.items():
        labels = {"pipeline": timed_pipeline, "status": status}
        assert value(duration, f"{name}_count", **labels) == len(durations)
        assert value(duration, f"{name}_sum", **labels) == pytest.approx(sum(durations))
        for b in DURATION_BUCKETS_S:
            got = value(duration, f"{name}_bucket", le=le_label(b), **labels)
            assert got == sum(1 for d in durations if d <= b), (status, b)
        assert value(duration, f"{name}_bucket", le="+Inf", **labels) == len(durations)

    latency = families["orchestrator_upload_to_start_seconds"]
    name = "orchestrator_upload_to_start_seconds"
    # The running task counts too: it has started (after a wait of 0 s).
    all_waits = [*waits, 0.0]
    assert value(latency, f"{name}_count", pipeline=timed_pipeline) == len(all_waits)
    assert value(latency, f"{name}_sum", pipeline=timed_pipeline) == pytest.approx(sum(all_waits))
    for b in LATENCY_BUCKETS_S:
        got = value(latency, f"{name}_bucket", le=le_label(b), pipeline=timed_pipeline)
        assert got == sum(1 for w in all_waits if w <= b), b


def test_hook_and_request_counters(local: Local) -> None:
    client, svc = local
    before = scrape(client)

    def count(families: dict[str, list[Sample]], family: str, **labels: str) -> float:
        hits = [
            s.value
            for s in families.get(family, [])
            if s.name == f"{family}_total" and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return sum(hits)

    # A pre-create without an upload capability: answered (rejected), not failed.
    r = client.post(
        f"http://testserver.local:{svc.settings.hook_port}/tusd_hook",
        auth=("tusd", svc.settings.hook_secret),
        json=hook_request("pre-create", uri="/files/"),
    )
    assert r.status_code == 200 and r.json()["RejectUpload"] is True
    client.get("/workers")
    after = scrape(client)
    calls = "orchestrator_hook_calls"
    assert count(after, calls, hook="pre-create") == count(before, calls, hook="pre-create") + 1
    rejections = "orchestrator_hook_rejections"
    assert count(after, rejections, hook="pre-create") == (
        count(before, rejections, hook="pre-create") + 1
    )
    assert count(after, "orchestrator_hook_failures", hook="pre-create") == count(
        before, "orchestrator_hook_failures", hook="pre-create"
    )
    requests_ = "orchestrator_http_requests"
    assert count(after, requests_, handler="list_workers", status_code="200") >= 1
    assert count(after, requests_, handler="tusd_hook", method="POST") >= 1


# --- /tasks/{id}/logs ------------------------------------------------------------------------
@pytest.fixture
def task_id(local: Local) -> Iterator[str]:
    client, svc = local
    r = client.post("/create_task", json={"pipeline": "checksum"})
    assert r.status_code == 201, r.text
    yield r.json()["task_id"]
    raw_redis(svc).delete(f"task-logs:{r.json()['task_id']}")


def test_logs_of_an_unknown_task_are_404(local: Local) -> None:
    client, _ = local
    assert client.get(f"/tasks/{uuid.uuid4()}/logs").status_code == 404


def test_logs_without_follow_return_what_is_there(local: Local, task_id: str) -> None:
    client, svc = local
    svc.logs.append(task_id, ["first line", "second line\n"])
    r = client.get(f"/tasks/{task_id}/logs", params={"follow": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["x-log-source"] == "live"
    assert r.text == "first line\nsecond line\n"


def test_following_the_log_of_a_task_waiting_for_inputs_is_409(local: Local, task_id: str) -> None:
    client, _ = local
    r = client.get(f"/tasks/{task_id}/logs")
    assert r.status_code == 409, r.text
    assert r.json()["status"] == "waiting"
    assert "waiting for its inputs" in r.json()["detail"]


def test_logs_of_a_task_with_no_output_yet_end_at_once(local: Local, task_id: str) -> None:
    client, _ = local
    t0 = time.monotonic()
    r = client.get(f"/tasks/{task_id}/logs", params={"follow": "false"})
    assert r.status_code == 200 and r.text == ""
    assert time.monotonic() - t0 < 5


@pytest.fixture
def served(local: Local) -> Iterator[str]:
    """The in-process app over real HTTP: chunked responses arrive as they are written."""
    _, svc = local
    with serve(create_app(svc, reconcile=False)) as url:
        yield url


def test_logs_stream_live_until_the_stream_is_closed(
    local: Local, task_id: str, served: str
) -> None:
    _, svc = local
    svc.logs.append(task_id, ["before"])
    received: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def writer() -> None:
        time.sleep(1.0)
        svc.logs.append(task_id, ["during 1", "during 2"])
        time.sleep(1.5)
        svc.logs.append(task_id, ["last"])
        svc.logs.close(task_id)

    thread = threading.Thread(target=writer)
    thread.start()
    with requests.get(
        f"{served}/tasks/{task_id}/logs",
        headers={"X-API-Key": svc.settings.api_key},
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        for line in r.iter_lines(decode_unicode=True):
            received.append((time.monotonic() - t0, line))
    thread.join()
    ended = time.monotonic() - t0
    assert [line for _, line in received] == ["before", "during 1", "during 2", "last"]
    # Live: the first lines arrived before the writer had finished (at about 2.5 s).
    assert received[0][0] < 1.0 and received[1][0] < 2.4
    assert ended < 6, f"the stream ended {ended:.1f} s after it started"


def test_logs_follow_ends_when_the_task_is_over_without_end_marker(
    local: Local, task_id: str, served: str
) -> None:
    _, svc = local
    svc.logs.append(task_id, ["only line"])

    def killer() -> None:
        time.sleep(1.0)
        svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")

    thread = threading.Thread(target=killer)
    thread.start()
    t0 = time.monotonic()
    r = requests.get(
        f"{served}/tasks/{task_id}/logs",
        headers={"X-API-Key": svc.settings.api_key},
        timeout=30,
    )
    thread.join()
    assert r.status_code == 200 and r.text == "only line\n"
    assert time.monotonic() - t0 < 10


def test_logs_of_a_finished_task_come_from_storage(local: Local, task_id: str, s3: Minio) -> None:
    client, svc = local
    content = b"stored line 1\nstored line 2\n"
    key = f"{task_id}/logs.txt"
    s3.put_object(svc.settings.results_bucket, key, io.BytesIO(content), len(content))
    try:
        assert svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
        r = client.get(f"/tasks/{task_id}/logs", follow_redirects=False)
        assert r.status_code == 307, r.text
        assert r.headers["x-log-source"] == "stored"
        stored = requests.get(r.headers["location"], timeout=30)
        assert stored.status_code == 200 and stored.content == content
    finally:
        s3.remove_object(svc.settings.results_bucket, key)


def test_logs_of_a_finished_task_with_nothing_stored_are_empty(local: Local, task_id: str) -> None:
    client, svc = local
    assert svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
    r = client.get(f"/tasks/{task_id}/logs")
    assert r.status_code == 200 and r.text == ""


def test_many_followers_leave_the_other_endpoints_answering(
    local: Local, task_id: str, served: str
) -> None:
    """More followers than the default thread pool has threads (40): they wait in their own
    pool, and query_task still answers at once."""
    _, svc = local
    headers = {"X-API-Key": svc.settings.api_key}
    # A run that has begun: a waiting task with nothing logged is refused to followers (409).
    svc.logs.append(task_id, ["started"])
    followers = []
    try:
        for _ in range(45):
            r = requests.get(
                f"{served}/tasks/{task_id}/logs", headers=headers, stream=True, timeout=30
            )
            assert r.status_code == 200
            followers.append(r)
        time.sleep(1.5)
        t0 = time.monotonic()
        q = requests.get(f"{served}/query_task/{task_id}", headers=headers, timeout=30)
        assert q.status_code == 200
        assert time.monotonic() - t0 < 3
    finally:
        for r in followers:
            r.close()
    # The followers' reads stop with their clients: a new line is still served to a new one.
    svc.logs.append(task_id, ["after"])
    svc.logs.close(task_id)
    r = requests.get(f"{served}/tasks/{task_id}/logs", headers=headers, timeout=30)
    assert r.text == "started\nafter\n"
