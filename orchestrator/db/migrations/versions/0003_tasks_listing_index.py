"""tasks: index for the newest-first keyset listing (GET /tasks)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ORDER BY created_at DESC, id DESC with a (created_at, id) < (:at, :id) cursor; status
    # filters use ix_tasks_status_created, pipeline filters this one plus a recheck.
    op.create_index("ix_tasks_created_id", "tasks", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_created_id", table_name="tasks")
