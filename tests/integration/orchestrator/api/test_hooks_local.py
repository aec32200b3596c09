"""Hooks through an in-process app over the real services: pipelines with extension rules,
backing services down (503, nothing changed), and racing hooks counted at the queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from litestar.testing import TestClient

from orchestrator.app import create_app
from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.settings import Settings
from pipelines.catalog import shipped

from .conftest import LAS_SPEC, Upload, enqueued, settings_of

Local = tuple[TestClient[Any], Services]


def send(client: TestClient[Any], settings: Settings, body: dict[str, Any]) -> Any:
    """POST a hook to the in-process app as if it arrived on the internal hook listener."""
    return client.post(
        f"http://testserver.local:{settings.hook_port}/tusd_hook",
        json=body,
        auth=("tusd", settings.hook_secret),
    )


def bind(client: TestClient[Any], settings: Settings, up: Upload) -> Upload:
    r = send(client, settings, up.pre_create())
    assert r.status_code == 200, r.text
    return up.bound(r.json())


def create(client: TestClient[Any], pipeline: str = "checksum") -> dict[str, Any]:
    r = client.post("/create_task", json={"pipeline": pipeline})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# --- extensions and sizes of a pipeline that has rules -----------------------------------------
@pytest.mark.parametrize(
    ("meta", "size", "status", "text"),
    [
        ({"filename": "scan.txt"}, 10, 415, "'scan.txt' is not accepted by input 'pre'"),
        ({}, 10, 400, "filename metadata is required"),
        ({"filename": "scan.las"}, 1001, 413, "at most 1000 bytes"),
        ({"filename": "SCAN.LAZ"}, 1000, None, ""),
        ({"name": "scan.las"}, 5, None, ""),
    ],
)
def test_pre_create_extension_and_size_rules(
    local: Local, uploads: Any, meta: dict[str, str], size: int, status: int | None, text: str
) -> None:
    client, services = local
    task = create(client, LAS_SPEC.name)
    assert task["inputs"]["pre"]["accept"] == [".las", ".laz"]
    up: Upload = uploads(task, "pre")
    body = up.pre_create(size=size)
    body["Event"]["Upload"]["MetaData"] = meta
    answer = send(client, services.settings, body).json()
    if status is None:
        assert "RejectUpload" not in answer
        assert answer["ChangeFileInfo"]["MetaData"]["filename"].lower().endswith((".las", ".laz"))
    else:
        assert answer["RejectUpload"] is True
        assert answer["HTTPResponse"]["StatusCode"] == status
        assert text in answer["HTTPResponse"]["Body"]


def test_optional_slot_left_empty_waits_for_start_task(local: Local, uploads: Any) -> None:
    client, services = local
    task = create(client, LAS_SPEC.name)
    up: Upload = bind(
        client, services.settings, uploads(task, "pre", b"LASF" + b"\0" * 20, "pre.las")
    )
    up.store()
    assert send(client, services.settings, up.post_finish()).status_code == 200
    # The client may still upload the optional slot: the hook does not queue yet.
    assert client.get(f"/query_task/{task['task_id']}").json()["status"] == "waiting"
    assert enqueued(services) == []
    # An optional slot is not needed to start.
    assert client.post(f"/start_task/{task['task_id']}").json()["status"] == "pending"
    assert enqueued(services) == [(task["task_id"], "default", 600)]


def test_every_slot_filled_queues_without_start_task(local: Local, uploads: Any) -> None:
    client, services = local
    task = create(client, LAS_SPEC.name)
    optional = [s.name for s in LAS_SPEC.inputs if not s.required]
    assert optional, "the test spec must have an optional slot"
    for name in ["pre", *optional]:
        up: Upload = bind(
            client, services.settings, uploads(task, name, b"LASF" + b"\0" * 20, f"{name}.las")
        )
        up.store()
        assert send(client, services.settings, up.post_finish()).status_code == 200
    assert client.get(f"/query_task/{task['task_id']}").json()["status"] == "pending"
    assert enqueued(services) == [(task["task_id"], "default", 600)]


# --- outages -----------------------------------------------------------------------------------
DEAD = "127.0.0.1:1"


def broken(stack: Any, **overrides: Any) -> Services:
    return build_services(settings_of(stack.env, **overrides))


@pytest.mark.parametrize(
    ("hook", "overrides"),
    [
        ("post-create", {"database_url": f"postgresql+psycopg://x@{DEAD}/x?connect_timeout=2"}),
        ("post-finish", {"database_url": f"postgresql+psycopg://x@{DEAD}/x?connect_timeout=2"}),
        ("post-finish", {"s3_endpoint": f"http://{DEAD}"}),
    ],
)
def test_outage_answers_503_so_tusd_retries(
    stack: Any, api: Any, uploads: Any, services: Services, hook: str, overrides: dict[str, str]
) -> None:
    task = api.create()
    up: Upload = api.bind(uploads(task, "first"))
    up.store()
    body = up.post_create() if hook == "post-create" else up.post_finish()
    bad = broken(stack, **overrides)
    try:
        with TestClient(create_app(bad, catalog=shipped(), reconcile=False)) as client:
            r = send(client, bad.settings, body)
    finally:
        bad.close()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"].startswith("service unavailable")
    if hook == "post-create":
        before = fetch(services, task["task_id"]).input("first")
        assert before is not None and before.state == "uploading" and before.upload_id is None
    # (A stored object whose post-finish failed may meanwhile be finished by the stack's
    # recovery sweep: either way the retry below must leave the same filled slot.)
    # tusd's retry, once the service is back, records it.
    assert api.hook(body).status_code == 200
    first = fetch(services, task["task_id"]).input("first")
    assert first is not None and first.key == up.object_id
    assert first.done if hook == "post-finish" else first.upload_id == up.id


def test_redis_outage_after_the_last_finish_leaves_the_task_pending(
    stack: Any, api: Any, uploads: Any, services: Services
) -> None:
    """PostgreSQL is the truth: the task is pending and the reconciler enqueues it later."""
    task = api.create()
    ups = [api.bind(uploads(task, name)) for name in ("first", "second")]
    for up in ups:
        up.store()
    assert api.hook(ups[0].post_finish()).status_code == 200
    bad = broken(stack, redis_url=f"redis://{DEAD}/0")
    try:
        with TestClient(create_app(bad, catalog=shipped(), reconcile=False)) as client:
            r = send(client, bad.settings, ups[1].post_finish())
    finally:
        bad.close()
    assert r.status_code == 200, r.text
    task_now = services.tasks.get(task["task_id"])
    assert task_now is not None and task_now.status is TaskStatus.PENDING
    assert all(i.done for i in task_now.inputs)


# --- races -------------------------------------------------------------------------------------
def fetch(services: Services, task_id: str) -> TaskView:
    task = services.tasks.get(task_id)
    assert task is not None
    return task


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_racing_finishes_queue_exactly_once(local: Local, uploads: Any, round_: int) -> None:
    client, services = local
    task = create(client)
    ups = [uploads(task, "first", b"1" * 11), uploads(task, "second", b"2" * 22)]
    for up in ups:
        bind(client, services.settings, up)
        up.store()
    bodies = [up.post_finish() for up in ups] * 4 + [ups[0].post_receive(5), ups[1].post_create()]
    results = race([partial(send, client, services.settings, b) for b in bodies])
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    task_now = services.tasks.get(task["task_id"])
    assert task_now is not None and task_now.status is TaskStatus.PENDING
    assert all(i.done for i in task_now.inputs)
    assert [i.key for i in task_now.inputs] == [ups[0].object_id, ups[1].object_id]
    assert enqueued(services) == [(task["task_id"], "default", 300)]


def test_racing_uploads_into_one_slot_bind_it_once(local: Local, uploads: Any) -> None:
    """Six clients start uploading into one slot at once: one gets it, five are told which
    upload holds it; only the holder's finish fills the slot."""
    client, services = local
    task = create(client)
    ups = [uploads(task, "first", bytes([65 + i]) * (i + 1)) for i in range(6)]
    results = race([partial(send, client, services.settings, up.pre_create()) for up in ups])
    answers = [r.json() for r in results]
    accepted = [i for i, a in enumerate(answers) if not a.get("RejectUpload")]
    assert len(accepted) == 1, answers
    for i, answer in enumerate(answers):
        if i not in accepted:
            assert answer["HTTPResponse"]["StatusCode"] == 409, answer
            assert "input 'first'" in answer["HTTPResponse"]["Body"]
    winner = ups[accepted[0]].bound(answers[accepted[0]])
    for up in ups:
        up.store()
        send(client, services.settings, up.post_finish())
    first = fetch(services, task["task_id"]).input("first")
    assert first is not None and first.done
    assert (first.size, first.key) == (len(winner.data), winner.object_id)


def test_racing_kill_and_last_finish_never_both_win(local: Local, uploads: Any) -> None:
    client, services = local
    for _ in range(5):
        task = create(client)
        task_id = task["task_id"]
        done: Upload = bind(client, services.settings, uploads(task, "second"))
        done.store()
        send(client, services.settings, done.post_finish())
        last: Upload = bind(client, services.settings, uploads(task, "first"))
        last.store()
        kill, hook = race(
            [
                partial(client.post, f"/kill_task/{task_id}"),
                partial(send, client, services.settings, last.post_finish()),
            ]
        )
        assert hook.status_code == 200 and kill.status_code == 200
        final = services.tasks.get(task_id)
        assert final is not None and final.status is TaskStatus.KILLED
        assert final.reason == "killed on request"
        queued = [t for t, _, _ in enqueued(services)]
        # Either the kill won while waiting (never queued) or killed the pending task.
        assert queued.count(task_id) <= 1
