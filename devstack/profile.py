"""Profiles: where a stack keeps its data and which loopback ports it listens on.

``dev`` is what ``make up`` runs; ``test`` is the suite's own stack, every port shifted by 100 so
both can run side by side on one machine without touching each other's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.defaults import (
    DEV_API_PORT,
    DEV_HOOK_PORT,
    DEV_POSTGRES_PORT,
    DEV_REDIS_PORT,
    DEV_S3_PORT,
    DEV_TUS_PORT,
)

PROFILES = ("dev", "test")
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    postgres: int = DEV_POSTGRES_PORT
    redis: int = DEV_REDIS_PORT
    s3: int = DEV_S3_PORT  # MinIO
    tus: int = DEV_TUS_PORT  # tusd
    api: int = DEV_API_PORT
    hooks: int = DEV_HOOK_PORT  # the API's internal listener for tusd's hooks (loopback only)

    def shifted(self, by: int) -> Ports:
        return Ports(**{name: port + by for name, port in vars(self).items()})


@dataclass(frozen=True)
class Profile:
    name: str
    root: Path  # the repository checkout
    datadir: Path
    ports: Ports

    # Files and folders inside the data dir; one place so CLI, supervisor and tests agree.
    @property
    def logs(self) -> Path:
        return self.datadir / "logs"

    @property
    def env_file(self) -> Path:
        return self.datadir / "env"

    @property
    def ready_file(self) -> Path:
        return self.datadir / "ready"

    @property
    def pid_file(self) -> Path:
        return self.datadir / "supervisor.pid"

    @property
    def work_dir(self) -> Path:
        return self.datadir / "work"

    @property
    def pipelines_dir(self) -> Path:
        """Where the stack's API and worker look for pipeline files besides the shipped ones:
        drop a pipeline file here and it is offered within seconds."""
        return self.datadir / "pipelines"

    @property
    def venv_bin(self) -> Path:
        return self.root / ".venv" / "bin"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    # URLs every client of the stack uses.
    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    @property
    def tus_url(self) -> str:
        return f"http://{HOST}:{self.ports.tus}/files/"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports.s3}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.ports.redis}/0"


def repo_root() -> Path:
    """The checkout ``devstack/`` sits at the top of."""
    return Path(__file__).resolve().parents[1]


def get_profile(name: str, root: Path | None = None) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    root = root or repo_root()
    if name == "dev":
        return Profile("dev", root, root / ".stack", Ports())
    return Profile("test", root, root / ".stack-test", Ports().shifted(100))
