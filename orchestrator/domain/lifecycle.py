"""How long a task's data lives: the retention policy and the dates it gives. Pure.

    created ──(no upload activity for waiting_expiry)──▶ killed "expired: no uploads for N days"
    ended ──(input_retention)──▶ inputs removed
    ended ──(result_retention)──▶ results removed
    deleted (DELETE /tasks/{id}) ──▶ everything removed; the row stays as a tombstone (410)

An upload that was started and never finished leaves an incomplete multipart upload in the
object store; those older than ``multipart_abort`` are aborted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DAY_S = 86_400


@dataclass(frozen=True)
class Retention:
    """Every period in seconds; 0 keeps that kind of data for ever."""

    input_s: float  # after the task ends, its inputs go
    result_s: float  # after the task ends, its results go
    waiting_s: float  # a waiting task without upload activity this long is killed
    multipart_s: float  # an unfinished multipart upload this old is aborted

    def results_expire_at(self, finished_at: datetime | None) -> datetime | None:
        if finished_at is None or self.result_s <= 0:
            return None
        return finished_at + timedelta(seconds=self.result_s)

    def inputs_expire_at(self, finished_at: datetime | None) -> datetime | None:
        if finished_at is None or self.input_s <= 0:
            return None
        return finished_at + timedelta(seconds=self.input_s)


def cutoff(now: datetime, period_s: float) -> datetime | None:
    """What was last touched before this has lived ``period_s``; None: kept for ever."""
    return None if period_s <= 0 else now - timedelta(seconds=period_s)


def whole_days(period_s: float) -> int:
    """A period as the object store's lifecycle rules count it: whole days, at least one."""
    return max(1, -(-int(period_s) // DAY_S))


def expiry_reason(waiting_s: float) -> str:
    return f"expired: no uploads for {_span(waiting_s)}"


def _span(seconds: float) -> str:
    for unit, size in (("day", DAY_S), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = round(seconds)
    return f"{n} second{'s' if n != 1 else ''}"
