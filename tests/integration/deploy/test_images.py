"""The api and worker images, run for real against the test stack's services.

No registry answers here, so compose.yml cannot be brought up as such; instead its two images of
our own are built from the root Dockerfile (the same build `make images` does) and run as
containers with ``--network host`` and the test stack's settings (PostgreSQL, Redis, S3 on
127.0.0.1), exactly as compose runs them against its own services:

* the api container answers /health and creates a task;
* the worker container, with the host's Docker socket and its work dir bind-mounted at the same
  path, completes a real ``checksum`` task whose inputs went through the TUS server, and the
  results come back byte-exact through presigned URLs.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from tusclient.client import TusClient

from devstack import images
from tests.conftest import ROOT, Stack

# Settings of the stack that are not settings of our processes (the fixture's own bookkeeping).
NOT_SETTINGS = {"API_URL", "STACK_PROFILE", "STACK_DATADIR", "WORKER_QUEUES", "WORKER_WORK_DIR"}
WORKER_HOSTNAME = "orch-image-test-worker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def container_logs(name: str) -> str:
    done = docker("logs", "--tail", "60", name)
    return (done.stdout + done.stderr)[-6000:]


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]


@pytest.fixture(scope="module")
def app_images(stack: Stack) -> dict[str, str]:
    """Both images, current with the checkout: `make test` built them already (then this is a
    hash comparison), a bare pytest builds them here."""
    log_path = stack.profile.log("images")
    built = images.build_apps(ROOT, dict(os.environ), log_path, print)
    failed = {tag: state for tag, state in built.items() if state.startswith("failed")}
    assert not failed, f"{failed}; see {log_path}"
    return {target: images.app_tag(target) for target in images.APP_TARGETS}


def settings_env(stack: Stack) -> dict[str, str]:
    return {k: v for k, v in stack.env.items() if k not in NOT_SETTINGS}


@pytest.fixture(scope="module")
def api_container(stack: Stack, app_images: dict[str, str]) -> Iterator[str]:
    """The api image on a free port of the host network; yields its base URL."""
    port = free_port()
    name = f"orch-image-test-api-{os.getpid()}"
    started = docker(
        "run",
        "-d",
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        # Its own internal hook listener too: the stack's API holds HOOK_PORT on this network.
        *env_args({**settings_env(stack), "HOOK_PORT": str(free_port())}),
        app_images["api"],
        # The image's own command, but on loopback and the free port: `serve` migrates first.
        "python",
        "-m",
        "orchestrator",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/health", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            running = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                pytest.fail(f"api container never became healthy:\n{container_logs(name)}")
            time.sleep(0.5)
        yield url
    finally:
        docker("rm", "-f", name)


@pytest.fixture(scope="module")
def worker_container(stack: Stack, app_images: dict[str, str]) -> Iterator[tuple[str, str]]:
    """The worker image on a queue of its own; yields (container name, queue)."""
    queue = f"image-test-{uuid.uuid4().hex[:8]}"
    # A host path bind-mounted at the same path: the pipeline containers this worker starts are
    # siblings on the host engine and mount run dirs from it by host path.
    work_dir = stack.datadir / "work-image-test"
    work_dir.mkdir(exist_ok=True)
    name = f"orch-image-test-worker-{os.getpid()}"
    env = {
        **settings_env(stack),
        "WORKER_QUEUES": queue,
        "WORKER_WORK_DIR": str(work_dir),
        "WORKER_HOST": WORKER_HOSTNAME,
        "WORKER_SLOTS": "1",
    }
    started = docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        # Its own host name, as any container has: the worker's identity and the owner label of
        # its pipeline containers (its orphan sweep only touches containers of its own host).
        "--hostname",
        WORKER_HOSTNAME,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        f"{work_dir}:{work_dir}",
        *env_args(env),
        app_images["worker"],
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name, queue
    finally:
        docker("rm", "-f", name)


def test_api_image_answers_and_creates_tasks(api_container: str, stack: Stack) -> None:
    health = requests.get(f"{api_container}/health", timeout=10)
    assert health.status_code == 200, health.text
    headers = {"X-API-Key": stack.api_key}
    assert (
        requests.post(
            f"{api_container}/create_task", json={"pipeline": "checksum"}, timeout=10
        ).status_code
        == 401
    )
    r = requests.post(
        f"{api_container}/create_task", json={"pipeline": "checksum"}, headers=headers, timeout=30
    )
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["status"] == "waiting"
    # Upload URLs point at the public TUS URL of the settings it was given.
    assert all(u.startswith(stack.tus_url) for u in task["upload_urls"].values())
    got = requests.get(f"{api_container}/query_task/{task['task_id']}", headers=headers, timeout=10)
    assert got.status_code == 200 and got.json()["status"] == "waiting"


def test_worker_image_completes_a_checksum_task(
    api_container: str, worker_container: tuple[str, str], stack: Stack, tmp_path: Path
) -> None:
    name, queue = worker_container
    headers = {"X-API-Key": stack.api_key}
    r = requests.post(
        f"{api_container}/create_task", json={"pipeline": "checksum"}, headers=headers, timeout=30
    )
    assert r.status_code == 201, r.text
    task = r.json()
    task_id = task["task_id"]

    # Routing: the API puts a checksum task on queue "default", where the stack's own worker
    # (not the image under test) would take it. So, while the task is still `waiting` and
    # before any byte is uploaded, its queue column is pointed at the image worker's queue.
    # That is the only step outside the product's own path: the uploads, the hooks, the
    # enqueue on the task's queue when the last input lands, the claim, the container and the
    # results are all the real thing.
    engine = create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            moved = conn.execute(
                text("UPDATE tasks SET queue = :q WHERE id = :id AND status = 'waiting'"),
                {"q": queue, "id": task_id},
            ).rowcount
        assert moved == 1

        inputs = {"first": os.urandom(3 * 1024 * 1024 + 17), "second": b"image test\n"}
        for slot, data in inputs.items():
            path = tmp_path / f"{slot}.bin"
            path.write_bytes(data)
            TusClient(task["upload_urls"][slot]).uploader(
                file_path=str(path), chunk_size=1 << 20, metadata={"filename": path.name}
            ).upload()

        deadline = time.monotonic() + 180
        while True:
            final: dict[str, Any] = requests.get(
                f"{api_container}/query_task/{task_id}", headers=headers, timeout=10
            ).json()
            if final["status"] in ("done", "error", "killed"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"task not finished in 180 s: {final}\n{container_logs(name)}")
            time.sleep(0.5)
        assert final["status"] == "done", f"{final}\n{container_logs(name)}"

        with engine.connect() as conn:
            worker_id = conn.execute(
                text("SELECT worker_id FROM tasks WHERE id = :id"), {"id": task_id}
            ).scalar_one()
        # Done by the containerised worker, not by the stack's own.
        assert str(worker_id).startswith(f"{WORKER_HOSTNAME}:"), worker_id
    finally:
        engine.dispose()

    results = {item["name"]: item for item in final["results"]}
    got = requests.get(results["checksums.json"]["url"], timeout=30)  # presigned: no key
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == results["checksums.json"]["sha256"]
    assert json.loads(got.content) == {
        slot: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for slot, data in inputs.items()
    }


def test_app_images_rebuild_only_when_their_sources_change(tmp_path: Path) -> None:
    """`make images` skips the api/worker build when nothing they are built from changed."""
    for rel in (
        "Dockerfile",
        "pyproject.toml",
        "README.md",
        "worker/job.py",
        "hooks/a.py",
        "orchestrator/app.py",
        "pipelines/spec.py",
        "docs/x.md",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    before = images.app_source_hash(tmp_path)
    (tmp_path / "worker" / "__pycache__").mkdir()
    (tmp_path / "worker" / "__pycache__" / "job.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "docs" / "x.md").write_text("not in the image")
    assert images.app_source_hash(tmp_path) == before
    (tmp_path / "worker" / "job.py").write_text("changed")
    assert images.app_source_hash(tmp_path) != before
