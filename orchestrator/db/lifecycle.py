"""The lifecycle of a task's data in PostgreSQL: tombstones, and what retention has removed.

The objects themselves are removed by ``orchestrator.service.lifecycle``; these calls find the
tasks with data due to go and record that it went. Each sweep reads through a partial index
(migration 0010) that holds only the rows with work left, so a sweep costs the same with 100
tasks or 100,000.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, or_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute

from orchestrator.db.database import Database
from orchestrator.db.models import Task, TaskInput
from orchestrator.domain.status import TERMINAL, TaskStatus

_TERMINAL = [s.value for s in TERMINAL]


class LifecycleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def fold_stored_bytes(self) -> int:
        """Fold the changes of stored bytes the triggers recorded into the per-project counts
        (migration 0011), so a read sums a row per project and kind, not every change since
        the start. One statement: a read sees the changes either still apart or folded in.
        Only the reconciler calls it, under its lock; returns how many changes it folded."""
        statement = text(
            "WITH moved AS (DELETE FROM stored_bytes_changes RETURNING project_id, kind, bytes),"
            " summed AS (SELECT project_id, kind, sum(bytes) AS bytes, count(*) AS n"
            " FROM moved GROUP BY project_id, kind),"
            " folded AS (INSERT INTO stored_bytes (project_id, kind, bytes)"
            " SELECT project_id, kind, bytes FROM summed ORDER BY project_id, kind"
            " ON CONFLICT (project_id, kind)"
            " DO UPDATE SET bytes = stored_bytes.bytes + EXCLUDED.bytes)"
            " SELECT coalesce(sum(n), 0) FROM summed"
        )
        with self._db.transaction() as s:
            return int(s.execute(statement).scalar() or 0)

    def mark_deleted(self, task_id: str, reason: str) -> bool:
        """Make the task a tombstone; False when it was one already (the first reason stays)."""
        with self._db.transaction() as s:
            done = s.execute(
                update(Task)
                .where(Task.id == task_id, Task.deleted_at.is_(None))
                .values(deleted_at=func.now(), deleted_reason=reason)
            )
            return bool(getattr(done, "rowcount", 0))

    def purged(self, task_id: str) -> None:
        """A deleted task's objects are gone: its inputs and results with them."""
        with self._db.transaction() as s:
            s.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    purged_at=func.now(),
                    inputs_removed_at=func.coalesce(Task.inputs_removed_at, func.now()),
                    results_removed_at=func.coalesce(Task.results_removed_at, func.now()),
                )
            )

    def to_purge(self, limit: int = 100) -> list[str]:
        """Deleted tasks that have ended since their objects were last removed (a running task
        deleted is purged once its worker has stopped it and stored its log)."""
        query = (
            select(Task.id)
            .where(
                Task.deleted_at.is_not(None),
                Task.status.in_(_TERMINAL),
                or_(Task.purged_at.is_(None), Task.purged_at < Task.finished_at),
            )
            .order_by(Task.deleted_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def inputs_due(self, ended_before: datetime, limit: int = 100) -> list[str]:
        """Ended tasks whose inputs are still kept and whose end is before the cutoff."""
        return self._ended_before(Task.inputs_removed_at, ended_before, limit)

    def results_due(self, ended_before: datetime, limit: int = 100) -> list[str]:
        return self._ended_before(Task.results_removed_at, ended_before, limit)

    def _ended_before(
        self, column: InstrumentedAttribute[datetime | None], ended_before: datetime, limit: int
    ) -> list[str]:
        query = (
            select(Task.id)
            .where(
                column.is_(None),
                Task.status.in_(_TERMINAL),
                Task.finished_at < ended_before,
            )
            .order_by(Task.finished_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def inputs_removed(self, task_id: str) -> None:
        with self._db.transaction() as s:
            s.execute(update(Task).where(Task.id == task_id).values(inputs_removed_at=func.now()))

    def results_removed(self, task_id: str) -> None:
        with self._db.transaction() as s:
            s.execute(update(Task).where(Task.id == task_id).values(results_removed_at=func.now()))

    def idle_waiting(self, quiet_since: datetime, limit: int = 100) -> list[str]:
        """Waiting tasks created before ``quiet_since`` with no upload activity since."""
        recent = exists(
            select(TaskInput.task_id).where(
                TaskInput.task_id == Task.id, TaskInput.updated_at >= quiet_since
            )
        )
        query = (
            select(Task.id)
            .where(
                Task.status == TaskStatus.WAITING.value,
                Task.created_at < quiet_since,
                ~recent,
            )
            .order_by(Task.created_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())
