"""Per-task resource overrides, their bounds, the queue they pick, and placement refusals."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain.capacity import Capacity
from orchestrator.domain.planning import (
    DEFAULT_QUEUE,
    GPU_QUEUE,
    Candidate,
    ResourceBounds,
    TiB,
    parse_size,
    placement_problem,
    plan_task,
)
from pipelines.spec import GiB, InputSlot, MiB, PipelineSpec, Resources

SPEC = PipelineSpec(
    name="demo",
    description="",
    inputs=(InputSlot("a"),),
    resources=Resources(cpus=2.0, memory_bytes=4 * GiB, gpus=0, timeout_s=900, pids=128),
)


def test_no_overrides_keep_the_pipeline_defaults() -> None:
    assert plan_task(SPEC, None, None).resources == SPEC.resources
    assert plan_task(SPEC, None, {}).resources == SPEC.resources


def test_overrides_replace_only_the_given_fields() -> None:
    plan = plan_task(SPEC, None, {"cpus": 0.5, "timeout_s": 60})
    assert plan.resources == Resources(
        cpus=0.5, memory_bytes=4 * GiB, gpus=0, timeout_s=60, pids=128
    )
    assert plan.queue == DEFAULT_QUEUE
    assert plan.demand == Capacity(cpus=0.5, memory_bytes=4 * GiB, gpus=0)


def test_gpus_route_to_the_gpu_queue_and_back() -> None:
    assert plan_task(SPEC, None, {"gpus": 2}).queue == GPU_QUEUE
    gpu_spec = PipelineSpec(name="g", description="", inputs=(), resources=Resources(gpus=1))
    assert plan_task(gpu_spec, None).queue == GPU_QUEUE
    assert plan_task(gpu_spec, None, {"gpus": 0}).queue == DEFAULT_QUEUE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1234, 1234),
        (2.0, 2),
        ("2GiB", 2 * GiB),
        ("512 MiB", 512 * MiB),
        ("1.5gib", int(1.5 * GiB)),
        ("4GB", 4 * 1000**3),
        ("1000", 1000),
        ("1T", 1000**4),
    ],
)
def test_sizes_parse(value: Any, expected: int) -> None:
    assert parse_size(value, "memory") == expected


@pytest.mark.parametrize("value", ["lots", "2 parsecs", "", True, 1.5, None, "-1GiB"])
def test_bad_sizes_name_the_field(value: Any) -> None:
    with pytest.raises(ValueError, match=r"resources\.memory must be a size"):
        parse_size(value, "memory")


def test_memory_is_an_alias_of_memory_bytes() -> None:
    assert plan_task(SPEC, None, {"memory": "8GiB"}).resources.memory_bytes == 8 * GiB
    assert plan_task(SPEC, None, {"memory_bytes": GiB}).resources.memory_bytes == GiB


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cpus": 0}, r"resources\.cpus must be > 0"),
        ({"cpus": -1}, r"resources\.cpus must be > 0"),
        ({"cpus": 257}, r"resources\.cpus must be <= 256"),
        ({"cpus": "2"}, r"resources\.cpus must be a number"),
        ({"cpus": float("inf")}, r"resources\.cpus must be finite"),
        ({"memory_bytes": 0}, r"resources\.memory_bytes must be > 0"),
        ({"memory_bytes": TiB + 1}, r"resources\.memory_bytes must be <= "),
        ({"memory": "2TiB"}, r"resources\.memory must be <= "),
        ({"memory": "8GiB", "memory_bytes": 1}, "not both"),
        ({"gpus": -1}, r"resources\.gpus must be >= 0"),
        ({"gpus": 17}, r"resources\.gpus must be <= 16"),
        ({"gpus": 1.5}, r"resources\.gpus must be an integer"),
        ({"timeout_s": 0}, r"resources\.timeout_s must be > 0"),
        ({"timeout_s": 7 * 24 * 3600 + 1}, r"resources\.timeout_s must be <= 604800"),
        ({"pids": 10}, r"unknown resource field\(s\): pids"),
        ({"disk": 1}, "unknown resource field"),
    ],
)
def test_out_of_bounds_overrides_name_the_field(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_task(SPEC, None, given)


def test_bounds_are_inclusive_and_replaceable() -> None:
    at_max = {"cpus": 256, "memory_bytes": TiB, "gpus": 16, "timeout_s": 7 * 24 * 3600}
    assert plan_task(SPEC, None, at_max).resources.gpus == 16
    tight = ResourceBounds(cpus=4, memory_bytes=8 * GiB, gpus=0, timeout_s=3600)
    with pytest.raises(ValueError, match=r"resources\.cpus must be <= 4"):
        plan_task(SPEC, None, {"cpus": 8}, tight)


# --- placement -------------------------------------------------------------------------------
SMALL = Candidate(["default"], Capacity(cpus=4, memory_bytes=8 * GiB, gpus=0))
BIG_GPU = Candidate(["default", "gpu"], Capacity(cpus=32, memory_bytes=128 * GiB, gpus=2))


def test_no_live_workers_means_wait_not_refuse() -> None:
    assert placement_problem(Capacity(cpus=999), DEFAULT_QUEUE, []) is None


def test_a_task_that_fits_some_worker_is_placeable() -> None:
    demand = Capacity(cpus=16, memory_bytes=64 * GiB)
    assert placement_problem(demand, DEFAULT_QUEUE, [SMALL, BIG_GPU]) is None


def test_refusal_names_the_shortfall() -> None:
    demand = Capacity(cpus=8, memory_bytes=16 * GiB)
    reason = placement_problem(demand, DEFAULT_QUEUE, [SMALL])
    assert reason is not None
    assert "8 CPUs (largest worker: 4)" in reason
    assert "16 GiB memory (largest worker: 8 GiB)" in reason


def test_only_workers_of_the_task_queue_count() -> None:
    # BIG_GPU could hold it, but only SMALL listens on "default"... and vice versa for gpu.
    gpu_demand = Capacity(cpus=1, memory_bytes=GiB, gpus=1)
    assert placement_problem(gpu_demand, GPU_QUEUE, [SMALL, BIG_GPU]) is None
    reason = placement_problem(gpu_demand, GPU_QUEUE, [SMALL])
    assert reason is not None and "queue 'gpu'" in reason and "default" in reason
    cpu_only_gpu_listener = Candidate(["gpu"], Capacity(cpus=8, memory_bytes=8 * GiB, gpus=0))
    reason = placement_problem(gpu_demand, GPU_QUEUE, [cpu_only_gpu_listener])
    assert reason is not None and "1 GPU(s) (most on one worker: 0)" in reason


def test_only_workers_with_the_pipeline_image_count() -> None:
    demand = Capacity(cpus=1, memory_bytes=GiB)
    with_image = Candidate(["default"], SMALL.capacity, frozenset({"tool:1", "other:2"}))
    without = Candidate(["default"], BIG_GPU.capacity, frozenset({"other:2"}))
    assert placement_problem(demand, DEFAULT_QUEUE, [with_image, without], "tool:1") is None
    reason = placement_problem(demand, DEFAULT_QUEUE, [without], "tool:1")
    assert reason == (
        "no live worker on queue 'default' has the image 'tool:1': build or load it on a "
        "worker (GET /workers lists each worker's images)"
    )
    # A worker that runs any image (the local executor) always counts.
    assert placement_problem(demand, DEFAULT_QUEUE, [SMALL], "tool:1") is None
    # The image check comes before capacity: the worker with the image must also be big enough.
    big = Capacity(cpus=16, memory_bytes=GiB)
    reason = placement_problem(big, DEFAULT_QUEUE, [with_image, without], "tool:1")
    assert reason is not None and "16 CPUs (largest worker: 4)" in reason
