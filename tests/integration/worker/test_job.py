"""``run_task`` end to end on real PostgreSQL, Redis, S3 (the test stack) and dockerd.

Tasks here are created straight in the repository on a queue no worker listens on and run by
calling the job directly, so the stack's own worker never races these tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.status import TaskStatus
from orchestrator.settings import Settings
from pipelines.catalog import FixedCatalog, shipped
from pipelines.checksum.spec import SPEC
from pipelines.spec import MiB
from worker import bootstrap
from worker.bootstrap import WorkerContext
from worker.executors.base import RunOutcome, RunRequest
from worker.executors.docker import LABEL_TASK, DockerExecutor
from worker.hardware import Hardware
from worker.job import run_task

from . import tasks

QUEUE = "test-worker-job-unconsumed"


class CountingExecutor:
    def __init__(self, inner: DockerExecutor) -> None:
        self.inner = inner
        self.runs = 0
        self._lock = threading.Lock()

    def has_image(self, image: str) -> bool:
        return self.inner.has_image(image)

    def images(self, wanted: Iterable[str]) -> list[str] | None:
        return self.inner.images(wanted)

    def run(self, request: RunRequest) -> RunOutcome:
        with self._lock:
            self.runs += 1
        return self.inner.run(request)


@pytest.fixture(scope="module")
def services(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    settings = Settings(**{k.lower(): v for k, v in stack.env.items()})
    settings = settings.model_copy(
        update={"worker_work_dir": str(tmp_path_factory.mktemp("work")), "heartbeat_interval_s": 1}
    )
    services = build_services(settings)
    for bucket in (settings.uploads_bucket, settings.results_bucket):
        services.storage.ensure_bucket(bucket)
    yield services
    services.close()


@pytest.fixture
def executor(docker_client: docker.DockerClient, checksum_image: str) -> CountingExecutor:
    return CountingExecutor(DockerExecutor(docker_client, gpu_count=0))


@pytest.fixture
def context(services: Services, executor: CountingExecutor) -> Iterator[WorkerContext]:
    ctx = WorkerContext(
        services=services,
        executor=executor,
        catalog=FixedCatalog(shipped()),
        worker_id=f"test-worker:{uuid.uuid4().hex[:8]}",
        hardware=Hardware(cpus=1, memory_bytes=1, disk_free_bytes=1),
        pid=os.getpid(),
    )
    bootstrap.install(ctx)
    yield ctx
    bootstrap._context = None


def create_pending(
    services: Services,
    tmp_path: Path,
    files: dict[str, bytes],
    *,
    params: dict[str, Any] | None = None,
    memory_mib: int | None = None,
    missing: tuple[str, ...] = (),
) -> str:
    resources = SPEC.resources
    if memory_mib is not None:
        resources = replace(resources, memory_bytes=memory_mib * MiB)
    return tasks.create_pending(
        services,
        tmp_path,
        files,
        queue=QUEUE,
        params=params,
        resources=resources,
        missing=missing,
    )


def fetch(services: Services, key: str, tmp_path: Path) -> bytes:
    target = tmp_path / f"dl-{uuid.uuid4().hex}"
    services.storage.download(services.settings.results_bucket, key, str(target))
    return target.read_bytes()


get = tasks.get


def test_done_with_results_manifest_and_stats(
    services: Services,
    context: WorkerContext,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    first, second = os.urandom(3 * 1024 * 1024 + 5), b"second file\n"
    task_id = create_pending(services, tmp_path, {"first": first, "second": second})
    run_task(task_id)

    task = get(services, task_id)
    assert task.status is TaskStatus.DONE, task.reason
    assert task.reason is None and task.worker_id == context.worker_id and task.attempts == 1
    results = {r.name: r for r in task.results or []}
    assert sorted(results) == [
        "checksums.json",
        "logs.txt",
        "manifest.json",
        "provenance.json",
        "ro-crate-metadata.json",
    ]
    for r in results.values():
        body = fetch(services, r.key, tmp_path)
        assert r.key == f"{task_id}/{r.name}"
        assert (r.bytes, r.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    checksums = json.loads(fetch(services, results["checksums.json"].key, tmp_path))
    assert checksums == {
        "first": {"sha256": hashlib.sha256(first).hexdigest(), "bytes": len(first)},
        "second": {"sha256": hashlib.sha256(second).hexdigest(), "bytes": len(second)},
    }
    manifest = json.loads(fetch(services, f"{task_id}/manifest.json", tmp_path))
    assert {f["name"] for f in manifest["files"]} == {
        "checksums.json",
        "logs.txt",
        "provenance.json",
        "ro-crate-metadata.json",
    }
    assert manifest["provenance"] == "provenance.json"
    # Provenance: the inputs' sha256 are those of the bytes uploaded, the image the one run.
    record = json.loads(fetch(services, results["provenance.json"].key, tmp_path))
    assert {i["slot"]: (i["bytes"], i["sha256"]) for i in record["inputs"]} == {
        "first": (len(first), hashlib.sha256(first).hexdigest()),
        "second": (len(second), hashlib.sha256(second).hexdigest()),
    }
    assert record["image"] == {
        "reference": SPEC.image,
        "id": docker_client.images.get(SPEC.image).id,
    }
    assert record["pipeline"] == {
        "name": "checksum",
        "version": SPEC.version,
        "file": SPEC.source,
        "sha256": SPEC.digest,
    }
    assert record["command"][:3] == ["python3", "-m", "pipelines.checksum"]
    assert "/in/first" in " ".join(record["command"])
    assert record["worker"]["id"] == context.worker_id
    assert record["resources"]["memory_bytes"] == SPEC.resources.memory_bytes
    assert record["outcome"] == {"status": "done", "exit_code": 0, "reason": None}
    assert record["started_at"] <= record["ended_at"]
    assert task.stats is not None and task.stats.wall_s > 0
    assert list(Path(services.settings.worker_work_dir).iterdir()) == []  # run dir cleaned
    lines, ended = services.logs.read(task_id)
    assert ended and any(line.startswith("wrote ") for _, line in lines)  # live log, closed


def test_unreadable_input_is_an_error_naming_the_slot(
    services: Services, context: WorkerContext, executor: CountingExecutor, tmp_path: Path
) -> None:
    task_id = create_pending(
        services, tmp_path, {"first": b"a", "second": b"b"}, missing=("second",)
    )
    run_task(task_id)
    task = get(services, task_id)
    assert task.status is TaskStatus.ERROR
    assert task.reason is not None
    assert task.reason.startswith("input 'second' could not be read: ")
    assert executor.runs == 0
    assert services.logs.read(task_id) == ([], True)  # closed even though nothing ran


def test_oom_through_the_job(services: Services, context: WorkerContext, tmp_path: Path) -> None:
    task_id = create_pending(
        services,
        tmp_path,
        {"first": b"a", "second": b"b"},
        params={"allocate_mb": 300},
        memory_mib=64,
    )
    run_task(task_id)
    task = get(services, task_id)
    assert (task.status, task.reason) == (TaskStatus.ERROR, "out of memory: limit 64 MiB")
    # A failed run keeps its log and its provenance, not its outputs.
    assert [r.name for r in task.results or []] == [
        "logs.txt",
        "provenance.json",
        "ro-crate-metadata.json",
        "manifest.json",
    ]


def test_kill_request_stops_a_running_task(
    services: Services,
    context: WorkerContext,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    task_id = create_pending(
        services, tmp_path, {"first": b"a", "second": b"b"}, params={"sleep_s": 120}
    )
    runner = threading.Thread(target=run_task, args=(task_id,))
    runner.start()
    label = {"label": f"{LABEL_TASK}={task_id}"}
    deadline = time.monotonic() + 30
    while not docker_client.containers.list(filters=label):
        assert time.monotonic() < deadline, "container never started"
        time.sleep(0.2)
    assert services.tasks.request_kill(task_id)
    runner.join(timeout=30)
    assert not runner.is_alive(), "the job still runs 30 s after the kill request"
    task = get(services, task_id)
    assert (task.status, task.reason) == (TaskStatus.KILLED, "killed on request")
    # The kill stopped the container, rather than the task ending once its 120-s sleep was
    # over: the engine's run time (StartedAt to FinishedAt) is short of it.
    assert task.stats is not None and task.stats.wall_s < 120, task.stats
    assert docker_client.containers.list(all=True, filters=label) == []
    assert "logs.txt" in [r.name for r in task.results or []]


def test_two_jobs_for_one_task_run_it_once(
    services: Services, context: WorkerContext, executor: CountingExecutor, tmp_path: Path
) -> None:
    task_id = create_pending(services, tmp_path, {"first": b"a", "second": b"b"})
    barrier = threading.Barrier(2)

    def job() -> None:
        barrier.wait()
        run_task(task_id)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert executor.runs == 1
    task = get(services, task_id)
    assert task.status is TaskStatus.DONE and task.attempts == 1


def test_job_for_a_finished_task_changes_nothing(
    services: Services, context: WorkerContext, executor: CountingExecutor, tmp_path: Path
) -> None:
    task_id = create_pending(services, tmp_path, {"first": b"a", "second": b"b"})
    assert services.tasks.transition(task_id, TaskStatus.KILLED, reason="killed on request")
    run_task(task_id)
    assert executor.runs == 0
    assert get(services, task_id).status is TaskStatus.KILLED
