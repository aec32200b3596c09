"""Following a task's log stream: what is there, then new lines, until the end (fakes only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.service.logs import follow_stream
from tests.taskviews import task_view


@dataclass
class FakeTasks:
    status: TaskStatus = TaskStatus.RUNNING
    reads: int = 0

    def get(self, task_id: str) -> TaskView | None:
        self.reads += 1
        return task_view(id=task_id, status=self.status)


@dataclass
class ScriptedStream:
    """Each read answers the next scripted (lines, ended) and runs its side effect."""

    script: list[tuple[list[tuple[str, str]], bool]]
    calls: list[tuple[str, int | None]] = field(default_factory=list)
    effects: dict[int, Callable[[], None]] = field(default_factory=dict)

    def read(
        self, task_id: str, after: str = "0-0", block_ms: int | None = None, count: int = 1000
    ) -> tuple[list[tuple[str, str]], bool]:
        self.calls.append((after, block_ms))
        n = len(self.calls)
        if n in self.effects:
            self.effects[n]()
        return self.script.pop(0) if self.script else ([], False)

    def append(self, task_id: str, lines: list[str]) -> None: ...
    def close(self, task_id: str) -> None: ...
    def drop(self, task_id: str) -> None: ...


def run(
    stream: ScriptedStream,
    tasks: FakeTasks,
    first: Any,
    ended: bool,
    follow: bool,
    clock: Callable[[], float] | None = None,
) -> bytes:
    kwargs: dict[str, Any] = {"block_ms": 10, "grace_s": 2.0}
    if clock is not None:
        kwargs["clock"] = clock
    return b"".join(follow_stream(stream, tasks, "t", first, ended, follow, **kwargs))


def test_follow_until_the_end_marker() -> None:
    stream = ScriptedStream([([("2-0", "two\n")], False), ([], False), ([("3-0", "three")], True)])
    out = run(stream, FakeTasks(TaskStatus.DONE), [("1-0", "one")], False, follow=True)
    assert out == b"one\ntwo\nthree\n"
    assert [after for after, _ in stream.calls] == ["1-0", "2-0", "2-0"]
    assert all(block == 10 for _, block in stream.calls)


def test_already_ended_stream_is_read_once() -> None:
    stream = ScriptedStream([])
    assert run(stream, FakeTasks(TaskStatus.DONE), [("1-0", "a")], True, follow=True) == b"a\n"
    assert stream.calls == []


def test_an_end_marker_before_the_terminal_state_waits_for_that_state() -> None:
    """The worker marks the end, writes the terminal state, then marks the end again: a
    follower that saw the first mark ends only once the task is seen ended."""
    tasks = FakeTasks(TaskStatus.RUNNING)
    stream = ScriptedStream([([("2-0", "two")], True), ([], False), ([], True)])
    stream.effects[3] = lambda: setattr(tasks, "status", TaskStatus.DONE)
    out = run(stream, tasks, [("1-0", "one")], False, follow=True)
    assert out == b"one\ntwo\n"
    # After the first mark: new entries only, blocking (a timeout, then the second mark).
    assert stream.calls == [("1-0", 10), ("$", 10), ("$", 10)]
    assert tasks.status is TaskStatus.DONE and tasks.reads == 3


def test_no_follow_drains_what_is_there_without_blocking() -> None:
    stream = ScriptedStream([([("2-0", "b")], False), ([], False), ([("9-0", "late")], True)])
    out = run(stream, FakeTasks(), [("1-0", "a")], False, follow=False)
    assert out == b"a\nb\n"
    assert stream.calls == [("1-0", None), ("2-0", None)]


def test_terminal_task_without_end_marker_ends_after_the_grace() -> None:
    tasks = FakeTasks()
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    stream = ScriptedStream([])
    stream.effects[3] = lambda: setattr(tasks, "status", TaskStatus.DONE)
    out = run(stream, tasks, [], False, follow=True, clock=tick)
    assert out == b""
    # running for the first reads, then done: noticed, then the grace runs out on the clock
    assert tasks.status is TaskStatus.DONE and 4 <= len(stream.calls) <= 8


def test_lines_arriving_during_the_grace_are_kept() -> None:
    tasks = FakeTasks(status=TaskStatus.DONE)
    now = [0.0]

    def tick() -> float:
        now[0] += 0.5
        return now[0]

    stream = ScriptedStream([([("5-0", "last words")], False)])
    assert run(stream, tasks, [], False, follow=True, clock=tick) == b"last words\n"
