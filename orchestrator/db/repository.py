"""The task repository: every read and every conditional write of task state.

Each state change is one ``UPDATE ... WHERE status IN (:expected)`` whose row count says whether
this caller won; two hooks, two workers, or a hook and a kill racing can never both win. A write
that is one statement commits by itself (``Database.autocommit``): a transaction around it would
add the round trips of BEGIN and COMMIT, and change nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from psycopg.rows import dict_row
from sqlalchemy import (
    Connection,
    CursorResult,
    Update,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.orm import Session, selectinload

from orchestrator.db.database import Database
from orchestrator.db.models import Project, Task, TaskInput
from orchestrator.domain.access import DEFAULT_PROJECT, Quota, may_start
from orchestrator.domain.capacity import Verdict
from orchestrator.domain.status import TaskStatus, check_transition, sources_of
from orchestrator.domain.task import (
    InputView,
    ResultFile,
    RunStats,
    TaskView,
    resources_from_dict,
)
from pipelines.spec import Resources


def _updated(s: Session | Connection, stmt: Update) -> bool:
    """Run a conditional UPDATE; True iff it changed exactly one row (this caller won)."""
    return cast(CursorResult[Any], s.execute(stmt)).rowcount == 1


def group_lock_key(group: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory lock key for a worker group's admissions."""
    digest = hashlib.blake2b(f"worker-group:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def project_lock_key(project_id: str) -> int:
    """The advisory lock key under which a project's running tasks are counted and claimed."""
    digest = hashlib.blake2b(f"project:{project_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _group_prefix(group: str) -> str:
    """Tasks held by a group's processes have ``worker_id`` = ``<group>/<member>``."""
    return f"{group}/"


@dataclass(frozen=True)
class RunningTask:
    id: str
    worker_id: str
    resources: Resources
    input_bytes: int = 0  # its uploaded inputs, which its run stages into the work dir


# The uploaded bytes of a task's filled slots (a correlated scalar subquery on ``Task``).
_INPUT_BYTES = (
    select(func.coalesce(func.sum(TaskInput.size), 0))
    .where(TaskInput.task_id == Task.id, TaskInput.state == "done")
    .correlate(Task)
    .scalar_subquery()
)


@dataclass(frozen=True)
class UploadingSlot:
    """A slot whose upload may have finished in storage unseen (see ``uploading_slots``)."""

    task_id: str
    slot: str
    upload_id: str
    filename: str | None
    size: int
    bucket: str
    key: str

    @property
    def position(self) -> SlotPosition:
        """Where it is in ``uploading_slots``' order: the ``after`` of the next page."""
        return (self.task_id, self.slot)


# (task id, slot name): the order of ``uploading_slots``, and its cursor.
SlotPosition = tuple[str, str]


@dataclass(frozen=True)
class GroupClaim:
    """The outcome of ``claim_in_group``: ``pending`` says whether the task was still waiting
    for a worker, ``verdict`` what the group decided about it then (None when not pending), and
    ``task`` is the claimed task (set iff the verdict was RUN and the claim won)."""

    pending: bool
    verdict: Verdict | None = None
    task: TaskView | None = None


def _input_view(row: Any) -> InputView:
    """From a ``TaskInput``, or a row of the task_inputs table (same attribute names)."""
    return InputView(
        slot=row.slot,
        required=row.required,
        state=row.state,
        upload_id=row.upload_id,
        filename=row.filename,
        size=row.size,
        offset=row.offset,
        bucket=row.bucket,
        key=row.key,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


# The hooks' slot writes, written out for the driver (see ``_written``).
#
# _HELD_BY: the slot is bound to the upload whose object id is ``key`` (rows bound before object
# ids were recorded have no key, only tusd's ``<object id>+<multipart id>``).
#
# _WHILE_WAITING: the task still waits for uploads, with its row locked as an UPDATE of it locks
# it. A kill or a queueing of the task then waits for the write to commit, or the write sees the
# task moved and changes nothing: a finished task's slots never change after the end, which lets
# the API keep finished tasks in memory (``service/finished.py``). Not a share lock: a fill goes
# on to update the task's row (``required_missing``), and two fills holding share locks would
# each wait for the other.
_HELD_BY = """(key = %(key)s
        OR key IS NULL AND (upload_id = %(key)s OR upload_id LIKE %(prefix)s ESCAPE '/'))"""
_WHILE_WAITING = """EXISTS (SELECT 1 FROM tasks WHERE id = %(task_id)s AND status = 'waiting'
               FOR NO KEY UPDATE)"""
_SLOT_IS = "task_id = %(task_id)s AND slot = %(slot)s"

# Offsets and sizes are bigints: uploads pass 2 GiB.
_RESERVE = f"""
UPDATE task_inputs SET state = 'uploading', upload_id = NULL, key = %(key)s,
       bucket = %(bucket)s, filename = %(filename)s, size = %(size)s::bigint, "offset" = 0,
       updated_at = now()
 WHERE {_SLOT_IS}
   AND (state = 'empty' OR state = 'uploading' AND updated_at <= %(stalled_before)s)
   AND {_WHILE_WAITING}
""".encode()
_UPLOAD_CREATED = f"""
UPDATE task_inputs SET upload_id = %(upload_id)s, updated_at = now()
 WHERE {_SLOT_IS} AND state = 'uploading' AND {_HELD_BY} AND {_WHILE_WAITING}
""".encode()
_FREE = f"""
UPDATE task_inputs SET state = 'empty', upload_id = NULL, filename = NULL, size = NULL,
       "offset" = 0, bucket = NULL, key = NULL, finished_at = NULL, updated_at = now()
 WHERE {_SLOT_IS} AND {_HELD_BY} AND {_WHILE_WAITING}
""".encode()
_PROGRESS = f"""
UPDATE task_inputs SET "offset" = greatest("offset", %(offset)s::bigint), updated_at = now()
 WHERE {_SLOT_IS} AND state = 'uploading' AND {_HELD_BY} AND {_WHILE_WAITING}
""".encode()


# The fill, and the count down of the task's required inputs when the slot was required.
_FINISH = f"""
WITH filled AS (
    UPDATE task_inputs SET state = 'done', upload_id = %(upload_id)s, filename = %(filename)s,
           size = %(size)s::bigint, "offset" = %(size)s::bigint, bucket = %(bucket)s,
           key = %(key)s, finished_at = now(), updated_at = now()
     WHERE {_SLOT_IS} AND state <> 'done' AND {_HELD_BY} AND {_WHILE_WAITING}
    RETURNING required
), counted AS (
    UPDATE tasks SET required_missing = required_missing - 1, updated_at = now()
     WHERE id = %(task_id)s AND EXISTS (SELECT 1 FROM filled WHERE required)
)
SELECT count(*) FROM filled
""".encode()


@cache
def _queue_statement(all_inputs: bool, idle: bool) -> bytes:
    """``queue_if_complete``'s statement: waiting → pending when no input it waits for is
    missing (only the required ones unless ``all_inputs``) and, if ``idle``, none changed
    since ``idle_before``."""
    missing = "state <> 'done'" + ("" if all_inputs else " AND required")
    sql = (
        "UPDATE tasks SET status = 'pending', queued_at = now(), updated_at = now()"
        " WHERE id = %(task_id)s AND status = 'waiting' AND NOT EXISTS"
        f" (SELECT 1 FROM task_inputs WHERE task_id = %(task_id)s AND {missing})"
    )
    if idle:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM task_inputs"
            " WHERE task_id = %(task_id)s AND updated_at >= %(idle_before)s)"
        )
    return sql.encode()


def _holder(task_id: str, slot: str, key: str) -> dict[str, object]:
    """The parameters of ``_SLOT_IS`` and ``_HELD_BY``."""
    return {"task_id": task_id, "slot": slot, "key": key, "prefix": _like_escaped(key) + "+%"}


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '/' (as SQLAlchemy's ``autoescape``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


_SLOT = "slot__"  # the label prefix of task_inputs' columns in a task joined to its inputs


def _prefixed(row: dict[str, Any], prefix: str) -> SimpleNamespace:
    """The columns of ``row`` labelled ``prefix``+name, as attributes named name."""
    return SimpleNamespace(**{k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)})


@cache
def _get_statement() -> bytes:
    """``get``'s statement, as SQLAlchemy writes it for psycopg (made once, on first use)."""
    tasks, inputs = Task.__table__, TaskInput.__table__
    slot_columns = [c.label(f"{_SLOT}{c.name}") for c in inputs.c]
    query = (
        select(tasks, *slot_columns)
        .outerjoin(inputs, inputs.c.task_id == tasks.c.id)
        .where(tasks.c.id == bindparam("task_id"))
        .order_by(inputs.c.position)
    )
    return str(query.compile(dialect=PGDialect_psycopg())).encode()


def _task_view(row: Any, inputs: Iterable[Any] | None = None) -> TaskView:
    """From a ``Task`` (its ``inputs`` loaded), or a row of the tasks table and its input rows."""
    return TaskView(
        id=row.id,
        pipeline=row.pipeline,
        status=TaskStatus(row.status),
        params=row.params,
        resources=resources_from_dict(row.resources),
        queue=row.queue,
        reason=row.reason,
        attempts=row.attempts,
        worker_id=row.worker_id,
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        kill_requested_at=row.kill_requested_at,
        results=None if row.results is None else tuple(map(ResultFile.from_dict, row.results)),
        stats=None if row.stats is None else RunStats.from_dict(row.stats),
        inputs=tuple(_input_view(i) for i in (row.inputs if inputs is None else inputs)),
        notify_url=row.notify_url,
        project_id=row.project_id,
        priority=row.priority,
        deleted_at=row.deleted_at,
        deleted_reason=row.deleted_reason,
        inputs_removed_at=row.inputs_removed_at,
        results_removed_at=row.results_removed_at,
    )


class TaskRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reads -----------------------------------------------------------------------------
    def get(self, task_id: str) -> TaskView | None:
        """The task and its inputs: one statement (the task joined to its inputs), outside a
        transaction, through the driver: the read behind every hook but post-receive, and
        every query_task of a task not finished. Through SQLAlchemy's Core it cost 1.7 ms of
        CPU per call (300 calls, one thread), most of it the execution path, not the query."""
        with self._db.driver() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_get_statement(), {"task_id": task_id})
            rows = cur.fetchall()
        if not rows:
            return None
        slots = [_prefixed(r, _SLOT) for r in rows if r[f"{_SLOT}slot"] is not None]
        return _task_view(SimpleNamespace(**rows[0]), slots)

    def by_status(
        self,
        statuses: Iterable[TaskStatus],
        *,
        older_than: datetime | None = None,
        heartbeat_before: datetime | None = None,
        limit: int = 500,
    ) -> list[TaskView]:
        """Tasks in ``statuses``, oldest first; optionally last updated / heart-beaten before a
        cutoff."""
        q = (
            select(Task)
            .options(selectinload(Task.inputs))
            .where(Task.status.in_([s.value for s in statuses]))
        )
        if older_than is not None:
            q = q.where(Task.updated_at < older_than)
        if heartbeat_before is not None:
            q = q.where(func.coalesce(Task.heartbeat_at, Task.started_at) < heartbeat_before)
        q = q.order_by(Task.created_at, Task.id).limit(limit)
        with self._db.session() as s:
            return [_task_view(r) for r in s.scalars(q)]

    def keys_by_status(
        self,
        status: TaskStatus,
        *,
        older_than: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[datetime, str]]:
        """(created_at, id) of tasks in ``status`` last updated before ``older_than``, oldest
        first, after ``after`` (the last key of the previous page): a page of them without
        reading the tasks (the reconciler's check of pending tasks for lost jobs)."""
        q = select(Task.created_at, Task.id).where(
            Task.status == status.value, Task.updated_at < older_than
        )
        if after is not None:
            q = q.where(tuple_(Task.created_at, Task.id) > tuple_(*after))
        with self._db.read() as conn:
            rows = conn.execute(q.order_by(Task.created_at, Task.id).limit(limit)).all()
        return [(created_at, task_id) for created_at, task_id in rows]

    def ping(self) -> None:
        with self._db.session() as s:
            s.execute(select(1))

    # --- task lifecycle --------------------------------------------------------------------
    def create(
        self,
        *,
        task_id: str,
        pipeline: str,
        params: dict[str, Any],
        resources: Resources,
        queue: str,
        slots: Sequence[tuple[str, bool]],
        notify_url: str | None = None,
        project_id: str = DEFAULT_PROJECT,
        priority: int = 0,
    ) -> TaskView:
        with self._db.transaction() as s:
            task = Task(
                id=task_id,
                pipeline=pipeline,
                project_id=project_id,
                priority=priority,
                params=params,
                resources=asdict(resources),
                queue=queue,
                status=TaskStatus.WAITING.value,
                attempts=0,
                required_missing=sum(1 for _, required in slots if required),
                notify_url=notify_url,
                inputs=[
                    TaskInput(slot=name, required=required, position=i, state="empty", offset=0)
                    for i, (name, required) in enumerate(slots)
                ],
            )
            s.add(task)
        view = self.get(task_id)
        assert view is not None
        return view

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        expected: TaskStatus | frozenset[TaskStatus] | None = None,
        reason: str | None = None,
        held_by: str | None = None,
        results: Sequence[ResultFile] | None = None,
        stats: RunStats | None = None,
        **fields: Any,
    ) -> bool:
        """Move ``task_id`` to ``target`` iff it is in ``expected`` (default: every legal source),
        recording a finished run's ``results`` and ``stats`` when given.

        With ``held_by`` (a worker id) the move also requires that worker to hold the task, so
        a worker the reconciler gave up on cannot overwrite the result of the retry.
        """
        if results is not None:
            fields["results"] = [r.as_dict() for r in results]
        if stats is not None:
            fields["stats"] = stats.as_dict()
        sources = (
            sources_of(target)
            if expected is None
            else (expected if isinstance(expected, frozenset) else frozenset({expected}))
        )
        check_transition(sources, target, reason)
        values = _move_values(target, reason, fields)
        cond = [Task.id == task_id, Task.status.in_([s.value for s in sources])]
        if held_by is not None:
            cond.append(Task.worker_id == held_by)
        with self._db.autocommit() as conn:
            return _updated(conn, update(Task).where(*cond).values(**values))

    def release_stale(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        held_by: str | None,
        heartbeat_before: datetime,
        reason: str | None = None,
        **fields: Any,
    ) -> bool:
        """running → ``target`` iff still held by ``held_by`` and silent since
        ``heartbeat_before``: the reconciler's move, which a worker that beat meanwhile wins."""
        check_transition(TaskStatus.RUNNING, target, reason)
        values = _move_values(target, reason, fields)
        held = Task.worker_id.is_(None) if held_by is None else Task.worker_id == held_by
        cond = [
            Task.id == task_id,
            Task.status == TaskStatus.RUNNING.value,
            held,
            func.coalesce(Task.heartbeat_at, Task.started_at) < heartbeat_before,
        ]
        with self._db.autocommit() as conn:
            return _updated(conn, update(Task).where(*cond).values(**values))

    def idle_with_required_inputs(self, idle_before: datetime, limit: int = 500) -> list[str]:
        """Ids of waiting tasks whose required inputs are all in and whose slots have been
        quiet since ``idle_before`` (candidates for starting without their optional inputs)."""
        # The waiting tasks that lack no required slot (through ix_tasks_waiting, with
        # required_missing = 0 as its index condition, or the status index, as the statistics
        # have it), then the last change of each (a LATERAL read through the slots' primary
        # key): the cost follows the waiting tasks, not the table. As two plain NOT EXISTS the
        # planner hashed every slot of every task ever made (74 ms at 100,000 tasks).
        last_change = (
            select(func.max(TaskInput.updated_at).label("at"))
            .where(TaskInput.task_id == Task.id)
            .lateral("last_change")
        )
        q = (
            select(Task.id)
            .join(last_change, true())
            .where(
                # The status a constant, as the partial index's predicate spells it: PostgreSQL
                # proves the index applies only then (a bound parameter defeats the proof).
                Task.status == literal_column("'waiting'"),
                Task.required_missing == literal_column("0"),
                or_(last_change.c.at.is_(None), last_change.c.at < idle_before),
            )
            .order_by(Task.created_at)
            .limit(limit)
        )
        with self._db.session() as s:
            return list(s.scalars(q))

    def queue_if_complete(
        self, task_id: str, *, all_inputs: bool = False, idle_before: datetime | None = None
    ) -> bool:
        """waiting → pending iff every required input is done; the caller that wins enqueues.

        ``all_inputs`` also waits for the optional ones; ``idle_before`` also requires that no
        slot has changed since then (uploads in flight refresh their slot every second).
        """
        return self._written(
            _queue_statement(all_inputs, idle_before is not None),
            task_id=task_id,
            idle_before=idle_before,
        )

    def claim(self, task_id: str, worker_id: str) -> TaskView | None:
        """pending → running for this worker; None when someone else won or it was killed."""
        ok = self.transition(
            task_id, TaskStatus.RUNNING, expected=TaskStatus.PENDING, **_claim_values(worker_id)
        )
        return self.get(task_id) if ok else None

    def running_in_group(self, group: str) -> list[RunningTask]:
        """Running tasks held by the processes of worker ``group`` (``worker_id`` =
        ``<group>/<member>``), oldest first."""
        with self._db.session() as s:
            return _running_in_group(s, group)

    def claim_in_group(
        self,
        task_id: str,
        worker_id: str,
        *,
        group: str,
        verdict: Callable[[str, Resources, list[RunningTask], int], Verdict],
    ) -> GroupClaim:
        """pending → running for ``worker_id`` (a member ``<group>/<member>``) iff ``verdict(task
        pipeline, task resources, tasks the group runs now, task input bytes)`` is RUN.

        Decision and claim happen in one transaction under an advisory lock per group, so two
        members of one group never both admit against the same free capacity. Other groups
        (other workers) are not serialised: the claim itself stays conditional on ``pending``.
        """
        if not worker_id.startswith(_group_prefix(group)):
            raise ValueError(f"worker {worker_id!r} is not a member of group {group!r}")
        with self._db.transaction() as s:
            s.execute(select(func.pg_advisory_xact_lock(group_lock_key(group))))
            row = s.execute(
                select(
                    Task.pipeline,
                    Task.resources,
                    Task.project_id,
                    Project.max_running,
                    _INPUT_BYTES,
                )
                .join(Project, Project.id == Task.project_id)
                .where(Task.id == task_id, Task.status == TaskStatus.PENDING.value)
            ).first()
            if row is None:
                return GroupClaim(pending=False)
            pipeline, resources, project_id, max_running, input_bytes = row
            if max_running is not None:
                # Counted and claimed under the project's lock (always taken after the
                # group's): two workers never both start the project's last allowed task.
                s.execute(select(func.pg_advisory_xact_lock(project_lock_key(project_id))))
                running = s.scalar(
                    select(func.count()).where(
                        Task.project_id == project_id,
                        Task.status == TaskStatus.RUNNING.value,
                    )
                )
                if not may_start(Quota(max_running=max_running), int(running or 0)):
                    return GroupClaim(pending=True, verdict=Verdict.LATER)
            decided = verdict(
                pipeline,
                resources_from_dict(resources),
                _running_in_group(s, group),
                int(input_bytes or 0),
            )
            if decided is not Verdict.RUN:
                return GroupClaim(pending=True, verdict=decided)
            won = _updated(
                s,
                update(Task)
                .where(Task.id == task_id, Task.status == TaskStatus.PENDING.value)
                .values(**_move_values(TaskStatus.RUNNING, None, _claim_values(worker_id))),
            )
        if not won:
            return GroupClaim(pending=False)
        return GroupClaim(pending=True, verdict=Verdict.RUN, task=self.get(task_id))

    def heartbeat(self, task_id: str, worker_id: str) -> bool:
        with self._db.autocommit() as conn:
            return _updated(
                conn,
                update(Task)
                .where(
                    Task.id == task_id,
                    Task.status == TaskStatus.RUNNING.value,
                    Task.worker_id == worker_id,
                )
                .values(heartbeat_at=func.now()),
            )

    def request_kill(self, task_id: str) -> bool:
        """Flag a running task for its worker to stop; False unless it is running."""
        with self._db.autocommit() as conn:
            return _updated(
                conn,
                update(Task)
                .where(Task.id == task_id, Task.status == TaskStatus.RUNNING.value)
                .values(kill_requested_at=func.coalesce(Task.kill_requested_at, func.now())),
            )

    def kill_requested(self, task_id: str) -> bool:
        with self._db.session() as s:
            at = s.scalar(select(Task.kill_requested_at).where(Task.id == task_id))
            return at is not None

    # --- upload slots (driven by tusd hooks; every call idempotent) ------------------------
    def slot_reserved(
        self,
        task_id: str,
        slot: str,
        *,
        key: str,
        bucket: str,
        filename: str | None,
        size: int,
        stalled_before: datetime,
    ) -> bool:
        """pre-create: bind a new upload (its object ``key``) to a slot of a waiting task, if the
        slot is empty or its upload has made no progress since ``stalled_before``."""
        return self._written(
            _RESERVE,
            task_id=task_id,
            slot=slot,
            key=key,
            bucket=bucket,
            filename=filename,
            size=size,
            stalled_before=stalled_before,
        )

    def slot_upload_created(self, task_id: str, slot: str, key: str, upload_id: str) -> bool:
        """post-create: record tusd's full id of the upload that holds the slot."""
        return self._written(_UPLOAD_CREATED, **_holder(task_id, slot, key), upload_id=upload_id)

    def slot_progress(self, task_id: str, slot: str, key: str, offset: int) -> bool:
        """Record bytes received by the holding upload; never moves backwards."""
        return self._written(_PROGRESS, **_holder(task_id, slot, key), offset=offset)

    def _written(self, statement: bytes, **params: object) -> bool:
        """Run one of the hooks' writes: one statement that commits by itself (its lock of the
        task's row lasts as long); True iff it changed one row.

        Through the driver, not SQLAlchemy: the hooks' hottest writes (post-receive once a
        second per upload). 2.2 ms of CPU per call through SQLAlchemy (building the statement,
        its cache key, the execution context) against 0.3 ms, 500 calls in one thread."""
        with self._db.driver() as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.rowcount == 1

    def uploading_slots(
        self,
        idle_before: datetime,
        *,
        after: SlotPosition | None = None,
        limit: int = 500,
        changed_since: datetime | None = None,
    ) -> list[UploadingSlot]:
        """Slots of waiting tasks whose bound upload has been quiet since ``idle_before`` (and,
        given ``changed_since``, changed at or after it): the candidates for a post-finish that
        never arrived. In (task, slot) order, after ``after`` (the ``position`` of the previous
        page's last slot), through the partial index of the slots uploading now (migration
        0014), whatever the number of slots ever made."""
        q = (
            select(TaskInput)
            .join(Task, Task.id == TaskInput.task_id)
            .where(
                Task.status == TaskStatus.WAITING.value,
                # As the index's predicate spells it: a bound parameter defeats the proof.
                TaskInput.state == literal_column("'uploading'"),
                TaskInput.key.is_not(None),
                TaskInput.size.is_not(None),
                TaskInput.updated_at < idle_before,
            )
            .order_by(TaskInput.task_id, TaskInput.slot)
            .limit(limit)
        )
        if after is not None:
            q = q.where(tuple_(TaskInput.task_id, TaskInput.slot) > tuple_(*after))
        if changed_since is not None:
            q = q.where(TaskInput.updated_at >= changed_since)
        with self._db.session() as s:
            return [
                UploadingSlot(
                    task_id=r.task_id,
                    slot=r.slot,
                    upload_id=r.upload_id or r.key or "",
                    filename=r.filename,
                    size=r.size or 0,
                    bucket=r.bucket or "",
                    key=r.key or "",
                )
                for r in s.execute(q).scalars()
            ]

    def slot_finished(
        self,
        task_id: str,
        slot: str,
        *,
        upload_id: str,
        filename: str | None,
        size: int,
        bucket: str,
        key: str,
    ) -> bool:
        """Fill the slot with the verified upload that holds it; a replay changes nothing.
        A required slot filled counts down its task's ``required_missing``, in the same
        statement (through the driver, as ``_written``)."""
        params = {
            **_holder(task_id, slot, key),
            "upload_id": upload_id,
            "filename": filename,
            "size": size,
            "bucket": bucket,
        }
        with self._db.driver() as conn, conn.cursor() as cur:
            cur.execute(_FINISH, params)
            row = cur.fetchone()
            return row is not None and row[0] == 1

    def slot_freed(self, task_id: str, slot: str, key: str) -> bool:
        """Empty a slot whose upload was terminated, only while its task still waits."""
        return self._written(_FREE, **_holder(task_id, slot, key))


def _move_values(target: TaskStatus, reason: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The columns a move to ``target`` sets: status, updated_at, the reason when given and,
    for a terminal target, finished_at (unless ``fields`` set it)."""
    values: dict[str, Any] = {"status": target.value, "updated_at": func.now(), **fields}
    if reason is not None:
        values["reason"] = reason
    if target.terminal:
        values.setdefault("finished_at", func.now())
    return values


def _claim_values(worker_id: str) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "started_at": func.now(),
        "heartbeat_at": func.now(),
        "attempts": Task.attempts + 1,
        "kill_requested_at": None,
    }


def _running_in_group(s: Session, group: str) -> list[RunningTask]:
    rows = s.execute(
        select(Task.id, Task.worker_id, Task.resources, _INPUT_BYTES.label("input_bytes"))
        .where(
            Task.status == TaskStatus.RUNNING.value,
            Task.worker_id.startswith(_group_prefix(group), autoescape=True),
        )
        .order_by(Task.started_at)
    )
    return [
        RunningTask(
            id=r.id,
            worker_id=r.worker_id or "",
            resources=resources_from_dict(r.resources),
            input_bytes=int(r.input_bytes or 0),
        )
        for r in rows
    ]
