"""Finished tasks answered from memory: only terminal views are kept, links are reused for a
bounded time, and anything else is read again."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultFile, TaskView
from orchestrator.errors import NotFound
from orchestrator.service.finished import FinishedTasks, link_reuse_s
from orchestrator.service.tasks import get_task, result_links
from orchestrator.settings import Settings
from tests.taskviews import task_view

RESULT = ResultFile(
    name="r.json", bytes=2, sha256="ab", content_type="application/json", key="t1/r.json"
)
DONE = task_view(status=TaskStatus.DONE, results=(RESULT,))


class CountingTasks:
    def __init__(self, *tasks: TaskView) -> None:
        self.rows = {t.id: t for t in tasks}
        self.reads = 0

    def get(self, task_id: str) -> TaskView | None:
        self.reads += 1
        return self.rows.get(task_id)


class CountingSigner:
    def __init__(self) -> None:
        self.signed = 0

    def presign_get(self, bucket: str, key: str, expiry_s: int, filename: str) -> str:
        self.signed += 1
        return f"https://s3/{bucket}/{key}?sig={self.signed}&expires={expiry_s}"


@dataclass
class FakeServices:
    tasks: CountingTasks
    finished: FinishedTasks
    storage: CountingSigner = field(default_factory=CountingSigner)
    settings: Settings = field(default_factory=lambda: Settings(presign_expiry_s=3600))


def services(*tasks: TaskView, reuse_s: float = 60) -> FakeServices:
    return FakeServices(CountingTasks(*tasks), FinishedTasks(reuse_s=reuse_s))


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED])
def test_a_finished_task_is_read_once(status: TaskStatus) -> None:
    s = services(task_view(status=status, reason="r"))
    assert get_task(s, "t1").status is status
    assert get_task(s, "t1").status is status
    assert s.tasks.reads == 1


@pytest.mark.parametrize("status", [TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING])
def test_an_unfinished_task_is_read_every_time(status: TaskStatus) -> None:
    s = services(task_view(status=status))
    get_task(s, "t1")
    s.tasks.rows["t1"] = task_view(status=TaskStatus.DONE)
    assert get_task(s, "t1").status is TaskStatus.DONE  # the change is seen at once
    assert s.tasks.reads == 2


def test_an_unknown_task_is_not_remembered() -> None:
    s = services()
    for _ in range(2):
        with pytest.raises(NotFound):
            get_task(s, "nope")
    assert s.tasks.reads == 2


def test_links_are_signed_once_within_the_reuse_window() -> None:
    s = services(DONE, reuse_s=3600)
    task = get_task(s, "t1")
    first = result_links(s, task)
    assert result_links(s, task) == first
    assert s.storage.signed == 1
    assert first is not None and first[0].url.endswith("expires=3600")


def test_links_past_the_reuse_window_are_signed_again() -> None:
    s = services(DONE, reuse_s=0)
    task = get_task(s, "t1")
    first, second = result_links(s, task), result_links(s, task)
    assert s.storage.signed == 2
    assert first != second


def test_no_links_before_done() -> None:
    s = services(task_view(status=TaskStatus.RUNNING))
    assert result_links(s, get_task(s, "t1")) is None
    assert s.storage.signed == 0


def test_the_least_recently_read_task_is_forgotten_first() -> None:
    cache = FinishedTasks(reuse_s=60, capacity=2)
    for task_id in ("a", "b"):
        cache.keep(task_view(id=task_id, status=TaskStatus.DONE))
    assert cache.view("a") is not None  # "b" is now the least recently read
    cache.keep(task_view(id="c", status=TaskStatus.DONE))
    assert [t for t in ("a", "b", "c") if cache.view(t)] == ["a", "c"]
    assert len(cache) == 2


def test_links_are_reused_for_a_tenth_of_their_life_and_at_most_a_minute() -> None:
    assert link_reuse_s(3600) == 60
    assert link_reuse_s(300) == 30
    assert link_reuse_s(1) == 0.1
