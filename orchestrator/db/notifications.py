"""The notification repository: webhook notifications of terminal tasks and their attempts.

Race-free across API replicas without any coordination but PostgreSQL's:

* a notification is made by the database, in the transaction that ends its task (the trigger
  of migration 0012), once: the unique (task, event) pair holds it to one;
* ``claim_due`` locks one due row with ``FOR UPDATE SKIP LOCKED`` and keeps the lock (and its
  transaction) for the whole attempt, so another replica skips it instead of sending it too.
  A replica that dies mid-attempt loses its transaction and the row is due again at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from orchestrator.db.database import Database
from orchestrator.db.models import Notification
from orchestrator.domain.webhook import DeliveryState, Outcome

TABLE = Notification.__table__

_ANY_DUE = (
    "SELECT EXISTS (SELECT 1 FROM notifications"
    f" WHERE state = '{DeliveryState.PENDING.value}' AND next_attempt_at <= now())"
)


@dataclass(frozen=True)
class NotificationView:
    id: str  # also the X-Orchestrator-Delivery header of every attempt
    task_id: str
    event: str
    url: str
    state: DeliveryState
    attempts: list[dict[str, Any]]  # {"at", "status_code", "error", "duration_s"}
    next_attempt_at: datetime | None
    created_at: datetime


def _view(row: Row[Any]) -> NotificationView:
    return NotificationView(
        id=row.id,
        task_id=row.task_id,
        event=row.event,
        url=row.url,
        state=DeliveryState(row.state),
        attempts=list(row.attempts or []),
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
    )


class Claim:
    """A due notification locked by this caller until the ``claim_due`` block ends."""

    def __init__(self, conn: Connection, notification: NotificationView) -> None:
        self._conn = conn
        self.notification = notification

    def now(self) -> datetime:
        """The database's clock (not the transaction's start): one clock for all replicas."""
        return self._conn.execute(select(func.clock_timestamp())).scalar_one()

    def record(self, attempt: dict[str, Any], outcome: Outcome) -> None:
        # The row is locked, so appending in Python cannot lose a concurrent append.
        self._conn.execute(
            update(Notification)
            .where(Notification.id == self.notification.id)
            .values(
                attempts=[*self.notification.attempts, attempt],
                state=outcome.state.value,
                next_attempt_at=outcome.next_attempt_at,
                updated_at=func.now(),
            )
        )


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def any_due(self) -> bool:
        """Whether a pending notification is due: the notifier's check each second, one
        statement on the partial index of pending rows through the driver, so an idle pass
        costs next to nothing."""
        with self._db.driver() as conn, conn.cursor() as cur:
            cur.execute(_ANY_DUE)
            row = cur.fetchone()
        return bool(row and row[0])

    @contextmanager
    def claim_due(self) -> Iterator[Claim | None]:
        """Lock the most overdue pending notification (None: nothing is due or all due ones are
        being sent by others). What the block records commits when it ends."""
        q = (
            select(TABLE)
            .where(
                Notification.state == DeliveryState.PENDING.value,
                Notification.next_attempt_at <= func.now(),
            )
            .order_by(Notification.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._db.begin() as conn:
            row = conn.execute(q).first()
            yield None if row is None else Claim(conn, _view(row))

    def for_task(self, task_id: str) -> list[NotificationView]:
        q = select(TABLE).where(Notification.task_id == task_id).order_by(Notification.created_at)
        with self._db.connect() as conn:
            return [_view(r) for r in conn.execute(q)]

    def get(self, notification_id: str) -> NotificationView | None:
        with self._db.connect() as conn:
            row = conn.execute(select(TABLE).where(Notification.id == notification_id)).first()
            return None if row is None else _view(row)
