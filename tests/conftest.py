"""Suite-wide fixtures: the real local stack (``stack``), an authenticated client (``api``),
and the ``integration``/``e2e`` markers given by folder.

Unit tests use none of this and run without any service. The ``stack`` fixture reuses a test
stack that is already up or starting (``python -m devstack up --profile test`` in
another terminal makes repeated runs fast), else starts one for this session and stops it at the
end, once no other pytest session that joined it is still running. Sessions agree through a lock
file and one marker file per session in ``.stack-test/sessions/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import envfile
from devstack.child import log_tail
from devstack.profile import Profile, get_profile
from devstack.supervisor import supervisor_pid
from orchestrator.processes import pid_alive

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# `make test` builds the pipeline images before pytest, so a start normally takes about 10 s;
# the generous default covers a bare `pytest` on a machine where the stack has to seed the base
# image by debootstrap and build every image first (about 80 s here). It stays below the
# per-test timeout of pyproject.toml (900 s), which also covers fixture setup.
START_TIMEOUT_S = float(os.environ.get("STACK_START_TIMEOUT_S", "840"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if path.is_relative_to(TESTS / "integration"):
            item.add_marker(pytest.mark.integration)
        elif path.is_relative_to(TESTS / "e2e"):
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    datadir: Path
    profile: Profile

    @property
    def api_url(self) -> str:
        return self.env["API_URL"]

    @property
    def api_key(self) -> str:
        return self.env["API_KEY"]

    @property
    def tus_url(self) -> str:
        return self.env["TUS_PUBLIC_URL"]

    @property
    def s3_endpoint(self) -> str:
        return self.env["S3_ENDPOINT"]

    def children(self) -> dict[str, dict[str, Any]]:
        """Pids and restart counts of the supervisor's children (``children.json``)."""
        data: dict[str, dict[str, Any]] = json.loads((self.datadir / "children.json").read_text())
        return data


def _healthy(profile: Profile) -> bool:
    try:
        return requests.get(f"{profile.api_url}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _join(profile: Profile, pid: int) -> bool:
    """Wait for another session's stack to be ready; True when it is and answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while pid_alive(pid) and time.monotonic() < deadline:
        if profile.ready_file.exists():
            return _healthy(profile)
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _other_sessions(sessions: Path) -> list[int]:
    pids = [int(p.name) for p in sessions.glob("*") if p.name.isdigit()]
    return [pid for pid in pids if pid != os.getpid() and pid_alive(pid)]


def _start(profile: Profile) -> subprocess.Popen[bytes]:
    profile.logs.mkdir(parents=True, exist_ok=True)
    log_path = profile.logs / "supervisor.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--profile", "test"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest reaches it only through our teardown
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"the test stack exited with code {proc.returncode} while starting; "
                f"{log_path}:\n{log_tail(log_path, 60)}",
                pytrace=False,
            )
        if profile.ready_file.exists() and _pid_file_is(profile, proc.pid):
            return proc
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"the test stack was not ready after {START_TIMEOUT_S:.0f} s; "
                f"{log_path}:\n{log_tail(log_path, 60)}",
                pytrace=False,
            )
        time.sleep(0.5)


def _pid_file_is(profile: Profile, pid: int) -> bool:
    try:
        return int(profile.pid_file.read_text().strip()) == pid
    except (OSError, ValueError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The test-profile local stack: PostgreSQL, Redis, S3, dockerd, API, TUS server, worker."""
    profile = get_profile("test", ROOT)
    sessions = profile.datadir / "sessions"
    with _locked(profile.datadir / "fixture.lock"):
        pid = supervisor_pid(profile)  # ready or still starting
        proc = None if pid is not None and _join(profile, pid) else _start(profile)
        sessions.mkdir(exist_ok=True)
        (sessions / str(os.getpid())).touch()
    env = envfile.parse(profile.env_file.read_text())
    try:
        yield Stack(env=env, datadir=profile.datadir, profile=profile)
    finally:
        (sessions / str(os.getpid())).unlink(missing_ok=True)
        if proc is not None:
            # Sessions that joined this stack keep it up until they are done.
            deadline = time.monotonic() + START_TIMEOUT_S
            while _other_sessions(sessions) and time.monotonic() < deadline:
                time.sleep(1)
            _stop(proc)


class ApiSession(requests.Session):
    """A requests session that sends the API key and takes paths relative to the API URL."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.headers["X-API-Key"] = api_key

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 30)
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(method, self.url(target), *args, **kwargs)


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiSession]:
    with ApiSession(stack.api_url, stack.api_key) as session:
        yield session
