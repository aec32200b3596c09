"""Project quotas through the real upload path and the real worker: a byte quota refused to a
tus client at pre-create with the limit named, and a running-task quota that keeps a project's
second task pending until its first has ended (while another project's tasks overlap)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tusclient.exceptions import TusCommunicationError

from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.access import Role
from orchestrator.settings import Settings
from tests.e2e.client import Client
from tests.e2e.test_flow import tus_upload

SLEEP_S = 3


@pytest.fixture(scope="module")
def services(stack: Any) -> Any:
    svc: Services = build_services(Settings(**{k.lower(): v for k, v in stack.env.items()}))
    yield svc
    svc.close()


def member(services: Services, stack: Any, **quota: int | None) -> Client:
    """A client with a new member key of a new project that has ``quota``."""
    project = f"quota-{uuid.uuid4().hex[:8]}"
    made = services.access.create_key(project, Role.MEMBER)
    services.access.set_quota(project, quota)
    return Client(stack.api_url, made.key)


def test_a_byte_quota_refuses_the_upload_at_pre_create(
    services: Services, stack: Any, tmp_path: Path
) -> None:
    client = member(services, stack, max_upload_bytes=1000, max_stored_bytes=1500)
    task = client.create("checksum")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(TusCommunicationError) as refused:
        tus_upload(task["upload_urls"]["first"], big)
    assert refused.value.status_code == 413
    assert "max_upload_bytes" in str(refused.value.response_content)
    assert client.query(task["task_id"])["inputs"]["first"]["state"] == "empty"
    # Within the per-task limit, but past the project's stored bytes with what it holds.
    small = tmp_path / "small.bin"
    small.write_bytes(b"y" * 600)
    tus_upload(task["upload_urls"]["first"], small)
    second = client.create("checksum")
    tus_upload(second["upload_urls"]["first"], small)  # 1200 bytes stored now
    rest = tmp_path / "rest.bin"
    rest.write_bytes(b"z" * 400)  # 1000 for this task: allowed; 1600 stored: not
    with pytest.raises(TusCommunicationError) as refused:
        tus_upload(second["upload_urls"]["second"], rest)
    assert refused.value.status_code == 413
    assert "max_stored_bytes" in str(refused.value.response_content)


def _run(client: Client, tmp_path: Path) -> str:
    task = client.create("checksum", {"sleep_s": SLEEP_S})
    for slot in ("first", "second"):
        f = tmp_path / f"{task['task_id']}-{slot}"
        f.write_bytes(slot.encode())
        tus_upload(task["upload_urls"][slot], f)
    task_id: str = task["task_id"]
    return task_id


def _span(client: Client, task_id: str) -> tuple[datetime, datetime]:
    t = client.wait_terminal(task_id, timeout_s=180)
    assert t["status"] == "done", t
    return datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["finished_at"])


def test_a_running_quota_keeps_the_next_task_pending(
    services: Services, stack: Any, client: Client, tmp_path: Path
) -> None:
    workers = client.get("/workers").json()["workers"]
    assert sum(w["capacity"]["cpus"] for w in workers if w["state"] == "up") >= 1.0
    # Without a quota two 0.5-CPU tasks run side by side on the stack's worker: the control.
    free = member(services, stack)
    a, b = (_span(free, t) for t in [_run(free, tmp_path), _run(free, tmp_path)])
    assert a[0] < b[1] and b[0] < a[1], (a, b)
    # With max_running=1 the second starts only once the first has ended.
    one = member(services, stack, max_running=1)
    first, second = _run(one, tmp_path), _run(one, tmp_path)
    x, y = _span(one, first), _span(one, second)
    earlier, later = sorted((x, y))
    assert later[0] >= earlier[1], (x, y)
