"""task_counts per state and priority band, so /metrics' unfinished tasks per band read no task

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

/metrics reported the unfinished tasks per priority band by grouping the waiting, pending and
running tasks at each scrape: its p50 doubled between 100 and 100,000 tasks (3,000 of them
unfinished, ``bench/growth.py``). The counters of 0005 now keep a row per state and band
(``band``: the sign of the task's priority, as ``orchestrator.domain.priority.band_of`` bands
it), so that figure is read from 18 rows too. A move locks its two rows in key order before it
updates them: 0005 relied on two writers meeting the rows in the same scan order, which the
physical order of a table whose rows are rewritten at every update does not promise.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STATES = ("waiting", "pending", "running", "done", "error", "killed")
BAND = "sign({}.priority)::smallint"

TRACK_BY_BAND = f"""
CREATE OR REPLACE FUNCTION task_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE task_counts SET n = n + 1
         WHERE status = NEW.status AND band = {BAND.format("NEW")};
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE task_counts SET n = n - 1
         WHERE status = OLD.status AND band = {BAND.format("OLD")};
    ELSE
        -- Both rows locked in key order first: two opposite moves (A to B, B to A) then wait
        -- for each other instead of each locking one row as its scan met it.
        PERFORM 1 FROM task_counts
          WHERE (status, band) IN ((OLD.status, {BAND.format("OLD")}),
                                   (NEW.status, {BAND.format("NEW")}))
          ORDER BY status, band FOR UPDATE;
        UPDATE task_counts
           SET n = n
                 + CASE WHEN (status, band) = (NEW.status, {BAND.format("NEW")}) THEN 1 ELSE 0 END
                 - CASE WHEN (status, band) = (OLD.status, {BAND.format("OLD")}) THEN 1 ELSE 0 END
         WHERE (status, band) IN ((OLD.status, {BAND.format("OLD")}),
                                  (NEW.status, {BAND.format("NEW")}));
    END IF;
    RETURN NULL;
END $$
"""

TRACK_BY_STATE = """
CREATE OR REPLACE FUNCTION task_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
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


def upgrade() -> None:
    # Writers held off from here to the recount: no move is counted twice or missed.
    op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("ALTER TABLE task_counts ADD COLUMN band smallint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE task_counts DROP CONSTRAINT task_counts_pkey")
    op.execute("ALTER TABLE task_counts ADD PRIMARY KEY (status, band)")
    values = ", ".join(f"('{s}', {b})" for s in STATES for b in (-1, 1))
    op.execute(f"INSERT INTO task_counts (status, band) VALUES {values}")
    op.execute(TRACK_BY_BAND)
    # A priority changed without a move changes the band a task is counted in.
    op.execute("DROP TRIGGER task_counts_move ON tasks")
    op.execute(
        "CREATE TRIGGER task_counts_move AFTER UPDATE OF status, priority ON tasks FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status "
        "OR sign(OLD.priority) IS DISTINCT FROM sign(NEW.priority)) "
        "EXECUTE FUNCTION task_counts_track()"
    )
    op.execute("UPDATE task_counts SET n = 0")
    op.execute(
        "UPDATE task_counts c SET n = x.n FROM (SELECT status, "
        f"{BAND.format('tasks')} AS band, count(*) AS n FROM tasks GROUP BY 1, 2) x "
        "WHERE (c.status, c.band) = (x.status, x.band)"
    )


def downgrade() -> None:
    op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("DROP TRIGGER task_counts_move ON tasks")
    op.execute(
        "CREATE TRIGGER task_counts_move AFTER UPDATE OF status ON tasks FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION task_counts_track()"
    )
    op.execute(TRACK_BY_STATE)
    op.execute(
        "UPDATE task_counts c SET n = x.n FROM (SELECT status, sum(n) AS n FROM task_counts "
        "GROUP BY status) x WHERE c.status = x.status AND c.band = 0"
    )
    op.execute("DELETE FROM task_counts WHERE band <> 0")
    op.execute("ALTER TABLE task_counts DROP CONSTRAINT task_counts_pkey")
    op.execute("ALTER TABLE task_counts DROP COLUMN band")
    op.execute("ALTER TABLE task_counts ADD PRIMARY KEY (status)")
