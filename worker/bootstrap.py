"""The worker process's long-lived objects, built once per process from settings.

A slot runs its jobs in its own process (``worker.slot``), so one context serves every task it
runs. A job run in a forked process (a plain ``rq worker``'s work horse) must not share
database pools or HTTP connections across the fork: there ``current()`` notices the new pid and
builds fresh clients, keeping only the worker's identity and discovered hardware.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.task import TaskView
from orchestrator.service.catalog import CatalogSource
from orchestrator.settings import Settings
from pipelines.catalog import PipelineCatalog
from worker.executors import Executor, build_executor
from worker.hardware import Hardware, discover


def host_name(settings: Settings) -> str:
    """The host this worker announces: ``settings.worker_host``, else the machine's name."""
    return settings.worker_host or socket.gethostname()


def make_worker_id(host: str | None = None) -> str:
    return f"{host or socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerContext:
    services: Services
    executor: Executor
    catalog: CatalogSource
    worker_id: str
    hardware: Hardware
    pid: int
    # Tasks this process claimed before running their job (capacity-aware admission claims
    # under the group's lock, before RQ performs the job): task id → claimed view.
    admitted: dict[str, TaskView] = field(default_factory=dict)

    def take_admitted(self, task_id: str) -> TaskView | None:
        return self.admitted.pop(task_id, None)

    @property
    def settings(self) -> Settings:
        return self.services.settings


def build_context(
    settings: Settings,
    *,
    worker_id: str | None = None,
    hardware: Hardware | None = None,
) -> WorkerContext:
    hardware = hardware or discover(settings.worker_work_dir)
    return WorkerContext(
        services=build_services(settings),
        executor=build_executor(settings.executor, hardware.gpu_count),
        catalog=PipelineCatalog(settings.pipeline_dirs, check_every_s=settings.pipelines_reload_s),
        worker_id=worker_id or make_worker_id(host_name(settings)),
        hardware=hardware,
        pid=os.getpid(),
    )


_context: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    """Make ``context`` the one ``current()`` returns (``python -m worker`` calls this)."""
    global _context
    _context = context


def current() -> WorkerContext:
    """This process's context; built from the environment when nothing was installed (a job run
    by a plain ``rq worker``), rebuilt after a fork with the parent's identity."""
    global _context
    if _context is None:
        _context = build_context(Settings())
    elif _context.pid != os.getpid():
        parent = _context
        parent.services.forget_connections()
        _context = build_context(
            parent.settings, worker_id=parent.worker_id, hardware=parent.hardware
        )
        _context.admitted = dict(parent.admitted)
    return _context
