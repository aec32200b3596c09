"""The docker executor's exit watch: only the wait request's own read timeout means "still
running"; the container gone or the engine unreachable ends the watch at once (fakes only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3
from docker.errors import NotFound

from worker.executors.docker import _ExitWatch


class FakeContainer:
    """``wait`` answers with the scripted outcomes in turn (an exception is raised)."""

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def wait(self, timeout: float) -> dict[str, Any]:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return {"StatusCode": 0}


def watched(container: FakeContainer) -> _ExitWatch:
    watch = _ExitWatch(container)
    watch.start()
    assert watch.exited.wait(10), "the watch never ended"
    return watch


def read_timeout() -> BaseException:
    # What requests raises when the streamed wait body does not come within the timeout.
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ReadTimeoutError(
            urllib3.HTTPConnectionPool("docker"), "/wait", "Read timed out."
        )
    )


def test_an_exit_ends_the_watch() -> None:
    container = FakeContainer(None)
    watched(container)
    assert container.calls == 1


@pytest.mark.parametrize(
    "timeout", [read_timeout, lambda: requests.exceptions.ReadTimeout("Read timed out.")]
)
def test_a_read_timeout_asks_again(timeout: Callable[[], BaseException]) -> None:
    container = FakeContainer(timeout(), timeout(), None)
    watched(container)
    assert container.calls == 3


@pytest.mark.parametrize(
    "failure",
    [
        lambda: NotFound("No such container"),  # removed under the run: also a RequestException
        lambda: requests.exceptions.ConnectionError("Connection refused"),  # engine down
    ],
)
def test_anything_else_ends_the_watch_at_once(failure: Callable[[], BaseException]) -> None:
    container = FakeContainer(failure(), None)
    watched(container)
    assert container.calls == 1
