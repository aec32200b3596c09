"""The task state machine: an enum and a transition table.

    waiting ──▶ pending ──▶ running ──▶ done | error | killed
       │           │           │
       └───────────┴──▶ killed └──▶ pending   (reconciler retry after a worker died)

Terminal states never change. Every transition in the database is a conditional UPDATE on the
expected current state, so this table is the only place that says which moves are legal.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    WAITING = "waiting"  # created, inputs not all uploaded
    PENDING = "pending"  # all inputs in, queued for a worker
    RUNNING = "running"  # a worker holds it
    DONE = "done"
    ERROR = "error"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[TaskStatus] = frozenset({TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED})

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WAITING: frozenset({TaskStatus.PENDING, TaskStatus.KILLED, TaskStatus.ERROR}),
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.KILLED, TaskStatus.ERROR}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.KILLED, TaskStatus.PENDING}
    ),
    TaskStatus.DONE: frozenset(),
    TaskStatus.ERROR: frozenset(),
    TaskStatus.KILLED: frozenset(),
}

# States whose transition into these targets must carry a human-readable reason.
NEEDS_REASON: frozenset[TaskStatus] = frozenset({TaskStatus.ERROR, TaskStatus.KILLED})


class IllegalTransition(ValueError):
    """A move the transition table forbids (a programming error, not a lost race)."""


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: TaskStatus) -> frozenset[TaskStatus]:
    """Every state from which ``target`` may be reached: the WHERE clause of a transition."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def check_transition(
    current: TaskStatus | frozenset[TaskStatus], target: TaskStatus, reason: str | None
) -> None:
    """Raise ``IllegalTransition`` unless every state in ``current`` may move to ``target``."""
    currents = current if isinstance(current, frozenset) else frozenset({current})
    bad = sorted(s.value for s in currents if not can_transition(s, target))
    if bad:
        raise IllegalTransition(f"{', '.join(bad)} → {target.value} is not a legal transition")
    if target in NEEDS_REASON and not reason:
        raise IllegalTransition(f"a move to {target.value} needs a reason")
