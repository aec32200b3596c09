"""POST /tusd_hook over real HTTP: every hook type, every refusal, replays and disorder."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orchestrator.bootstrap import Services
from orchestrator.domain.capability import upload_url
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.settings import Settings

from .conftest import Api, Upload, hook_body, request_uri


def fetch(services: Services, task_id: str) -> TaskView:
    task = services.tasks.get(task_id)
    assert task is not None
    return task


def slot(services: Services, task_id: str, name: str) -> Any:
    return fetch(services, task_id).input(name)


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def refused(r: Any, status: int, text: str) -> None:
    body = ok(r)
    assert body["RejectUpload"] is True
    assert body["HTTPResponse"]["StatusCode"] == status
    assert text in body["HTTPResponse"]["Body"]


# --- authenticity and shape ------------------------------------------------------------------
@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong", 403), ("", 403)])
def test_hooks_without_the_secret_change_nothing(
    api: Api, uploads: Any, services: Services, secret: str | None, status: int
) -> None:
    task = api.create()
    up: Upload = uploads(task, "first")
    up.store()
    before = services.tasks.get(task["task_id"])
    for body in (up.pre_create(), up.post_create(), up.post_receive(3), up.post_finish()):
        r = api.hook(body, secret=secret if secret != "" else "x" * 48)
        assert r.status_code == status
    assert services.tasks.get(task["task_id"]) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage",
        b"",
        b"[]",
        b'{"Type": "pre-create"}',
        b'{"Type": "pre-create", "Event": {}}',
        b'{"Type": "post-upload", "Event": {"Upload": {"ID": "x"}}}',
        b'{"Type": "post-finish", "Event": {"Upload": {"ID": "x", "Size": "big"}}}',
    ],
)
def test_bodies_not_in_tusd_shape_are_400(api: Api, raw: bytes) -> None:
    assert api.hook(raw).status_code == 400


def test_every_known_type_gets_a_json_answer(api: Api) -> None:
    for hook_type in ("pre-finish", "pre-terminate", "post-create", "post-receive"):
        assert ok(api.hook(hook_body(hook_type, upload_id="nobody"))) == {}


# --- pre-create ------------------------------------------------------------------------------
def test_pre_create_accepts_with_server_metadata(api: Api, uploads: Any) -> None:
    task = api.create()
    up: Upload = uploads(task, "second")
    body = up.pre_create()
    body["Event"]["Upload"]["MetaData"].update(task_id="forged", slot="first", kind="x")
    answer = ok(api.hook(body))
    assert not answer.get("RejectUpload")
    assert answer["ChangeFileInfo"]["MetaData"] == {
        "filename": "second.bin",
        "kind": "x",
        "task_id": task["task_id"],
        "slot": "second",
    }


def test_pre_create_refusals(
    api: Api, uploads: Any, services: Services, settings: Settings
) -> None:
    task = api.create()
    task_id = task["task_id"]
    up: Upload = uploads(task, "first")

    no_query = up.pre_create()
    no_query["Event"]["HTTPRequest"]["URI"] = "/files/"
    refused(api.hook(no_query), 400, "upload URL")

    forged = up.pre_create()
    forged["Event"]["HTTPRequest"]["URI"] = request_uri(
        upload_url("/files/", "not-the-secret", task_id, "first")
    )
    refused(api.hook(forged), 403, "invalid upload token")

    other_slot = up.pre_create()
    other_slot["Event"]["HTTPRequest"]["URI"] = request_uri(task["upload_urls"]["second"]).replace(
        "slot=second", "slot=first"
    )
    refused(api.hook(other_slot), 403, "invalid upload token")

    ghost = str(uuid.uuid4())
    unknown = up.pre_create()
    unknown["Event"]["HTTPRequest"]["URI"] = request_uri(
        upload_url("/files/", settings.upload_token_secret, ghost, "first")
    )
    refused(api.hook(unknown), 404, f"unknown task {ghost}")

    no_slot = up.pre_create()
    no_slot["Event"]["HTTPRequest"]["URI"] = request_uri(
        upload_url("/files/", settings.upload_token_secret, task_id, "third")
    )
    refused(api.hook(no_slot), 404, "no input slot 'third'")

    refused(api.hook(up.pre_create(size=1024**3 + 1)), 413, "at most 1073741824 bytes")

    deferred = up.pre_create(size=0)
    deferred["Event"]["Upload"]["SizeIsDeferred"] = True
    refused(api.hook(deferred), 400, "Upload-Length")

    # The limit itself is allowed.
    assert not ok(api.hook(up.pre_create(size=1024**3))).get("RejectUpload")
    # Not one of the refusals (nor the accepted pre-create) touched a slot.
    assert all(i.state == "empty" and i.upload_id is None for i in fetch(services, task_id).inputs)


def test_pre_create_into_a_filled_slot_is_409(api: Api, uploads: Any) -> None:
    task = api.create()
    up: Upload = uploads(task, "first")
    up.store()
    ok(api.hook(up.post_finish()))
    second: Upload = uploads(task, "first", b"another file")
    refused(api.hook(second.pre_create()), 409, "input 'first' is already uploaded")


def test_pre_create_for_a_killed_task_is_409(api: Api, uploads: Any) -> None:
    task = api.create()
    api.post(f"/kill_task/{task['task_id']}")
    refused(api.hook(uploads(task, "first").pre_create()), 409, "task is killed")


# --- the upload's life -----------------------------------------------------------------------
def test_create_receive_finish_then_auto_queue(api: Api, uploads: Any, services: Services) -> None:
    task = api.create()
    task_id = task["task_id"]
    first: Upload = uploads(task, "first", b"a" * 10)
    second: Upload = uploads(task, "second", b"b" * 20)

    ok(api.hook(first.post_create()))
    state = api.query(task_id)["inputs"]["first"]
    assert state["state"] == "uploading" and state["bytes_total"] == 10
    assert state["filename"] == "first.bin"

    ok(api.hook(first.post_receive(4)))
    assert api.query(task_id)["inputs"]["first"]["bytes_received"] == 4
    ok(api.hook(first.post_receive(2)))  # late and out of order: never moves back
    assert api.query(task_id)["inputs"]["first"]["bytes_received"] == 4

    first.store()
    ok(api.hook(first.post_finish()))
    task_now = api.query(task_id)
    assert task_now["inputs"]["first"]["done"] is True
    assert task_now["inputs"]["first"]["bytes_received"] == 10
    assert task_now["status"] == "waiting"

    second.store()
    ok(api.hook(second.post_finish()))  # no post-create seen: finish alone is enough
    task_now = api.query(task_id)
    assert task_now["status"] in ("pending", "running", "done"), task_now
    assert task_now["queued_at"]
    stored = slot(services, task_id, "second")
    assert (stored.key, stored.size, stored.upload_id) == (second.object_id, 20, second.id)


def test_post_finish_replays_and_late_hooks_change_nothing(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    task_id = task["task_id"]
    up: Upload = uploads(task, "first", b"x" * 7)
    up.store()
    for _ in range(3):
        ok(api.hook(up.post_finish()))
    after_finish = slot(services, task_id, "first")
    assert after_finish.done
    ok(api.hook(up.post_receive(3)))
    ok(api.hook(up.post_create()))
    assert slot(services, task_id, "first") == after_finish
    assert fetch(services, task_id).status is TaskStatus.WAITING


def test_post_finish_of_a_missing_object_is_503_and_not_recorded(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    up: Upload = uploads(task, "first")
    ok(api.hook(up.post_create()))
    r = api.hook(up.post_finish())  # never stored
    assert r.status_code == 503
    assert "not found" in r.json()["detail"]
    assert slot(services, task["task_id"], "first").state == "uploading"


def test_post_finish_with_a_size_mismatch_is_not_recorded(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    up: Upload = uploads(task, "first", b"12345")
    up.store()
    assert ok(api.hook(up.post_finish(size=6))) == {}
    assert not slot(services, task["task_id"], "first").done


def test_second_finished_upload_does_not_replace_the_first(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    one: Upload = uploads(task, "first", b"one")
    two: Upload = uploads(task, "first", b"two!")
    one.store()
    two.store()
    ok(api.hook(one.post_finish()))
    ok(api.hook(two.post_finish()))
    assert slot(services, task["task_id"], "first").upload_id == one.id


def test_post_receive_of_a_killed_task_stops_the_upload(api: Api, uploads: Any) -> None:
    task = api.create()
    up: Upload = uploads(task, "first")
    ok(api.hook(up.post_create()))
    api.post(f"/kill_task/{task['task_id']}")
    answer = ok(api.hook(up.post_receive(5)))
    assert answer["StopUpload"] is True
    assert answer["HTTPResponse"]["StatusCode"] == 409


def test_post_terminate_frees_a_slot_of_a_waiting_task(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    up: Upload = uploads(task, "first")
    up.store()
    ok(api.hook(up.post_finish()))
    ok(api.hook(up.post_terminate()))
    freed = slot(services, task["task_id"], "first")
    assert (freed.state, freed.upload_id, freed.key) == ("empty", None, None)
    ok(api.hook(up.post_terminate()))  # replay
    # The slot can be filled again.
    assert not ok(api.hook(uploads(task, "first").pre_create())).get("RejectUpload")


def test_post_terminate_never_touches_a_queued_task(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create(sleep_s=0)
    ups = [uploads(task, name) for name in ("first", "second")]
    for up in ups:
        up.store()
        ok(api.hook(up.post_finish()))
    ok(api.hook(ups[0].post_terminate()))
    assert slot(services, task["task_id"], "first").done


def test_hooks_for_unknown_uploads_and_tasks_are_ignored(api: Api) -> None:
    ghost = {"task_id": str(uuid.uuid4()), "slot": "first", "filename": "x"}
    storage = {"Type": "s3store", "Bucket": "uploads", "Key": "nope"}
    for hook_type in ("post-create", "post-receive", "post-finish", "post-terminate"):
        assert ok(api.hook(hook_body(hook_type, upload_id="u", meta=ghost, storage=storage))) == {}
        assert ok(api.hook(hook_body(hook_type, upload_id="u", storage=storage))) == {}
