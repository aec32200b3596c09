from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from orchestrator.db.repository import GroupClaim, RunningTask
from orchestrator.domain.capacity import Capacity
from pipelines.spec import Resources
from worker.admission import HOST_RESERVE_BYTES, Admission, Verdict, capacity_of, decide
from worker.hardware import Gpu, Hardware

GiB = 1024**3
WORKER = Capacity(cpus=2.0, memory_bytes=4 * GiB, gpus=0)


def cap(cpus: float, mem_gib: float = 0.25, gpus: int = 0) -> Capacity:
    return Capacity(cpus=cpus, memory_bytes=int(mem_gib * GiB), gpus=gpus)


def test_fits_an_idle_worker() -> None:
    assert decide(cap(1), WORKER, []) is Verdict.RUN


def test_two_fit_side_by_side_the_third_waits() -> None:
    assert decide(cap(1), WORKER, [cap(1)]) is Verdict.RUN
    assert decide(cap(1), WORKER, [cap(1), cap(1)]) is Verdict.WAIT


def test_memory_alone_can_make_a_task_wait() -> None:
    assert decide(cap(0.5, 3), WORKER, [cap(0.5, 2)]) is Verdict.WAIT


def test_fractional_cpus_add_up_exactly() -> None:
    running = [cap(0.1), cap(0.2)]
    assert decide(cap(1.7), WORKER, running) is Verdict.RUN


def test_larger_than_the_worker_is_never() -> None:
    assert decide(cap(3), WORKER, []) is Verdict.NEVER
    assert decide(cap(1, 5), WORKER, []) is Verdict.NEVER


def test_gpu_task_on_a_worker_without_gpus_is_never() -> None:
    assert decide(cap(1, gpus=1), WORKER, []) is Verdict.NEVER


def test_gpu_task_waits_for_a_busy_gpu() -> None:
    worker = Capacity(cpus=8, memory_bytes=16 * GiB, gpus=1)
    assert decide(cap(1, gpus=1), worker, []) is Verdict.RUN
    assert decide(cap(1, gpus=1), worker, [cap(1, gpus=1)]) is Verdict.WAIT


HW = Hardware(cpus=8, memory_bytes=16 * GiB, disk_free_bytes=1, gpus=(Gpu(0, "A10", GiB),))


def test_capacity_defaults_to_the_machine_less_a_host_reserve() -> None:
    assert capacity_of(HW) == Capacity(cpus=8.0, memory_bytes=16 * GiB - HOST_RESERVE_BYTES, gpus=1)


def test_capacity_configured() -> None:
    assert capacity_of(HW, cpus=1.5, memory_bytes=2 * GiB) == Capacity(1.5, 2 * GiB, 1)


@pytest.mark.parametrize("memory", [0, HOST_RESERVE_BYTES // 2])
def test_capacity_memory_never_negative(memory: int) -> None:
    hw = Hardware(cpus=1, memory_bytes=memory, disk_free_bytes=0)
    assert capacity_of(hw).memory_bytes == 0


class FakeClaims:
    """Decides like the repository does, on one pending task of ``pipeline``."""

    def __init__(self, pipeline: str, resources: Resources, input_bytes: int = 0) -> None:
        self.pipeline, self.resources, self.input_bytes = pipeline, resources, input_bytes

    def claim_in_group(
        self,
        task_id: str,
        worker_id: str,
        *,
        group: str,
        verdict: Callable[[str, Resources, list[RunningTask], int], Verdict],
    ) -> GroupClaim:
        decided = verdict(self.pipeline, self.resources, [], self.input_bytes)
        return GroupClaim(pending=True, verdict=decided)


def test_a_pipeline_whose_image_is_not_here_is_never_admitted() -> None:
    small = Resources(cpus=0.5, memory_bytes=GiB // 4)
    here = {"checksum"}
    for pipeline, expected in (("checksum", Verdict.RUN), ("gdal_reproject", Verdict.NEVER)):
        admission = Admission(
            FakeClaims(pipeline, small),
            group="w",
            member="w/0",
            capacity=WORKER,
            runnable=lambda name: name in here,
        )
        assert admission.try_claim("t").verdict is expected


class FakeDisk:
    def __init__(self, size: int, room: int) -> None:
        self._size, self._room = size, room

    def size(self) -> int:
        return self._size

    def room(self, running: Iterable[RunningTask]) -> int:
        return self._room


@pytest.mark.parametrize(
    ("input_bytes", "expected"),
    [
        (GiB, Verdict.RUN),  # 1 GiB + 256 MiB margin fits 2 GiB of room
        (3 * GiB, Verdict.WAIT),  # fits the disk, not the room left now
        (20 * GiB, Verdict.NEVER),  # larger than the whole file system
    ],
)
def test_the_work_dir_must_have_room_for_inputs_and_margin(
    input_bytes: int, expected: Verdict
) -> None:
    small = Resources(cpus=0.5, memory_bytes=GiB // 4)
    admission = Admission(
        FakeClaims("checksum", small, input_bytes),
        group="w",
        member="w/0",
        capacity=WORKER,
        disk=FakeDisk(size=10 * GiB, room=2 * GiB),
    )
    assert admission.try_claim("t").verdict is expected


def test_a_pipeline_scratch_factor_counts_its_inputs_again() -> None:
    twice = Resources(cpus=0.5, memory_bytes=GiB // 4, disk_per_input=2.0, disk_margin_bytes=0)
    assert twice.disk_bytes(GiB) == 2 * GiB
    admission = Admission(
        FakeClaims("volcal_baseline", twice, GiB + 1),
        group="w",
        member="w/0",
        capacity=WORKER,
        disk=FakeDisk(size=10 * GiB, room=2 * GiB),
    )
    assert admission.try_claim("t").verdict is Verdict.WAIT
