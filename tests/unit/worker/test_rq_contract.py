"""What worker/slot.py relies on inside RQ, beyond its documented API.

``SlotWorker`` overrides private methods and reads private state of ``rq.Worker``. pyproject
pins rq to one major version; this test fails loudly, naming the piece, when an RQ release
(even a minor one) renames, re-signs or stops calling any of them."""

from __future__ import annotations

import inspect

import pytest
import rq
from rq import Queue, SimpleWorker, Worker

from worker.slot import SlotWorker


def _source_of_worker() -> str:
    """The source of every class SlotWorker's RQ base is made of (BaseWorker holds the loop)."""
    return "".join(
        inspect.getsource(cls) for cls in SimpleWorker.__mro__ if cls.__module__.startswith("rq.")
    )


def test_the_pinned_major_version() -> None:
    assert rq.__version__.split(".")[0] == "3", rq.__version__


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("execute_job", ["self", "job", "queue"]),  # admission wraps it
        ("_shutdown", ["self"]),  # deferred during admission
        ("register_death", ["self"]),  # ending a dead predecessor's registration
    ],
)
def test_overridden_or_called_worker_methods_keep_their_signature(
    method: str, parameters: list[str]
) -> None:
    assert list(inspect.signature(getattr(SimpleWorker, method)).parameters) == parameters


def test_slot_worker_overrides_exist_in_rq() -> None:
    for name in ("execute_job", "_shutdown"):
        assert name in vars(SlotWorker), name
        assert callable(getattr(SimpleWorker, name, None)), f"rq.SimpleWorker.{name} is gone"


def test_slots_run_jobs_in_their_own_process() -> None:
    # No work horse: SimpleWorker performs the job where it was dequeued, so the task runs
    # with the slot's clients (and its admission's claimed view) instead of a fork's.
    assert issubclass(SlotWorker, SimpleWorker)
    source = inspect.getsource(SimpleWorker.execute_job)
    assert "self.perform_job(" in source and "fork_work_horse(" not in source


def test_the_work_loop_still_calls_shutdown_and_reads_stop_requested() -> None:
    # SlotWorker._shutdown sets _stop_requested instead of stopping mid-admission; that only
    # works while RQ's signal handler calls _shutdown and its loop reads _stop_requested.
    source = _source_of_worker()
    assert "self._shutdown()" in source
    assert "self._stop_requested" in source


def test_queue_calls_used_to_put_a_job_back() -> None:
    assert isinstance(Queue.intermediate_queue_key, property)
    assert list(inspect.signature(Queue.push_job_id).parameters) == [
        "self",
        "job_id",
        "pipeline",
        "at_front",
    ]


def test_worker_registration_lookup() -> None:
    assert Worker.redis_worker_namespace_prefix == "rq:worker:"
    assert list(inspect.signature(Worker.find_by_key).parameters)[:2] == [
        "worker_key",
        "connection",
    ]
