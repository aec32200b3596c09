"""Runs a pipeline in a Docker container with every limit the project's design asks for.

cpus → NanoCpus, memory → Memory with equal MemorySwap (no swap escape), pids, no network,
read-only root with a small tmpfs /tmp, all capabilities dropped, no-new-privileges, a non-root
user, inputs read-only at /in, outputs at /out, GPUs only when asked for and present.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest

from orchestrator.defaults import STOP_GRACE_S
from orchestrator.errors import ExecutorError
from orchestrator.processes import pid_alive
from worker.command import expand
from worker.executors.base import (
    LOG_TAIL_CHARS,
    OutcomeKind,
    RunOutcome,
    RunRequest,
    RunStats,
    read_tail,
)
from worker.labels import LABEL_OWNER, LABEL_TASK
from worker.logpump import LogPump

log = logging.getLogger(__name__)

IN_ROOT = "/in"
OUT_ROOT = "/out"
USER = "10001:10001"
# How often a run looks at its stop request and its deadline (s). The container's own exit is
# not polled for: the engine's wait endpoint answers the moment it happens (_ExitWatch).
STOP_CHECK_S = 0.25
# One blocking wait request (s); renewed until the container exits, so that no HTTP read
# timeout of the client has to outlast a run.
WAIT_REQUEST_S = 30
STATS_EVERY_S = 1.0
FAST_SAMPLE_S = 0.2
TMPFS_MAX_BYTES = 512 * 1024**2


def image_missing_reason(image: str) -> str:
    return f"pipeline image '{image}' is not available on this worker"


@dataclass
class _Peak:
    cpu_seconds: float | None = None
    memory_bytes: int | None = None

    def add(self, cpu_seconds: float | None, memory_bytes: int | None) -> None:
        if cpu_seconds:
            self.cpu_seconds = max(self.cpu_seconds or 0.0, cpu_seconds)
        if memory_bytes:
            self.memory_bytes = max(self.memory_bytes or 0, memory_bytes)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_files(container_id: str, root: Path = CGROUP_ROOT) -> tuple[Path, Path] | None:
    """(cpu usage file, peak memory file) of a container's cgroup as the engine's cgroupfs
    driver lays them out, when this process can see them (a worker on the engine's host)."""
    candidates = [
        # cgroup v1: cumulative CPU ns; memory high-water mark in bytes.
        (
            root / "cpuacct" / "docker" / container_id / "cpuacct.usage",
            root / "memory" / "docker" / container_id / "memory.max_usage_in_bytes",
        ),
        # cgroup v2 (cgroupfs and systemd drivers): cpu.stat usage_usec; memory.peak (5.19+).
        (
            root / "docker" / container_id / "cpu.stat",
            root / "docker" / container_id / "memory.peak",
        ),
        (
            root / "system.slice" / f"docker-{container_id}.scope" / "cpu.stat",
            root / "system.slice" / f"docker-{container_id}.scope" / "memory.peak",
        ),
    ]
    for cpu, mem in candidates:
        if cpu.exists() and mem.exists():
            return cpu, mem
    return None


def read_cgroup(cpu: Path, mem: Path) -> tuple[float | None, int | None]:
    """(CPU seconds, peak memory bytes) from cgroup files; None where a file is gone."""
    cpu_s: float | None = None
    try:
        text = cpu.read_text()
        if cpu.name == "cpu.stat":
            fields = dict(line.split() for line in text.splitlines() if line.strip())
            cpu_s = int(fields["usage_usec"]) / 1e6
        else:
            cpu_s = int(text) / 1e9
    except (OSError, ValueError, KeyError):
        pass
    try:
        peak: int | None = int(mem.read_text())
    except (OSError, ValueError):
        peak = None
    return cpu_s, peak


class _StatsSampler:
    """Samples the container's cgroup counters while it runs (they vanish when it exits).

    Where the container's cgroup files are visible (the worker runs on the engine's host) they
    are read every ``FAST_SAMPLE_S`` (cheap, and the v1 memory high-water mark is exact).
    Otherwise the engine's stats API is polled; it answers about once a second, so a run
    shorter than that may end with no numbers (best effort: the fields are then null).
    """

    def __init__(self, container: Container) -> None:
        self._container = container
        self.peak = _Peak()
        self._files: tuple[Path, Path] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="docker-stats", daemon=True)

    def start(self) -> None:
        self._files = cgroup_files(str(self._container.id))
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        every = FAST_SAMPLE_S if self._files else STATS_EVERY_S
        while True:
            self.sample()
            if self._done.wait(every):
                return

    def sample(self) -> None:
        if self._files is not None:
            self.peak.add(*read_cgroup(*self._files))
            return
        try:
            stats: dict[str, Any] = self._container.stats(stream=False, one_shot=True)
        except Exception:  # best effort: the container may be gone already
            return
        cpu_ns = (stats.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
        mem = stats.get("memory_stats") or {}
        # cgroup v1 reports the high-water mark; v2 has none, so the current usage is the floor.
        peak = mem.get("max_usage") or mem.get("usage")
        self.peak.add(cpu_ns / 1e9 if cpu_ns else None, int(peak) if peak else None)


class _ExitWatch:
    """The engine's wait endpoint in a thread: ``exited`` is set as soon as the container
    stops, where polling its state would notice up to a poll interval later."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self.exited = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="docker-wait", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def _loop(self) -> None:
        try:
            while not self._done.is_set():
                try:
                    self._container.wait(timeout=WAIT_REQUEST_S)
                    return
                except (DockerException, requests.exceptions.RequestException) as exc:
                    # Only the request's own read timeout means "still running, ask again";
                    # an API error (the container gone, ...) is a RequestException too.
                    if not isinstance(exc, DockerException) and _timed_out(exc):
                        continue
                    # The run's reload then finds the container ended, or raises ExecutorError.
                    log.warning("waiting for the container failed", extra={"error": str(exc)})
                    return
        finally:
            self.exited.set()


def _timed_out(exc: requests.exceptions.RequestException) -> bool:
    """A read timeout, as requests raises it: Timeout, or (reading a streamed body) a
    ConnectionError around urllib3's ReadTimeoutError."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, urllib3.exceptions.ReadTimeoutError)


def container_wall_s(state: dict[str, Any]) -> float | None:
    """Run time from the engine's own StartedAt/FinishedAt (RFC 3339, nanoseconds)."""
    started, finished = _timestamp(state.get("StartedAt")), _timestamp(state.get("FinishedAt"))
    if started is None or finished is None or finished < started:
        return None
    return (finished - started).total_seconds()


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or value.startswith("0001-"):  # the engine's "never"
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    base, frac, tz = match.groups()
    # Python parses at most microseconds: the engine gives nanoseconds.
    micro = (frac or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{base}.{micro}{'+00:00' if tz == 'Z' else tz}")


class DockerExecutor:
    def __init__(self, client: docker.DockerClient, gpu_count: int = 0) -> None:
        self._client = client
        self._gpu_count = gpu_count

    @classmethod
    def from_env(cls, gpu_count: int = 0) -> DockerExecutor:
        try:
            return cls(docker.from_env(timeout=60), gpu_count)
        except DockerException as exc:
            raise ExecutorError(f"Docker engine unreachable: {exc}") from exc

    def has_image(self, image: str) -> bool:
        try:
            self._client.images.get(image)
        except ImageNotFound:
            return False
        except DockerException as exc:  # the run will say what is wrong, with the reason
            log.warning("cannot look up an image", extra={"image": image, "error": str(exc)})
            return True
        return True

    def images(self, wanted: Iterable[str]) -> list[str] | None:
        """Those of ``wanted`` this engine has, by tag or ID (what the worker announces)."""
        return sorted({ref for ref in wanted if self.has_image(ref)})

    def run(self, request: RunRequest) -> RunOutcome:
        res = request.resources
        if res.gpus > 0 and res.gpus > self._gpu_count:
            have = f"only {self._gpu_count}" if self._gpu_count else "none"
            return RunOutcome(
                OutcomeKind.FAILED,
                reason=f"task needs {res.gpus} GPU(s) but this worker has {have}",
            )
        # A missing image is found by create (ImageNotFound): no inspect round trip first.
        if request.stop.is_set():
            return RunOutcome(OutcomeKind.KILLED)

        try:
            container = self._create(request)
        except ImageNotFound:
            return RunOutcome(OutcomeKind.FAILED, reason=image_missing_reason(request.image))
        except DockerException as exc:
            raise ExecutorError(f"cannot create container: {exc}") from exc
        try:
            outcome = self._supervise(container, request)
        finally:
            self._remove(container)
        # What ran, as the engine recorded it at create: the image's ID, not its tag.
        return replace(
            outcome,
            command=tuple(container.attrs.get("Config", {}).get("Cmd") or ()),
            image_id=container.attrs.get("Image"),
        )

    def container_options(self, request: RunRequest) -> dict[str, Any]:
        """The keyword arguments of ``containers.create`` for this run."""
        res = request.resources
        command = expand(
            request.command,
            request.inputs,
            in_root=IN_ROOT,
            out_dir=OUT_ROOT,
            params_file=f"{IN_ROOT}/{request.params_file}",
            params=request.params,
        )
        tmpfs_bytes = min(res.memory_bytes, TMPFS_MAX_BYTES)
        options: dict[str, Any] = {
            "image": request.image,
            "command": command,
            "name": f"task-{request.task_id}-{uuid.uuid4().hex[:8]}",
            "detach": True,
            # A pipeline running as PID 1 ignores SIGTERM unless it installs a handler, so a stop
            # would wait out the grace period; docker-init as PID 1 forwards the signal instead.
            "init": True,
            "nano_cpus": int(res.cpus * 1e9),
            "mem_limit": res.memory_bytes,
            "memswap_limit": res.memory_bytes,
            "pids_limit": res.pids,
            "network_mode": "none",
            "read_only": True,
            # tmpfs pages count against the memory limit, so /tmp cannot escape it either.
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,size={tmpfs_bytes},mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "user": USER,
            # The root is read-only: HOME and TMPDIR must be the tmpfs, whatever the file says.
            "environment": {**request.environment, "HOME": "/tmp", "TMPDIR": "/tmp"},
            "volumes": {
                str(request.in_dir): {"bind": IN_ROOT, "mode": "ro"},
                str(request.out_dir): {"bind": OUT_ROOT, "mode": "rw"},
            },
            "labels": {LABEL_TASK: request.task_id, LABEL_OWNER: _owner()},
        }
        if res.gpus > 0:
            options["device_requests"] = [DeviceRequest(count=res.gpus, capabilities=[["gpu"]])]
        return options

    def remove_orphans(self) -> list[str]:
        """Remove containers this host started for processes that no longer exist."""
        host = socket.gethostname()
        removed = []
        try:
            found = self._client.containers.list(all=True, filters={"label": LABEL_OWNER})
        except DockerException as exc:
            log.warning("cannot list containers", extra={"error": str(exc)})
            return []
        for container in found:
            owner_host, _, pid = container.labels.get(LABEL_OWNER, "").rpartition(":")
            if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
                continue
            log.warning(
                "removing orphaned pipeline container",
                extra={"container": container.name, "task_id": container.labels.get(LABEL_TASK)},
            )
            self._remove(container)
            removed.append(container.name)
        return removed

    def _create(self, request: RunRequest) -> Container:
        return self._client.containers.create(**self.container_options(request))

    def _supervise(self, container: Container, request: RunRequest) -> RunOutcome:
        res = request.resources
        sampler = _StatsSampler(container)
        try:
            container.start()
        except DockerException as exc:
            self._save_logs(container, request)
            return RunOutcome(
                OutcomeKind.FAILED,
                reason=f"container could not start: {_explain(exc)}",
                log_tail=read_tail(request.log_path),
            )
        started = time.monotonic()
        deadline = started + res.timeout_s
        watch = _ExitWatch(container)
        watch.start()
        sampler.start()
        # The followed output is the stored log too: no second read of it after the exit.
        capture = _LogCapture(request.log_path)
        pump = LogPump(capture.tee(_follow_logs(container)), request.log_sink or _discard)
        pump.__enter__()
        kind: OutcomeKind | None = None
        try:
            # Until it ends by itself (its own state then says how), or is stopped.
            while not watch.exited.wait(STOP_CHECK_S):
                if request.stop.is_set():
                    kind = OutcomeKind.KILLED
                elif time.monotonic() >= deadline:
                    kind = OutcomeKind.TIMEOUT
                if kind is not None:
                    log.info(
                        "stopping container",
                        extra={"task_id": request.task_id, "why": kind.value},
                    )
                    container.stop(timeout=STOP_GRACE_S)
                    break
            wall = time.monotonic() - started
            sampler.sample()
            container.reload()
        except DockerException as exc:
            raise ExecutorError(f"lost track of container {container.name}: {exc}") from exc
        finally:
            watch.stop()
            sampler.stop()
            pump.close()
        if container.status not in ("exited", "dead"):
            raise ExecutorError(
                f"lost track of container {container.name}: the engine stopped answering "
                f"its wait while it is {container.status}"
            )
        state = container.attrs.get("State", {})
        if not capture.complete:
            self._save_logs(container, request)
        stats = RunStats(
            wall_s=container_wall_s(state) or wall,
            cpu_seconds=sampler.peak.cpu_seconds,
            peak_memory_bytes=sampler.peak.memory_bytes,
        )
        tail = read_tail(request.log_path)
        stderr_tail = self._stderr_tail(container)
        if kind is None and state.get("OOMKilled"):
            kind = OutcomeKind.OOM
        if kind is not None:
            return RunOutcome(kind, log_tail=tail, stderr_tail=stderr_tail, stats=stats)
        return RunOutcome(
            OutcomeKind.EXITED,
            exit_code=int(state.get("ExitCode", -1)),
            log_tail=tail,
            stderr_tail=stderr_tail,
            stats=stats,
        )

    def _save_logs(self, container: Container, request: RunRequest) -> None:
        """Stream the container's combined log to ``request.log_path`` (never into memory).

        Written aside and renamed over the path: a follower cut short may still hold the old
        file open, and must not interleave its bytes with these."""
        part = request.log_path.with_name(request.log_path.name + ".part")
        try:
            with part.open("wb") as f:
                for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
                    f.write(chunk)
            part.replace(request.log_path)
        except (DockerException, OSError) as exc:
            log.warning("cannot save container log", extra={"error": str(exc)})

    def _stderr_tail(self, container: Container) -> str:
        try:
            raw: bytes = container.logs(stdout=False, stderr=True, tail=20)
        except DockerException:
            return ""
        return raw.decode("utf-8", errors="replace")[-LOG_TAIL_CHARS:]

    def _remove(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except DockerException as exc:
            log.warning(
                "cannot remove container", extra={"container": container.name, "error": str(exc)}
            )


def _discard(lines: list[str]) -> None:
    """The live-log sink of a run nobody follows."""


class _LogCapture:
    """Writes a run's followed output to its log file as the chunks go by; ``complete`` once
    the stream ended with the container (not cut short by an engine error)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.complete = False

    def tee(self, chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
        # An error (the engine's, or the file's) ends the pump's source, which logs it; the
        # run then reads the log again once the container has exited.
        with self._path.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                yield chunk
        self.complete = True


def _follow_logs(container: Container) -> Iterator[bytes]:
    """The container's combined output as it is written, until it exits (lazily, so that an
    engine error surfaces in the pump's thread, not in the run)."""
    yield from container.logs(stdout=True, stderr=True, stream=True, follow=True)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _explain(exc: DockerException) -> str:
    if isinstance(exc, APIError):
        return str(exc.explanation or exc)
    return str(exc)
