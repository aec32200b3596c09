"""``python -m worker`` as a fleet member, on the real stack and dockerd: announcements, slots
with capacity-aware admission, live logs, stats, graceful stop and sudden death.

Each worker here is a real subprocess listening on a queue of its own (the stack's own worker
listens on ``default`` only), and tasks are created in the repository and enqueued on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest

from orchestrator.bootstrap import Services, build_services
from orchestrator.db.workers import WorkerView
from orchestrator.domain.priority import HIGH, NORMAL
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.service.tasks import enqueue
from orchestrator.settings import Settings
from pipelines.checksum.spec import SPEC
from pipelines.spec import MiB
from worker.admission import HOST_RESERVE_BYTES
from worker.executors.docker import LABEL_TASK

from . import tasks

ROOT = Path(__file__).resolve().parents[3]
ONE_CPU = replace(SPEC.resources, cpus=1.0, memory_bytes=128 * MiB, timeout_s=120)
FILES = {"first": b"first\n", "second": b"second\n"}


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    settings = Settings(**{k.lower(): v for k, v in stack.env.items()})
    services = build_services(settings)
    for bucket in (settings.uploads_bucket, settings.results_bucket):
        services.storage.ensure_bucket(bucket)
    yield services
    services.close()


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    host: str
    queue: str
    log: Path

    @property
    def worker_id(self) -> str:
        return f"{self.host}:{self.proc.pid}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


StartWorker = Callable[..., WorkerProc]


@pytest.fixture(scope="module")
def start_worker(
    stack: Any, checksum_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartWorker]:
    started: list[WorkerProc] = []

    def start(**settings: str) -> WorkerProc:
        name = uuid.uuid4().hex[:8]
        tmp = tmp_path_factory.mktemp(f"worker-{name}")
        host = f"fleet-test-{name}"
        queue = f"test-fleet-{name}"
        env = {
            **os.environ,
            **stack.env,
            "WORKER_HOST": host,
            "WORKER_QUEUES": queue,
            "WORKER_WORK_DIR": str(tmp / "work"),
            "WORKER_ANNOUNCE_INTERVAL_S": "1",
            "HEARTBEAT_INTERVAL_S": "1",
            **{k.upper(): v for k, v in settings.items()},
        }
        (tmp / "work").mkdir()
        log = tmp / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        w = WorkerProc(proc, host, queue, log)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
            w.proc.send_signal(signal.SIGTERM)  # cold: do not wait for tasks
            try:
                w.proc.wait(30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


def wait_for(what: str, check: Callable[[], Any], timeout: float, w: WorkerProc) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert w.proc.poll() is None, f"worker exited ({w.proc.returncode}):\n{w.log_text()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{w.log_text()}"
        time.sleep(0.2)


def row(services: Services, w: WorkerProc) -> WorkerView | None:
    return next((v for v in services.workers.all() if v.id == w.worker_id), None)


def submit(services: Services, tmp_path: Path, w: WorkerProc, **kw: Any) -> str:
    task_id = tasks.create_pending(services, tmp_path, FILES, queue=w.queue, **kw)
    services.queue.enqueue(task_id, w.queue, 120)
    return task_id


def finished(services: Services, *task_ids: str) -> list[TaskView] | None:
    views = [tasks.get(services, t) for t in task_ids]
    return views if all(v.status.terminal for v in views) else None


@pytest.fixture(scope="module")
def two_cpu_worker(services: Services, start_worker: StartWorker) -> WorkerProc:
    """Two slots sharing two CPUs: room for two 1-CPU tasks at once."""
    w = start_worker(worker_slots="2", worker_cpus="2")
    wait_for("announcement", lambda: row(services, w), 60, w)
    return w


def test_announcement_describes_the_worker(services: Services, two_cpu_worker: WorkerProc) -> None:
    w = two_cpu_worker
    view = row(services, w)
    assert view is not None
    total = psutil.virtual_memory().total
    assert (view.host, view.queues, view.executor) == (w.host, [w.queue], "docker")
    assert view.state == "up"
    assert view.capacity == {"cpus": 2.0, "memory_bytes": total - HOST_RESERVE_BYTES, "gpus": 0}
    assert view.free == view.capacity and view.running == []
    assert view.hardware["cpus"] == psutil.cpu_count() and view.hardware["gpus"] == []
    assert view.hardware["memory_bytes"] == total
    assert view.hardware["disk_bytes"] >= view.hardware["disk_free_bytes"] > 0
    seen = view.last_seen_at
    wait_for("a fresh announcement", lambda: row(services, w).last_seen_at > seen, 10, w)  # type: ignore[union-attr]


def test_two_tasks_run_at_once_when_they_fit(
    services: Services, two_cpu_worker: WorkerProc, tmp_path: Path
) -> None:
    w = two_cpu_worker
    ids = [
        submit(services, tmp_path, w, params={"sleep_s": 4}, resources=ONE_CPU) for _ in range(2)
    ]
    busiest: list[WorkerView] = []

    def both_running() -> bool:
        view = row(services, w)
        if view is not None and sorted(view.running) == sorted(ids):
            busiest.append(view)
            return True
        return False

    wait_for("both tasks running on the worker", both_running, 60, w)
    assert busiest[0].free["cpus"] == 0.0
    assert busiest[0].free["memory_bytes"] == busiest[0].capacity["memory_bytes"] - 2 * 128 * MiB
    done = wait_for("both tasks done", lambda: finished(services, *ids), 90, w)
    assert [t.status for t in done] == [TaskStatus.DONE] * 2, [t.reason for t in done]
    a, b = done
    assert a.started_at and b.started_at and a.finished_at and b.finished_at
    overlap = (min(a.finished_at, b.finished_at) - max(a.started_at, b.started_at)).total_seconds()
    print(f"concurrent: overlap {overlap:.2f} s")
    assert overlap > 2.0
    assert {t.worker_id for t in done} == {f"{w.worker_id}/slot0", f"{w.worker_id}/slot1"}
    wait_for("the worker idle again", lambda: row(services, w).running == [], 10, w)  # type: ignore[union-attr]


def test_live_log_while_running_then_closed_with_stats(
    services: Services, two_cpu_worker: WorkerProc, tmp_path: Path
) -> None:
    w = two_cpu_worker
    task_id = submit(services, tmp_path, w, params={"tick_s": 6}, resources=ONE_CPU)

    def live_ticks() -> list[str]:
        lines, ended = services.logs.read(task_id)
        ticks = [line for _, line in lines if line.startswith("tick")]
        return ticks if ticks and not ended else []

    first = wait_for("live log lines", live_ticks, 60, w)
    assert tasks.get(services, task_id).status is TaskStatus.RUNNING, first
    (task,) = wait_for("the task done", lambda: finished(services, task_id), 60, w)
    assert task.status is TaskStatus.DONE, task.reason
    lines, ended = services.logs.read(task_id)
    assert ended
    assert [line for _, line in lines if line.startswith("tick")] == [
        f"tick {n}" for n in range(1, 7)
    ]
    stats = task.stats
    print(f"stats: {stats}")
    assert stats is not None
    assert stats.wall_s >= 6
    assert stats.cpu_seconds is not None and stats.cpu_seconds > 0
    assert stats.peak_memory_bytes is not None and stats.peak_memory_bytes > 1 * MiB


@pytest.fixture(scope="module")
def one_cpu_worker(services: Services, start_worker: StartWorker) -> WorkerProc:
    """Two slots but one CPU: two 1-CPU tasks must take turns."""
    w = start_worker(worker_slots="2", worker_cpus="1")
    wait_for("announcement", lambda: row(services, w), 60, w)
    return w


def test_tasks_take_turns_when_the_second_does_not_fit(
    services: Services, one_cpu_worker: WorkerProc, tmp_path: Path
) -> None:
    w = one_cpu_worker
    ids = [
        submit(services, tmp_path, w, params={"sleep_s": 3}, resources=ONE_CPU) for _ in range(2)
    ]
    done = wait_for("both tasks done", lambda: finished(services, *ids), 120, w)
    assert [t.status for t in done] == [TaskStatus.DONE] * 2, [t.reason for t in done]
    first, second = sorted(done, key=lambda t: t.started_at or 0)
    assert first.finished_at and second.started_at
    gap = (second.started_at - first.finished_at).total_seconds()
    print(f"serial: second started {gap:.2f} s after the first finished")
    assert gap >= 0


def test_gpu_task_on_a_worker_without_gpus_is_left_queued(
    services: Services, one_cpu_worker: WorkerProc, tmp_path: Path
) -> None:
    w = one_cpu_worker
    gpu_task = submit(services, tmp_path, w, resources=replace(ONE_CPU, gpus=1))
    wait_for("the refusal in the log", lambda: "larger than this worker" in w.log_text(), 30, w)
    time.sleep(2)
    assert tasks.get(services, gpu_task).status is TaskStatus.PENDING
    assert services.queue.is_live(gpu_task)
    # The queue is not jammed: a task that fits still runs past it.
    normal = submit(services, tmp_path, w, resources=ONE_CPU)
    (task,) = wait_for("the normal task done", lambda: finished(services, normal), 60, w)
    assert task.status is TaskStatus.DONE, task.reason
    # Killed while pending, its job drains as a no-op.
    assert services.tasks.transition(gpu_task, TaskStatus.KILLED, reason="killed on request")
    wait_for("the GPU job gone", lambda: not services.queue.is_live(gpu_task), 30, w)


def test_a_high_priority_task_starts_before_normal_ones_queued_earlier(
    services: Services, start_worker: StartWorker, tmp_path: Path
) -> None:
    """One slot, busy: two normal tasks queue, then a high one; the high one runs next."""
    w = start_worker(worker_slots="1")
    wait_for("announcement", lambda: row(services, w), 60, w)
    # Long enough for the three tasks below to be queued while it runs (they take well
    # under a second).
    blocker = submit(services, tmp_path, w, params={"sleep_s": 8}, resources=ONE_CPU)
    wait_for(
        "the blocker running",
        lambda: tasks.get(services, blocker).status is TaskStatus.RUNNING,
        60,
        w,
    )

    def queued(priority: int) -> str:
        task_id = tasks.create_pending(
            services, tmp_path, FILES, queue=w.queue, resources=ONE_CPU, priority=priority
        )
        enqueue(services, tasks.get(services, task_id))  # onto its priority band's queue
        return task_id

    normal_a, normal_b = queued(NORMAL), queued(NORMAL)
    high = queued(HIGH)
    assert services.queue.depths()[f"{w.queue}.high"] == 1
    done = wait_for(
        "all done", lambda: finished(services, blocker, normal_a, normal_b, high), 120, w
    )
    assert [t.status for t in done] == [TaskStatus.DONE] * 4, [t.reason for t in done]
    order = [t.id for t in sorted(done, key=lambda t: t.started_at or 0)]
    assert order == [blocker, high, normal_a, normal_b]


@pytest.fixture
def small_work_dir(tmp_path: Path) -> Iterator[Path]:
    """A work dir on a file system of known size: a 16 MiB tmpfs."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_tasks_wait_for_room_in_the_work_dir_and_one_larger_than_it_never_runs_there(
    services: Services, start_worker: StartWorker, small_work_dir: Path, tmp_path: Path
) -> None:
    """Two CPUs, two slots, 16 MiB of disk: two tasks of 2 x 5 MiB inputs (+1 MiB margin)
    fit the CPUs together but not the disk, so they take turns; one of 2 x 9 MiB never runs."""
    w = start_worker(worker_slots="2", worker_cpus="2", worker_work_dir=str(small_work_dir))
    wait_for("announcement", lambda: row(services, w), 60, w)
    view = row(services, w)
    assert view is not None and view.hardware["disk_bytes"] == 16 * MiB
    margin = replace(ONE_CPU, disk_margin_bytes=MiB)
    five = {"first": os.urandom(5 * MiB), "second": os.urandom(5 * MiB)}

    def submit_files(files: dict[str, bytes], **kw: Any) -> str:
        task_id = tasks.create_pending(services, tmp_path, files, queue=w.queue, **kw)
        services.queue.enqueue(task_id, w.queue, 120)
        return task_id

    ids = [submit_files(five, params={"sleep_s": 2}, resources=margin) for _ in range(2)]
    done = wait_for("both done", lambda: finished(services, *ids), 120, w)
    assert [t.status for t in done] == [TaskStatus.DONE] * 2, [t.reason for t in done]
    first, second = sorted(done, key=lambda t: t.started_at or 0)
    assert first.finished_at and second.started_at
    assert second.started_at >= first.finished_at, "they ran at once on 16 MiB of disk"

    nine = {"first": b"\0" * (9 * MiB), "second": b"\0" * (9 * MiB)}
    too_big = submit_files(nine, resources=margin)
    wait_for("the refusal in the log", lambda: "disk of its work dir" in w.log_text(), 30, w)
    assert tasks.get(services, too_big).status is TaskStatus.PENDING
    assert services.tasks.transition(too_big, TaskStatus.KILLED, reason="killed on request")


