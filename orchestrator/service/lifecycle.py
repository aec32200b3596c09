"""Data lifecycle use cases: delete a task, and the retention sweep the reconciler runs.

A delete kills the task first (a running one through its worker), makes its row a tombstone
(query_task answers 410 with when and why), and removes its objects: its uploads, finished or
not (the multipart uploads tusd left open are aborted), its results and stored log, and its
live log. A running task's objects are removed once its worker has stopped it, by the sweep:
the worker stores the log of the stopped run first, and that must go too.

Every step is idempotent, so a delete repeated, or a sweep cut short by an outage, is finished
by the next one. Objects of a task all live under ``<task id>/`` in both buckets
(``hooks/decisions.new_object_id``, ``orchestrator.defaults.result_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from orchestrator.adapters.storage import Expiry
from orchestrator.bootstrap import Services
from orchestrator.domain.lifecycle import Retention, cutoff, expiry_reason, whole_days
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.errors import Conflict, NotFound, OrchestratorError
from orchestrator.logs import task_context
from orchestrator.service.metrics import OBJECTS_REMOVED
from orchestrator.service.tasks import kill_task
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

DELETE_REASON = "deleted on request"
# Tasks each kind of sweep handles per pass: a backlog drains over a few passes instead of
# holding the reconciler's lock for minutes.
SWEEP_BATCH = 100


def retention_of(settings: Settings) -> Retention:
    return Retention(
        input_s=settings.input_retention_s,
        result_s=settings.result_retention_s,
        waiting_s=settings.waiting_expiry_s,
        multipart_s=settings.multipart_abort_s,
    )


@dataclass(frozen=True)
class Deleted:
    task: TaskView
    purged: bool  # False: running, its objects go once its worker has stopped it


def prefix_of(task_id: str) -> str:
    return f"{task_id}/"


def delete_task(services: Services, task_id: str, scope: str | None = None) -> Deleted:
    """Kill, tombstone, purge. A tombstone deleted again answers as the first delete did."""
    with task_context(task_id):
        task = services.tasks.get(task_id)
        if task is None or (scope is not None and task.project_id != scope):
            raise NotFound(f"unknown task {task_id}")
        if not task.status.terminal and task.deleted_at is None:
            with suppress(Conflict):  # it ended meanwhile: nothing left to stop
                kill_task(services.tasks, task_id, scope)
        if services.lifecycle.mark_deleted(task_id, DELETE_REASON):
            log.info("task deleted", extra={"was": task.status.value})
        announce(services, task_id)
        task = _read(services, task_id)
        if task.status.terminal:
            purge(services, task)
            return Deleted(_read(services, task_id), purged=True)
        return Deleted(task, purged=False)


def _read(services: Services, task_id: str) -> TaskView:
    task = services.tasks.get(task_id)
    if task is None:  # rows are never removed
        raise NotFound(f"unknown task {task_id}")
    return task


def announce(services: Services, task_id: str) -> None:
    """Every API process forgets what it kept of the task (``adapters/evictions.py``)."""
    services.finished.forget(task_id)
    try:
        services.evictions.publish(task_id)
    except OrchestratorError as exc:  # the other processes forget everything when they reconnect
        log.warning("change not announced", extra={"error": str(exc)})


def purge(services: Services, task: TaskView) -> int:
    """Remove every object of a deleted task; how many went."""
    s = services.settings
    prefix = prefix_of(task.id)
    removed = services.storage.abort_uploads(s.uploads_bucket, prefix=prefix)
    removed += services.storage.remove_prefix(s.uploads_bucket, prefix)
    removed += services.storage.remove_prefix(s.results_bucket, prefix)
    services.logs.drop(task.id)
    services.lifecycle.purged(task.id)
    OBJECTS_REMOVED.labels("deleted").inc(removed)
    log.info("task data removed", extra={"objects": removed})
    return removed


@dataclass
class SweepReport:
    purged: list[str] = field(default_factory=list)  # deleted tasks whose objects went
    inputs_removed: list[str] = field(default_factory=list)
    results_removed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)  # waiting tasks killed for inactivity
    uploads_aborted: int = 0
    # Objects removed by retention, by kind: inputs | results | unfinished (multipart uploads);
    # a deleted task's are counted by ``purge``.
    removed_by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int) -> None:
        self.removed_by_kind[kind] = self.removed_by_kind.get(kind, 0) + n

    @property
    def changed(self) -> int:
        return (
            len(self.purged)
            + len(self.inputs_removed)
            + len(self.results_removed)
            + len(self.expired)
            + self.uploads_aborted
        )


class Sweeper:
    """One pass of retention over the tasks with data due to go, ``SWEEP_BATCH`` per kind."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._retention = retention_of(services.settings)

    def run(self, now: datetime) -> SweepReport:
        report = SweepReport()
        for step in (
            self._purge_deleted,
            self._expire_waiting,
            self._remove_inputs,
            self._remove_results,
            self._abort_uploads,
            self._fold_stored_bytes,
        ):
            try:
                step(now, report)
            except OrchestratorError as exc:  # the next pass takes it up again
                log.warning(
                    "retention step failed", extra={"step": step.__name__, "error": str(exc)}
                )
        for kind, n in report.removed_by_kind.items():
            if n:
                OBJECTS_REMOVED.labels(kind).inc(n)
        return report

    def _fold_stored_bytes(self, now: datetime, report: SweepReport) -> None:
        self._services.lifecycle.fold_stored_bytes()

    def _purge_deleted(self, now: datetime, report: SweepReport) -> None:
        for task_id in self._services.lifecycle.to_purge(SWEEP_BATCH):
            with task_context(task_id):
                purge(self._services, _read(self._services, task_id))  # counts what it removes
                announce(self._services, task_id)
                report.purged.append(task_id)

    def _expire_waiting(self, now: datetime, report: SweepReport) -> None:
        quiet_since = cutoff(now, self._retention.waiting_s)
        if quiet_since is None:
            return
        reason = expiry_reason(self._retention.waiting_s)
        for task_id in self._services.lifecycle.idle_waiting(quiet_since, SWEEP_BATCH):
            with task_context(task_id):
                if self._services.tasks.transition(
                    task_id, TaskStatus.KILLED, expected=TaskStatus.WAITING, reason=reason
                ):
                    log.info("waiting task expired", extra={"reason": reason})
                    report.expired.append(task_id)

    def _remove_inputs(self, now: datetime, report: SweepReport) -> None:
        lc = self._services.lifecycle
        self._remove_ended(
            "inputs",
            self._retention.input_s,
            now,
            report.inputs_removed,
            report,
            due=lc.inputs_due,
            removed=lc.inputs_removed,
            bucket=self._services.settings.uploads_bucket,
        )

    def _remove_results(self, now: datetime, report: SweepReport) -> None:
        lc = self._services.lifecycle
        self._remove_ended(
            "results",
            self._retention.result_s,
            now,
            report.results_removed,
            report,
            due=lc.results_due,
            removed=lc.results_removed,
            bucket=self._services.settings.results_bucket,
        )

    def _remove_ended(
        self,
        kind: str,
        period_s: float,
        now: datetime,
        done: list[str],
        report: SweepReport,
        *,
        due: Callable[[datetime, int], list[str]],
        removed: Callable[[str], None],
        bucket: str,
    ) -> None:
        """Remove ``kind`` (the objects under a task's prefix in ``bucket``, and any upload
        still open there) of the tasks that ended ``period_s`` ago."""
        ended_before = cutoff(now, period_s)
        if ended_before is None:
            return
        storage = self._services.storage
        for task_id in due(ended_before, SWEEP_BATCH):
            with task_context(task_id):
                n = storage.abort_uploads(bucket, prefix=prefix_of(task_id))
                n += storage.remove_prefix(bucket, prefix_of(task_id))
                removed(task_id)
                announce(self._services, task_id)
                log.info(f"{kind} removed by retention", extra={"objects": n})
                report.count(kind, n)
                done.append(task_id)

    def _abort_uploads(self, now: datetime, report: SweepReport) -> None:
        started_before = cutoff(now, self._retention.multipart_s)
        if started_before is None:
            return
        n = self._services.storage.abort_uploads(
            self._services.settings.uploads_bucket, initiated_before=started_before
        )
        if n:
            log.info("unfinished uploads aborted", extra={"uploads": n})
        report.uploads_aborted += n
        report.count("unfinished", n)


