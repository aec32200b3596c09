"""Readiness answers from a look at most HEALTH_CACHE_S old, one look at a time (fakes only)."""

from __future__ import annotations

import threading

import pytest

from orchestrator.service.health import Checks, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.reads = threading.Semaphore(0)  # released once per reading

    def __call__(self) -> float:
        self.reads.release()
        return self.now


class Probe:
    def __init__(self) -> None:
        self.looks = 0
        self.answer: Checks = {"postgres": "ok"}

    def __call__(self) -> Checks:
        self.looks += 1
        return dict(self.answer)


def test_answers_within_max_age_come_from_one_look() -> None:
    clock, probe = Clock(), Probe()
    readiness = Readiness(probe, max_age_s=1.0, clock=clock)
    assert readiness.checks() == {"postgres": "ok"}
    clock.now += 0.9
    probe.answer = {"postgres": "error: down"}
    assert readiness.checks() == {"postgres": "ok"} and probe.looks == 1


def test_an_outage_shows_once_the_last_look_is_max_age_old() -> None:
    clock, probe = Clock(), Probe()
    readiness = Readiness(probe, max_age_s=1.0, clock=clock)
    readiness.checks()
    probe.answer = {"postgres": "error: down"}
    clock.now += 1.0
    assert readiness.checks() == {"postgres": "error: down"} and probe.looks == 2


def test_zero_max_age_looks_every_time() -> None:
    probe = Probe()
    readiness = Readiness(probe, max_age_s=0.0, clock=Clock())
    for _ in range(3):
        readiness.checks()
    assert probe.looks == 3


@pytest.mark.parametrize(("max_age_s", "looks_after"), [(1.0, 1), (0.0, 2)])
def test_callers_arriving_during_a_look_take_its_answer(max_age_s: float, looks_after: int) -> None:
    """Even with max age 0; a caller after the look looks again only when the answer has aged."""
    clock = Clock()
    started, release = threading.Event(), threading.Event()
    looks: list[int] = []

    def slow_probe() -> Checks:
        looks.append(1)
        started.set()
        release.wait(10)
        clock.now += 0.5  # the look takes time
        return {"postgres": "error: frozen"}

    readiness = Readiness(slow_probe, max_age_s=max_age_s, clock=clock)
    answers: list[Checks] = []
    first = threading.Thread(target=lambda: answers.append(readiness.checks()))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=lambda: answers.append(readiness.checks())) for _ in range(5)]
    for t in others:
        t.start()
    # Each caller reads the clock once as it arrives (the first one too): all have arrived.
    for _ in range(6):
        assert clock.reads.acquire(timeout=10)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert len(looks) == 1
    assert answers == [{"postgres": "error: frozen"}] * 6
    readiness.checks()  # a caller after the look
    assert len(looks) == looks_after
