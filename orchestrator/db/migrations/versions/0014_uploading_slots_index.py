"""ix_task_inputs_uploading: the slots whose upload is in flight, in the reconciler's order

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Each reconciler pass looks for uploads complete in storage whose post-finish never came: the
slots in ``uploading``, least recently changed first. Without an index that was a scan of
every slot ever made (three per task, most of them filled long ago) every 10 s; this one holds
only the slots uploading now, in the order the pass pages through them.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_task_inputs_uploading ON task_inputs (updated_at, task_id, slot) "
        "WHERE state = 'uploading'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_task_inputs_uploading")
