"""A task's container log: live from the Redis stream while it runs, stored in S3 after.

The worker appends lines to the task's stream as the container prints them and writes an end
marker when the run is over; the complete log also lands in ``results/<task_id>/logs.txt``.
Reading follows the stream until the end marker, or until the task is terminal and no more
lines came for ``DRAIN_GRACE_S``; a stream that has expired falls back to the stored file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from orchestrator.adapters.logstream import LogStream
from orchestrator.bootstrap import Services
from orchestrator.defaults import LOG_FILE, result_key
from orchestrator.domain.status import TaskStatus
from orchestrator.errors import Conflict
from orchestrator.service.tasks import TaskReader, get_task

BLOCK_MS = 1000  # one blocking stream read (ms): how often a follower looks at the task
FOLLOWER_THREADS = 64  # log reads running at once per API process (the rest wait their turn)
DRAIN_GRACE_S = 3.0  # after the task is terminal, wait this long (s) for the end marker
START = "0-0"  # stream entry id before the first entry
NEW_ONLY = "$"  # a blocking read's start: entries added after it began


@dataclass(frozen=True)
class LiveLog:
    """Chunks of UTF-8 text, one or more whole lines each; each step may block ``BLOCK_MS``."""

    chunks: Generator[bytes, None, None]


@dataclass(frozen=True)
class StoredLog:
    """The run's stored log, as a presigned URL."""

    url: str


def open_log(
    services: Services, task_id: str, follow: bool, scope: str | None = None
) -> LiveLog | StoredLog:
    """Raise ``NotFound`` for an unknown task (or one of another project than ``scope``), and
    ``Conflict`` for following the log of a task that waits for its inputs: it may never run,
    so the stream would stay open and empty."""
    task = get_task(services, task_id, scope)
    batch, ended = services.logs.read(task_id, START)
    if not batch and not ended:
        if task.status.terminal:
            stored = stored_log_url(services, task_id)
            if stored is not None:
                return StoredLog(stored)
            if task.started_at is None:
                # Killed (or failed) before any run: no line will ever come, nothing to wait for.
                return LiveLog(_nothing())
        elif follow and task.status is TaskStatus.WAITING:
            raise Conflict(
                f"task {task_id} is waiting for its inputs and has logged nothing: there is "
                "no log to follow until it runs (follow=false reads what there is)",
                status=task.status.value,
            )
    return LiveLog(follow_stream(services.logs, services.tasks, task_id, batch, ended, follow))


def _nothing() -> Generator[bytes, None, None]:
    yield from ()


def stored_log_url(services: Services, task_id: str) -> str | None:
    settings = services.settings
    key = result_key(task_id, LOG_FILE)
    if services.storage.stat_size(settings.results_bucket, key) is None:
        return None
    return services.storage.presign_get(
        settings.results_bucket, key, settings.presign_expiry_s, LOG_FILE
    )


def _chunk(batch: list[tuple[str, str]]) -> bytes:
    return "".join(line.rstrip("\r\n") + "\n" for _, line in batch).encode()


def follow_stream(
    logs: LogStream,
    tasks: TaskReader,
    task_id: str,
    first: list[tuple[str, str]],
    ended: bool,
    follow: bool,
    *,
    block_ms: int = BLOCK_MS,
    grace_s: float = DRAIN_GRACE_S,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[bytes, None, None]:
    """Yield the stream's lines from the start: all of them, then (``follow``) new ones as they
    come, until the end marker with the task terminal, or the task is over and quiet for
    ``grace_s``.

    Each read blocks at most ``block_ms``, so a caller iterating in a worker thread gets control
    back (and can notice a closed connection) at least that often.
    """
    after = START
    batch = first
    terminal_since: float | None = None
    while True:
        if batch:
            after = batch[-1][0]
            yield _chunk(batch)
        if ended:
            # The worker marks the end just before it writes the task's terminal state, and
            # again just after: the stream ends once that state is visible, so a client that
            # saw the log end finds the task ended, and one that saw it ended finds the end.
            if not follow:
                return
            task = tasks.get(task_id)
            if task is None or task.status.terminal:
                return
            # Only entries added from now on (the mark is already read): the worker's second
            # mark, or the end of the block, after which the task is looked at again.
            batch, _ = logs.read(task_id, NEW_ONLY, block_ms=block_ms)
            continue
        if not batch:
            if not follow:
                return
            # Quiet for a whole read: is the run over although no end marker came (a worker
            # that died, or an executor that does not stream)?
            if terminal_since is None:
                task = tasks.get(task_id)
                if task is None or task.status.terminal:
                    terminal_since = clock()
            elif clock() - terminal_since >= grace_s:
                return
        batch, ended = logs.read(task_id, after, block_ms=block_ms if follow else None)
