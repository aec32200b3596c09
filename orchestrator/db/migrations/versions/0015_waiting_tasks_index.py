"""ix_tasks_waiting replaces ix_tasks_ready: the reconciler's optional-inputs starter

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

ix_tasks_ready held only the ready tasks (``WHERE status = 'waiting' AND required_missing =
0``), with no key column the query filters on. PostgreSQL costs such an index by the
selectivity of ``status = 'waiting'`` alone, so on a grown table (bench/growth.py: 3,046
waiting tasks, 267 of them ready) it reckoned the same rows as through ix_tasks_status_created
and read those instead: 3,046 index entries and heap rows to keep 267, 3.4 ms of the query's
6.5 ms. Extended statistics on (status, required_missing) corrected the row estimate and not
the plan.

This index holds the waiting tasks keyed by ``required_missing`` first: ``required_missing =
0`` is an index condition, and on that table the planner took it, reading only the ready
tasks in creation order (0.14 ms for the 267). On other tables it may still prefer the status
index (tests/integration/orchestrator/db/test_schema.py grows one where it does); either
reads the waiting tasks only. It is larger than ix_tasks_ready (every waiting task, not only
the ready ones), still a few percent of the table.

Built CONCURRENTLY, outside the migration's transaction, as 0014's: creating it never holds
off the writers of ``tasks``.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # An interrupted build leaves an invalid index behind: built again from scratch.
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tasks_waiting")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_tasks_waiting "
            "ON tasks (required_missing, created_at, id) WHERE status = 'waiting'"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tasks_ready")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tasks_ready")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_tasks_ready ON tasks (created_at, id) "
            "WHERE status = 'waiting' AND required_missing = 0"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tasks_waiting")
