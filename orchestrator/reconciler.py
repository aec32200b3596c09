"""The reconciler: PostgreSQL is the truth, Redis only carries work; this makes them agree.

One pass (``Reconciler.run_pass``, run by the API every ``settings.reconcile_interval_s``):

* pending tasks with no live RQ job for a while (a lost enqueue, a flushed Redis) are enqueued
  again;
* uploads that are complete in storage but whose post-finish never arrived (tusd sends it at
  most three times, a second apart) are finished as post-finish would
  (``orchestrator.service.uploads.recover_finished_uploads``): those that went quiet lately
  on every pass, and all of them in a sweep about every ``UPLOAD_SWEEP_S`` and from the first
  pass (``UploadChecks``);
* queued tasks that waited ``settings.priority_ageing_s`` in their priority band move up one
  (``orchestrator.domain.priority``);
* data due to go goes (``orchestrator.service.lifecycle.Sweeper``): deleted tasks' objects,
  inputs and results past their retention, waiting tasks idle past their expiry, unfinished
  uploads past theirs;
* running tasks whose worker stopped heart-beating for ``settings.heartbeat_timeout_s`` are
  killed (a kill was requested), retried (back to pending and enqueued, while attempts remain)
  or failed with a reason. RQ alone notices a dead worker only after its job timeout.

Every move is conditional on the state the pass saw, so a worker that beats again or a task
that moves meanwhile wins over the reconciler. Replicas of the API take a PostgreSQL advisory
lock per pass, so one pass runs at a time across all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func

from orchestrator.bootstrap import Services
from orchestrator.db.repository import SlotPosition
from orchestrator.domain.priority import Band, band_and_queue, band_queue
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.errors import OrchestratorError
from orchestrator.logs import task_context
from orchestrator.service.lifecycle import Sweeper, SweepReport
from orchestrator.service.tasks import KILL_REASON, enqueue
from orchestrator.service.uploads import RECENT_QUIET_S, Recovery, recover_finished_uploads

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock id every replica's reconciler contends for.
LOCK_KEY = 0x6F7263686573  # "orches"
# A freshly queued task's job may not be visible yet (hook enqueue in flight); wait this long
# before deciding its job is lost.
PENDING_GRACE_S = 15.0
# Pending tasks whose jobs one pass checks (tasks). A pass goes on after the last task the
# previous one checked, and starts again from the oldest after the newest: with N pending
# tasks, a lost job is found within ceil(N / PENDING_PAGE) passes.
PENDING_PAGE = 500
# About how often every quiet upload is checked against storage (s): the next sweep is due
# this long after the last one ended, and takes ceil(N / RECOVER_PAGE) passes. Abandoned
# uploads stay uploading until their task expires (days): checked on every pass, each would
# cost a HEAD to the store every 10 s.
UPLOAD_SWEEP_S = 600.0


@dataclass
class UploadChecks:
    """Which quiet uploads a pass checks against storage (``recover_finished_uploads``).

    Every pass: those that went quiet since the last check that ran through, or within
    ``RECENT_QUIET_S``, whichever reaches further back; passes that came late, failed or were
    held off by another replica's lock leave no gap. And a page a pass of a sweep of every
    quiet upload, due ``sweep_every`` after the last sweep ended, and at once in a new process:
    a restarted API finds what was lost while it was down. Pure: the pass gives the times."""

    sweep_every: timedelta
    checked_to: datetime | None = None  # the last check that ran through: quiet before this
    swept_at: datetime | None = None  # when the last sweep ended; None: none in this process
    sweep_after: SlotPosition | None = None  # where the sweep under way goes on

    def recent_since(self, now: datetime) -> datetime:
        """The slots changed since then are the recent ones at ``now``."""
        window = now - timedelta(seconds=RECENT_QUIET_S)
        return window if self.checked_to is None else min(window, self.checked_to)

    def recent_checked(self, recovery: Recovery) -> None:
        if not recovery.interrupted:
            self.checked_to = recovery.quiet_before

    def sweep_due(self, now: datetime) -> bool:
        return (
            self.sweep_after is not None
            or self.swept_at is None
            or now - self.swept_at >= self.sweep_every
        )

    def swept(self, now: datetime, recovery: Recovery) -> bool:
        """Record a page of the sweep; whether the sweep ended with it."""
        self.sweep_after = recovery.resume_after
        if recovery.resume_after is None and not recovery.interrupted:
            self.swept_at = now
            return True
        return False


@dataclass
class ReconcileReport:
    ran: bool = True  # False: another replica held the lock
    started: list[str] = field(default_factory=list)  # optional inputs left empty, queued
    requeued: list[str] = field(default_factory=list)  # pending without a job, enqueued again
    retried: list[str] = field(default_factory=list)  # worker lost, back to pending
    failed: list[str] = field(default_factory=list)  # worker lost too often → error
    killed: list[str] = field(default_factory=list)  # worker lost with a kill requested
    recovered: list[str] = field(default_factory=list)  # <task>/<slot> finished without hook
    uploads_swept: bool = False  # this pass ended a sweep of every quiet upload
    aged: list[str] = field(default_factory=list)  # moved up a priority band
    swept: SweepReport = field(default_factory=SweepReport)

    @property
    def changed(self) -> int:
        return (
            len(self.started)
            + len(self.requeued)
            + len(self.retried)
            + len(self.failed)
            + len(self.killed)
            + len(self.recovered)
            + len(self.aged)
            + self.swept.changed
        )


class Reconciler:
    def __init__(
        self,
        services: Services,
        *,
        pending_grace_s: float = PENDING_GRACE_S,
        lock_key: int = LOCK_KEY,
        upload_sweep_s: float = UPLOAD_SWEEP_S,
    ) -> None:
        """``lock_key``: the advisory lock the passes take; replicas that reconcile the same
        database share one (the default). ``upload_sweep_s``: how often every quiet upload is
        checked (``UPLOAD_SWEEP_S``)."""
        self._services = services
        self._lock_key = lock_key
        self._tasks = services.tasks
        self._queue = services.queue
        self._settings = services.settings
        self._pending_grace = timedelta(seconds=pending_grace_s)
        # Where the next pass's check of pending tasks starts: (created_at, id), None: oldest.
        self._pending_after: tuple[datetime, str] | None = None
        self._uploads = UploadChecks(timedelta(seconds=upload_sweep_s))

    def run_pass(self) -> ReconcileReport:
        with self._services.locks.try_hold(self._lock_key) as now:
            if now is None:
                return ReconcileReport(ran=False)
            report = ReconcileReport()
            self._recover_uploads(now, report)
            self._start_idle_waiting(now, report)
            self._requeue_orphans(now, report)
            self._recover_lost(now, report)
            self._age(now, report)
            report.swept = Sweeper(self._services).run(now)
        if report.changed:
            log.info(
                "reconciled",
                extra={
                    "started": report.started,
                    "requeued": report.requeued,
                    "retried": report.retried,
                    "failed": report.failed,
                    "killed": report.killed,
                    "recovered": report.recovered,
                    "aged": report.aged,
                    "purged": report.swept.purged,
                    "expired": report.swept.expired,
                    "inputs_removed": report.swept.inputs_removed,
                    "results_removed": report.swept.results_removed,
                    "uploads_aborted": report.swept.uploads_aborted,
                },
            )
        return report

    def _recover_uploads(self, now: datetime, report: ReconcileReport) -> None:
        """The recently quiet uploads, all their pages; then a page of the sweep, if due."""
        checks = self._uploads
        since = checks.recent_since(now)
        after: SlotPosition | None = None
        while True:
            recent = recover_finished_uploads(self._services, now, after=after, changed_since=since)
            report.recovered += recent.filled
            after = recent.resume_after
            if after is None or recent.interrupted:
                break
        checks.recent_checked(recent)
        if checks.sweep_due(now):
            page = recover_finished_uploads(self._services, now, after=checks.sweep_after)
            report.recovered += page.filled  # none twice: a filled slot is no longer uploading
            report.uploads_swept = checks.swept(now, page)

    def _start_idle_waiting(self, now: datetime, report: ReconcileReport) -> None:
        """Queue waiting tasks whose required inputs are in and whose uploads went quiet.

        Hooks queue a task only when every slot is filled, so a client can still add optional
        inputs after the required ones; one that leaves them empty gets its task started here.
        """
        idle_before = now - timedelta(seconds=self._settings.optional_inputs_grace_s)
        for task_id in self._tasks.idle_with_required_inputs(idle_before):
            with task_context(task_id):
                if not self._tasks.queue_if_complete(task_id, idle_before=idle_before):
                    continue
                task = self._tasks.get(task_id)
                if task is None:
                    continue
                log.info("required inputs in, optional ones left empty; task queued")
                report.started.append(task.id)
                try:
                    self._enqueue(task)
                except OrchestratorError as exc:
                    log.warning("cannot enqueue started task", extra={"error": str(exc)})

    def _requeue_orphans(self, now: datetime, report: ReconcileReport) -> None:
        keys = self._tasks.keys_by_status(
            TaskStatus.PENDING,
            older_than=now - self._pending_grace,
            after=self._pending_after,
            limit=PENDING_PAGE,
        )
        try:
            live = self._queue.live(task_id for _, task_id in keys)
        except OrchestratorError as exc:
            # The cursor stays: the next pass checks this page again.
            log.warning("cannot read the jobs of pending tasks", extra={"error": str(exc)})
            return
        self._pending_after = keys[-1] if len(keys) == PENDING_PAGE else None
        for _, task_id in keys:
            if task_id in live:
                continue
            # Read only now, and still pending: it may have moved since the page was read.
            task = self._tasks.get(task_id)
            if task is None or task.status is not TaskStatus.PENDING:
                continue
            with task_context(task.id):
                try:
                    self._enqueue(task)
                except OrchestratorError as exc:
                    log.warning("cannot re-enqueue pending task", extra={"error": str(exc)})
                    continue
                log.info("pending task had no job; enqueued again")
                report.requeued.append(task.id)

    def _recover_lost(self, now: datetime, report: ReconcileReport) -> None:
        cutoff = now - timedelta(seconds=self._settings.heartbeat_timeout_s)
        for task in self._tasks.by_status([TaskStatus.RUNNING], heartbeat_before=cutoff):
            with task_context(task.id):
                self._recover(task, cutoff, report)

    def _recover(self, task: TaskView, cutoff: datetime, report: ReconcileReport) -> None:
        worker = task.worker_id
        if task.kill_requested_at is not None:
            if self._tasks.release_stale(
                task.id,
                TaskStatus.KILLED,
                held_by=worker,
                heartbeat_before=cutoff,
                reason=KILL_REASON,
            ):
                log.info("worker lost during a kill request; task killed")
                report.killed.append(task.id)
            return
        if task.attempts < self._settings.max_attempts:
            if not self._tasks.release_stale(
                task.id,
                TaskStatus.PENDING,
                held_by=worker,
                heartbeat_before=cutoff,
                worker_id=None,
                heartbeat_at=None,
                queued_at=func.now(),
            ):
                return
            log.warning(
                "worker lost; task retried",
                extra={"lost_worker": worker, "attempts": task.attempts},
            )
            report.retried.append(task.id)
            try:
                self._enqueue(task)
            except OrchestratorError as exc:
                # The pending pass picks it up once Redis is back.
                log.warning("cannot enqueue retried task", extra={"error": str(exc)})
            return
        reason = f"worker lost {task.attempts} times (last: {worker or 'unknown'})"
        if self._tasks.release_stale(
            task.id, TaskStatus.ERROR, held_by=worker, heartbeat_before=cutoff, reason=reason
        ):
            log.warning("worker lost; no attempts left", extra={"lost_worker": worker})
            report.failed.append(task.id)

    def _age(self, now: datetime, report: ReconcileReport) -> None:
        """Low → normal → high for jobs that waited ``priority_ageing_s`` in their band."""
        before = now - timedelta(seconds=self._settings.priority_ageing_s)
        try:
            # RQ's queues with jobs: plain names are normal bands, the rest end in a band.
            waiting = {q for q, n in self._queue.depths().items() if n}
        except OrchestratorError as exc:
            log.warning("cannot age queued tasks", extra={"error": str(exc)})
            return
        for queue in sorted({band_and_queue(q)[1] for q in waiting}):
            for band in (Band.NORMAL, Band.LOW):  # normal first: a job moves one band a pass
                higher = band.higher
                assert higher is not None
                if band_queue(queue, band) not in waiting:
                    continue  # nothing to read in an empty band
                try:
                    moved = self._queue.promote(
                        band_queue(queue, band), band_queue(queue, higher), before
                    )
                except OrchestratorError as exc:
                    log.warning("cannot age queued tasks", extra={"error": str(exc)})
                    continue
                for task_id in moved:
                    with task_context(task_id):
                        log.info(
                            "waited its turn; moved up a priority band",
                            extra={"band": higher.value},
                        )
                report.aged.extend(moved)

    def _enqueue(self, task: TaskView) -> None:
        enqueue(self._services, task)
