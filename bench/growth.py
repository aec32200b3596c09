"""How API latencies grow with the tasks table, side by side at each size, in one run.

    python -m bench.growth [--env .stack-test/env] [--sizes 100,10000,100000] [--samples 200]

Needs a running stack (``python -m devstack up --profile test``). On the stack's PostgreSQL it
makes a scratch database (``--database``, dropped and recreated at start, dropped at the end;
the stack's own ``orchestrator`` database is not touched), migrates it to head with Alembic and
starts its own API process on it (``python -m orchestrator serve``, the stack's settings but
that database, a free public and hook port, and the Redis database ``--redis-db`` so that
nothing reaches the stack's queues). Its reconciler never runs (``RECONCILE_INTERVAL_S`` of a
day): it would move the rows the measurements read.

For each size in turn, the table is grown with ``INSERT ... SELECT ... FROM generate_series``
to that many tasks: created over the last 8 weeks; 3 % waiting (their ``task_inputs`` in every
state: abandoned with required inputs missing, uploads in flight, optional inputs still
uploading, and required inputs in with optional ones left empty and quiet, which the reconciler
would start), 4 % error, 4 % killed, five running and three pending, the rest done with three
results each; a quarter of the finished tasks and most of the waiting ones are
``volcal_baseline`` (two optional inputs), the others ``checksum``. Then ``VACUUM ANALYZE``,
which autovacuum would have done to a table that grew over weeks, and the fold of the
stored-bytes changes the reconciler makes in each pass (migration 0011), then a VACUUM
ANALYZE of the rows it deleted.

Measured at each size, ``--samples`` sequential requests each (one ``requests.Session``,
``time.perf_counter``), after ``WARMUP`` unmeasured ones; p50 and p99 in ms:

* GET /query_task of a done task (from the second call on, answered from the API's memory);
* GET /tasks?limit=20, the first page, and the page after a cursor 90 % deep into the table
  (taken from the API itself, following ``next_cursor``);
* GET /metrics (tasks by state from ``task_counts``, histograms from Redis, workers);
* ``TaskRepository.idle_with_required_inputs``, the reconciler's optional-inputs starter
  query, called in this process on a repository built as ``orchestrator.bootstrap`` builds it;
  its ``EXPLAIN (ANALYZE, BUFFERS)`` plan is printed at the largest size;
* POST /create_task (``checksum``) and, for each task created, tusd's ``pre-create`` hook for
  its first input on the internal hook listener (Basic auth with ``HOOK_SECRET``). The tasks
  these make are deleted before the table grows again.

Prints one table: a row per measurement, p50 / p99 at each size, and the ratio of the largest
size's p50 to the smallest's. Speed is not asserted anywhere: these figures are the record
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests
from redis import Redis
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from bench.flow import free_port, read_env, wait_up
from orchestrator.db.database import Database
from orchestrator.db.engine import Timeouts, make_engine
from orchestrator.db.lifecycle import LifecycleRepository
from orchestrator.db.migrate import upgrade
from orchestrator.db.repository import TaskRepository
from orchestrator.settings import Settings

WARMUP = 20
DEEP = 0.9  # where the deep cursor points: this fraction of the table lies before it
PAGE = 20
MAX_PAGE = 500  # orchestrator.domain.listing.MAX_LIMIT
RUNNING, PENDING = 5, 3  # bounded by the fleet, not by the table's history
POSTGRES_UP = b'orchestrator_scrape_source_up{source="postgres"} 1.0'
SERVE = [sys.executable, "-m", "orchestrator", "serve", "--host", "127.0.0.1"]
ROWS = (
    "query_task (done)",
    "tasks?limit=20 (first page)",
    f"tasks?limit=20 (cursor {DEEP:.0%} deep)",
    "metrics",
    "reconciler optional-inputs query",
    "create_task (checksum)",
    "hook pre-create",
)

# --- the table's growth ------------------------------------------------------------------------
# One row per new task, with what its columns and its input slots are drawn from.
NEW_TASKS = """
CREATE TEMP TABLE grow ON COMMIT DROP AS
WITH g AS MATERIALIZED (
    SELECT i, gen_random_uuid()::text AS id, random() AS r_status, random() AS r_kind,
           random() AS r_pipe, random() AS r_age, random() AS r_wait, random() AS r_run
    FROM generate_series(1, %(n)s) AS i
), s AS (
    SELECT g.*,
        CASE WHEN i <= %(running)s THEN 'running'
             WHEN i <= %(running)s + %(pending)s THEN 'pending'
             WHEN r_status < 0.03 THEN 'waiting'
             WHEN r_status < 0.07 THEN 'error'
             WHEN r_status < 0.11 THEN 'killed'
             ELSE 'done' END AS status
    FROM g
), k AS (
    SELECT s.*,
        CASE WHEN r_pipe < (CASE WHEN status = 'waiting' THEN 0.6 ELSE 0.25 END)
             THEN 'volcal_baseline' ELSE 'checksum' END AS pipeline,
        CASE WHEN status = 'killed' THEN
                 CASE WHEN r_kind < 0.5 THEN 'before_start' ELSE 'run' END
             WHEN status <> 'waiting' THEN 'run'
             WHEN r_kind < 0.70 THEN 'abandoned'
             WHEN r_kind < 0.85 THEN 'uploading'
             WHEN r_kind < 0.95 THEN 'optional_pending'
             ELSE 'idle_candidate' END AS kind
    FROM s
), t AS (
    SELECT k.*,
        -- checksum has no optional input: its waiting tasks are abandoned or uploading.
        CASE WHEN pipeline = 'checksum' AND kind = 'optional_pending' THEN 'uploading'
             WHEN pipeline = 'checksum' AND kind = 'idle_candidate' THEN 'abandoned'
             ELSE kind END AS slots,
        now() - CASE
            WHEN status IN ('running', 'pending') THEN r_age * interval '1 hour'
            WHEN status = 'waiting' AND kind <> 'abandoned' THEN r_age * interval '1 hour'
            ELSE r_age * interval '56 days' END AS created_at,
        CASE WHEN pipeline = 'volcal_baseline' THEN 300 + r_run * 2700
             ELSE 1 + r_run * 60 END AS run_s
    FROM k
)
SELECT t.*,
    CASE WHEN kind = 'run' THEN least(created_at + (5 + r_wait * 600) * interval '1 s', now())
    END AS queued_at
