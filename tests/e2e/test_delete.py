"""Deleting tasks through the whole product: uploads through tusd, runs in Docker, the CLI and
plain HTTP, and the object store checked for what is left."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from minio import Minio
from tusclient.client import TusClient

from orchestrator.settings import split_endpoint
from tests.e2e.client import Client, random_file
from tests.e2e.test_cli import cli, json_of
from tests.e2e.test_flow import tus_upload
from worker.labels import LABEL_TASK

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(stack: Any) -> Minio:
    e = stack.env
    host, secure = split_endpoint(e["S3_ENDPOINT"])
    return Minio(host, e["S3_ACCESS_KEY"], e["S3_SECRET_KEY"], secure=secure, region=e["S3_REGION"])


def left_of(stack: Any, s3: Minio, task_id: str) -> dict[str, list[str]]:
    """The task's objects in both buckets, and its unfinished multipart uploads."""
    found: dict[str, list[str]] = {}
    for bucket in (stack.env["UPLOADS_BUCKET"], stack.env["RESULTS_BUCKET"]):
        found[bucket] = sorted(
            o.object_name or "" for o in s3.list_objects(bucket, f"{task_id}/", recursive=True)
        )
    uploads = s3._list_multipart_uploads(stack.env["UPLOADS_BUCKET"]).uploads
    found["unfinished"] = [u.object_name for u in uploads if u.object_name.startswith(task_id)]
    return found


def nothing_left(stack: Any, s3: Minio, task_id: str) -> bool:
    return not any(left_of(stack, s3, task_id).values())


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout_s} s"
        time.sleep(0.2)


def test_a_done_task_deleted_with_the_cli_leaves_nothing(
    stack: Any, s3: Minio, client: Client, env: dict[str, str], tmp_path: Path
) -> None:
    task = client.create("checksum")
    task_id = task["task_id"]
    for slot in ("first", "second"):
        path = tmp_path / f"{slot}.bin"
        random_file(path, 3 * MiB, 7)
        tus_upload(task["upload_urls"][slot], path)
    done = client.wait_terminal(task_id)
    assert done["status"] == "done", done
    assert done["results_expire_at"]
    link = next(r["url"] for r in done["results"] if r["name"] == "checksums.json")
    assert requests.get(link, timeout=30).status_code == 200
    before = left_of(stack, s3, task_id)
    assert before[stack.env["UPLOADS_BUCKET"]] and before[stack.env["RESULTS_BUCKET"]]

    proc = cli(env, "delete", task_id, "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json_of(proc)
    assert answer["data_removed"] is True and answer["status"] == "done"
    assert nothing_left(stack, s3, task_id), left_of(stack, s3, task_id)
    assert requests.get(link, timeout=30).status_code == 404  # the link outlived its object

    gone = client.get(f"/query_task/{task_id}")
    assert gone.status_code == 410 and gone.json()["reason"] == "deleted on request"
    status = cli(env, "status", task_id)
    assert status.returncode != 0 and "deleted" in status.stderr, status.stderr
    again = cli(env, "delete", task_id, "--json")  # idempotent
    assert again.returncode == 0 and json_of(again) == answer


def test_a_half_uploaded_task_loses_its_unfinished_upload(
    stack: Any, s3: Minio, client: Client, tmp_path: Path
) -> None:
    task = client.create("checksum")
    task_id = task["task_id"]
    path = tmp_path / "big.bin"
    random_file(path, 12 * MiB, 8)
    uploader = TusClient(task["upload_urls"]["first"]).uploader(
        file_path=str(path), chunk_size=6 * MiB, metadata={"filename": path.name}
    )
    uploader.upload(stop_at=6 * MiB)  # one part stored, the rest never sent
    assert left_of(stack, s3, task_id)["unfinished"], left_of(stack, s3, task_id)

    r = client.http.delete(f"{client.api_url}/tasks/{task_id}", timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "killed", r.text
    assert nothing_left(stack, s3, task_id), left_of(stack, s3, task_id)
    head = requests.head(str(uploader.url), headers={"Tus-Resumable": "1.0.0"}, timeout=30)
    assert head.status_code in (404, 410), head.status_code  # tusd no longer has the upload


def test_a_running_task_is_stopped_then_removed(
    stack: Any, s3: Minio, client: Client, tmp_path: Path
) -> None:
    task = client.create("checksum", {"tick_s": 60})
    task_id = task["task_id"]
    for slot in ("first", "second"):
        path = tmp_path / f"{slot}.bin"
        random_file(path, 1000, 9)
        tus_upload(task["upload_urls"][slot], path)
    client.wait_log_line(task_id, "tick 1")

    r = client.http.delete(f"{client.api_url}/tasks/{task_id}", timeout=30)
    assert r.status_code == 202, r.text
    assert r.json()["data_removed"] is False
    assert client.get(f"/query_task/{task_id}").status_code == 410
    # The worker stops the container within seconds; the reconciler's next pass removes
    # what is left, the stopped run's stored log included.
    engine = docker.from_env()
    try:
        wait_until(
            "the container gone",
            lambda: (
                not engine.containers.list(all=True, filters={"label": f"{LABEL_TASK}={task_id}"})
            ),
            60,
        )
    finally:
        engine.close()
    wait_until("every object gone", lambda: nothing_left(stack, s3, task_id), 60)
