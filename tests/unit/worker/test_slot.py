from __future__ import annotations

from rq.job import Job

from orchestrator.adapters.queue import JOB_FUNC
from worker.slot import slot_id, task_id_of
from worker.supervisor import slot_count


class FakeRedis:
    """Job() needs a connection object only to exist; nothing here talks to Redis."""


def job(func: str, *args: str) -> Job:
    return Job.create(func, args=args, connection=FakeRedis())  # type: ignore[arg-type]


def test_task_id_of_a_run_task_job() -> None:
    assert task_id_of(job(JOB_FUNC, "t-1")) == "t-1"


def test_other_jobs_are_not_admitted() -> None:
    assert task_id_of(job("os.getcwd")) is None


def test_slot_ids_are_members_of_their_worker() -> None:
    assert slot_id("host:42", 3) == "host:42/slot3"


def test_slot_count() -> None:
    assert slot_count(3, cpus=16) == 3
    assert slot_count(0, cpus=4) == 4
    assert slot_count(0, cpus=0) == 1


def test_the_queued_function_is_the_worker_job() -> None:
    # The API enqueues by name (it does not import the worker); the name must be the job's.
    from worker.job import run_task

    assert f"{run_task.__module__}.{run_task.__qualname__}" == JOB_FUNC
