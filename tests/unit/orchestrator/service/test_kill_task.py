"""kill_task as a use case, against an in-memory task store that keeps the repository's contract:
conditional moves that say whether this caller won, and the state machine's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orchestrator.domain.status import TaskStatus, check_transition, sources_of
from orchestrator.domain.task import TaskView
from orchestrator.errors import Conflict, NotFound
from orchestrator.service.tasks import KILL_REASON, kill_task
from tests.taskviews import task_view


class FakeTasks:
    """Tasks in a dict; ``before_move`` lets a test change a task between a read and a move,
    as another process would."""

    def __init__(self, *tasks: TaskView) -> None:
        self.rows = {t.id: t for t in tasks}
        self.before_move: list[TaskStatus] = []  # statuses another caller sets, one per move

    def get(self, task_id: str) -> TaskView | None:
        return self.rows.get(task_id)

    def _race(self, task_id: str) -> None:
        if self.before_move:
            self.rows[task_id] = replace(self.rows[task_id], status=self.before_move.pop(0))

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        expected: TaskStatus | frozenset[TaskStatus] | None = None,
        reason: str | None = None,
    ) -> bool:
        self._race(task_id)
        sources = (
            sources_of(target)
            if expected is None
            else (expected if isinstance(expected, frozenset) else frozenset({expected}))
        )
        check_transition(sources, target, reason)
        task = self.rows[task_id]
        if task.status not in sources:
            return False
        self.rows[task_id] = replace(task, status=target, reason=reason)
        return True

    def request_kill(self, task_id: str) -> bool:
        self._race(task_id)
        task = self.rows[task_id]
        if task.status is not TaskStatus.RUNNING:
            return False
        self.rows[task_id] = replace(task, kill_requested_at=datetime.now(UTC))
        return True


def _task(status: TaskStatus) -> TaskView:
    return task_view(status=status)


@pytest.mark.parametrize("status", [TaskStatus.WAITING, TaskStatus.PENDING])
def test_a_task_not_running_is_killed_at_once(status: TaskStatus) -> None:
    tasks = FakeTasks(_task(status))
    outcome = kill_task(tasks, "t1")
    assert outcome.kill_requested is False
    assert (outcome.task.status, outcome.task.reason) == (TaskStatus.KILLED, KILL_REASON)


def test_a_running_task_gets_a_kill_request_and_keeps_running() -> None:
    tasks = FakeTasks(_task(TaskStatus.RUNNING))
    outcome = kill_task(tasks, "t1")
    assert outcome.kill_requested is True
    assert outcome.task.status is TaskStatus.RUNNING
    assert outcome.task.kill_requested_at is not None


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED])
def test_a_finished_task_is_a_conflict_naming_its_state(status: TaskStatus) -> None:
    with pytest.raises(Conflict, match=f"already {status.value}") as raised:
        kill_task(FakeTasks(_task(status)), "t1")
    assert raised.value.extra == {"status": status.value}


def test_an_unknown_task_is_not_found() -> None:
    with pytest.raises(NotFound, match="unknown task nope"):
        kill_task(FakeTasks(), "nope")


def test_a_lost_race_is_answered_from_the_state_that_won() -> None:
    # Read as waiting; the last upload queues it (pending) just before the move, which then
    # fails; read again as pending and killed.
    tasks = FakeTasks(_task(TaskStatus.WAITING))
    tasks.before_move = [TaskStatus.PENDING]
    outcome = kill_task(tasks, "t1")
    assert (outcome.task.status, outcome.kill_requested) == (TaskStatus.KILLED, False)


def test_a_task_that_starts_under_the_kill_gets_a_kill_request() -> None:
    tasks = FakeTasks(_task(TaskStatus.PENDING))
    tasks.before_move = [TaskStatus.RUNNING]
    outcome = kill_task(tasks, "t1")
    assert (outcome.task.status, outcome.kill_requested) == (TaskStatus.RUNNING, True)


def test_a_task_that_finishes_under_the_kill_is_a_conflict() -> None:
    tasks = FakeTasks(_task(TaskStatus.RUNNING))
    tasks.before_move = [TaskStatus.DONE]
    with pytest.raises(Conflict, match="already done"):
        kill_task(tasks, "t1")
