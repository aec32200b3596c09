from __future__ import annotations

from typing import Any

from orchestrator.db.repository import RunningTask
from orchestrator.domain.capacity import Capacity
from orchestrator.ticker import Ticker
from pipelines.spec import Resources
from worker.announce import build_announcement
from worker.hardware import Gpu, Hardware, discover

from .test_hardware import FakeNvml

GiB = 1024**3


def running(task_id: str, cpus: float, mem_gib: float, gpus: int = 0) -> RunningTask:
    resources = Resources(cpus=cpus, memory_bytes=int(mem_gib * GiB), gpus=gpus, timeout_s=1)
    return RunningTask(id=task_id, worker_id="h:1/slot0", resources=resources)


def announce(hw: Hardware, tasks: list[RunningTask], capacity: Capacity) -> Any:
    return build_announcement(
        worker_id="h:1",
        host="h",
        queues=["default", "gpu"],
        executor="docker",
        hardware=hw,
        capacity=capacity,
        running=tasks,
    )


def test_announcement_with_gpus_and_running_tasks() -> None:
    hw = Hardware(
        cpus=8,
        memory_bytes=32 * GiB,
        disk_free_bytes=10 * GiB,
        disk_bytes=100 * GiB,
        gpus=(Gpu(0, "NVIDIA A10", 24 * GiB, 37), Gpu(1, "NVIDIA A10", 24 * GiB, None)),
    )
    capacity = Capacity(cpus=8, memory_bytes=31 * GiB, gpus=2)
    a = announce(hw, [running("t1", 2, 4, 1), running("t2", 0.5, 1)], capacity)
    assert (a.id, a.host, a.queues, a.executor) == ("h:1", "h", ["default", "gpu"], "docker")
    assert a.hardware == {
        "cpus": 8,
        "memory_bytes": 32 * GiB,
        "disk_bytes": 100 * GiB,
        "disk_free_bytes": 10 * GiB,
        "gpus": [
            {"index": 0, "model": "NVIDIA A10", "memory_bytes": 24 * GiB, "utilisation_pct": 37},
            {"index": 1, "model": "NVIDIA A10", "memory_bytes": 24 * GiB, "utilisation_pct": None},
        ],
    }
    assert a.capacity == {"cpus": 8.0, "memory_bytes": 31 * GiB, "gpus": 2}
    assert a.free == {"cpus": 5.5, "memory_bytes": 26 * GiB, "gpus": 1}
    assert a.running == ["t1", "t2"]


def test_free_never_below_zero() -> None:
    hw = Hardware(cpus=1, memory_bytes=GiB, disk_free_bytes=0)
    a = announce(hw, [running("t", 2, 2)], Capacity(1, GiB // 2, 0))
    assert a.free == {"cpus": 0.0, "memory_bytes": 0, "gpus": 0}


def test_no_gpus_when_nvml_fails_is_a_valid_announcement(tmp_path: Any) -> None:
    hw = discover(str(tmp_path), FakeNvml(["x"], fail_init=True))
    a = announce(hw, [], Capacity(1, GiB, hw.gpu_count))
    assert a.hardware["gpus"] == [] and a.capacity["gpus"] == 0
    assert a.hardware["disk_bytes"] >= a.hardware["disk_free_bytes"] > 0


def test_announcer_survives_failures_and_recovers() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")

    announcer = Ticker("worker announcement", flaky, interval_s=60)
    assert announcer.tick_once() is False
    assert announcer.tick_once() is True
    assert len(calls) == 2
