from __future__ import annotations

import threading
import time

from worker.heartbeat import Heartbeat


class FakeRepo:
    def __init__(self) -> None:
        self.beats = 0
        self.kill = False
        self.held = True
        self.fail = False

    def heartbeat(self, task_id: str, worker_id: str) -> bool:
        if self.fail:
            raise ConnectionError("db down")
        self.beats += 1
        return self.held

    def kill_requested(self, task_id: str) -> bool:
        if self.fail:
            raise ConnectionError("db down")
        return self.kill


def wait_for(event: threading.Event, seconds: float = 5) -> bool:
    return event.wait(seconds)


def make(repo: FakeRepo) -> Heartbeat:
    return Heartbeat(repo, "t", "w", interval_s=0.05, kill_poll_s=0.02)


def test_beats_while_running_and_stops_on_exit() -> None:
    repo = FakeRepo()
    with make(repo) as hb:
        deadline = time.monotonic() + 5
        while repo.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    beats = repo.beats
    assert beats >= 3
    time.sleep(0.2)
    assert repo.beats == beats  # the thread is gone
    assert not hb.stop.is_set()


def test_kill_request_sets_stop() -> None:
    repo = FakeRepo()
    with make(repo) as hb:
        repo.kill = True
        assert wait_for(hb.stop)
        assert hb.kill_requested.is_set()
        assert not hb.lost.is_set()


def test_losing_the_task_sets_stop_and_lost() -> None:
    repo = FakeRepo()
    with make(repo) as hb:
        repo.held = False
        assert wait_for(hb.lost)
        assert hb.stop.is_set()
        assert not hb.kill_requested.is_set()


def test_database_errors_do_not_stop_the_run() -> None:
    repo = FakeRepo()
    repo.fail = True
    with make(repo) as hb:
        time.sleep(0.3)
        assert not hb.stop.is_set()
        repo.fail = False
        repo.kill = True
        assert wait_for(hb.stop)
