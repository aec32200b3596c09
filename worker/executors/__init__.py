"""Executors run one pipeline command under hard limits: ``docker`` (default) or ``local``."""

from __future__ import annotations

from worker.executors.base import Executor, OutcomeKind, RunOutcome, RunRequest, RunStats

__all__ = ["Executor", "OutcomeKind", "RunOutcome", "RunRequest", "RunStats", "build_executor"]


def build_executor(kind: str, gpu_count: int = 0) -> Executor:
    """The executor named by ``settings.executor``; imports the docker SDK only when needed."""
    if kind == "local":
        from worker.executors.local import LocalExecutor

        return LocalExecutor()
    if kind == "docker":
        from worker.executors.docker import DockerExecutor

        return DockerExecutor.from_env(gpu_count)
    raise ValueError(f"unknown executor '{kind}'")
