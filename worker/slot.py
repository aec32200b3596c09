"""One slot of a worker: an RQ worker process that admits a task by capacity before running it.

``python -m worker`` (the supervisor) starts ``settings.worker_slots`` of these as
``python -m worker.slot --group <host>:<pid> --index K --capacity '{...}'``. Slot K is the RQ
worker ``<group>/slotK`` and holds the tasks it runs under that same id (``tasks.worker_id``),
so heartbeats, ``held_by`` and the reconciler's dead-worker detection work per slot exactly as
they did per worker.

Before a dequeued job is run, the slot claims its task through ``Admission`` (under the group's
lock, against the group's free capacity):

* fits now → claimed here, then run in this same process;
* fits this worker but not now → the job goes back to the *front* of its queue (a big task is
  not overtaken forever by small ones) and the slot pauses ``ADMISSION_PAUSE_S``;
* larger than this worker could ever hold (a GPU task on a worker without GPUs, say) → the job
  goes to the *back* of its queue for another worker, logged, and the slot pauses;
* no longer pending (killed, a duplicate job) → run anyway: the job's own claim fails and
  logs it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import sys
import time
from contextlib import nullcontext
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from orchestrator import logs
from orchestrator.adapters.queue import JOB_FUNC
from orchestrator.domain.capacity import Capacity
from orchestrator.domain.priority import listening_order
from orchestrator.errors import OrchestratorError
from orchestrator.processes import on_sighup
from orchestrator.settings import Settings
from worker import bootstrap
from worker.admission import Admission, Verdict
from worker.bootstrap import WorkerContext
from worker.disk import WorkDir
from worker.executors.docker import DockerExecutor
from worker.overrun import OverrunGuard

log = logging.getLogger("worker.slot")

ADMISSION_PAUSE_S = 1.0
_PR_SET_PDEATHSIG = 1


def slot_id(group: str, index: int) -> str:
    return f"{group}/slot{index}"


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; a no-op elsewhere).

    A supervisor killed outright (its host lost, ``kill -9``) takes its slots, and the runs in
    them, with it, so the heartbeats stop and the reconciler retries the tasks elsewhere,
    instead of runs finishing unsupervised on a worker nobody announces any more."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


def task_id_of(job: Job) -> str | None:
    """The task a job runs, for jobs of ``run_task``; None for any other job."""
    if job.func_name != JOB_FUNC or not job.args:
        return None
    return str(job.args[0])


class SlotWorker(SimpleWorker):
    """An RQ worker that claims through ``Admission``, then runs the job in its own process.

    RQ's default ``Worker`` forks a work horse per job, and the horse must build its own
    database, Redis, S3 and Docker clients (nothing with a socket survives a fork): about 80 ms
    per task on 2 cores, a fifth of a trivial task's whole run. The isolation a horse gives is
    the container's job here: the pipeline never runs in the slot's process. A slot that dies
    anyway is restarted by the supervisor, and the new one removes the containers it left; one
    whose task outlives the job's timeout ends itself (``worker/overrun.py``).
    """

    def __init__(
        self,
        queues: list[Queue],
        *,
        context: WorkerContext,
        admission: Admission,
        pause_s: float = ADMISSION_PAUSE_S,
        overrun: OverrunGuard | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(queues, **kwargs)
        self._ctx = context
        self._admission = admission
        self._pause_s = pause_s
        self._overrun = overrun or OverrunGuard()
        self._admitting = False
        self._told_never: set[str] = set()

    # --- admission -------------------------------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        task_id = task_id_of(job)
        if task_id is None:
            super().execute_job(job, queue)
            return
        # A warm-shutdown signal during admission must not leave a claimed task unrun or a job
        # neither queued nor run: ``_shutdown`` defers it to the end of this job.
        self._admitting = True
        try:
            verdict = self._admit(job, queue, task_id)
        finally:
            self._admitting = False
        if verdict is None or verdict is Verdict.RUN:
            try:
                # The API enqueues every task with a timeout; a job without one is not watched.
                limit = job.timeout if isinstance(job.timeout, int) and job.timeout > 0 else None
                with (
                    self._overrun.watching(task_id, float(limit))
                    if limit is not None
                    else nullcontext()
                ):
                    super().execute_job(job, queue)
            finally:
                self._ctx.admitted.pop(task_id, None)
        elif not self._stop_requested:
            time.sleep(self._pause_s)

    def _admit(self, job: Job, queue: Queue, task_id: str) -> Verdict | None:
        """Claim or put back; returns RUN (claimed), None (not pending: run the no-op job),
        or WAIT/NEVER (the job is back on its queue)."""
        try:
            admitted = self._admission.try_claim(task_id)
        except Exception as exc:
            log.warning(
                "admission failed; job put back",
                extra={"task_id": task_id, "error": str(exc)},
            )
            self._put_back(job, queue, at_front=True)
            return Verdict.WAIT
        if admitted.verdict is Verdict.RUN and admitted.task is not None:
            self._ctx.admitted[task_id] = admitted.task
            return Verdict.RUN
        if admitted.verdict is None:
            return None
        if admitted.verdict is Verdict.LATER:
            # Its project runs all its quota allows: behind the queue's other tasks (other
            # projects' among them), not in front of them.
            log.debug("project at its running quota; put back", extra={"task_id": task_id})
            self._put_back(job, queue, at_front=False)
            return Verdict.LATER
        if admitted.verdict is Verdict.NEVER:
            if task_id not in self._told_never:
                self._told_never.add(task_id)
                log.warning(
                    "task larger than this worker's capacity (CPUs, memory, GPUs, or the disk "
                    "of its work dir for inputs and outputs), or its image is not here; "
                    "left for another worker",
                    extra={"task_id": task_id, "capacity": self._admission.capacity.as_dict()},
                )
            self._put_back(job, queue, at_front=False)
            return Verdict.NEVER
        log.debug("task does not fit now; put back", extra={"task_id": task_id})
        self._put_back(job, queue, at_front=True)
        return Verdict.WAIT

    def _put_back(self, job: Job, queue: Queue, *, at_front: bool) -> None:
        """Return a dequeued, unstarted job to its queue (and out of RQ's intermediate list,
        where a single-queue dequeue parks it), atomically."""
        with self.connection.pipeline() as pipe:
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            queue.push_job_id(job.id, pipeline=pipe, at_front=at_front)
            pipe.execute()

    def _shutdown(self) -> None:
        if self._admitting:
            self._stop_requested = True  # checked by the work loop before the next dequeue
            return
        super()._shutdown()


def _forget_stale_registration(worker: SimpleWorker) -> None:
    """A slot restarted after its process died finds its old RQ registration still alive
    (until its TTL); the supervisor only restarts slots it saw die, so it is safe to end it."""
    key = Worker.redis_worker_namespace_prefix + worker.name
    stale = Worker.find_by_key(key, connection=worker.connection)
    if stale is not None:
        log.info("ending the stale registration of this slot's dead predecessor")
        stale.register_death()


def runnable(context: WorkerContext, pipeline: str) -> bool:
    """Whether this worker can run ``pipeline``: it knows it, and has its image. An unknown
    pipeline is admitted: the run then ends the task with the reason."""
    spec = context.catalog.current().get(pipeline)
    return spec is None or context.executor.has_image(spec.image)


def run_slot(settings: Settings, *, group: str, index: int, capacity: Capacity) -> int:
    context = bootstrap.build_context(settings, worker_id=slot_id(group, index))
    bootstrap.install(context)
    on_sighup(context.catalog.invalidate)  # the supervisor passes its SIGHUP on
    admission = Admission(
        context.services.tasks,
        group=group,
        member=context.worker_id,
        capacity=capacity,
        runnable=lambda pipeline: runnable(context, pipeline),
        disk=WorkDir(settings.worker_work_dir),
    )
    # RQ's own connection: the slot's work loop (dequeue, registrations) is RQ's, not ours.
    redis = Redis.from_url(settings.redis_url)
    # Each queue's bands, highest first: RQ takes from the first queue that has work.
    queues = [Queue(name, connection=redis) for name in listening_order(settings.queues)]

    if isinstance(context.executor, DockerExecutor):
        # A predecessor of this slot that died mid-run left its container running.
        context.executor.remove_orphans()
    worker = SlotWorker(
        queues,
        context=context,
        admission=admission,
        name=context.worker_id,
        connection=redis,
    )
    _forget_stale_registration(worker)
    try:
        worker.work(logging_level=settings.log_level.upper(), with_scheduler=False)
    finally:
        context.services.close()
        redis.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.slot")
    parser.add_argument("--group", required=True, help="the supervisor's worker id")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--capacity", required=True, help="the group's capacity as JSON")
    args = parser.parse_args(argv)
    die_with_parent()
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    try:
        return run_slot(
            settings,
            group=args.group,
            index=args.index,
            capacity=Capacity.of(json.loads(args.capacity)),
        )
    except OrchestratorError as exc:
        log.error("worker slot cannot start", extra={"error": str(exc)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
