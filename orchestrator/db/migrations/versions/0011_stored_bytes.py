"""stored_bytes: bytes each project keeps per bucket, kept by triggers, so /metrics and the
max_stored_bytes quota never sum the tasks table

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Summing uploads and results over every task at each scrape cost /metrics 422 ms at 100,000
tasks (``bench/growth.py``), and the quota check at each pre-create as much per project.

Writers only ever INSERT a change (``stored_bytes_changes``): no row is shared between
concurrent uploads, nor locked in an order that could deadlock with ``task_counts``. The
reconciler folds the changes into ``stored_bytes`` in each pass (one at a time: it holds the
reconciler's lock), and a read adds the changes not folded yet, so a read is exact at once.

What is counted, as before: an input's size while its slot is uploading or done and its task's
inputs are not removed; a task's result bytes while its results are not removed.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Every byte kept, summed from the tables: at this migration, and after a TRUNCATE.
RECOUNT = """
INSERT INTO stored_bytes (project_id, kind, bytes)
SELECT project_id, kind, sum(bytes) FROM (
    SELECT t.project_id, 'uploads' AS kind, input_held(i.state, i.size) AS bytes
      FROM task_inputs i JOIN tasks t ON t.id = i.task_id
     WHERE t.inputs_removed_at IS NULL
    UNION ALL
    SELECT project_id, 'results', results_held(results)
      FROM tasks WHERE results_removed_at IS NULL
) held GROUP BY project_id, kind HAVING sum(bytes) <> 0
"""

FUNCTIONS = """
CREATE FUNCTION input_held(state varchar, size bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN state IN ('uploading', 'done') THEN coalesce(size, 0) ELSE 0 END $$;

CREATE FUNCTION inputs_held(task varchar) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT coalesce(sum(input_held(state, size)), 0)::bigint
     FROM task_inputs WHERE task_id = task $$;

CREATE FUNCTION results_held(results jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN jsonb_typeof(results) = 'array' THEN (
       SELECT coalesce(sum((r ->> 'bytes')::bigint), 0)::bigint
         FROM jsonb_array_elements(results) r)
   ELSE 0 END $$;

CREATE FUNCTION stored_bytes_change(project varchar, kind varchar, delta bigint) RETURNS void
    LANGUAGE sql AS
$$ INSERT INTO stored_bytes_changes (project_id, kind, bytes)
   SELECT project, kind, delta WHERE delta <> 0 $$;

-- An input's size or state changed: its task's project gains or loses the difference, unless
-- the task's inputs are already removed (or the task is gone: a cascade from its delete, which
-- took the task's whole part off before).
CREATE FUNCTION stored_bytes_inputs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint := 0;
    task varchar;
    project varchar;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        delta := delta - input_held(OLD.state, OLD.size);
        task := OLD.task_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        delta := delta + input_held(NEW.state, NEW.size);
        task := NEW.task_id;
    END IF;
    IF delta <> 0 THEN
        SELECT project_id INTO project FROM tasks WHERE id = task AND inputs_removed_at IS NULL;
        IF FOUND THEN
            PERFORM stored_bytes_change(project, 'uploads', delta);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- A task's inputs or results were removed, its results recorded, or the task deleted (before
-- the delete, while its inputs are still there to count).
CREATE FUNCTION stored_bytes_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.inputs_removed_at IS NULL THEN
            PERFORM stored_bytes_change(OLD.project_id, 'uploads', -inputs_held(OLD.id));
        END IF;
        IF OLD.results_removed_at IS NULL THEN
            PERFORM stored_bytes_change(OLD.project_id, 'results', -results_held(OLD.results));
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.inputs_removed_at IS NULL THEN
            PERFORM stored_bytes_change(NEW.project_id, 'uploads', inputs_held(NEW.id));
        END IF;
        IF NEW.results_removed_at IS NULL THEN
            PERFORM stored_bytes_change(NEW.project_id, 'results', results_held(NEW.results));
        END IF;
        RETURN NULL;
    END IF;
    RETURN OLD;
END $$;

-- Counted again from the tables after a TRUNCATE.
CREATE FUNCTION stored_bytes_recount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stored_bytes_changes;
    DELETE FROM stored_bytes;
    {RECOUNT};
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE stored_bytes (project_id varchar(36) NOT NULL, kind varchar(8) NOT NULL, "
        "bytes bigint NOT NULL, PRIMARY KEY (project_id, kind))"
    )
    op.execute(
        "CREATE TABLE stored_bytes_changes (id bigserial PRIMARY KEY, "
        "project_id varchar(36) NOT NULL, kind varchar(8) NOT NULL, bytes bigint NOT NULL)"
    )
    op.execute(FUNCTIONS.replace("{RECOUNT}", RECOUNT))
    op.execute(
        "CREATE TRIGGER stored_bytes_inputs AFTER INSERT OR DELETE OR UPDATE OF state, size "
        "ON task_inputs FOR EACH ROW EXECUTE FUNCTION stored_bytes_inputs()"
    )
    op.execute(
        "CREATE TRIGGER stored_bytes_tasks_insert AFTER INSERT ON tasks FOR EACH ROW "
        "EXECUTE FUNCTION stored_bytes_tasks()"
    )
    op.execute(
        "CREATE TRIGGER stored_bytes_tasks AFTER UPDATE OF project_id, results, "
        "inputs_removed_at, results_removed_at ON tasks FOR EACH ROW WHEN ("
        "OLD.project_id IS DISTINCT FROM NEW.project_id "
        "OR OLD.results IS DISTINCT FROM NEW.results "
        "OR OLD.inputs_removed_at IS DISTINCT FROM NEW.inputs_removed_at "
        "OR OLD.results_removed_at IS DISTINCT FROM NEW.results_removed_at) "
        "EXECUTE FUNCTION stored_bytes_tasks()"
    )
    op.execute(
        "CREATE TRIGGER stored_bytes_tasks_delete BEFORE DELETE ON tasks FOR EACH ROW "
        "EXECUTE FUNCTION stored_bytes_tasks()"
    )
    for table in ("tasks", "task_inputs"):
        op.execute(
            f"CREATE TRIGGER stored_bytes_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION stored_bytes_recount()"
        )
    # The bytes already there, counted once under a lock that holds writers off meanwhile.
    op.execute("LOCK TABLE tasks, task_inputs IN SHARE ROW EXCLUSIVE MODE")
    op.execute(RECOUNT)


def downgrade() -> None:
    for table in ("tasks", "task_inputs"):
        op.execute(f"DROP TRIGGER stored_bytes_truncate ON {table}")
    op.execute("DROP TRIGGER stored_bytes_tasks_delete ON tasks")
    op.execute("DROP TRIGGER stored_bytes_tasks ON tasks")
    op.execute("DROP TRIGGER stored_bytes_tasks_insert ON tasks")
    op.execute("DROP TRIGGER stored_bytes_inputs ON task_inputs")
    for function in (
        "stored_bytes_recount()",
        "stored_bytes_tasks()",
        "stored_bytes_inputs()",
        "stored_bytes_change(varchar, varchar, bigint)",
        "results_held(jsonb)",
        "inputs_held(varchar)",
        "input_held(varchar, bigint)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE stored_bytes_changes")
    op.execute("DROP TABLE stored_bytes")
