"""webhooks: tasks.notify_url and the notifications the API POSTs to it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Nullable, no default: adding it is a catalogue change only, even on a large table.
    op.add_column("tasks", sa.Column("notify_url", sa.Text(), nullable=True))
    # The notifier looks every second for terminal tasks with a URL and no notification yet;
    # only tasks with a URL are in this index, so the look stays cheap.
    op.create_index(
        "ix_tasks_notify",
        "tasks",
        ["finished_at"],
        postgresql_where=sa.text("notify_url IS NOT NULL"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "task_id",
            sa.String(36),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", JSONB, nullable=False, server_default="[]"),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name="ck_notifications_state"
        ),
        sa.UniqueConstraint("task_id", "event", name="uq_notifications_task_event"),
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_index("ix_tasks_notify", table_name="tasks")
    op.drop_column("tasks", "notify_url")
