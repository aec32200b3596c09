"""Capacity-aware admission: may this worker start that task now, later, or never?

A worker (one ``python -m worker``: a *group* of slot processes) has a schedulable
``Capacity``. A slot that dequeues a task asks ``Admission.try_claim``: under a PostgreSQL
advisory lock per group it sums the demands of the tasks the group's slots run now and claims
the task only when its demand fits what is left. The decision itself (``decide``) is pure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from orchestrator.db.repository import GroupClaim, RunningTask
from orchestrator.domain.capacity import Capacity, Verdict, decide, demand_of
from pipelines.spec import Resources
from worker.hardware import Hardware

log = logging.getLogger(__name__)

MiB = 1024**2
# Memory left to the host (the worker itself, dockerd, the page cache) when no explicit
# WORKER_MEMORY_BYTES caps what tasks may take.
HOST_RESERVE_BYTES = 512 * MiB


def capacity_of(hardware: Hardware, *, cpus: float = 0.0, memory_bytes: int = 0) -> Capacity:
    """What tasks on this worker may use together: the configured CPUs and memory (0: all CPUs,
    all memory but ``HOST_RESERVE_BYTES``) and every GPU found."""
    return Capacity(
        cpus=float(cpus) if cpus > 0 else float(hardware.cpus),
        memory_bytes=memory_bytes
        if memory_bytes > 0
        else max(hardware.memory_bytes - HOST_RESERVE_BYTES, 0),
        gpus=hardware.gpu_count,
    )


def demands(running: Iterable[RunningTask]) -> list[Capacity]:
    return [demand_of(t.resources) for t in running]


class GroupClaims(Protocol):
    """The one call admission makes (``TaskRepository`` has it)."""

    def claim_in_group(
        self,
        task_id: str,
        worker_id: str,
        *,
        group: str,
        verdict: Callable[[str, Resources, list[RunningTask], int], Verdict],
    ) -> GroupClaim: ...


class Admission:
    """Admission for one slot ``member`` (a worker id ``<group>/<slot>``) of worker ``group``.

    ``runnable(pipeline)`` says whether this worker can run a pipeline at all (it has its
    image); a task of one it cannot is never admitted here, whatever the capacity. ``disk``
    (the work dir) admits a task only while it has room for the task's inputs and outputs
    (``worker/disk.py``): never one larger than the whole file system, later one that does not
    fit now.
    """

    def __init__(
        self,
        repo: GroupClaims,
        *,
        group: str,
        member: str,
        capacity: Capacity,
        runnable: Callable[[str], bool] = lambda pipeline: True,
        disk: DiskRoom | None = None,
    ) -> None:
        self._repo = repo
        self.group = group
        self.member = member
        self.capacity = capacity
        self._runnable = runnable
        self._disk = disk

    def try_claim(self, task_id: str) -> GroupClaim:
        """The claim's ``verdict`` is None when the task was not pending any more (nothing to
        decide); its ``task`` is set iff the verdict is RUN."""

        def verdict(
            pipeline: str, resources: Resources, running: list[RunningTask], input_bytes: int
        ) -> Verdict:
            if not self._runnable(pipeline):
                return Verdict.NEVER
            decided = decide(demand_of(resources), self.capacity, demands(running))
            if decided is Verdict.RUN and self._disk is not None:
                return self._disk_verdict(resources.disk_bytes(input_bytes), running)
            return decided

        return self._repo.claim_in_group(task_id, self.member, group=self.group, verdict=verdict)

    def _disk_verdict(self, need: int, running: list[RunningTask]) -> Verdict:
        assert self._disk is not None
        if need > self._disk.size():
            return Verdict.NEVER
        room = self._disk.room(running)
        if need > room:
            log.info("no room in the work dir for now", extra={"need": need, "room": room})
            return Verdict.WAIT
        return Verdict.RUN


class DiskRoom(Protocol):
    """The work dir as admission sees it (``worker.disk.WorkDir``)."""

    def size(self) -> int: ...
    def room(self, running: Iterable[RunningTask]) -> int: ...
