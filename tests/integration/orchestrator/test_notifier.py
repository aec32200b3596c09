"""The webhook notifier on real PostgreSQL, with a receiver on 127.0.0.1 in a thread.

Every test here uses a scratch database (migrated to head) in the stack's PostgreSQL, so the
stack's own API, whose notifier runs every second with its own settings, never sees these
notifications: the passes below are the only ones, and they run with small backoffs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from orchestrator.api.tasks import task_document
from orchestrator.app import create_app
from orchestrator.bootstrap import Services, build_services
from orchestrator.db.migrate import upgrade
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.webhook import DeliveryState, verify
from orchestrator.notifier import Notifier, NotifyReport
from pipelines.spec import Resources
from tests.scratch import scratch_database, stack_settings

SECRET = "test-webhook-secret"


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    """A webhook receiver answering from a script of status codes (then 200), recording all."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    code = receiver.script.pop(0) if receiver.script else 200
                time.sleep(receiver.delay_s)
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def services(stack: Any) -> Iterator[Services]:
    base = stack_settings(stack)
    with scratch_database(stack, "notifier") as scratch:
        upgrade(scratch)
        settings = base.model_copy(
            update={
                "database_url": scratch,
                "webhook_secret": SECRET,
                "webhook_max_attempts": 3,
                "webhook_backoff_s": 0.05,
                "webhook_timeout_s": 5.0,
            }
        )
        svc = build_services(settings)
        try:
            yield svc
        finally:
            svc.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def terminal_task(services: Services, url: str, status: TaskStatus = TaskStatus.KILLED) -> str:
    """A task with nothing to upload, moved straight to a terminal state."""
    task_id = str(uuid.uuid4())
    services.tasks.create(
        task_id=task_id,
        pipeline="checksum",
        params={},
        resources=Resources(cpus=1),
        queue="nobody-listens",
        slots=[],
        notify_url=url,
    )
    assert services.tasks.transition(task_id, status, reason="test")
    return task_id


