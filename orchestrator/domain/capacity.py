"""Capacity arithmetic for routing: does a task's demand fit a worker's capacity? Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipelines.spec import Resources


@dataclass(frozen=True)
class Capacity:
    """Schedulable resources: cpus (may be fractional), memory in bytes, whole GPUs."""

    cpus: float = 0.0
    memory_bytes: int = 0
    gpus: int = 0

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Capacity:
        return cls(
            cpus=float(data.get("cpus", 0.0)),
            memory_bytes=int(data.get("memory_bytes", 0)),
            gpus=int(data.get("gpus", 0)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory_bytes": self.memory_bytes, "gpus": self.gpus}

    def fits(self, demand: Capacity) -> bool:
        # A small epsilon: 0.1 + 0.2 cpus must fit into 0.3.
        return (
            demand.cpus <= self.cpus + 1e-9
            and demand.memory_bytes <= self.memory_bytes
            and demand.gpus <= self.gpus
        )

    def __sub__(self, other: Capacity) -> Capacity:
        return Capacity(
            self.cpus - other.cpus, self.memory_bytes - other.memory_bytes, self.gpus - other.gpus
        )

    def __add__(self, other: Capacity) -> Capacity:
        return Capacity(
            self.cpus + other.cpus, self.memory_bytes + other.memory_bytes, self.gpus + other.gpus
        )


def demand_of(resources: Resources) -> Capacity:
    """What a task's limits take from a worker while it runs."""
    return Capacity(resources.cpus, resources.memory_bytes, resources.gpus)


class Verdict(StrEnum):
    RUN = "run"  # fits what is free now: claim it
    WAIT = "wait"  # fits this worker, not now: put it back, try again shortly
    NEVER = "never"  # larger than this worker's whole capacity: leave it to another worker
    LATER = "later"  # its project runs all its quota allows: back of the queue, for now


def decide(demand: Capacity, capacity: Capacity, running: Iterable[Capacity]) -> Verdict:
    if not capacity.fits(demand):
        return Verdict.NEVER
    if free_after(capacity, running).fits(demand):
        return Verdict.RUN
    return Verdict.WAIT


def free_after(capacity: Capacity, running: Iterable[Capacity]) -> Capacity:
    free = capacity
    for demand in running:
        free = free - demand
    return free


def why_unplaceable(demand: Capacity, capacities: Iterable[Capacity]) -> str | None:
    """None if some worker could ever hold ``demand``; else a reason naming the shortfall."""
    caps = list(capacities)
    if not caps:
        return None  # no worker registered yet: accept and wait rather than refuse
    if any(c.fits(demand) for c in caps):
        return None
    best_cpus = max(c.cpus for c in caps)
    best_mem = max(c.memory_bytes for c in caps)
    best_gpus = max(c.gpus for c in caps)
    parts = []
    if demand.cpus > best_cpus:
        parts.append(f"{demand.cpus:g} CPUs (largest worker: {best_cpus:g})")
    if demand.memory_bytes > best_mem:
        need, have = demand.memory_bytes / 2**30, best_mem / 2**30
        parts.append(f"{need:.3g} GiB memory (largest worker: {have:.3g} GiB)")
    if demand.gpus > best_gpus:
        parts.append(f"{demand.gpus} GPU(s) (most on one worker: {best_gpus})")
    if not parts:
        parts.append("its combination of CPUs, memory and GPUs")
    return "no registered worker can ever hold this task: it needs " + ", ".join(parts)
