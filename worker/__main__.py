"""``python -m worker``: one worker: an announcement and ``settings.worker_slots`` RQ slots.

The main process (``worker.supervisor``) announces the worker in the ``workers`` table at
start and every WORKER_ANNOUNCE_INTERVAL_S, and supervises one slot process per concurrent task
(WORKER_SLOTS, 0 = one per CPU). Each slot (``worker.slot``) is an RQ worker on
``settings.queues`` that claims a task only when its CPUs, memory and GPUs fit what the worker
has free (WORKER_CPUS / WORKER_MEMORY_BYTES, default all CPUs and all memory but 512 MiB);
each slot runs its tasks in its own process (no forked work horse: the container isolates the
pipeline), and a slot that dies is restarted and removes the containers it left.

GPU tasks are queued on ``gpu``: a machine with GPUs listens there too with
``WORKER_QUEUES=default,gpu``. A worker without GPUs that listens on ``gpu`` anyway never
claims a GPU task; it puts the job back for another worker.

SIGTERM/SIGINT: warm shutdown (running tasks finish); a second one stops them at once and the
reconciler retries their tasks. SIGHUP: the pipeline files (PIPELINES_PATH) are re-read, by
every slot too; running tasks go on with the version they started with.
"""

from __future__ import annotations

import logging
import sys

from orchestrator import logs
from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings
from worker import bootstrap
from worker.admission import capacity_of
from worker.executors.docker import DockerExecutor
from worker.hardware import discover
from worker.supervisor import Supervisor, slot_count

log = logging.getLogger("worker")


def main() -> int:
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    try:
        context = bootstrap.build_context(settings)
    except OrchestratorError as exc:
        log.error("worker cannot start", extra={"error": str(exc)})
        return 1
    capacity = capacity_of(
        context.hardware, cpus=settings.worker_cpus, memory_bytes=settings.worker_memory_bytes
    )
    slots = slot_count(settings.worker_slots, context.hardware.cpus)
    log.info(
        "worker starting",
        extra={
            "worker_id": context.worker_id,
            "queues": settings.queues,
            "executor": settings.executor,
            "slots": slots,
            "capacity": capacity.as_dict(),
            "hardware": context.hardware.as_dict(),
        },
    )
    if isinstance(context.executor, DockerExecutor):
        context.executor.remove_orphans()
    supervisor = Supervisor(
        settings=settings,
        worker_id=context.worker_id,
        host=bootstrap.host_name(settings),
        capacity=capacity,
        slots=slots,
        tasks=context.services.tasks,
        workers=context.services.workers,
        sample_hardware=lambda: discover(settings.worker_work_dir),
        sample_images=lambda: context.executor.images(
            {spec.image for spec in context.catalog.current().values()}
        ),
        reload=context.catalog.invalidate,
    )
    try:
        return supervisor.run()
    finally:
        context.services.close()


if __name__ == "__main__":
    sys.exit(main())
