"""workers: the fleet's self-announcements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("queues", JSONB, nullable=False, server_default="[]"),
        sa.Column("executor", sa.String(20), nullable=False, server_default="docker"),
        sa.Column("hardware", JSONB, nullable=False, server_default="{}"),
        sa.Column("capacity", JSONB, nullable=False, server_default="{}"),
        sa.Column("free", JSONB, nullable=False, server_default="{}"),
        sa.Column("running", JSONB, nullable=False, server_default="[]"),
        sa.Column("state", sa.String(16), nullable=False, server_default="up"),
        sa.Column("started_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('up', 'stopped')", name="ck_workers_state"),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("workers")
