"""The slot's last resort: the process ends when a task outlives its job's timeout."""

from __future__ import annotations

import threading

from worker.overrun import OverrunGuard


class Ending:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_a_task_past_its_timeout_ends_the_process() -> None:
    end = Ending()
    guard = OverrunGuard(grace_s=0.0, end=end)
    with guard.watching("t1", timeout_s=0.01):
        # The run is stuck: it only gets out because the guard fired.
        assert end.called.wait(30)
    assert end.codes == [1]


def test_a_task_that_ends_in_time_ends_nothing() -> None:
    end = Ending()
    guard = OverrunGuard(grace_s=3600.0, end=end)
    with guard.watching("t1", timeout_s=0.0):
        pass
    # Leaving the block cancelled the timer and waited for its thread: it can never fire now.
    assert end.codes == []