class BucketRules(Protocol):
    def set_expiry(self, bucket: str, expiry: Expiry) -> None: ...
    def expiry(self, bucket: str) -> Expiry | None: ...


def wanted_rules(settings: Settings) -> dict[str, Expiry]:
    """The lifecycle rule each bucket should carry: the store's own backstop to the sweep,
    in the whole days S3 rules count."""
    r = retention_of(settings)
    abort = whole_days(r.multipart_s) if r.multipart_s > 0 else None
    return {
        settings.results_bucket: Expiry(
            object_days=whole_days(r.result_s) if r.result_s > 0 else None,
            multipart_days=abort,
        ),
        settings.uploads_bucket: Expiry(object_days=None, multipart_days=abort),
    }


def apply_rules(storage: BucketRules, settings: Settings) -> None:
    """Set the buckets' lifecycle rules (at the API's start). A store that refuses or drops a
    part of a rule (MinIO keeps no AbortIncompleteMultipartUpload: it aborts stale uploads
    itself, and so does the sweep) is logged; ``rules_problem`` says what is missing."""
    for bucket, expiry in wanted_rules(settings).items():
        try:
            storage.set_expiry(bucket, expiry)
        except OrchestratorError as exc:
            if expiry.object_days is not None:
                log.warning("bucket lifecycle not set", extra={"bucket": bucket, "error": str(exc)})
                continue
            log.info(
                "the object store refused a rule that only aborts unfinished uploads; "
                "the reconciler's sweep aborts them",
                extra={"bucket": bucket, "error": str(exc)},
            )
            # No rule then, rather than an expiration left from earlier settings: objects the
            # settings now keep for ever must not go.
            try:
                storage.set_expiry(bucket, Expiry(object_days=None, multipart_days=None))
            except OrchestratorError as again:
                log.warning(
                    "bucket lifecycle not cleared", extra={"bucket": bucket, "error": str(again)}
                )


def rules_problem(storage: BucketRules, settings: Settings) -> str | None:
    """None when every bucket's object expiration is what the settings want (none included:
    a bucket whose objects the settings keep must not expire them); else what differs.
    Aborting unfinished uploads is not checked: the sweep does it either way."""
    for bucket, wanted in wanted_rules(settings).items():
        have = storage.expiry(bucket)
        days = None if have is None else have.object_days
        if days == wanted.object_days:
            continue
        if wanted.object_days is None:
            return f"bucket {bucket} expires objects after {days} days, but the settings keep them"
        return (
            f"bucket {bucket} expires objects after {days} days, "
            f"not {wanted.object_days} as RESULT_RETENTION_S says"
        )
    return None
