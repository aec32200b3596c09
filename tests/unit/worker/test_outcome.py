from __future__ import annotations

import pytest

from orchestrator.domain.status import TaskStatus
from pipelines.spec import GiB, MiB, Resources
from worker.executors.base import OutcomeKind, RunOutcome
from worker.outcome import human_bytes, pipeline_error_line, settle

RES = Resources(cpus=1, memory_bytes=64 * MiB, timeout_s=3)


@pytest.mark.parametrize(
    ("n", "text"),
    [(64 * MiB, "64 MiB"), (2 * GiB, "2 GiB"), (1536 * MiB, "1.5 GiB"), (512, "512 B")],
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_exit_zero_is_done_without_reason() -> None:
    assert settle(RunOutcome(OutcomeKind.EXITED, exit_code=0), RES) == (TaskStatus.DONE, None)


def test_pipeline_error_line_is_the_reason_verbatim() -> None:
    outcome = RunOutcome(
        OutcomeKind.EXITED,
        exit_code=2,
        log_tail="loading\nerror: input 'pre' is not a LAS/LAZ file\n",
        stderr_tail="warning: x\nerror: input 'pre' is not a LAS/LAZ file\n",
    )
    assert settle(outcome, RES) == (TaskStatus.ERROR, "input 'pre' is not a LAS/LAZ file")


def test_error_line_counts_only_when_last() -> None:
    assert pipeline_error_line("error: early\nTraceback ...\nValueError: x") is None


def test_nonzero_exit_without_error_line_carries_the_log_tail() -> None:
    outcome = RunOutcome(
        OutcomeKind.EXITED,
        exit_code=1,
        log_tail="Traceback (most recent call last):\nValueError: bad\n",
        stderr_tail="Traceback (most recent call last):\nValueError: bad\n",
    )
    status, reason = settle(outcome, RES)
    assert status is TaskStatus.ERROR
    assert reason is not None
    assert reason.startswith("pipeline exited with code 1: ")
    assert reason.endswith("ValueError: bad")


def test_huge_log_tail_is_shortened() -> None:
    outcome = RunOutcome(OutcomeKind.EXITED, exit_code=1, log_tail="x" * 50_000)
    _, reason = settle(outcome, RES)
    assert reason is not None and len(reason) <= 1000


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (RunOutcome(OutcomeKind.OOM), (TaskStatus.ERROR, "out of memory: limit 64 MiB")),
        (RunOutcome(OutcomeKind.TIMEOUT), (TaskStatus.KILLED, "timed out after 3 s")),
        (RunOutcome(OutcomeKind.KILLED), (TaskStatus.KILLED, "killed on request")),
        (
            RunOutcome(OutcomeKind.FAILED, reason="pipeline image 'x' is not available"),
            (TaskStatus.ERROR, "pipeline image 'x' is not available"),
        ),
    ],
)
def test_abnormal_outcomes(outcome: RunOutcome, expected: tuple[TaskStatus, str]) -> None:
    assert settle(outcome, RES) == expected
