"""GET /metrics and GET /tasks/{id}/logs over the real PostgreSQL, Redis and S3."""

from __future__ import annotations

import dataclasses
import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from litestar.testing import TestClient
from minio import Minio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from orchestrator.adapters.logstream import LogStream
from orchestrator.app import create_app
from orchestrator.bootstrap import Services
from orchestrator.domain.histogram import (
    CREATE_TO_DONE,
    DURATION_BUCKETS_S,
    LATENCY_BUCKETS_S,
    TASK_DURATION,
    UPLOAD_TO_START,
    le_label,
)
from orchestrator.domain.status import TaskStatus
from orchestrator.service.logs import FOLLOWER_THREADS
from tests.hookdata import hook_request
from tests.raw import raw_redis

from .fleet import delete_pipeline_tasks, fake_worker, serve

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


def test_histograms_bucket_what_workers_observed(local: Local, timed_pipeline: str) -> None:
    client, svc = local
    runs = {"done": [0.5, 3.0, 45.0], "error": [4000.0]}
    waits = [0.05, 0.3, 7.0, 7.0, 0.0]
    for status, durations in runs.items():
        for d in durations:
            svc.histograms.observe(TASK_DURATION, (timed_pipeline, status), d)
    for w in waits:
        svc.histograms.observe(UPLOAD_TO_START, (timed_pipeline,), w)
    # A clock step made one difference negative: it counts as 0.
    svc.histograms.observe(CREATE_TO_DONE, (timed_pipeline,), -0.2)
    families = scrape(client)

    name = TASK_DURATION.name
    duration = families[name]
    for status, durations in runs.items():
        labels = {"pipeline": timed_pipeline, "status": status}
        assert value(duration, f"{name}_count", **labels) == len(durations)
        assert value(duration, f"{name}_sum", **labels) == pytest.approx(sum(durations))
        for b in DURATION_BUCKETS_S:
            got = value(duration, f"{name}_bucket", le=le_label(b), **labels)
            assert got == sum(1 for d in durations if d <= b), (status, b)
        assert value(duration, f"{name}_bucket", le="+Inf", **labels) == len(durations)

    name = UPLOAD_TO_START.name
    latency = families[name]
    assert value(latency, f"{name}_count", pipeline=timed_pipeline) == len(waits)
    assert value(latency, f"{name}_sum", pipeline=timed_pipeline) == pytest.approx(sum(waits))
    for b in LATENCY_BUCKETS_S:
        got = value(latency, f"{name}_bucket", le=le_label(b), pipeline=timed_pipeline)
        assert got == sum(1 for w in waits if w <= b), b

    name = CREATE_TO_DONE.name
    first = le_label(DURATION_BUCKETS_S[0])
    assert value(families[name], f"{name}_bucket", le=first, pipeline=timed_pipeline) == 1
    assert value(families[name], f"{name}_sum", pipeline=timed_pipeline) == 0


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
    # ...and timed: one more observation in the hook's histogram, in its +Inf bucket too.
    timed = "orchestrator_hook_duration_seconds"

    def observed(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families.get(timed, [])
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    for name, labels in ((f"{timed}_count", {}), (f"{timed}_bucket", {"le": "+Inf"})):
        assert observed(after, name, hook="pre-create", **labels) == (
            observed(before, name, hook="pre-create", **labels) + 1
        )
    assert observed(after, f"{timed}_sum", hook="pre-create") > observed(
        before, f"{timed}_sum", hook="pre-create"
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


class WatchedLogs:
    """The real log stream, watched: it records every read (task id, ``block_ms``), and while
    held, a blocking read (a follower waiting for new lines) waits for ``release`` before it
    goes to Redis, so that the follower keeps its thread for as long as the test wants."""

    def __init__(self, inner: LogStream) -> None:
        self._inner = inner
        self._open = threading.Event()
        self._open.set()
        self._changed = threading.Condition()
        self.reads: list[tuple[str, int | None]] = []
        self.held = 0  # blocking reads waiting for release now

    def append(self, task_id: str, lines: list[str]) -> None:
        self._inner.append(task_id, lines)

    def close(self, task_id: str) -> None:
        self._inner.close(task_id)

    def drop(self, task_id: str) -> None:
        self._inner.drop(task_id)

    def read(
        self, task_id: str, after: str = "0-0", block_ms: int | None = None, count: int = 1000
    ) -> tuple[list[tuple[str, str]], bool]:
        with self._changed:
            self.reads.append((task_id, block_ms))
        if block_ms is not None and not self._open.is_set():
            with self._changed:
                self.held += 1
                self._changed.notify_all()
            self._open.wait()
            with self._changed:
                self.held -= 1
        return self._inner.read(task_id, after, block_ms=block_ms, count=count)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait_held(self, n: int, timeout_s: float) -> bool:
        """Until ``n`` followers wait in a held read; False after ``timeout_s`` (a safety net)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.held >= n, timeout_s)


@dataclass(frozen=True)
class Served:
    url: str
    logs: WatchedLogs


@pytest.fixture
def served(local: Local) -> Iterator[Served]:
    """The in-process app over real HTTP (chunked responses arrive as they are written), its
    log stream watched."""
    _, svc = local
    logs = WatchedLogs(svc.logs)
    try:
        with serve(create_app(dataclasses.replace(svc, logs=logs), reconcile=False)) as url:
            yield Served(url, logs)
    finally:
        logs.release()


def test_logs_of_a_task_with_no_output_yet_end_at_once(
    local: Local, task_id: str, served: Served
) -> None:
    _, svc = local
    r = requests.get(
        f"{served.url}/tasks/{task_id}/logs",
        params={"follow": "false"},
        headers={"X-API-Key": svc.settings.api_key},
        timeout=30,
    )
    assert r.status_code == 200 and r.text == ""
    # At once: the task is still waiting for its inputs, yet not one read waited for lines.
    blocks = [block for read_for, block in served.logs.reads if read_for == task_id]
    assert blocks and all(block is None for block in blocks), blocks


def test_logs_stream_live_until_the_run_is_closed(
    local: Local, task_id: str, served: Served
) -> None:
    """Each line is written only once the follower has received the previous ones: the
    stream can pass only if it delivers lines while it is still open."""
    _, svc = local
    svc.logs.append(task_id, ["before"])
    with requests.get(
        f"{served.url}/tasks/{task_id}/logs",
        headers={"X-API-Key": svc.settings.api_key},
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        lines = r.iter_lines(decode_unicode=True)
        assert next(lines) == "before"
        svc.logs.append(task_id, ["during 1", "during 2"])
        assert [next(lines), next(lines)] == ["during 1", "during 2"]
        svc.logs.append(task_id, ["last"])
        # As the worker ends a run: the end marker, the terminal state, the marker again. The
        # stream ends then (a follower that read the first marker waits for the state).
        svc.logs.close(task_id)
        assert svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
        svc.logs.close(task_id)
        assert list(lines) == ["last"]


def test_logs_follow_ends_when_the_task_is_over_without_end_marker(
    local: Local, task_id: str, served: Served
) -> None:
    _, svc = local
    svc.logs.append(task_id, ["only line"])
    with requests.get(
        f"{served.url}/tasks/{task_id}/logs",
        headers={"X-API-Key": svc.settings.api_key},
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines(decode_unicode=True)
        assert next(lines) == "only line"  # following now
        assert svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
        # The stream ends by itself (a client timeout would raise instead)...
        assert list(lines) == []
    # ...with no end marker written: the terminal state ended it.
    _, ended = svc.logs.read(task_id)
    assert not ended


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
    local: Local, task_id: str, served: Served
) -> None:
    """More followers than the API has handler threads: they wait in threads of their own, and
    query_task answers while every one of them holds its thread (none is let go for it)."""
    _, svc = local
    headers = {"X-API-Key": svc.settings.api_key}
    # A run that has begun: a waiting task with nothing logged is refused to followers (409).
    svc.logs.append(task_id, ["started"])
    count = svc.settings.api_threads + 5
    holding = min(count, FOLLOWER_THREADS)
    followers = []
    served.logs.hold()
    try:
        for _ in range(count):
            r = requests.get(
                f"{served.url}/tasks/{task_id}/logs", headers=headers, stream=True, timeout=30
            )
            assert r.status_code == 200
            followers.append(r)
        assert served.logs.wait_held(holding, timeout_s=30), (
            f"{served.logs.held} of {holding} followers waiting for lines"
        )
        q = requests.get(f"{served.url}/query_task/{task_id}", headers=headers, timeout=30)
        assert q.status_code == 200
        assert served.logs.held == holding
    finally:
        served.logs.release()
        for r in followers:
            r.close()
    # The followers' reads stop with their clients: a new line is still served to a new one.
    svc.logs.append(task_id, ["after"])
    svc.logs.close(task_id)  # as the worker ends a run: marker, terminal state, marker
    assert svc.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
    svc.logs.close(task_id)
    r = requests.get(f"{served.url}/tasks/{task_id}/logs", headers=headers, timeout=30)
    assert r.text == "started\nafter\n"