def run_until(notifier: Notifier, done: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "notifier did not get there in time"
        notifier.run_pass()
        time.sleep(0.02)


def state_of(services: Services, task_id: str) -> DeliveryState | None:
    found = services.notifications.for_task(task_id)
    return found[0].state if found else None


def test_killed_task_is_delivered_once_signed(
    services: Services, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # At INFO, as the service logs: the pass's summary line must not fail the pass.
    caplog.set_level(logging.INFO, logger="orchestrator.notifier")
    app = create_app(services, reconcile=False)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = services.settings.api_key
        r = client.post("/create_task", json={"pipeline": "checksum", "notify_url": receiver.url})
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        assert services.notifications.for_task(task_id) == []  # none while it is not over
        assert client.post(f"/kill_task/{task_id}").status_code == 200
        # Made with the kill, before any pass: pending and due.
        [made] = services.notifications.for_task(task_id)
        assert (made.event, made.url, made.state) == (
            "task.killed",
            receiver.url,
            DeliveryState.PENDING,
        )

        notifier = Notifier(services, task_document)
        report = notifier.run_pass()
        assert report.delivered == [made.id]
        assert notifier.run_pass() == NotifyReport()  # nothing left due: nothing sent again
        assert len(services.notifications.for_task(task_id)) == 1
        [summary] = [r for r in caplog.records if r.getMessage() == "webhooks"]
        assert summary.delivered == [made.id]  # type: ignore[attr-defined]

        [got] = receiver.received
        h = got.headers
        assert h["Content-Type"] == "application/json"
        assert h["X-Orchestrator-Event"] == "task.killed"
        assert verify(
            SECRET,
            h["X-Orchestrator-Timestamp"],
            got.body,
            h["X-Orchestrator-Signature"],
            now=time.time(),
        )
        assert abs(int(h["X-Orchestrator-Timestamp"]) - time.time()) < 60

        queried = client.get(f"/query_task/{task_id}").json()
        # The body is query_task's, without the notifications themselves.
        notifications = queried.pop("notifications")
        assert got.json() == queried
        assert queried["status"] == "killed" and queried["notify_url"] == receiver.url
        [n] = notifications
        assert n["event"] == "task.killed" and n["state"] == "delivered"
        assert n["delivery_id"] == h["X-Orchestrator-Delivery"]
        assert n["next_attempt_at"] is None
        [attempt] = n["attempts"]
        assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["at"]


def test_bad_notify_url_is_refused_by_name(services: Services) -> None:
    app = create_app(services, catalog=None, reconcile=False)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = services.settings.api_key
        for bad in ("ftp://127.0.0.1/x", "not a url", "/relative", "http://h/" + "a" * 2000):
            r = client.post("/create_task", json={"pipeline": "checksum", "notify_url": bad})
            assert r.status_code == 422, (bad, r.text)
            assert "notify_url" in r.text
        r = client.post("/create_task", json={"pipeline": "checksum"})
        assert r.status_code == 201
        body = client.get(f"/query_task/{r.json()['task_id']}").json()
        assert "notify_url" not in body and "notifications" not in body


def test_retried_until_2xx(services: Services, receiver: Receiver) -> None:
    receiver.script = [500, 500, 200]
    task_id = terminal_task(services, receiver.url, TaskStatus.ERROR)
    notifier = Notifier(services, task_document)
    run_until(notifier, lambda: state_of(services, task_id) is DeliveryState.DELIVERED)

    [n] = services.notifications.for_task(task_id)
    assert [a["status_code"] for a in n.attempts] == [500, 500, 200]
    assert all(a["duration_s"] >= 0 for a in n.attempts)
    assert len(receiver.received) == 3
    # One delivery id for every retry (receivers dedupe by it), a fresh signature each time.
    assert {r.headers["X-Orchestrator-Delivery"] for r in receiver.received} == {n.id}
    assert all(r.headers["X-Orchestrator-Event"] == "task.error" for r in receiver.received)


def test_gives_up_after_max_attempts(services: Services, receiver: Receiver) -> None:
    receiver.script = [503] * 10
    task_id = terminal_task(services, receiver.url)
    notifier = Notifier(services, task_document)
    run_until(notifier, lambda: state_of(services, task_id) is DeliveryState.FAILED)
    [n] = services.notifications.for_task(task_id)
    assert [a["status_code"] for a in n.attempts] == [503, 503, 503]  # max_attempts = 3
    assert n.next_attempt_at is None
    for _ in range(3):
        notifier.run_pass()
    assert len(receiver.received) == 3  # given up means no more requests


def test_unreachable_and_redirect_are_failures(services: Services, receiver: Receiver) -> None:
    receiver.script = [302] * 10
    redirected = terminal_task(services, receiver.url)
    # A port nothing listens on (the receiver's, once closed).
    with Receiver() as gone:
        dead_url = gone.url
    unreachable = terminal_task(services, dead_url)
    notifier = Notifier(services, task_document)
    run_until(
        notifier,
        lambda: (
            state_of(services, redirected) is DeliveryState.FAILED
            and state_of(services, unreachable) is DeliveryState.FAILED
        ),
    )
    [r] = services.notifications.for_task(redirected)
    assert [a["status_code"] for a in r.attempts] == [302, 302, 302]
    assert r.attempts[0]["error"] == "redirect not followed"
    assert all(x.path == "/hook" for x in receiver.received)  # /elsewhere never asked
    [u] = services.notifications.for_task(unreachable)
    assert [a["status_code"] for a in u.attempts] == [None, None, None]
    assert all("Connection" in a["error"] for a in u.attempts)


def test_two_notifiers_never_deliver_twice(services: Services, receiver: Receiver) -> None:
    receiver.delay_s = 0.02  # keep deliveries in flight while the other notifier looks
    task_ids = [terminal_task(services, receiver.url) for _ in range(30)]
    notifiers = [Notifier(services, task_document) for _ in range(2)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(notifier: Notifier) -> None:
        try:
            while not stop.is_set():
                notifier.run_pass()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(n,)) for n in notifiers]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while not all(state_of(services, t) is DeliveryState.DELIVERED for t in task_ids):
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.05)
        time.sleep(0.3)  # passes in flight finish: nothing more may arrive
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    mine = [r for r in receiver.received if r.json()["task_id"] in set(task_ids)]
    delivery_ids = [r.headers["X-Orchestrator-Delivery"] for r in mine]
    assert len(delivery_ids) == len(task_ids) == len(set(delivery_ids))
    assert sorted(r.json()["task_id"] for r in mine) == sorted(task_ids)


def test_tasks_ended_before_the_trigger_are_notified_by_the_migration(stack: Any) -> None:
    with scratch_database(stack, "notify_backfill") as scratch:
        upgrade(scratch, "0011")
        rows = {  # id: (status, notify_url)
            "ended-with-url": ("error", "http://127.0.0.1:9/hook"),
            "ended-without-url": ("done", None),
            "waiting-with-url": ("waiting", "http://127.0.0.1:9/hook"),
        }
        with create_engine(scratch).begin() as conn:
            for task_id, (status, url) in rows.items():
                conn.execute(
                    text(
                        "INSERT INTO tasks (id, pipeline, params, resources, queue, status, "
                        "attempts, notify_url) VALUES (:id, 'checksum', '{}', '{}', 'default', "
                        ":status, 0, :url)"
                    ),
                    {"id": task_id, "status": status, "url": url},
                )
        upgrade(scratch)
        services = build_services(
            stack_settings(stack).model_copy(update={"database_url": scratch})
        )
        try:
            [made] = services.notifications.for_task("ended-with-url")
            assert (made.event, made.state) == ("task.error", DeliveryState.PENDING)
            assert services.notifications.for_task("ended-without-url") == []
            assert services.notifications.for_task("waiting-with-url") == []
            # After it, the trigger: the waiting one is notified when it ends, once.
            assert services.tasks.transition("waiting-with-url", TaskStatus.KILLED, reason="t")
            [killed] = services.notifications.for_task("waiting-with-url")
            assert killed.event == "task.killed"
        finally:
            services.close()
