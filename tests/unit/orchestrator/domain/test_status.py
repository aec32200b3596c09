"""The pure task state machine: every pair of states, legal or not."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.domain.status import (
    NEEDS_REASON,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    TaskStatus,
    can_transition,
    check_transition,
    sources_of,
)

S = TaskStatus
LEGAL = {
    (S.WAITING, S.PENDING),
    (S.WAITING, S.KILLED),
    (S.WAITING, S.ERROR),
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.KILLED),
    (S.PENDING, S.ERROR),
    (S.RUNNING, S.DONE),
    (S.RUNNING, S.ERROR),
    (S.RUNNING, S.KILLED),
    (S.RUNNING, S.PENDING),
}
ALL_PAIRS = list(itertools.product(TaskStatus, TaskStatus))


def _reason(target: TaskStatus) -> str | None:
    return "because" if target in NEEDS_REASON else None


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_exactly_the_designed_moves_are_legal(current: TaskStatus, target: TaskStatus) -> None:
    assert can_transition(current, target) is ((current, target) in LEGAL)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_moves_pass_the_check(current: TaskStatus, target: TaskStatus) -> None:
    check_transition(current, target, _reason(target))


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_moves_raise(current: TaskStatus, target: TaskStatus) -> None:
    with pytest.raises(IllegalTransition, match="not a legal transition"):
        check_transition(current, target, "some reason")


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_never_change(terminal: TaskStatus) -> None:
    assert terminal.terminal
    assert TRANSITIONS[terminal] == frozenset()
    for target in TaskStatus:
        assert not can_transition(terminal, target)


def test_only_done_error_killed_are_terminal() -> None:
    assert {s for s in TaskStatus if s.terminal} == {S.DONE, S.ERROR, S.KILLED}


@pytest.mark.parametrize("target", [S.ERROR, S.KILLED])
@pytest.mark.parametrize("reason", [None, ""])
def test_error_and_killed_need_a_reason(target: TaskStatus, reason: str | None) -> None:
    with pytest.raises(IllegalTransition, match="needs a reason"):
        check_transition(S.RUNNING, target, reason)


@pytest.mark.parametrize("target", [S.PENDING, S.RUNNING, S.DONE])
def test_other_targets_need_no_reason(target: TaskStatus) -> None:
    source = next(iter(sources_of(target)))
    check_transition(source, target, None)


@pytest.mark.parametrize("target", list(TaskStatus))
def test_sources_of_inverts_the_table(target: TaskStatus) -> None:
    assert sources_of(target) == frozenset(c for c, t in LEGAL if t == target)


def test_a_set_of_sources_must_all_be_legal() -> None:
    check_transition(frozenset({S.WAITING, S.PENDING}), S.KILLED, "killed on request")
    with pytest.raises(IllegalTransition, match="done"):
        check_transition(frozenset({S.PENDING, S.DONE}), S.KILLED, "killed on request")


def test_retry_is_the_only_way_back() -> None:
    backwards = {(c, t) for c, t in LEGAL if list(TaskStatus).index(t) < list(TaskStatus).index(c)}
    assert backwards == {(S.RUNNING, S.PENDING)}
