"""start_task as a use case, against an in-memory store whose first queueing attempt misses an
input that a hook filled meanwhile, as PostgreSQL's conditional UPDATE can."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from orchestrator.errors import Conflict
from orchestrator.service.finished import FinishedTasks
from orchestrator.service.tasks import MAX_RACES, start_task
from tests.taskviews import task_view

EMPTY = InputView(slot="first", required=True, state="empty")
DONE = replace(EMPTY, state="done")


class RacingTasks:
    """``fill_during`` attempts of queue_if_complete see the slot as it was before a fill that
    lands right after them, as a statement whose snapshot predates the hook's commit does."""

    def __init__(self, task: TaskView, fill_during: int = 0) -> None:
        self.task = task
        self.fill_during = fill_during
        self.attempts = 0

    def get(self, task_id: str) -> TaskView | None:
        return self.task if task_id == self.task.id else None

    def queue_if_complete(self, task_id: str, *, all_inputs: bool = False) -> bool:
        self.attempts += 1
        if self.attempts <= self.fill_during:
            self.task = replace(self.task, inputs=(DONE,))  # committed after our snapshot
            return False
        if self.task.status is not TaskStatus.WAITING or self.task.missing_inputs:
            return False
        self.task = replace(self.task, status=TaskStatus.PENDING)
        return True


@dataclass
class FakeQueue:
    jobs: list[str] = field(default_factory=list)

    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None:
        self.jobs.append(task_id)


@dataclass
class FakeServices:
    tasks: RacingTasks
    queue: FakeQueue = field(default_factory=FakeQueue)
    finished: FinishedTasks = field(default_factory=lambda: FinishedTasks(reuse_s=60))


def test_an_input_filled_during_the_attempt_is_seen_by_the_next() -> None:
    s = FakeServices(RacingTasks(task_view(inputs=(EMPTY,)), fill_during=1))
    assert start_task(s, "t1").status is TaskStatus.PENDING
    assert (s.tasks.attempts, s.queue.jobs) == (2, ["t1"])


def test_missing_inputs_are_named() -> None:
    s = FakeServices(RacingTasks(task_view(inputs=(EMPTY,))))
    with pytest.raises(Conflict, match="inputs not uploaded yet: first"):
        start_task(s, "t1")
    assert (s.tasks.attempts, s.queue.jobs) == (1, [])


def test_a_task_that_keeps_missing_its_fill_gives_up_after_a_few_attempts() -> None:
    s = FakeServices(RacingTasks(task_view(inputs=(EMPTY,)), fill_during=10**6))
    with pytest.raises(Conflict, match="inputs not uploaded yet"):
        start_task(s, "t1")
    assert s.tasks.attempts == MAX_RACES and s.queue.jobs == []
