"""Turning a create request into a runnable plan: validated params, limits and queue."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from pipelines.spec import PipelineSpec, Resources

GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Plan:
    params: dict[str, Any]
    resources: Resources
    queue: str

    @property
    def resources_dict(self) -> dict[str, Any]:
        return asdict(self.resources)


def plan_task(spec: PipelineSpec, params: dict[str, Any] | None) -> Plan:
    """Validate ``params`` against ``spec``; raise ``ValueError`` naming the problem."""
    validated = spec.validate_params(params)
    resources = replace(spec.resources)
    queue = GPU_QUEUE if resources.gpus > 0 else DEFAULT_QUEUE
    return Plan(params=validated, resources=resources, queue=queue)


def resources_from_dict(data: dict[str, Any]) -> Resources:
    known = Resources.__dataclass_fields__
    return Resources(**{k: v for k, v in data.items() if k in known})
