"""``WorkerRepository.alive`` (what pre-create and create_task check room against) on the
stack's PostgreSQL: workers up and heard from recently, every field as announced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from orchestrator.bootstrap import Services, build_services
from orchestrator.db.workers import WorkerAnnouncement
from orchestrator.settings import Settings
from tests.raw import raw_engine


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    services = build_services(Settings(**{k.lower(): v for k, v in stack.env.items()}))
    yield services
    services.close()


@pytest.fixture
def made(services: Services) -> Iterator[list[str]]:
    """Ids of the workers a test announced: removed after it, so that the stack's own room
    checks never count these (they run nothing)."""
    ids: list[str] = []
    yield ids
    with raw_engine(services).begin() as conn:
        conn.execute(text("DELETE FROM workers WHERE id = ANY(:ids)"), {"ids": ids})


def announced(services: Services, made: list[str], images: list[str] | None) -> WorkerAnnouncement:
    a = WorkerAnnouncement(
        id=f"test-{uuid.uuid4().hex[:8]}:1",
        host="test-host",
        queues=["default", "gpu"],
        executor="docker",
        hardware={"cpus": 8, "disk_bytes": 10**12, "gpus": []},
        capacity={"cpus": 8.0, "memory_bytes": 2**34, "gpus": 0},
        free={"cpus": 6.0, "memory_bytes": 2**33, "gpus": 0},
        running=["t-1"],
        images=images,
    )
    made.append(a.id)
    services.workers.announce(a)
    return a


def test_alive_lists_workers_heard_from_recently_as_they_announced(
    services: Services, made: list[str]
) -> None:
    up, without_images = announced(services, made, ["pipeline:1"]), announced(services, made, None)
    stopped, silent = announced(services, made, None), announced(services, made, None)
    services.workers.stopped(stopped.id)
    with raw_engine(services).begin() as conn:
        conn.execute(
            text("UPDATE workers SET last_seen_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": silent.id},
        )

    alive = {w.id: w for w in services.workers.alive(lost_after_s=60.0)}
    assert up.id in alive and without_images.id in alive
    assert stopped.id not in alive and silent.id not in alive
    view = alive[up.id]
    assert (view.host, view.queues, view.executor, view.running) == (
        "test-host",
        ["default", "gpu"],
        "docker",
        ["t-1"],
    )
    assert (view.hardware, view.capacity, view.free) == (up.hardware, up.capacity, up.free)
    assert view.state == "up"
    assert isinstance(view.started_at, datetime) and view.last_seen_at >= view.started_at
    assert view.images == ["pipeline:1"] and alive[without_images.id].images is None
    # A longer window takes the silent one back in.
    assert silent.id in {w.id for w in services.workers.alive(lost_after_s=7200.0)}
