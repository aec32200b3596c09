"""The RQ job: ``run_task(task_id)`` claims a task and takes it to a terminal state.

Only the id travels through Redis; everything else is reloaded from PostgreSQL. Every write is
conditional: the claim (pending → running) and the final move (running → done/error/killed,
``held_by`` this worker), so a duplicate job, a kill or a reconciler retry never double-runs or
overwrites a task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.defaults import PROVENANCE_FILE
from orchestrator.domain.histogram import (
    CREATE_TO_DONE,
    TASK_DURATION,
    UPLOAD_TO_START,
    HistogramSpec,
)
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import ResultFile, RunStats, TaskView
from orchestrator.errors import DatabaseError, OrchestratorError
from orchestrator.logs import task_context
from pipelines.spec import PipelineSpec
from worker import bootstrap, provenance
from worker.bootstrap import WorkerContext, host_name
from worker.executors.base import RunOutcome, RunRequest
from worker.heartbeat import Heartbeat
from worker.logpump import LineSink
from worker.outcome import settle
from worker.staging import (
    PARAMS_FILE,
    InputUnreadable,
    RunDir,
    missing_outputs,
    output_files,
    stage_inputs,
    store_results,
)
from worker.staging import write_params as write_params_file

log = logging.getLogger(__name__)

# Pauses between attempts to write a finished run's outcome while PostgreSQL is unavailable,
# in seconds: doubling from the first to the most.
FINISH_RETRY_FIRST_S = 0.5
FINISH_RETRY_MAX_S = 4.0


def run_task(task_id: str) -> None:
    """RQ entry point (``worker.job.run_task``)."""
    TaskRunner(bootstrap.current()).run(task_id)


@dataclass(frozen=True)
class Ending:
    """How a claimed task ends: the state it moves to, why, and what its run left."""

    status: TaskStatus
    reason: str | None = None
    results: list[ResultFile] | None = None
    stats: RunStats | None = None


class TaskRunner:
    def __init__(self, context: WorkerContext) -> None:
        self._ctx = context
        self._repo = context.services.tasks
        self._settings = context.settings

    def run(self, task_id: str) -> None:
        with task_context(task_id):
            task = self._ctx.take_admitted(task_id) or self._repo.claim(
                task_id, self._ctx.worker_id
            )
            if task is None:
                current = self._repo.get(task_id)
                log.info(
                    "task not claimed",
                    extra={"status": current.status.value if current else "unknown"},
                )
                return
            log.info(
                "task claimed",
                extra={"worker_id": self._ctx.worker_id, "attempt": task.attempts},
            )
            claimed_at = time.monotonic()
            if task.started_at is not None and task.queued_at is not None:
                wait_s = (task.started_at - task.queued_at).total_seconds()
                self._observe(UPLOAD_TO_START, (task.pipeline,), wait_s)
            self._run_claimed(task, claimed_at)

    def _run_claimed(self, task: TaskView, claimed_at: float) -> None:
        task_id = task.id
        spec = self._ctx.catalog.current().get(task.pipeline)
        if spec is None:
            self._close_live_log(task_id)
            self._finish(task_id, Ending(TaskStatus.ERROR, f"unknown pipeline '{task.pipeline}'"))
            self._close_live_log(task_id)
            return
        heartbeat = Heartbeat(
            self._repo,
            task_id,
            self._ctx.worker_id,
            interval_s=self._settings.heartbeat_interval_s,
            kill_poll_s=self._settings.kill_poll_interval_s,
        )
        run_dir: RunDir | None = None
        try:
            run_dir = RunDir.create(self._settings.worker_work_dir, task_id)
            with heartbeat:
                ending = self._execute(task, spec, run_dir, heartbeat)
            if heartbeat.lost.is_set():
                log.warning("result discarded: the task was taken from this worker")
        except Exception as exc:
            # A bug or an outage of a backing service: the task must still end, with a
            # reason, rather than wait for the reconciler's heartbeat timeout.
            log.exception("task failed inside the worker")
            ending = Ending(TaskStatus.ERROR, f"worker failed: {exc}")
        # Closed before the terminal state is written: a reader that sees the task ended must
        # also find the end of its live log. And again after: followers that saw the first
        # mark wait for the terminal state (``service/logs.follow_stream``); this wakes them.
        self._close_live_log(task_id)
        try:
            if self._finish(task_id, ending):
                self._observe_end(task, ending.status, time.monotonic() - claimed_at)
            self._close_live_log(task_id)
        finally:
            if run_dir is not None:
                run_dir.remove()

    def _execute(
        self, task: TaskView, spec: PipelineSpec, run_dir: RunDir, heartbeat: Heartbeat
    ) -> Ending:
        started = time.monotonic()
        try:
            staged = stage_inputs(
                self._ctx.services.storage, task, spec, run_dir, worker=self._ctx.worker_id
            )
        except InputUnreadable as exc:
            return Ending(TaskStatus.ERROR, str(exc))
        write_params_file(run_dir, task.params)
        log.info("inputs staged", extra={"seconds": round(time.monotonic() - started, 3)})
        resources = task.resources
        started_at = datetime.now(UTC)
        outcome: RunOutcome = self._ctx.executor.run(
            RunRequest(
                task_id=task.id,
                image=spec.image,
                command=spec.command,
                inputs=staged.files,
                in_dir=run_dir.in_dir,
                out_dir=run_dir.out_dir,
                params_file=PARAMS_FILE,
                log_path=run_dir.log_path,
                resources=resources,
                stop=heartbeat.stop,
                log_sink=self._live_log(task.id),
                params=task.params,
                environment=dict(spec.environment),
            )
        )
        ended_at = datetime.now(UTC)
        status, reason = settle(outcome, resources)
        log.info(
            "pipeline finished",
            extra={
                "outcome": outcome.kind.value,
                "exit_code": outcome.exit_code,
                **outcome.stats.as_dict(),
            },
        )
        if status is TaskStatus.DONE:
            missing = missing_outputs(spec, [name for name, _ in output_files(run_dir.out_dir)])
            if missing:
                status = TaskStatus.ERROR
                reason = f"the pipeline did not write its required output(s): {', '.join(missing)}"
        record = provenance.write(
            run_dir.root / PROVENANCE_FILE,
            provenance.document(
                task_id=task.id,
                spec=spec,
                params=task.params,
                inputs=staged.inputs,
                resources=resources,
                where=provenance.Where(
                    self._ctx.worker_id, host_name(self._settings), self._settings.executor
                ),
                ran=provenance.Ran(
                    command=outcome.command,
                    image_id=outcome.image_id,
                    started_at=started_at,
                    ended_at=ended_at,
                    status=status.value,
                    exit_code=outcome.exit_code,
                    reason=reason,
                ),
            ),
        )
        try:
            results = store_results(
                self._ctx.services.storage,
                self._settings.results_bucket,
                task.id,
                run_dir,
                include_outputs=status is TaskStatus.DONE,
                spec=spec,
                provenance=record,
            )
        except OrchestratorError as exc:
            if status is TaskStatus.DONE:
                return Ending(TaskStatus.ERROR, f"results could not be stored: {exc}")
            log.warning("log could not be stored", extra={"error": str(exc)})
            results = []
        return Ending(status, reason, results, outcome.stats)

    def _live_log(self, task_id: str) -> LineSink:
        stream = self._ctx.services.logs

        def append(lines: list[str]) -> None:
            stream.append(task_id, lines)

        return append

    def _close_live_log(self, task_id: str) -> None:
        try:
            self._ctx.services.logs.close(task_id)
        except Exception as exc:  # readers then stop at the task's terminal state instead
            log.warning("cannot close the live log", extra={"error": str(exc)})

    def _observe_end(self, task: TaskView, status: TaskStatus, run_s: float) -> None:
        # ``run_s`` from the claim, on this host's monotonic clock: no clock has to agree with
        # PostgreSQL's. created → done adds the database's own created → started.
        self._observe(TASK_DURATION, (task.pipeline, status.value), run_s)
        if status is TaskStatus.DONE and task.started_at is not None:
            before_s = (task.started_at - task.created_at).total_seconds()
            self._observe(CREATE_TO_DONE, (task.pipeline,), before_s + run_s)

    def _observe(self, spec: HistogramSpec, labels: tuple[str, ...], value: float) -> None:
        try:
            self._ctx.services.histograms.observe(spec, labels, value)
        except OrchestratorError as exc:  # a metric lost; the task is not
            log.warning("metric not recorded", extra={"metric": spec.name, "error": str(exc)})

    def _finish(self, task_id: str, ending: Ending) -> bool:
        """Write the run's end; whether this worker's write won."""
        # The run's outcome is worth retrying through a database outage: given up, the task
        # would wait for the reconciler's heartbeat timeout and then run again. Retrying is
        # safe: the write is conditional on this worker still holding the task.
        give_up_at = time.monotonic() + self._settings.heartbeat_timeout_s
        pause_s = FINISH_RETRY_FIRST_S
        while True:
            try:
                won = self._repo.transition(
                    task_id,
                    ending.status,
                    expected=TaskStatus.RUNNING,
                    reason=ending.reason,
                    held_by=self._ctx.worker_id,
                    results=ending.results,
                    stats=ending.stats,
                )
                break
            except DatabaseError as exc:
                if time.monotonic() + pause_s > give_up_at:
                    raise
                log.warning(
                    "database unavailable; writing the task's end again",
                    extra={
                        "status": ending.status.value,
                        "error": str(exc),
                        "retry_in_s": pause_s,
                    },
                )
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, FINISH_RETRY_MAX_S)
        log.info(
            "task finished" if won else "task finish lost (no longer held by this worker)",
            extra={"status": ending.status.value, "reason": ending.reason},
        )
        return won
