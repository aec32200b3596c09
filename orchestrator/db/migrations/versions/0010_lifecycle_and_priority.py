"""tasks: priority, and the lifecycle of their data (deleted tombstones, inputs and results
removed by retention)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TERMINAL = "status IN ('done', 'error', 'killed')"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
    for name in ("deleted_at", "purged_at", "inputs_removed_at", "results_removed_at"):
        op.add_column("tasks", sa.Column(name, sa.DateTime(timezone=True)))
    op.add_column("tasks", sa.Column("deleted_reason", sa.Text()))
    # The reconciler's sweeps: each reads only the few rows it has work for.
    op.create_index(
        "ix_tasks_to_purge",
        "tasks",
        ["deleted_at"],
        postgresql_where=sa.text(
            f"deleted_at IS NOT NULL AND {TERMINAL} "
            "AND (purged_at IS NULL OR purged_at < finished_at)"
        ),
    )
    op.create_index(
        "ix_tasks_inputs_kept",
        "tasks",
        ["finished_at"],
        postgresql_where=sa.text(f"inputs_removed_at IS NULL AND {TERMINAL}"),
    )
    op.create_index(
        "ix_tasks_results_kept",
        "tasks",
        ["finished_at"],
        postgresql_where=sa.text(f"results_removed_at IS NULL AND {TERMINAL}"),
    )


def downgrade() -> None:
    for index in (
        "ix_tasks_results_kept",
        "ix_tasks_inputs_kept",
        "ix_tasks_to_purge",
    ):
        op.drop_index(index, table_name="tasks")
    for name in (
        "deleted_reason",
        "results_removed_at",
        "inputs_removed_at",
        "purged_at",
        "deleted_at",
        "priority",
    ):
        op.drop_column("tasks", name)
