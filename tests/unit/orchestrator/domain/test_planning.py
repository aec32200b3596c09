"""Planning a task from its spec: validated params, resources and queue."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from orchestrator.domain.capacity import Capacity
from orchestrator.domain.planning import (
    DEFAULT_QUEUE,
    GPU_QUEUE,
    Candidate,
    placement_problem,
    plan_task,
    room_problem,
)
from orchestrator.domain.task import resources_from_dict
from pipelines.spec import GiB, InputSlot, Param, PipelineSpec, Resources


def _spec(gpus: int = 0) -> PipelineSpec:
    return PipelineSpec(
        name="demo",
        description="",
        inputs=(InputSlot("a"),),
        params=(
            Param("n", int, 3, minimum=1, maximum=10),
            Param("mode", str, "fast", choices=("fast", "slow")),
            Param("ratio", float, 0.5, minimum=0.0, maximum=1.0),
        ),
        resources=Resources(cpus=2.0, memory_bytes=4 * GiB, gpus=gpus, timeout_s=900),
    )


def test_defaults_fill_missing_params() -> None:
    plan = plan_task(_spec(), None)
    assert plan.params == {"n": 3, "mode": "fast", "ratio": 0.5}
    assert plan_task(_spec(), {}).params == plan.params


def test_given_params_are_coerced_and_kept() -> None:
    plan = plan_task(_spec(), {"n": 7, "ratio": 1})
    assert plan.params == {"n": 7, "mode": "fast", "ratio": 1.0}
    assert isinstance(plan.params["ratio"], float)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n": 0}, "'n' must be >= 1"),
        ({"n": 11}, "'n' must be <= 10"),
        ({"n": "3"}, "'n' must be an integer"),
        ({"n": True}, "'n' must be an integer"),
        ({"mode": "medium"}, "'mode' must be one of"),
        ({"ratio": float("nan")}, "'ratio' must be finite"),
        ({"bogus": 1}, "unknown parameter"),
    ],
)
def test_bad_params_raise_naming_the_problem(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_task(_spec(), params)


def test_cpu_tasks_go_to_the_default_queue() -> None:
    plan = plan_task(_spec(gpus=0), None)
    assert plan.queue == DEFAULT_QUEUE
    assert plan.resources == _spec().resources


def test_gpu_tasks_go_to_the_gpu_queue() -> None:
    assert plan_task(_spec(gpus=1), None).queue == GPU_QUEUE


def test_a_named_queue_wins_over_the_routing_by_resources() -> None:
    assert plan_task(_spec(gpus=1), None, queue="site-b.gpu").queue == "site-b.gpu"
    assert plan_task(_spec(gpus=0), None, queue="pool_2").queue == "pool_2"


@pytest.mark.parametrize("queue", ["", "Pool", "-x", "a b", "x" * 51, "q:1"])
def test_a_bad_queue_name_is_refused_naming_it(queue: str) -> None:
    with pytest.raises(ValueError, match="queue"):
        plan_task(_spec(), None, queue=queue)


def test_resources_round_trip_through_a_dict() -> None:
    plan = plan_task(_spec(), None)
    stored = asdict(plan.resources)
    assert stored["memory_bytes"] == 4 * GiB
    assert resources_from_dict({**stored, "unknown_future_field": 1}) == plan.resources


def test_plan_does_not_share_the_spec_resources() -> None:
    spec = _spec()
    assert plan_task(spec, None).resources is not spec.resources


def test_a_task_no_live_workers_disk_could_stage_is_named() -> None:
    big = Capacity(cpus=8, memory_bytes=64 * GiB, gpus=0)
    small = Capacity(cpus=1, memory_bytes=GiB, gpus=0)
    demand = Capacity(cpus=2, memory_bytes=2 * GiB, gpus=0)
    fleet = [
        Candidate(["default"], big, disk_bytes=100 * GiB),
        # Room enough, but too small for the task's CPUs: its disk does not count.
        Candidate(["default"], small, disk_bytes=10_000 * GiB),
    ]
    assert placement_problem(demand, "default", fleet, disk_bytes=100 * GiB) is None
    assert placement_problem(demand, "default", fleet, disk_bytes=101 * GiB) == (
        "no live worker on queue 'default' has room for this task: its inputs and outputs "
        "need 101 GiB in the work dir (largest: 100 GiB)"
    )
    unknown = [Candidate(["default"], big, disk_bytes=None)]  # did not say: not refused
    assert placement_problem(demand, "default", unknown, disk_bytes=10**15) is None


def test_an_upload_is_not_refused_for_room_while_the_queue_has_no_live_worker() -> None:
    demand = Capacity(cpus=1, memory_bytes=GiB, gpus=0)
    elsewhere = [Candidate(["gpu"], Capacity(8, 64 * GiB, 1), disk_bytes=GiB)]
    assert room_problem(demand, "default", elsewhere, 100 * GiB) is None
    here = [Candidate(["default"], Capacity(8, 64 * GiB, 0), disk_bytes=GiB)]
    assert room_problem(demand, "default", here, 100 * GiB) is not None
