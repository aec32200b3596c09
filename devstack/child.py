"""One supervised child process: started in its own session, logging to a file, stopped firmly.

Each child gets its own process group so that a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in reverse start order. Each child also asks the kernel
for SIGTERM when the supervisor dies (PR_SET_PDEATHSIG): a supervisor killed with SIGKILL leaves
no PostgreSQL holding its port behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    # Runs in the child between fork and exec, after the uid switch (which would clear it).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


_USERINFO_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")


def redacted(arg: str) -> str:
    """``arg`` with the password of any URL's userinfo shown as ``***`` (tusd's hook secret)."""
    return _USERINFO_PASSWORD.sub(r"\1***@", arg)


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """A process the supervisor owns; ``start`` may be called again after it exited."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            shown = " ".join(redacted(arg) for arg in self.argv)
            log.write(f"\n=== {stamp} supervisor starts: {shown}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                preexec_fn=lambda: _die_with_parent(parent),
            )
        self.started_at = time.monotonic()

    def poll(self) -> int | None:
        """Exit code once the process has ended, else None (also None before any start)."""
        return self.proc.poll() if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def stop(self) -> int | None:
        """Ask politely (``stop_signal``), then SIGKILL the whole group after ``stop_timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Grandchildren that outlived their leader (the group id is the leader's pid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode
