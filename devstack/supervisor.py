"""The supervisor: start the services in order, keep them running, stop them in reverse order.

One supervisor per profile (pid file ``<datadir>/supervisor.pid``). A child that exits is
restarted after an exponential backoff (0.5 s doubling, capped at 10 s); after ``MAX_FAST_FAILS``
exits in a row each within ``FAST_FAIL_S`` of its start, the whole stack is stopped and the
supervisor exits non-zero with that service's log tail. SIGINT/SIGTERM/SIGHUP stop everything.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from orchestrator.processes import pid_alive

from . import envfile, images
from .child import Child, log_tail
from .probes import port_open, who_listens
from .profile import HOST, Profile
from .services import Context, Dockerd, Service, all_services

log = logging.getLogger("devstack")

MAX_FAST_FAILS = 5
FAST_FAIL_S = 30.0
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0


class StartFailure(RuntimeError):
    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


class Interrupted(Exception):
    pass


@dataclass
class Running:
    service: Service
    child: Child
    fast_fails: int = 0
    restarts: int = 0
    restart_at: float | None = None  # monotonic time of a scheduled restart


def supervisor_pid(profile: Profile) -> int | None:
    """Pid of a live supervisor of this profile, from its pid file; None when there is none."""
    try:
        pid = int(profile.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    return pid if b"devstack" in cmdline else None


def stop_supervisor(pid: int, timeout: float = 90.0) -> bool:
    """SIGTERM a supervisor and wait for it (it stops its children first)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return False


