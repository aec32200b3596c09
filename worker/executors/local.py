"""Runs a pipeline as a local subprocess under rlimits, for hosts without Docker (EXECUTOR=local).

Weaker isolation than a container and said so: memory is bounded by RLIMIT_AS (address space,
so a MemoryError rather than a kernel OOM kill), processes by RLIMIT_NPROC, CPU time by
RLIMIT_CPU as a backstop behind the wall-clock timeout; there is no network or filesystem
isolation and fractional CPU shares are not enforced.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

import pipelines
from orchestrator.defaults import STOP_GRACE_S
from worker.command import expand
from worker.executors.base import OutcomeKind, RunOutcome, RunRequest, RunStats, read_tail
from worker.logpump import LogPump, follow_file

log = logging.getLogger(__name__)

POLL_S = 0.1
# Interpreter start-up needs some address space of its own beyond what the pipeline uses.
MIN_ADDRESS_SPACE = 64 * 1024**2
OOM_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory")
PROJECT_ROOT = Path(pipelines.__file__).resolve().parent.parent


def _limits(memory_bytes: int, nproc: int, cpu_s: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _user_process_count() -> int:
    # RLIMIT_NPROC counts every process of the user, not just the run's own.
    uid = os.getuid()
    count = 0
    for proc in psutil.process_iter(["uids"]):
        uids = proc.info.get("uids")
        if uids is not None and uids.real == uid:
            count += 1
    return count


class LocalExecutor:
    def has_image(self, image: str) -> bool:
        return True  # it runs the command on this host; there is no image

    def images(self, wanted: Iterable[str]) -> list[str] | None:
        return None  # any: see has_image

    def run(self, request: RunRequest) -> RunOutcome:
        res = request.resources
        if res.gpus > 0:
            return RunOutcome(
                OutcomeKind.FAILED,
                reason="the local executor cannot give a task GPUs; use the docker executor",
            )
        if request.stop.is_set():
            return RunOutcome(OutcomeKind.KILLED)
        command = expand(
            request.command,
            request.inputs,
            in_root=str(request.in_dir),
            out_dir=str(request.out_dir),
            params_file=str(request.in_dir / request.params_file),
            params=request.params,
        )
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        tmp = request.out_dir.parent / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {
            **request.environment,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(PROJECT_ROOT),
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        cpu_s = math.ceil(res.timeout_s * max(1.0, res.cpus)) + 5
        preexec = _limits(
            max(res.memory_bytes, MIN_ADDRESS_SPACE), _user_process_count() + res.pids, cpu_s
        )
        started = time.monotonic()
        with request.log_path.open("wb") as log_file:
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=request.out_dir.parent,
                    env=env,
                    start_new_session=True,  # its own process group: a kill reaches children
                    preexec_fn=preexec,
                )
            except OSError as exc:
                return RunOutcome(
                    OutcomeKind.FAILED, reason=f"pipeline could not be started: {exc.strerror}"
                )
            ended = threading.Event()
            pump = (
                LogPump(follow_file(request.log_path, ended), request.log_sink).__enter__()
                if request.log_sink is not None
                else None
            )
            try:
                kind, status, usage = self._wait(proc, request, started + res.timeout_s)
            finally:
                ended.set()
                if pump is not None:
                    pump.close()
        wall = time.monotonic() - started
        stats = RunStats(
            wall_s=wall,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_memory_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        )
        tail = read_tail(request.log_path)
        ran = tuple(command)
        if kind is not None:
            return RunOutcome(kind, log_tail=tail, stderr_tail=tail, stats=stats, command=ran)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and any(marker in tail[-2000:] for marker in OOM_MARKERS):
            return RunOutcome(
                OutcomeKind.OOM, exit_code=code, log_tail=tail, stats=stats, command=ran
            )
        return RunOutcome(
            OutcomeKind.EXITED,
            exit_code=code,
            log_tail=tail,
            stderr_tail=tail,
            stats=stats,
            command=ran,
        )

    def _wait(
        self, proc: subprocess.Popen[bytes], request: RunRequest, deadline: float
    ) -> tuple[OutcomeKind | None, int, resource.struct_rusage]:
        """Wait for the child, stopping its process group on stop or timeout.

        ``os.wait4`` gives this child's own rusage (RUSAGE_CHILDREN would mix concurrent runs);
        it also reaps the child, so ``proc.poll()``/``wait()`` must not be used here.
        """
        kind: OutcomeKind | None = None
        kill_at: float | None = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the run, if any
                return kind, status, usage
            if kill_at is not None:
                if time.monotonic() >= kill_at:
                    _signal_group(proc.pid, signal.SIGKILL)
                time.sleep(POLL_S)
                continue
            if request.stop.wait(POLL_S):
                kind = OutcomeKind.KILLED
            elif time.monotonic() >= deadline:
                kind = OutcomeKind.TIMEOUT
            if kind is not None:
                log.info("stopping pipeline", extra={"why": kind.value})
                _signal_group(proc.pid, signal.SIGTERM)
                kill_at = time.monotonic() + STOP_GRACE_S


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
