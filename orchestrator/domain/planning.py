"""Turning a create request into a runnable plan: validated params, limits and queue. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.domain.capacity import Capacity, demand_of, why_unplaceable
from pipelines.spec import GiB, PipelineSpec, Resources, size_bytes

GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "default"

TiB = 1024 * GiB


@dataclass(frozen=True)
class ResourceBounds:
    """Inclusive maxima a task may ask for (minima: cpus, memory and timeout > 0, gpus >= 0)."""

    cpus: float = 256.0
    memory_bytes: int = 1 * TiB
    gpus: int = 16
    timeout_s: int = 7 * 24 * 3600


DEFAULT_BOUNDS = ResourceBounds()
# Fields a task may override; ``memory`` is ``memory_bytes`` given as a size ("2GiB") or bytes.
OVERRIDABLE = ("cpus", "memory_bytes", "memory", "gpus", "timeout_s")


@dataclass(frozen=True)
class Plan:
    params: dict[str, Any]
    resources: Resources
    queue: str

    @property
    def demand(self) -> Capacity:
        return demand_of(self.resources)


# A queue a create request may name: what RQ keys and the tasks.queue column (50) hold.
QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")


def queue_for(resources: Resources, requested: str | None = None) -> str:
    """The queue a task goes to: the one the request names (a worker pool of the operator's),
    else "gpu" for a task that needs GPUs, else "default"."""
    if requested is not None:
        if not QUEUE_NAME.match(requested):
            raise ValueError(
                f"queue {requested!r} must be 1-50 of a-z, 0-9, '_', '.', '-' "
                "(starting with a letter or digit)"
            )
        return requested
    return GPU_QUEUE if resources.gpus > 0 else DEFAULT_QUEUE


def plan_task(
    spec: PipelineSpec,
    params: Mapping[str, Any] | None,
    resources: Mapping[str, Any] | None = None,
    bounds: ResourceBounds = DEFAULT_BOUNDS,
    queue: str | None = None,
) -> Plan:
    """Validate ``params``, the ``resources`` overrides and a requested ``queue`` against
    ``spec``.

    Raises ``ValueError`` naming the first bad parameter or resource field, or the queue.
    """
    validated = spec.validate_params(params)
    limits = override_resources(spec.resources, resources, bounds)
    return Plan(params=validated, resources=limits, queue=queue_for(limits, queue))


def parse_size(value: Any, field: str) -> int:
    """Bytes from an integer or a size string such as "2GiB", "512 MiB", "1.5G" (SI: "2GB")."""
    try:
        return size_bytes(value)
    except ValueError:
        raise ValueError(
            f"resources.{field} must be a size in bytes or like '2GiB', got {value!r}"
        ) from None


def _number(value: Any, field: str, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"resources.{field} must be {kind}, got {value!r}")
    if integer:
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise ValueError(f"resources.{field} must be an integer, got {value!r}")
            return int(value)
        return value
    if not math.isfinite(value):
        raise ValueError(f"resources.{field} must be finite")
    return float(value)


def _within(value: float, field: str, *, minimum: float, maximum: float, strict: bool) -> None:
    low = value <= minimum if strict else value < minimum
    if low:
        op = ">" if strict else ">="
        raise ValueError(f"resources.{field} must be {op} {minimum:g}, got {value:g}")
    if value > maximum:
        raise ValueError(f"resources.{field} must be <= {maximum:g}, got {value:g}")


def override_resources(
    defaults: Resources,
    given: Mapping[str, Any] | None,
    bounds: ResourceBounds = DEFAULT_BOUNDS,
) -> Resources:
    """``defaults`` with the task's overrides applied, each checked against ``bounds``."""
    if not given:
        return replace(defaults)
    unknown = sorted(set(given) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(
            f"unknown resource field(s): {', '.join(unknown)} "
            f"(allowed: cpus, memory_bytes or memory, gpus, timeout_s)"
        )
    if "memory" in given and "memory_bytes" in given:
        raise ValueError("resources: give memory_bytes or memory, not both")
    changes: dict[str, Any] = {}
    if given.get("cpus") is not None:
        cpus = float(_number(given["cpus"], "cpus", integer=False))
        _within(cpus, "cpus", minimum=0, maximum=bounds.cpus, strict=True)
        changes["cpus"] = cpus
    for field in ("memory_bytes", "memory"):
        if given.get(field) is not None:
            memory = parse_size(given[field], field)
            _within(memory, field, minimum=0, maximum=bounds.memory_bytes, strict=True)
            changes["memory_bytes"] = memory
    if given.get("gpus") is not None:
        gpus = int(_number(given["gpus"], "gpus", integer=True))
        _within(gpus, "gpus", minimum=0, maximum=bounds.gpus, strict=False)
        changes["gpus"] = gpus
    if given.get("timeout_s") is not None:
        timeout = int(_number(given["timeout_s"], "timeout_s", integer=True))
        _within(timeout, "timeout_s", minimum=0, maximum=bounds.timeout_s, strict=True)
        changes["timeout_s"] = timeout
    return replace(defaults, **changes)


@dataclass(frozen=True)
class Candidate:
    """A live worker as placement sees it: the queues it takes work from, its total capacity,
    and the pipeline images it has (None: any)."""

    queues: Sequence[str]
    capacity: Capacity
    images: frozenset[str] | None = None
    disk_bytes: int | None = None  # the size of its work dir's file system; None: unknown


def placement_problem(
    demand: Capacity,
    queue: str,
    workers: Iterable[Candidate],
    image: str | None = None,
    disk_bytes: int = 0,
) -> str | None:
    """Why no live worker could ever run a task (of a pipeline run from ``image``, needing
    ``disk_bytes`` in the work dir for its inputs and outputs), or None when one could (or
    none is live yet: tasks then wait for the fleet rather than being refused)."""
    live = list(workers)
    if not live:
        return None
    listening = [w for w in live if queue in w.queues]
    if not listening:
        served = sorted({q for w in live for q in w.queues})
        return (
            f"no live worker takes tasks from queue '{queue}' "
            f"(live workers listen on: {', '.join(served) or 'nothing'})"
        )
    if image is not None:
        listening = [w for w in listening if w.images is None or image in w.images]
        if not listening:
            return (
                f"no live worker on queue '{queue}' has the image '{image}': build or load it "
                "on a worker (GET /workers lists each worker's images)"
            )
    problem = why_unplaceable(demand, [w.capacity for w in listening])
    if problem is not None:
        return problem
    return room_problem(demand, queue, listening, disk_bytes)


def room_problem(
    demand: Capacity, queue: str, workers: Iterable[Candidate], disk_bytes: int
) -> str | None:
    """Why none of the live workers of ``queue`` that could hold ``demand`` has a work dir
    large enough for ``disk_bytes``; None when one has (or says nothing of its disk), and
    when there is no such worker at all: that is ``placement_problem``'s to judge, at
    create_task, not a reason to refuse an upload while a queue's workers restart."""
    room = [w.disk_bytes for w in workers if queue in w.queues and w.capacity.fits(demand)]
    if disk_bytes <= 0 or not room or any(r is None or r >= disk_bytes for r in room):
        return None
    largest = max(r for r in room if r is not None)
    return (
        f"no live worker on queue '{queue}' has room for this task: its inputs and outputs "
        f"need {disk_bytes / 2**30:.3g} GiB in the work dir (largest: {largest / 2**30:.3g} GiB)"
    )