FROM t
"""

INSERT_TASKS = """
INSERT INTO tasks (id, pipeline, params, resources, queue, status, reason, attempts, worker_id,
                   heartbeat_at, created_at, updated_at, queued_at, started_at, finished_at,
                   results, stats)
SELECT id, pipeline,
    CASE WHEN pipeline = 'checksum'
         THEN '{"algorithm": "sha256", "sleep_s": 0, "allocate_mb": 0, "tick_s": 0}'::jsonb
         ELSE '{"grid_resolution_m": 0.0}'::jsonb END,
    CASE WHEN pipeline = 'checksum'
         THEN '{"cpus": 0.5, "gpus": 0, "pids": 64, "timeout_s": 300,
                "memory_bytes": 268435456}'::jsonb
         ELSE '{"cpus": 2.0, "gpus": 0, "pids": 256, "timeout_s": 3600,
                "memory_bytes": 4294967296}'::jsonb END,
    'default', status,
    CASE WHEN status = 'error' THEN (ARRAY['exit code 1', 'out of memory: limit 256 MiB',
                                           'timed out after 300 s',
                                           'worker lost 3 times (last: host-2/slot0)'])
                                    [1 + floor(r_kind * 4)::int]
         WHEN status = 'killed' THEN 'killed on request' END,
    CASE WHEN started_at IS NULL THEN 0 WHEN r_wait < 0.02 THEN 2 ELSE 1 END,
    CASE WHEN started_at IS NOT NULL
         THEN 'host-' || (1 + floor(r_pipe * 4))::int || '/slot' || floor(r_run * 2)::int END,
    CASE WHEN status = 'running' THEN now() - r_run * interval '4 s' ELSE started_at END,
    created_at, coalesce(finished_at, started_at, queued_at, created_at), queued_at, started_at,
    finished_at,
    CASE WHEN status = 'done' THEN jsonb_build_array(
        jsonb_build_object('name', 'checksums.json', 'key', id || '/checksums.json',
                           'bytes', 236, 'sha256', md5(id) || md5(id || 'c'),
                           'content_type', 'application/json'),
        jsonb_build_object('name', 'logs.txt', 'key', id || '/logs.txt',
                           'bytes', 26, 'sha256', md5(id) || md5(id || 'l'),
                           'content_type', 'text/plain'),
        jsonb_build_object('name', 'manifest.json', 'key', id || '/manifest.json',
                           'bytes', 439, 'sha256', md5(id) || md5(id || 'm'),
                           'content_type', 'application/json')) END,
    CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL THEN jsonb_build_object(
        'wall_s', round(run_s::numeric, 3), 'cpu_seconds', round((run_s * 0.8)::numeric, 3),
        'peak_memory_bytes', 4000000 + floor(r_wait * 200000000)::bigint) END
