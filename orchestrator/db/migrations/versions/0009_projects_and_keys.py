"""projects (with quotas) and api_keys; every task belongs to a project (existing ones to
"default")

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("max_running", sa.Integer()),
        sa.Column("max_stored_bytes", sa.BigInteger()),
        sa.Column("max_upload_bytes", sa.BigInteger()),
    )
    op.execute("INSERT INTO projects (id, name) VALUES ('default', 'default')")
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(36), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("shown", sa.String(16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('admin', 'member')", name="ck_api_keys_role"),
    )
    # A constant default: a catalogue change, whatever the table holds.
    op.add_column(
        "tasks",
        sa.Column("project_id", sa.String(36), nullable=False, server_default="default"),
    )
    op.create_foreign_key("fk_tasks_project", "tasks", "projects", ["project_id"], ["id"])
    op.create_index("ix_tasks_project_created_id", "tasks", ["project_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_project_created_id", table_name="tasks")
    op.drop_constraint("fk_tasks_project", "tasks", type_="foreignkey")
    op.drop_column("tasks", "project_id")
    op.drop_table("api_keys")
    op.drop_table("projects")
