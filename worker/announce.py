"""Workers announce themselves: who, where, what hardware, what capacity, what is free, what runs.

The supervising process of ``python -m worker`` upserts a ``WorkerAnnouncement`` once at start
(so the API sees it at once) and then every ``settings.worker_announce_interval_s`` from a
background thread; on a graceful exit it marks itself ``stopped``. A worker that stops
announcing (its host died) is shown as lost by the API after ``worker_lost_after_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from orchestrator.db.repository import RunningTask
from orchestrator.db.workers import WorkerAnnouncement
from orchestrator.domain.capacity import Capacity, free_after
from worker.admission import demands
from worker.hardware import Hardware


def hardware_dict(hw: Hardware) -> dict[str, Any]:
    """The ``hardware`` column: cpus, memory_bytes, disk_bytes, disk_free_bytes, gpus (each
    with index, model, memory_bytes, utilisation_pct)."""
    return {
        "cpus": hw.cpus,
        "memory_bytes": hw.memory_bytes,
        "disk_bytes": hw.disk_bytes,
        "disk_free_bytes": hw.disk_free_bytes,
        "gpus": [asdict(g) for g in hw.gpus],
    }


def build_announcement(
    *,
    worker_id: str,
    host: str,
    queues: Sequence[str],
    executor: str,
    hardware: Hardware,
    capacity: Capacity,
    running: Sequence[RunningTask],
    images: Sequence[str] | None = None,
) -> WorkerAnnouncement:
    free = free_after(capacity, demands(running))
    return WorkerAnnouncement(
        id=worker_id,
        host=host,
        queues=list(queues),
        executor=executor,
        hardware=hardware_dict(hardware),
        capacity=capacity.as_dict(),
        # Never below zero: a task counted against a slot that died still shows as taken.
        free=Capacity(
            cpus=round(max(free.cpus, 0.0), 6),
            memory_bytes=max(free.memory_bytes, 0),
            gpus=max(free.gpus, 0),
        ).as_dict(),
        running=[t.id for t in running],
        images=None if images is None else list(images),
    )