FROM (
    SELECT grow.*,
        CASE WHEN status IN ('done', 'error', 'killed') THEN
            CASE WHEN started_at IS NOT NULL THEN least(started_at + run_s * interval '1 s', now())
                 ELSE least(created_at + r_wait * interval '2 days', now()) END
        END AS finished_at
    FROM (
        SELECT grow.*,
            CASE WHEN status IN ('running', 'done', 'error') OR status = 'killed' AND kind = 'run'
                 THEN least(queued_at + r_run * interval '20 s', now()) END AS started_at
        FROM grow
    ) AS grow
) AS x
"""

# The slots of each pipeline (pipelines/*/spec.py): name, position, required.
SLOTS = """
(VALUES ('checksum', 'first', 0, true), ('checksum', 'second', 1, true),
        ('volcal_baseline', 'pre', 0, true), ('volcal_baseline', 'post', 1, true),
        ('volcal_baseline', 'shp', 2, true), ('volcal_baseline', 'shx', 3, true),
        ('volcal_baseline', 'dbf', 4, false), ('volcal_baseline', 'prj', 5, false))
    AS slot (pipeline, name, position, required)
"""

INSERT_INPUTS = f"""
INSERT INTO task_inputs (task_id, slot, position, required, state, upload_id, filename, size,
                         "offset", bucket, key, updated_at, finished_at)
SELECT id, name, position, required, state,
    CASE WHEN state <> 'empty' THEN object || '+' || md5(object) END,
    CASE WHEN state <> 'empty' THEN name || '.bin' END,
    CASE WHEN state <> 'empty' THEN bytes END,
    CASE WHEN state = 'done' THEN bytes WHEN state = 'uploading' THEN bytes / 2 ELSE 0 END,
    CASE WHEN state <> 'empty' THEN 'uploads' END,
    CASE WHEN state <> 'empty' THEN object END,
    CASE WHEN state = 'uploading' THEN now() - random() * interval '2 s'
         WHEN state = 'done' THEN least(created_at + (position + 1) * interval '5 s', now())
         ELSE created_at END,
    CASE WHEN state = 'done' THEN least(created_at + (position + 1) * interval '5 s', now()) END
FROM (
    SELECT grow.id, grow.created_at, slot.name, slot.position, slot.required,
        grow.id || '/' || slot.name || '/' || left(md5(grow.id || slot.name), 24) AS object,
        (1000 + floor(random() * 100000000))::bigint AS bytes,
        CASE slots
            WHEN 'run' THEN
                CASE WHEN slot.required OR random() < 0.5 THEN 'done' ELSE 'empty' END
            WHEN 'before_start' THEN 'empty'
            WHEN 'abandoned' THEN
                CASE WHEN slot.position = 0 AND r_kind < 0.35 THEN 'done' ELSE 'empty' END
            WHEN 'uploading' THEN
                CASE slot.position WHEN 0 THEN 'done' WHEN 1 THEN 'uploading' ELSE 'empty' END
            WHEN 'optional_pending' THEN
                CASE WHEN slot.required OR slot.name = 'dbf' THEN 'done' ELSE 'uploading' END
            WHEN 'idle_candidate' THEN
                CASE WHEN slot.required OR slot.name = 'dbf' AND r_kind > 0.975
                     THEN 'done' ELSE 'empty' END
        END AS state
    FROM grow JOIN {SLOTS} ON slot.pipeline = grow.pipeline
) AS x
"""

# Uploads in flight move their slot every second: keep them recent, as they would be.
TOUCH_UPLOADS = """
UPDATE task_inputs SET updated_at = now() - random() * interval '2 s'
WHERE state = 'uploading'
"""


@dataclass(frozen=True)
class TableState:
    tasks: int
    waiting: int
    task_inputs: int


# What TaskRepository.create and slot_finished keep for tasks made through the API.
REQUIRED_MISSING = """
UPDATE tasks t SET required_missing = (
    SELECT count(*) FROM task_inputs i WHERE i.task_id = t.id AND i.required AND i.state <> 'done')
