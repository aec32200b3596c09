"""ix_task_inputs_uploading: the slots whose upload is in flight, for the reconciler's pages

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Each reconciler pass looks for uploads complete in storage whose post-finish never came: the
slots in ``uploading``. Without an index that was a scan of every slot ever made (three per
task, most of them filled long ago) every 10 s; this one holds only the slots uploading now,
in the order the pass pages through them.

Its key leaves out ``updated_at`` and ``offset``, which every post-receive changes: those
updates stay HOT (no index entry to add), as they were without it. Built CONCURRENTLY, outside
the migration's transaction, so writers of ``task_inputs`` are never held off meanwhile, nor
caught in a lock cycle with the locks earlier migrations take on ``tasks``.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # An interrupted build leaves an invalid index behind: built again from scratch.
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_task_inputs_uploading")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_task_inputs_uploading ON task_inputs (task_id, slot) "
            "WHERE state = 'uploading'"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_task_inputs_uploading")