def test_a_disk_that_fills_while_staging_fails_the_task_with_a_reason(
    services: Services, start_worker: StartWorker, small_work_dir: Path, tmp_path: Path
) -> None:
    """Inputs declared small enough to be admitted, but larger in the store: the disk fills
    mid-download and the task ends in error at once, naming the worker and the input."""
    w = start_worker(worker_slots="1", worker_work_dir=str(small_work_dir))
    wait_for("announcement", lambda: row(services, w), 60, w)
    small = replace(ONE_CPU, disk_margin_bytes=MiB)
    task_id = tasks.create_pending(services, tmp_path, FILES, queue=w.queue, resources=small)
    first = tasks.get(services, task_id).input("first")
    assert first is not None and first.bucket and first.key
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (20 * MiB))
    services.storage.upload(first.bucket, first.key, str(big), "application/octet-stream")
    services.queue.enqueue(task_id, w.queue, 120)
    (task,) = wait_for("the task ended", lambda: finished(services, task_id), 60, w)
    assert task.status is TaskStatus.ERROR
    assert task.reason is not None and task.reason.startswith(
        f"no space left on worker {task.worker_id} while staging input 'first' (first.dat, "
    ), task.reason
    # The run dir goes right after the end is written: the space is given back.
    wait_for("the run dir removed", lambda: not list(small_work_dir.iterdir()), 30, w)


