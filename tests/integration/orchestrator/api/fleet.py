"""Helpers of the fleet API tests: fake workers in the real registry, tasks written directly,
and the in-process app served over real HTTP (chunked streaming needs a real server)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from litestar import Litestar
from sqlalchemy import delete, update

from orchestrator.bootstrap import Services
from orchestrator.db.models import Task, Worker
from orchestrator.db.workers import WorkerAnnouncement
from pipelines.spec import GiB, Resources
from tests.raw import raw_engine


@contextmanager
def fake_worker(
    services: Services,
    *,
    queues: tuple[str, ...] = ("default",),
    cpus: float = 2.0,
    memory_bytes: int = 4 * GiB,
    gpus: int = 0,
    running: tuple[str, ...] = (),
    worker_id: str | None = None,
) -> Iterator[str]:
    """A live worker row of the given capacity (announcing ``running``), deleted afterwards."""
    worker_id = worker_id or f"test-{uuid.uuid4().hex[:12]}"
    capacity = {"cpus": cpus, "memory_bytes": memory_bytes, "gpus": gpus}
    services.workers.announce(
        WorkerAnnouncement(
            id=worker_id,
            host="test-host",
            queues=list(queues),
            executor="local",
            hardware={
                "cpus": cpus,
                "memory_bytes": memory_bytes,
                "disk_bytes": 100 * GiB,
                "gpus": [
                    {
                        "index": i,
                        "model": "Fake GPU",
                        "memory_bytes": 16 * GiB,
                        "utilisation_pct": 0,
                    }
                    for i in range(gpus)
                ],
            },
            capacity=capacity,
            free=capacity,
            running=list(running),
        )
    )
    try:
        yield worker_id
    finally:
        with raw_engine(services).begin() as conn:
            conn.execute(delete(Worker).where(Worker.id == worker_id))


def age_worker(services: Services, worker_id: str, seconds: float) -> None:
    """Pretend the worker was last heard from ``seconds`` ago (by the database's clock)."""
    with raw_engine(services).begin() as conn:
        conn.execute(
            update(Worker)
            .where(Worker.id == worker_id)
            .values(last_seen_at=services.workers.now() - timedelta(seconds=seconds))
        )


def insert_task(
    services: Services,
    pipeline: str,
    *,
    created_at: datetime | None = None,
    queued_at: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    status: str | None = None,
    worker_id: str | None = None,
) -> str:
    """A task row written directly (no slots), with the times a test needs."""
    task_id = str(uuid.uuid4())
    services.tasks.create(
        task_id=task_id,
        pipeline=pipeline,
        params={},
        resources=Resources(),
        queue="default",
        slots=[],
    )
    values: dict[str, Any] = {
        k: v
        for k, v in {
            "created_at": created_at,
            "queued_at": queued_at,
            "started_at": started_at,
            "finished_at": finished_at,
            "status": status,
            "worker_id": worker_id,
        }.items()
        if v is not None
    }
    if values:
        with raw_engine(services).begin() as conn:
            conn.execute(update(Task).where(Task.id == task_id).values(**values))
    return task_id


def delete_pipeline_tasks(services: Services, pipeline: str) -> None:
    with raw_engine(services).begin() as conn:
        conn.execute(delete(Task).where(Task.pipeline == pipeline))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: Litestar) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="test-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("in-process API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
