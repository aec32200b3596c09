"""POST /tusd_hook over real HTTP on the internal listener: every hook type, every refusal,
replays and disorder, forged storage. Bodies are hook requests recorded from the real tusd."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import text

from orchestrator.bootstrap import Services
from orchestrator.domain.capability import upload_url
from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import TaskView
from orchestrator.settings import Settings
from tests.hookdata import hook_request
from tests.raw import raw_engine

from .conftest import Api, Upload, request_uri


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


def test_the_secret_in_a_query_string_is_not_accepted(api: Api, uploads: Any) -> None:
    """The old ``?secret=`` form would be echoed by tusd into client errors and logs."""
    task = api.create()
    r = requests.post(
        api.hook_url,
        params={"secret": api.hook_secret},
        json=uploads(task, "first").pre_create(),
        timeout=30,
    )
    assert r.status_code == 401
    assert "password of the -hooks-http URL" in r.json()["detail"]


def test_the_public_listener_has_no_hook_endpoint(api: Api, uploads: Any) -> None:
    task = api.create()
    r = api.hook(uploads(task, "first").pre_create(), url=api.url + "/tusd_hook")
    assert r.status_code == 404
    # ... and the internal listener serves nothing but hooks.
    internal = api.hook_url.removesuffix("/tusd_hook")
    assert requests.get(internal + "/query_task/" + task["task_id"], timeout=30).status_code == 404
    assert "/tusd_hook" not in api.get("/schema/openapi.json").json()["paths"]


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
        assert ok(api.hook(hook_request(hook_type, upload_id="nobody"))) == {}


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

    # Not one of the refusals touched a slot.
    assert all(i.state == "empty" and i.key is None for i in fetch(services, task_id).inputs)
    # The limit itself is allowed, and binds the slot to the object id it names the upload.
    answer = ok(api.hook(up.pre_create(size=1024**3)))
    assert not answer.get("RejectUpload")
    object_id = answer["ChangeFileInfo"]["ID"]
    assert object_id.startswith(f"{task_id}/first/")
    bound = slot(services, task_id, "first")
    assert (bound.state, bound.key, bound.size) == ("uploading", object_id, 1024**3)


def test_pre_create_into_a_filled_slot_is_409(api: Api, uploads: Any) -> None:
    task = api.create()
    up: Upload = api.bind(uploads(task, "first"))
    up.store()
    ok(api.hook(up.post_finish()))
    second: Upload = uploads(task, "first", b"another file")
    refused(api.hook(second.pre_create()), 409, "input 'first' is already uploaded")


def test_pre_create_while_another_upload_is_active_names_it(
    api: Api, uploads: Any, services: Services, settings: Settings
) -> None:
    task = api.create()
    holder: Upload = api.bind(uploads(task, "first", b"x" * 100))
    ok(api.hook(holder.post_create()))
    ok(api.hook(holder.post_receive(40)))
    body = ok(api.hook(uploads(task, "first").pre_create()))
    assert body["RejectUpload"] is True and body["HTTPResponse"]["StatusCode"] == 409
    text = body["HTTPResponse"]["Body"]
    assert f"{settings.tus_public_url}{holder.id}" in text and "(40 of 100 bytes" in text
    assert body["HTTPResponse"]["Header"]["Location"] == f"{settings.tus_public_url}{holder.id}"
    assert body["HTTPResponse"]["Header"]["Upload-Offset"] == "40"
    # query_task shows the holder to resume.
    shown = api.query(task["task_id"])["inputs"]["first"]
    assert shown["state"] == "uploading"
    assert shown["upload_url"] == f"{settings.tus_public_url}{holder.id}"
    assert slot(services, task["task_id"], "first").key == holder.object_id


def test_a_stalled_upload_is_shown_and_can_be_superseded(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    task_id = task["task_id"]
    old: Upload = api.bind(uploads(task, "first", b"o" * 10))
    ok(api.hook(old.post_create()))
    # No progress for longer than UPLOAD_STALLED_AFTER_S: set the clock of the slot back
    # rather than wait.
    with raw_engine(services).begin() as conn:
        conn.execute(
            text(
                "UPDATE task_inputs SET updated_at = now() - interval '1 day' "
                "WHERE task_id = :t AND slot = 'first'"
            ),
            {"t": task_id},
        )
    assert api.query(task_id)["inputs"]["first"]["state"] == "stalled"
    new: Upload = api.bind(uploads(task, "first", b"n" * 12))
    assert new.object_id != old.object_id
    assert api.query(task_id)["inputs"]["first"]["state"] == "uploading"
    # The old upload learns it lost the slot on its next progress, and at its finish.
    stopped = ok(api.hook(old.post_receive(5)))
    assert stopped["StopUpload"] is True and "taken over" in stopped["HTTPResponse"]["Body"]
    finish = ok(api.hook(old.pre_finish()))
    assert finish["HTTPResponse"]["StatusCode"] == 409
    assert "will not be used" in finish["HTTPResponse"]["Body"]
    old.store()
    ok(api.hook(old.post_finish()))
    assert not slot(services, task_id, "first").done
    new.store()
    assert ok(api.hook(new.pre_finish())) == {}
    ok(api.hook(new.post_finish()))
    filled = slot(services, task_id, "first")
    assert filled.done and (filled.key, filled.size) == (new.object_id, 12)


def test_pre_create_for_a_killed_task_is_409(api: Api, uploads: Any) -> None:
    task = api.create()
    api.post(f"/kill_task/{task['task_id']}")
    refused(api.hook(uploads(task, "first").pre_create()), 409, "task is killed")


# --- the upload's life -----------------------------------------------------------------------
def test_create_receive_finish_then_auto_queue(api: Api, uploads: Any, services: Services) -> None:
    task = api.create()
    task_id = task["task_id"]
    first: Upload = api.bind(uploads(task, "first", b"a" * 10))
    second: Upload = api.bind(uploads(task, "second", b"b" * 20))

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
    up: Upload = api.bind(uploads(task, "first", b"x" * 7))
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
    up: Upload = api.bind(uploads(task, "first"))
    ok(api.hook(up.post_create()))
    r = api.hook(up.post_finish())  # never stored
    assert r.status_code == 503
    assert "not found" in r.json()["detail"]
    assert slot(services, task["task_id"], "first").state == "uploading"


def test_post_finish_with_a_size_mismatch_is_not_recorded(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    up: Upload = api.bind(uploads(task, "first", b"12345"))
    # Storage holds 4 bytes where pre-create and post-finish speak of 5: neither the hook nor
    # the service's own sweep for lost finishes may take it.
    up.s3.put_object(up.settings.uploads_bucket, up.object_id, io.BytesIO(b"1234"), 4)
    assert ok(api.hook(up.post_finish())) == {}
    assert not slot(services, task["task_id"], "first").done


def test_a_finish_of_an_upload_that_never_held_the_slot_is_ignored(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    one: Upload = api.bind(uploads(task, "first", b"one"))
    two: Upload = uploads(task, "first", b"two!")  # no pre-create: tusd never created it
    two.store()
    ok(api.hook(two.post_finish()))
    assert not slot(services, task["task_id"], "first").done
    one.store()
    ok(api.hook(one.post_finish()))
    ok(api.hook(two.post_finish()))
    filled = slot(services, task["task_id"], "first")
    assert (filled.upload_id, filled.key) == (one.id, one.object_id)


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("Bucket", "results", "bucket 'results' is not the uploads bucket"),
        ("Key", "someone-elses/object", "key 'someone-elses/object' is not the object of upload"),
    ],
)
def test_post_finish_naming_other_storage_is_refused(
    api: Api, uploads: Any, services: Services, field: str, value: str, text: str
) -> None:
    """A forged post-finish cannot point a slot at any other object of the right size."""
    task = api.create()
    up: Upload = api.bind(uploads(task, "first", b"forged"))
    up.store()
    body = up.post_finish()
    body["Event"]["Upload"]["Storage"][field] = value
    r = api.hook(body)
    assert r.status_code == 403, r.text
    assert text in r.json()["detail"]
    assert not slot(services, task["task_id"], "first").done


def test_post_receive_of_a_killed_task_stops_the_upload(api: Api, uploads: Any) -> None:
    task = api.create()
    up: Upload = api.bind(uploads(task, "first"))
    ok(api.hook(up.post_create()))
    api.post(f"/kill_task/{task['task_id']}")
    answer = ok(api.hook(up.post_receive(5)))
    assert answer["StopUpload"] is True
    assert answer["HTTPResponse"]["StatusCode"] == 409


def test_post_terminate_frees_a_slot_of_a_waiting_task(
    api: Api, uploads: Any, services: Services
) -> None:
    task = api.create()
    up: Upload = api.bind(uploads(task, "first"))
    up.store()
    ok(api.hook(up.post_finish()))
    assert ok(api.hook(up.pre_terminate())) == {}  # the task still waits: deleting is allowed
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
    ups = [api.bind(uploads(task, name)) for name in ("first", "second")]
    for up in ups:
        up.store()
        ok(api.hook(up.post_finish()))
    refusal = ok(api.hook(ups[0].pre_terminate()))
    assert refusal["RejectTermination"] is True
    assert refusal["HTTPResponse"]["StatusCode"] == 409
    ok(api.hook(ups[0].post_terminate()))
    assert slot(services, task["task_id"], "first").done


def test_hooks_for_unknown_uploads_and_tasks_are_ignored(api: Api) -> None:
    ghost = {"task_id": str(uuid.uuid4()), "slot": "first", "filename": "x"}
    storage = {"Type": "s3store", "Bucket": "uploads", "Key": "nope"}
    for hook_type in ("post-create", "post-receive", "post-finish", "post-terminate"):
        body = hook_request(hook_type, upload_id="u", meta=ghost, storage=storage)
        assert ok(api.hook(body)) == {}
        body = hook_request(hook_type, upload_id="u", meta={}, storage=storage)
        assert ok(api.hook(body)) == {}