def test_graceful_stop_marks_the_worker_stopped(
    services: Services, start_worker: StartWorker
) -> None:
    w = start_worker(worker_slots="2")
    wait_for("announcement", lambda: row(services, w), 60, w)
    slots = psutil.Process(w.proc.pid).children()
    assert len(slots) == 2
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(30) == 0, w.log_text()
    view = row(services, w)
    assert view is not None and view.state == "stopped" and view.running == []
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in slots)


def test_killed_worker_takes_its_slots_and_runs_with_it(
    services: Services,
    start_worker: StartWorker,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    w = start_worker(worker_slots="1")
    wait_for("announcement", lambda: row(services, w), 60, w)
    task_id = submit(services, tmp_path, w, params={"sleep_s": 120}, resources=ONE_CPU)
    label = {"label": f"{LABEL_TASK}={task_id}"}
    wait_for("the container", lambda: docker_client.containers.list(filters=label), 60, w)
    family = psutil.Process(w.proc.pid).children(recursive=True)
    assert family  # the slot, which runs the task in its own process
    w.proc.kill()
    w.proc.wait()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == []
    held = tasks.get(services, task_id)
    assert held.status is TaskStatus.RUNNING and held.worker_id == f"{w.worker_id}/slot0"
    beat = held.heartbeat_at
    time.sleep(3)  # heartbeats were every second
    assert tasks.get(services, task_id).heartbeat_at == beat
    # What the reconciler does once the heartbeat is older than its timeout:
    now = services.workers.now()
    assert services.tasks.release_stale(
        task_id, TaskStatus.ERROR, held_by=held.worker_id, heartbeat_before=now, reason="test"
    )
    for container in docker_client.containers.list(all=True, filters=label):
        container.remove(force=True)
