"""``python -m worker``: one RQ worker on ``settings.queues``.

Each job runs in a forked work horse, so a crashing job (or one killed by RQ's own job timeout)
never takes the worker down. SIGTERM is RQ's warm shutdown: the current job finishes first; a
second SIGTERM stops it at once, and the reconciler then retries the task.
"""

from __future__ import annotations

import logging
import sys

from rq import Queue, Worker

from orchestrator import logs
from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings
from worker import bootstrap
from worker.executors.docker import DockerExecutor

log = logging.getLogger("worker")


def sweep_orphans(context: bootstrap.WorkerContext) -> None:
    if isinstance(context.executor, DockerExecutor):
        context.executor.remove_orphans()


def main() -> int:
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    try:
        context = bootstrap.build_context(settings)
    except OrchestratorError as exc:
        log.error("worker cannot start", extra={"error": str(exc)})
        return 1
    bootstrap.install(context)
    redis = context.services.redis
    queues = [Queue(name, connection=redis) for name in settings.queues]
    log.info(
        "worker starting",
        extra={
            "worker_id": context.worker_id,
            "queues": settings.queues,
            "executor": settings.executor,
            "hardware": context.hardware.as_dict(),
        },
    )
    sweep_orphans(context)
    worker = Worker(
        queues,
        name=context.worker_id,
        connection=redis,
        # A horse that died (crash, RQ job timeout) leaves its container running: remove it.
        work_horse_killed_handler=lambda *_: sweep_orphans(context),
    )
    try:
        worker.work(logging_level=settings.log_level.upper(), with_scheduler=False)
    finally:
        context.services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
