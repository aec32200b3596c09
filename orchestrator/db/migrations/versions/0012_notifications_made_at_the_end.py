"""notifications made by a trigger in the transaction that ends the task, not found by a scan

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Before, every API replica's notifier looked once a second for terminal tasks with a
``notify_url`` and no notification yet: an anti-join over every such task ever finished, a cost
that grew with the table, paid every second by every replica. A task ends exactly once, in one
statement (the status moves into a terminal state), so the notification is inserted there, by
the database, whichever process ended the task: it exists once the end commits, and the
notifier only delivers. (As with the counters of 0005 and 0011, a data-only restore runs with
triggers disabled: ``pg_restore --disable-triggers``.)
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TERMINAL = "('done', 'error', 'killed')"

# What the notifier used to do each second: a notification, due now, for every terminal task
# with a URL that has none for its state. Once here, for the tasks already there.
BACKFILL = f"""
INSERT INTO notifications (id, task_id, event, url, state, next_attempt_at)
SELECT gen_random_uuid()::text, t.id, 'task.' || t.status, t.notify_url, 'pending', now()
  FROM tasks t
 WHERE t.notify_url IS NOT NULL AND t.status IN {TERMINAL}
ON CONFLICT (task_id, event) DO NOTHING
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notifications_on_end() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO notifications (id, task_id, event, url, state, next_attempt_at)
            VALUES (gen_random_uuid()::text, NEW.id, 'task.' || NEW.status, NEW.notify_url,
                    'pending', now())
            ON CONFLICT (task_id, event) DO NOTHING;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER notifications_on_end AFTER UPDATE OF status ON tasks FOR EACH ROW "
        f"WHEN (NEW.notify_url IS NOT NULL AND NEW.status IN {TERMINAL} "
        "AND OLD.status IS DISTINCT FROM NEW.status) "
        "EXECUTE FUNCTION notifications_on_end()"
    )
    # Tasks are made waiting; one inserted already ended (a restore, a test) is notified too.
    op.execute(
        "CREATE TRIGGER notifications_on_insert_ended AFTER INSERT ON tasks FOR EACH ROW "
        f"WHEN (NEW.notify_url IS NOT NULL AND NEW.status IN {TERMINAL}) "
        "EXECUTE FUNCTION notifications_on_end()"
    )
    # Under a lock that holds writers off: a task ending meanwhile is either in the backfill or
    # notified by the trigger.
    op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute(BACKFILL)
    # It ordered the scan this replaces, and nothing else reads it.
    op.drop_index("ix_tasks_notify", table_name="tasks")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_tasks_notify ON tasks (finished_at) WHERE notify_url IS NOT NULL")
    op.execute("DROP TRIGGER notifications_on_insert_ended ON tasks")
    op.execute("DROP TRIGGER notifications_on_end ON tasks")
    op.execute("DROP FUNCTION notifications_on_end()")