class Supervisor:
    def __init__(
        self,
        ctx: Context,
        *,
        build_images: bool = True,
        allow_missing: bool = False,
        mirror: str = images.DEFAULT_MIRROR,
    ) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.build_images = build_images
        self.allow_missing = allow_missing
        self.mirror = mirror
        self.stopping = threading.Event()
        self.running: list[Running] = []
        self.t0 = time.monotonic()

    # --- entry --------------------------------------------------------------------------------

    def run(self) -> int:
        p = self.profile
        for folder in (p.datadir, p.logs, p.work_dir, p.pipelines_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self._claim_pid_file():
            return 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        p.ready_file.unlink(missing_ok=True)
        envfile.write(p.env_file, self.ctx.stack_env)
        code = 0
        try:
            self._start_all()
            self._announce()
            code = self._watch()
        except Interrupted:
            log.info("interrupted during start")
        except (StartFailure, images.ImageError, RuntimeError) as exc:
            log.error("%s", exc)
            tail = getattr(exc, "tail", "")
            if tail:
                log.error("last lines of the log:\n%s", tail)
            code = 1
        finally:
            self._stop_all()
            p.ready_file.unlink(missing_ok=True)
            if p.pid_file.exists() and p.pid_file.read_text().strip() == str(os.getpid()):
                p.pid_file.unlink()
            self._write_children()
        log.info("stopped (%s)", "clean" if code == 0 else f"exit {code}")
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping.is_set():
            log.info("%s received: stopping the stack", signal.Signals(signum).name)
        self.stopping.set()

    def _claim_pid_file(self) -> bool:
        other = supervisor_pid(self.profile)
        if other is not None:
            if self.profile.name != "test":
                log.error(
                    "a %s stack is already running (supervisor pid %d); its API is %s. "
                    "Stop it with `make down` (python -m devstack down).",
                    self.profile.name,
                    other,
                    self.profile.api_url,
                )
                return False
            log.warning("stopping the stale test-profile supervisor (pid %d) to take over", other)
            stop_supervisor(other)
        self.profile.pid_file.write_text(f"{os.getpid()}\n")
        return True

    # --- start ----------------------------------------------------------------------------------

    def _start_all(self) -> None:
        for service in all_services(self.ctx):
            self._check_stop()
            reason = service.missing()
            if reason:
                if self.allow_missing:
                    log.warning("SKIPPING %s: %s", service.name, reason)
                    continue
                raise StartFailure(f"cannot start {service.name}: {reason}")
            if not service.wanted():
                log.info("%-9s using the one already running", service.name)
            else:
                self._start(service)
            if isinstance(service, Dockerd) and self.build_images:
                self._images()

    def _start(self, service: Service) -> None:
        started = time.monotonic()
        self._wait_ports_free(service)
        service.prepare()
        child = service.child()
        child.start()
        run = Running(service, child)
        self.running.append(run)
        self._write_children()
        deadline = started + service.start_timeout
        while not service.ready(child):
            self._check_stop()
            code = child.poll()
            if code is not None:
                raise StartFailure(
                    f"{service.name} exited with code {code} while starting "
                    f"(log: {child.log_path})",
                    log_tail(child.log_path),
                )
            if time.monotonic() > deadline:
                raise StartFailure(
                    f"{service.name} not ready after {service.start_timeout:.0f} s "
                    f"(log: {child.log_path})",
                    log_tail(child.log_path),
                )
            self.stopping.wait(0.25)
        service.after_ready()
        took = time.monotonic() - started
        log.info("%-9s ready in %.1f s (pid %d)", service.name, took, child.pid)

    def _wait_ports_free(self, service: Service, grace: float = 30.0) -> None:
        # A predecessor's children die with it (PDEATHSIG) but may take a while to let go of a
        # port (tusd lets running requests finish for up to 10 s).
        deadline = time.monotonic() + grace
        for port in service.ports():
            while port_open(port):
                self._check_stop()
                if time.monotonic() > deadline:
                    squatter = who_listens(port) or "unknown process"
                    raise StartFailure(
                        f"port {port} for {service.name} is already in use: {squatter}"
                    )
                time.sleep(0.25)

    def _images(self) -> None:
        started = time.monotonic()
        log_path = self.profile.log("images")
        env = self.ctx.base_env
        how = images.ensure_base(env, log_path, log.info, mirror=self.mirror)
        built = images.build_pipelines(
            self.profile.root, env, log_path, log.info, should_stop=self.stopping.is_set
        )
        failed = [n for n, s in built.items() if s.startswith("failed")]
        summary = (
            ", ".join(f"{n} {'FAILED' if n in failed else s}" for n, s in built.items())
            or "no pipelines"
        )
        log.info(
            "images    ready in %.1f s (base %s; %s)", time.monotonic() - started, how, summary
        )
        if failed:
            # The stack is still useful without them; tasks of these pipelines will fail with
            # a missing-image reason. `make images` / `make test` treat this as an error.
            log.warning("pipeline images NOT built: %s (see %s)", ", ".join(failed), log_path)

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise Interrupted

    # --- watch ----------------------------------------------------------------------------------

    def _watch(self) -> int:
        while not self.stopping.wait(0.5):
            for run in self.running:
                failure = self._tend(run)
                if failure is not None:
                    return failure
        return 0

    def _tend(self, run: Running) -> int | None:
        """Notice an exit, schedule and perform the restart. Returns an exit code to give up."""
        now = time.monotonic()
        if run.restart_at is not None:
            if now >= run.restart_at:
                run.restart_at = None
                run.restarts += 1
                run.child.start()
                self._write_children()
                log.info(
                    "%s restarted (pid %d, restart #%d)",
                    run.service.name,
                    run.child.pid,
                    run.restarts,
                )
            return None
        code = run.child.poll()
        if code is None:
            return None
        uptime = run.child.uptime()
        run.fast_fails = run.fast_fails + 1 if uptime < FAST_FAIL_S else 1
        if run.fast_fails >= MAX_FAST_FAILS:
            log.error(
                "%s keeps failing (%d exits in a row, each within %.0f s of starting); giving up. "
                "Last lines of %s:\n%s",
                run.service.name,
                run.fast_fails,
                FAST_FAIL_S,
                run.child.log_path,
                log_tail(run.child.log_path),
            )
            return 1
        delay = min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** (run.fast_fails - 1))
        log.warning(
            "%s exited with code %s after %.1f s; restarting in %.1f s",
            run.service.name,
            code,
            uptime,
            delay,
        )
        run.restart_at = now + delay
        return None

    # --- stop -----------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        for run in reversed(self.running):
            if run.child.running:
                log.info("stopping %s (pid %d)", run.service.name, run.child.pid)
            run.child.stop()
        self.running.clear()

    # --- reporting ------------------------------------------------------------------------------

    def _write_children(self) -> None:
        """``<datadir>/children.json``: pids and restart counts, for tests and the curious."""
        data = {
            run.service.name: {
                "pid": run.child.pid,
                "restarts": run.restarts,
                "running": run.child.running,
            }
            for run in self.running
        }
        tmp = self.profile.datadir / "children.json.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.profile.datadir / "children.json")

    def _announce(self) -> None:
        p, e = self.profile, self.ctx.stack_env
        self.profile.ready_file.write_text(
            json.dumps({"pid": os.getpid(), "at": time.time(), "api_url": p.api_url}) + "\n"
        )
        rel = os.path.relpath(p.datadir, Path.cwd())
        lines = [
            f"local stack ({p.name}) ready in {time.monotonic() - self.t0:.1f} s",
            f"  API          {p.api_url}   (OpenAPI: {p.api_url}/schema)",
            f"  API key      {e['API_KEY']}   (header X-API-Key)",
            f"  tusd         {p.tus_url}   (tus uploads; hooks to {HOST}:{p.ports.hooks})",
            f"  MinIO        {p.s3_endpoint}   (S3; access key {e['S3_ACCESS_KEY']}, "
            f"buckets {e['UPLOADS_BUCKET']}, {e['RESULTS_BUCKET']})",
            f"  PostgreSQL   {e['DATABASE_URL'].replace('+psycopg', '')}",
            f"  Redis        {e['REDIS_URL']}",
            f"  settings     {rel}/env   (set -a; . {rel}/env; set +a)",
            f"  logs         {rel}/logs/",
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), flush=True)
        sys.stdout.flush()
