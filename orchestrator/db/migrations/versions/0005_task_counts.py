"""task_counts: tasks per state, kept by triggers, so /metrics never counts the tasks table

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATES = ("waiting", "pending", "running", "done", "error", "killed")


def upgrade() -> None:
    op.execute(
        "CREATE TABLE task_counts (status varchar(16) PRIMARY KEY, n bigint NOT NULL DEFAULT 0)"
    )
    values = ", ".join(f"('{s}')" for s in STATES)
    op.execute(f"INSERT INTO task_counts (status) VALUES {values}")
    # Every move updates two rows here until its transaction commits, so moves into or out of
    # one state take turns on its row: moves are single-row statements committed at once, a
    # handful per task. One statement per move touches both rows: writers meet the two rows in
    # the same scan order, so opposite moves (running → pending, pending → running) wait for
    # each other rather than each holding one row. Were a deadlock detected anyway, PostgreSQL
    # aborts one write, which its caller sees as an outage: a 503, or the worker's retry.
    op.execute(
        """
        CREATE FUNCTION task_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
            ELSE
                UPDATE task_counts
                   SET n = n + CASE WHEN status = NEW.status THEN 1 ELSE -1 END
                 WHERE status IN (OLD.status, NEW.status);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION task_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE task_counts SET n = 0;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER task_counts_insert_delete AFTER INSERT OR DELETE ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION task_counts_track()"
    )
    op.execute(
        "CREATE TRIGGER task_counts_move AFTER UPDATE OF status ON tasks FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION task_counts_track()"
    )
    op.execute(
        "CREATE TRIGGER task_counts_truncate AFTER TRUNCATE ON tasks "
        "FOR EACH STATEMENT EXECUTE FUNCTION task_counts_reset()"
    )
    # The tasks already there, counted once under a lock that holds writers off meanwhile.
    op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "UPDATE task_counts c SET n = x.n "
        "FROM (SELECT status, count(*) AS n FROM tasks GROUP BY status) x "
        "WHERE c.status = x.status"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER task_counts_truncate ON tasks")
    op.execute("DROP TRIGGER task_counts_move ON tasks")
    op.execute("DROP TRIGGER task_counts_insert_delete ON tasks")
    op.execute("DROP FUNCTION task_counts_reset()")
    op.execute("DROP FUNCTION task_counts_track()")
    op.execute("DROP TABLE task_counts")
