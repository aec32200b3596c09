"""Table definitions. PostgreSQL is the truth about every task; Redis only carries work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.webhook import DeliveryState

STATUS_VALUES = ", ".join(f"'{s.value}'" for s in TaskStatus)
SLOT_STATES = ("empty", "uploading", "done")
TERMINAL_SQL = "status IN ('done', 'error', 'killed')"
DELIVERY_STATES = ", ".join(f"'{s.value}'" for s in DeliveryState)


class Base(DeclarativeBase):
    pass


class Project(Base):
    """A team's or a contractor's share of the service: its tasks, its keys, its quotas."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # "default", else a uuid
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Quotas (NULL: none): tasks running at once (more wait in pending), bytes stored (uploads
    # and results), bytes uploaded into one task.
    max_running: Mapped[int | None] = mapped_column(Integer)
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_upload_bytes: Mapped[int | None] = mapped_column(BigInteger)


class ApiKey(Base):
    """An API key: stored as its SHA-256 only (orchestrator.domain.access), never in clear."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('admin', 'member')", name="ck_api_keys_role"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    shown: Mapped[str] = mapped_column(String(16))  # the key's first characters, for listings
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="ck_tasks_status"),
        Index("ix_tasks_status_created", "status", "created_at"),
        # The listing across projects, an admin key's (migration 0003).
        Index("ix_tasks_created_id", "created_at", "id"),
        # The reconciler's optional-inputs starter (migration 0015).
        Index(
            "ix_tasks_waiting",
            "required_missing",
            "created_at",
            "id",
            postgresql_where=text("status = 'waiting'"),
        ),
        Index("ix_tasks_project_created_id", "project_id", "created_at", "id"),
        # The reconciler's lifecycle sweeps (migration 0010).
        Index(
            "ix_tasks_to_purge",
            "deleted_at",
            postgresql_where=text(
                f"deleted_at IS NOT NULL AND {TERMINAL_SQL} "
                "AND (purged_at IS NULL OR purged_at < finished_at)"
            ),
        ),
        Index(
            "ix_tasks_inputs_kept",
            "finished_at",
            postgresql_where=text(f"inputs_removed_at IS NULL AND {TERMINAL_SQL}"),
        ),
        Index(
            "ix_tasks_results_kept",
            "finished_at",
            postgresql_where=text(f"results_removed_at IS NULL AND {TERMINAL_SQL}"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(100))
    # The project of the key that created it (orchestrator.domain.access).
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", name="fk_tasks_project"),
        default="default",
        server_default="default",
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # cpus, memory_bytes, gpus, timeout_s, pids: the limits this task runs under.
    resources: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    queue: Mapped[str] = mapped_column(String(50), default="default")
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.WAITING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Required slots not filled yet: set at create, one less for each filled (slot_finished).
    # Waiting tasks at 0 are the ones the reconciler may start without their optional inputs.
    required_missing: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kill_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # [{"name", "key", "bytes", "sha256", "content_type"}] once done.
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # Resource accounting of the last run (cpu seconds, peak memory, wall time).
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Where a terminal state is POSTed (see orchestrator.notifier); None: no webhook.
    notify_url: Mapped[str | None] = mapped_column(Text)
    # orchestrator.domain.priority: the band a task waits in; high numbers first.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # DELETE /tasks/{id}: when and why; the row stays as a tombstone (query_task answers 410).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_reason: Mapped[str | None] = mapped_column(Text)
    # When a deleted task's objects were last removed: again if it ended after that.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Retention (orchestrator.domain.lifecycle): when the inputs / results were removed.
    inputs_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    results_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    inputs: Mapped[list[TaskInput]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskInput.position"
    )


class TaskInput(Base):
    """One input slot of a task and the upload that fills it."""

    __tablename__ = "task_inputs"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in SLOT_STATES) + ")",
            name="ck_task_inputs_state",
        ),
        Index("ix_task_inputs_upload_id", "upload_id"),
        # The reconciler's pages of uploads in flight (migration 0014).
        Index(
            "ix_task_inputs_uploading",
            "task_id",
            "slot",
            postgresql_where=text("state = 'uploading'"),
        ),
    )

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="empty")
    upload_id: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    bucket: Mapped[str | None] = mapped_column(Text)
    key: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    task: Mapped[Task] = relationship(back_populates="inputs")


class TaskCount(Base):
    """How many tasks are in each state and priority band, kept by triggers on ``tasks``
    (migrations 0005 and 0013) so that reading the counts costs the same with 100 tasks or
    100,000."""

    __tablename__ = "task_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The sign of the tasks' priority: 1 high, 0 normal, -1 low (domain.priority.band_of).
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class StoredBytes(Base):
    """Bytes a project keeps in each bucket (``kind``: uploads | results), kept by triggers
    on ``tasks`` and ``task_inputs`` (migration 0011): writers add rows to
    ``stored_bytes_changes``, which the reconciler folds in here; a read sums both."""

    __tablename__ = "stored_bytes"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)


class StoredBytesChange(Base):
    """One change of a project's stored bytes not folded into ``stored_bytes`` yet."""

    __tablename__ = "stored_bytes_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(8))
    bytes: Mapped[int] = mapped_column(BigInteger)


class Worker(Base):
    """A worker process as it last announced itself (see ``orchestrator.domain.capacity``)."""

    __tablename__ = "workers"
    __table_args__ = (
        CheckConstraint("state IN ('up', 'stopped')", name="ck_workers_state"),
        Index("ix_workers_last_seen", "last_seen_at"),
    )

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    queues: Mapped[list[str]] = mapped_column(JSONB, default=list)
    executor: Mapped[str] = mapped_column(String(20), default="docker")
    # cpus, memory_bytes, disk_bytes, gpus: [{index, model, memory_bytes, utilisation_pct}]
    hardware: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # What tasks may use in total (cpus, memory_bytes, gpus), and what is free of it now.
    capacity: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    free: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    running: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Pipeline images it has; NULL: it runs any (the local executor) or did not say.
    images: Mapped[list[str] | None] = mapped_column(JSONB, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="up")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Notification(Base):
    """One webhook notification: a task's terminal state, to be POSTed to its notify_url.

    Unique per (task, event), so replicas that all see the terminal task create it once. The
    notifier locks a due row (``FOR UPDATE SKIP LOCKED``) for the whole attempt, so no two
    replicas ever send it at the same time.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"state IN ({DELIVERY_STATES})", name="ck_notifications_state"),
        UniqueConstraint("task_id", "event", name="uq_notifications_task_event"),
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # X-Orchestrator-Delivery
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))  # task.done | task.error | task.killed
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    # [{"at", "status_code", "error", "duration_s"}], one per attempt, oldest first.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