WHERE t.status = 'waiting' AND t.required_missing = 0
"""


def grow(conn: psycopg.Connection[Any], size: int) -> TableState:
    """Add tasks until there are ``size``; VACUUM ANALYZE."""
    have = _count(conn, "SELECT count(*) FROM tasks")
    if size > have:
        running = max(
            0, RUNNING - _count(conn, "SELECT count(*) FROM tasks WHERE status = 'running'")
        )
        pending = max(
            0, PENDING - _count(conn, "SELECT count(*) FROM tasks WHERE status = 'pending'")
        )
        with conn.transaction():
            params = {"n": size - have, "running": running, "pending": pending}
            conn.execute(NEW_TASKS, params)
            conn.execute(INSERT_TASKS)
            conn.execute(INSERT_INPUTS)
            conn.execute(REQUIRED_MISSING)
    conn.execute("VACUUM ANALYZE tasks")
    conn.execute("VACUUM ANALYZE task_inputs")
    return TableState(
        tasks=_count(conn, "SELECT count(*) FROM tasks"),
        waiting=_count(conn, "SELECT count(*) FROM tasks WHERE status = 'waiting'"),
        task_inputs=_count(conn, "SELECT count(*) FROM task_inputs"),
    )


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


# --- the scratch database and the API on it ----------------------------------------------------
def libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg's conninfo."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(stack_url: str, name: str, keep: bool) -> Iterator[str]:
    """A fresh database ``name`` on the stack's server, migrated to head; its SQLAlchemy URL."""
    url = make_url(stack_url).set(database=name).render_as_string(hide_password=False)
    if name == make_url(stack_url).database:
        sys.exit(f"--database {name} is the stack's own database")
    with psycopg.connect(libpq(stack_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url)
        yield url
    finally:
        if keep:
            print(f"kept the scratch database {name}")
        else:
            with psycopg.connect(libpq(stack_url), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_db(stack_url: str, index: int) -> str:
    parts = urlsplit(stack_url)
    return parts._replace(path=f"/{index}").geturl()


@contextmanager
def api_server(env: dict[str, str]) -> Iterator[str]:
    """``python -m orchestrator serve`` with ``env``; its public URL while it runs."""
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_up(f"{api}/health/live", server=server)
            except RuntimeError as exc:
                log.seek(0)
                sys.exit(f"{exc}:\n{log.read()[-4000:]}")
            yield api
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(30)


# --- measurements ------------------------------------------------------------------------------
def timed(call: Callable[[], object], samples: int, warmup: int = WARMUP) -> list[float]:
    """Milliseconds of ``samples`` sequential calls, after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        call()
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p50(ms: list[float]) -> float:
    return statistics.median(ms)


def p99(ms: list[float]) -> float:
    return statistics.quantiles(ms, n=100, method="inclusive")[98]


def ok(r: requests.Response) -> requests.Response:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.url}: {r.status_code} {r.text[:500]}")
    return r


class Client:
    """The API as a client sees it, and the hook listener as tusd sees it."""

    def __init__(self, api: str, key: str, hook_url: str, hook_secret: str) -> None:
        self.api = api
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = key
        self.hook_url = hook_url
        self.hooks = requests.Session()
        self.hooks.auth = ("tusd", hook_secret)
        self.failed_scrapes = 0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = ok(self.http.get(self.api + path, params=params, timeout=30)).json()
        return body

    def metrics(self) -> None:
        """A scrape; one that could not read PostgreSQL (it still answers 200) is counted."""
        body = ok(self.http.get(self.api + "/metrics", timeout=30)).content
        if POSTGRES_UP not in body:
            self.failed_scrapes += 1

    def create(self) -> dict[str, Any]:
        r = self.http.post(
            self.api + "/create_task", json={"pipeline": "checksum", "params": {}}, timeout=30
        )
        body: dict[str, Any] = ok(r).json()
        return body

    def pre_create(self, upload_url: str, filename: str, size: int) -> None:
        """tusd's pre-create hook for a POST to ``upload_url`` (as recorded from tusd)."""
        parts = urlsplit(upload_url)
        body = {
            "Type": "pre-create",
            "Event": {
                "Upload": {
                    "ID": "",
                    "Size": size,
                    "SizeIsDeferred": False,
                    "Offset": 0,
                    "MetaData": {"filename": filename},
                    "IsPartial": False,
                    "IsFinal": False,
                    "PartialUploads": None,
                    "Storage": None,
                },
                "HTTPRequest": {
                    "Method": "POST",
                    "URI": f"{parts.path}?{parts.query}",
                    "RemoteAddr": "127.0.0.1:45488",
                    "Header": {"Tus-Resumable": ["1.0.0"], "Upload-Length": [str(size)]},
                },
            },
        }
        answer = ok(self.hooks.post(self.hook_url, json=body, timeout=30)).json()
        if answer.get("RejectUpload") or "ChangeFileInfo" not in answer:
            raise RuntimeError(f"pre-create not accepted: {answer}")

    def deep_cursor(self, depth: int) -> str:
        """The API's own next_cursor after the ``depth`` newest tasks."""
        cursor: str | None = None
        left = depth
        while left > 0:
            params: dict[str, Any] = {"limit": min(left, MAX_PAGE)}
            if cursor is not None:
                params["cursor"] = cursor
            page = self.get("/tasks", **params)
            left -= len(page["tasks"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if cursor is None or left > 0:
            raise RuntimeError(f"the listing ended before {depth} tasks")
        return cursor


class StatementLog:
    """The last SELECT an engine sent, with its parameters, as the driver got them."""

    def __init__(self, engine: Engine) -> None:
        self.last: tuple[str, Any] | None = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "task_inputs" in statement:
            self.last = (statement, params)


def explain(engine: Engine, statements: StatementLog) -> str:
    if statements.last is None:
        return "(no query seen)"
    statement, params = statements.last
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).scalars()
        plan = "\n".join(f"    {line}" for line in rows)
    return f"    {' '.join(statement.split())}\n    -- {params}\n{plan}"


def measure(
    client: Client,
    repo: TaskRepository,
    conn: psycopg.Connection[Any],
    settings: Settings,
    state: TableState,
    samples: int,
    notes: list[str],
) -> dict[str, list[float]]:
    row = conn.execute(
        "SELECT id FROM tasks WHERE status = 'done' AND pipeline = 'checksum' "
        "ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    assert row is not None, "no done task"
    done_id = row[0]
    cursor = client.deep_cursor(int(state.tasks * DEEP))
    grace = timedelta(seconds=settings.optional_inputs_grace_s)
    found: list[int] = []

    def reconciler_query() -> None:
        found.append(len(repo.idle_with_required_inputs(datetime.now(UTC) - grace)))

    client.failed_scrapes = 0
    out = {
        ROWS[0]: timed(lambda: client.get(f"/query_task/{done_id}"), samples),
        ROWS[1]: timed(lambda: client.get("/tasks", limit=PAGE), samples),
        ROWS[2]: timed(lambda: client.get("/tasks", limit=PAGE, cursor=cursor), samples),
        ROWS[3]: timed(client.metrics, samples),
    }
    if client.failed_scrapes:
        notes.append(
            f"{state.tasks:,} tasks: {client.failed_scrapes} of {samples + WARMUP} scrapes "
            "could not read PostgreSQL (orchestrator_scrape_source_up 0)"
        )
    conn.execute(TOUCH_UPLOADS)
    out[ROWS[4]] = timed(reconciler_query, samples)
    print(f"  the reconciler's query found {found[-1]} tasks to start")

    # create_task, then tusd's pre-create for the new task's first input: the tasks they make
    # are deleted afterwards, so that the next size starts from exactly the grown table.
    created: list[str] = []
    creates: list[float] = []
    hooks: list[float] = []
    for i in range(samples + WARMUP):
        t0 = time.perf_counter()
        task = client.create()
        t1 = time.perf_counter()
        client.pre_create(task["upload_urls"]["first"], "first.bin", 1 << 20)
        t2 = time.perf_counter()
        created.append(task["task_id"])
        if i >= WARMUP:
            creates.append((t1 - t0) * 1000)
            hooks.append((t2 - t1) * 1000)
    out[ROWS[5]], out[ROWS[6]] = creates, hooks
    conn.execute("DELETE FROM tasks WHERE id = ANY(%s)", (created,))
    return out


# --- the report --------------------------------------------------------------------------------
def table(sizes: list[int], states: list[TableState], results: list[dict[str, list[float]]]) -> str:
    head = ["", *(f"{s.tasks:,} tasks ({s.waiting:,} waiting)" for s in states)]
    head.append(f"p50 ratio {states[-1].tasks:,} / {states[0].tasks:,}")
    lines = [head]
    lines.append(["", *(["p50 / p99 ms"] * len(sizes)), ""])
    for name in ROWS:
        cells = [f"{p50(r[name]):.2f} / {p99(r[name]):.2f}" for r in results]
        ratio = p50(results[-1][name]) / p50(results[0][name])
        lines.append([name, *cells, f"{ratio:.2f}"])
    widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[c]) if c == 0 else cell.rjust(widths[c])
            for c, cell in enumerate(line)
        )
        for line in lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default=".stack-test/env", type=Path)
    parser.add_argument("--sizes", default="100,10000,100000", help="table sizes, ascending")
    parser.add_argument("--samples", default=200, type=int, help="requests per measurement")
    parser.add_argument("--database", default="orchestrator_growth", help="scratch database")
    parser.add_argument("--redis-db", default=11, type=int, help="Redis database of the API")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes != sorted(sizes) or sizes[0] < 1 or args.samples < 2:
        sys.exit("--sizes: ascending, from 1; --samples: at least 2")
    env = read_env(args.env)
    redis_url = redis_db(env["REDIS_URL"], args.redis_db)
    redis = Redis.from_url(redis_url)
    if redis.dbsize():
        sys.exit(f"{redis_url} is not empty: choose another --redis-db")

    t_start = time.monotonic()
    with scratch_database(env["DATABASE_URL"], args.database, args.keep) as url:
        stack = {
            **env,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "HOOK_PORT": str(free_port()),
            "RECONCILE_INTERVAL_S": "86400",
            "LOG_LEVEL": "WARNING",
        }
        server_env = {**os.environ, **stack}
        values: dict[str, Any] = {k.lower(): v for k, v in stack.items()}
        settings = Settings(**values)
        # The repository as orchestrator.bootstrap builds it, on the scratch database.
        engine = make_engine(
            url,
            Timeouts(
                connect_s=settings.db_connect_timeout_s,
                statement_s=settings.db_statement_timeout_s,
                pool_s=settings.db_pool_timeout_s,
            ),
            pool_size=settings.db_pool_size,
        )
        statements = StatementLog(engine)
        repo = TaskRepository(Database(engine))
        states: list[TableState] = []
        results: list[dict[str, list[float]]] = []
        notes: list[str] = []
        try:
            with (
                psycopg.connect(libpq(url), autocommit=True) as conn,
                api_server(server_env) as api,
            ):
                client = Client(
                    api,
                    env["API_KEY"],
                    f"http://{settings.hook_host}:{settings.hook_port}/tusd_hook",
                    env["HOOK_SECRET"],
                )
                for size in sizes:
                    t0 = time.monotonic()
                    state = grow(conn, size)
                    # As the reconciler does each pass: the stored-bytes changes the triggers
                    # recorded while the table grew, folded into one row per project and kind.
                    LifecycleRepository(Database(engine)).fold_stored_bytes()
                    # And what autovacuum then does to the rows the fold deleted: left dead,
                    # they made pre-create's scan of the changes read 2,596 pages for 130 rows
                    # at 100,000 tasks (3.4 of its 3.6 ms).
                    conn.execute("VACUUM ANALYZE stored_bytes_changes")
                    conn.execute("VACUUM ANALYZE stored_bytes")
                    print(
                        f"{state.tasks:,} tasks ({state.waiting:,} waiting, "
                        f"{state.task_inputs:,} task_inputs) in {time.monotonic() - t0:.1f} s"
                    )
                    t0 = time.monotonic()
                    results.append(
                        measure(client, repo, conn, settings, state, args.samples, notes)
                    )
                    states.append(state)
                    print(f"  measured in {time.monotonic() - t0:.1f} s")
                print(f"\nthe reconciler's optional-inputs query at {states[-1].tasks:,} tasks:")
                print(explain(engine, statements))
        finally:
            engine.dispose()
            if redis.dbsize():
                redis.flushdb()  # it was empty at the start: all of it is the API's
            redis.close()
    print(
        f"\n{args.samples} sequential requests each after {WARMUP} unmeasured ones, "
        f"{time.monotonic() - t_start:.0f} s in all:\n"
    )
    print(table(sizes, states, results))
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
