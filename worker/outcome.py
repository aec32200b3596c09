"""How a run's outcome becomes the task's final state and human-readable reason."""

from __future__ import annotations

from orchestrator.domain.status import TaskStatus
from pipelines.spec import Resources
from worker.executors.base import OutcomeKind, RunOutcome

ERROR_PREFIX = "error: "
# A reason is shown to users and stored in a text column; keep it readable.
MAX_REASON_CHARS = 1000


def human_bytes(n: int) -> str:
    """1073741824 → "1 GiB", 67108864 → "64 MiB", 1536 MiB → "1.5 GiB"."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{text} {unit}"
    return f"{n} B"


def pipeline_error_line(stderr_tail: str) -> str | None:
    """The reason a pipeline gave on its last stderr line (``error: <reason>``), if any."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    if lines and lines[-1].startswith(ERROR_PREFIX):
        return lines[-1][len(ERROR_PREFIX) :].strip() or None
    return None


def _shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def settle(outcome: RunOutcome, resources: Resources) -> tuple[TaskStatus, str | None]:
    """(final status, reason) for an outcome; the reason is None only for ``done``."""
    if outcome.kind is OutcomeKind.EXITED and outcome.exit_code == 0:
        return TaskStatus.DONE, None
    if outcome.kind is OutcomeKind.EXITED:
        given = pipeline_error_line(outcome.stderr_tail)
        if given:
            return TaskStatus.ERROR, _shorten(given)
        tail = outcome.log_tail.strip()
        last = "\n".join(tail.splitlines()[-5:]) if tail else "no output"
        return TaskStatus.ERROR, _shorten(f"pipeline exited with code {outcome.exit_code}: {last}")
    if outcome.kind is OutcomeKind.OOM:
        return TaskStatus.ERROR, f"out of memory: limit {human_bytes(resources.memory_bytes)}"
    if outcome.kind is OutcomeKind.TIMEOUT:
        return TaskStatus.KILLED, f"timed out after {resources.timeout_s} s"
    if outcome.kind is OutcomeKind.KILLED:
        return TaskStatus.KILLED, "killed on request"
    return TaskStatus.ERROR, _shorten(outcome.reason or "the pipeline could not be run")
