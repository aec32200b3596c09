"""The work queue (RQ on Redis). Jobs carry only a task id; the worker reloads state from SQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from orchestrator.errors import QueueError

# The job the worker runs, by name: the API does not import the worker (a unit test holds the
# name to worker.job.run_task).
JOB_FUNC = "worker.job.run_task"
# Margin on top of the task's own timeout before RQ's timeout interrupts the job (and, a grace
# later, the slot ends itself: worker/overrun.py); the job enforces the task timeout itself
# (stopping the container), RQ's timeout is only the last resort.
RQ_TIMEOUT_MARGIN_S = 300
LIVE_STATES = frozenset(
    {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
)


# Jobs read at a time when ageing a queue (one LRANGE and one pipelined fetch per page).
PROMOTE_PAGE = 100


def job_id(task_id: str) -> str:
    return f"task-{task_id}"


class TaskQueue(Protocol):
    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None: ...
    def is_live(self, task_id: str) -> bool: ...
    def live(self, task_ids: Iterable[str]) -> set[str]: ...
    def depths(self, always: Iterable[str] = ()) -> dict[str, int]: ...
    def ping(self) -> None: ...
    def promote(self, source: str, target: str, enqueued_before: datetime) -> list[str]: ...


class RQTaskQueue:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None:
        try:
            Queue(queue, connection=self._redis).enqueue(
                JOB_FUNC,
                task_id,
                job_id=job_id(task_id),
                job_timeout=timeout_s + RQ_TIMEOUT_MARGIN_S,
                result_ttl=24 * 3600,
                failure_ttl=7 * 24 * 3600,
            )
        except RedisError as exc:
            raise QueueError(f"cannot enqueue task {task_id}: {exc}") from exc

    def is_live(self, task_id: str) -> bool:
        """Whether a job for this task is queued or being worked on."""
        try:
            status = Job.fetch(job_id(task_id), connection=self._redis).get_status()
        except NoSuchJobError:
            return False
        except RedisError as exc:
            raise QueueError(f"cannot read job of task {task_id}: {exc}") from exc
        return status in LIVE_STATES

    def live(self, task_ids: Iterable[str]) -> set[str]:
        """Those of ``task_ids`` whose job is queued or being worked on: one round trip for
        all of them (the reconciler asks about every pending task, each pass)."""
        ids = list(task_ids)
        try:
            jobs = Job.fetch_many([job_id(t) for t in ids], connection=self._redis)
        except RedisError as exc:
            raise QueueError(f"cannot read the jobs of {len(ids)} tasks: {exc}") from exc
        return {
            task_id
            for task_id, job in zip(ids, jobs, strict=True)
            if job is not None and job.get_status(refresh=False) in LIVE_STATES
        }

    def depths(self, always: Iterable[str] = ()) -> dict[str, int]:
        """Jobs waiting in each queue RQ knows of, and in ``always`` (0 before its first job).
        One round trip for all of them: RQ remembers every queue ever used (a test stack
        gathers hundreds), and /metrics and each reconciler pass ask."""
        try:
            names = sorted({q.name for q in Queue.all(connection=self._redis)} | set(always))
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.llen(Queue(name, connection=self._redis).key)
            return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))
        except RedisError as exc:
            raise QueueError(f"cannot read queue depths: {exc}") from exc

    def promote(self, source: str, target: str, enqueued_before: datetime) -> list[str]:
        """Move the jobs queued in ``source`` before ``enqueued_before`` to the back of
        ``target``; the task ids moved. A job a worker takes meanwhile stays with it: the
        move is an LREM that only one of them wins. Jobs join a queue at its back, so the
        scan stops at the first one queued since: it reads the jobs due and one page more."""
        moved: list[str] = []
        try:
            queue, higher = (Queue(n, connection=self._redis) for n in (source, target))
            offset = 0
            while ids := queue.get_job_ids(offset, PROMOTE_PAGE):
                for job in Job.fetch_many(ids, connection=self._redis):
                    if job is None or job.enqueued_at is None:
                        offset += 1  # left where it is: the next page starts after it
                        continue
                    at = job.enqueued_at
                    if (at if at.tzinfo else at.replace(tzinfo=UTC)) >= enqueued_before:
                        return moved
                    if self._redis.lrem(queue.key, 1, job.id):
                        higher.enqueue_job(job)
                        moved.append(str(job.args[0]) if job.args else job.id)
        except RedisError as exc:
            raise QueueError(f"cannot age jobs of {source}: {exc}") from exc
        return moved

    def ping(self) -> None:
        try:
            self._redis.ping()
        except RedisError as exc:
            raise QueueError(f"Redis unreachable: {exc}") from exc
