"""tasks and task_inputs

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("params", JSONB, nullable=False, server_default="{}"),
        sa.Column("resources", JSONB, nullable=False, server_default="{}"),
        sa.Column("queue", sa.String(50), nullable=False, server_default="default"),
        sa.Column("status", sa.String(16), nullable=False, server_default="waiting"),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("heartbeat_at", TS),
        sa.Column("kill_requested_at", TS),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("queued_at", TS),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("results", JSONB),
        sa.Column("stats", JSONB),
        sa.CheckConstraint(
            "status IN ('waiting', 'pending', 'running', 'done', 'error', 'killed')",
            name="ck_tasks_status",
        ),
    )
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at"])
    op.create_table(
        "task_inputs",
        sa.Column(
            "task_id",
            sa.String(36),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("required", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("state", sa.String(16), nullable=False, server_default="empty"),
        sa.Column("upload_id", sa.Text),
        sa.Column("filename", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("offset", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bucket", sa.Text),
        sa.Column("key", sa.Text),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS),
        sa.CheckConstraint("state IN ('empty', 'uploading', 'done')", name="ck_task_inputs_state"),
    )
    op.create_index("ix_task_inputs_upload_id", "task_inputs", ["upload_id"])


def downgrade() -> None:
    op.drop_table("task_inputs")
    op.drop_table("tasks")
