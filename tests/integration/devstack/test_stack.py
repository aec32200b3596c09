"""The local stack as the suite sees it: every service answers, settings are complete, and a
killed child comes back on its own."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import time
from datetime import timedelta
from urllib.parse import urlsplit

import docker
import psycopg
import pytest
import redis
import requests
from minio import Minio

from devstack import images
from orchestrator.settings import Settings, split_endpoint
from tests.conftest import Stack

REQUIRED = (
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT",
    "S3_PUBLIC_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "UPLOADS_BUCKET",
    "RESULTS_BUCKET",
    "TUS_PUBLIC_URL",
    "HOOK_SECRET",
    "UPLOAD_TOKEN_SECRET",
    "API_KEY",
    "EXECUTOR",
    "WORKER_QUEUES",
    "WORKER_WORK_DIR",
    "API_URL",
)


def minio_client(stack: Stack) -> Minio:
    host, secure = split_endpoint(stack.s3_endpoint)
    return Minio(
        host,
        access_key=stack.env["S3_ACCESS_KEY"],
        secret_key=stack.env["S3_SECRET_KEY"],
        secure=secure,
        region=stack.env["S3_REGION"],
    )


def test_env_file_holds_every_setting(stack: Stack) -> None:
    env = stack.env
    assert set(REQUIRED) <= set(env), set(REQUIRED) - set(env)
    assert stat.S_IMODE(os.stat(stack.datadir / "env").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(stack.datadir / "secrets.json").st_mode) == 0o600
    # The test profile: every port is the dev port + 100.
    assert env["API_URL"] == "http://127.0.0.1:8100"
    assert env["TUS_PUBLIC_URL"] == "http://127.0.0.1:11180/files/"
    assert env["S3_ENDPOINT"] == "http://127.0.0.1:18433"
    assert env["REDIS_URL"] == "redis://127.0.0.1:16479/0"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://orchestrator:")
    assert urlsplit(env["DATABASE_URL"]).port == 15532
    assert env["WORKER_WORK_DIR"] == str(stack.datadir / "work")
    assert len(env["API_KEY"]) >= 32 and len(env["HOOK_SECRET"]) >= 32
    # The application reads exactly these variables into its settings.
    settings = Settings(**{k.lower(): v for k, v in env.items() if k in REQUIRED})  # type: ignore[arg-type]
    assert settings.executor == "docker" and settings.queues == ["default"]
    assert settings.api_key == env["API_KEY"]


def test_postgres_accepts_the_role_and_refuses_a_wrong_password(stack: Stack) -> None:
    url = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("orchestrator", "orchestrator")
    parts = urlsplit(url)
    wrong = url.replace(f":{parts.password}@", ":not-the-password@")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(wrong, connect_timeout=5).close()


def test_redis_answers_with_append_only_persistence(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.env["REDIS_URL"], socket_timeout=5)
    assert client.ping()
    assert client.config_get("appendonly") == {"appendonly": "yes"}


def test_s3_buckets_exist_and_presigned_get_works(stack: Stack) -> None:
    client = minio_client(stack)
    names = {b.name for b in client.list_buckets()}
    assert {stack.env["UPLOADS_BUCKET"], stack.env["RESULTS_BUCKET"]} <= names
    bucket, key, body = stack.env["RESULTS_BUCKET"], f"localstack-test/{time.time_ns()}", b"hi\n"
    client.put_object(bucket, key, io.BytesIO(body), len(body))
    try:
        url = client.presigned_get_object(bucket, key, expires=timedelta(minutes=5))
        assert requests.get(url, timeout=10).content == body
        forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
        assert requests.get(forged, timeout=10).status_code == 403
    finally:
        client.remove_object(bucket, key)


def test_tusd_answers_options(stack: Stack) -> None:
    r = requests.options(stack.tus_url, timeout=10)
    assert r.status_code in (200, 204)
    assert "1.0.0" in r.headers.get("Tus-Version", "")


def test_api_health_answers(stack: Stack) -> None:
    r = requests.get(f"{stack.api_url}/health", timeout=10)
    assert r.status_code == 200, r.text


def test_docker_has_current_pipeline_images(stack: Stack) -> None:
    client = docker.from_env()
    assert client.ping()
    assert client.images.get(images.BASE_TAG)
    names = images.pipeline_names(stack.profile.root)
    assert "checksum" in names
    for name in names:
        image = client.images.get(f"pipeline-{name}:latest")
        assert image.labels.get(images.HASH_LABEL) == images.source_hash(stack.profile.root, name)


def test_every_child_runs(stack: Stack) -> None:
    children = stack.children()
    expected = {"postgres", "redis", "minio", "api", "tusd", "worker"}
    assert expected <= set(children), expected - set(children)
    assert all(c["running"] for c in children.values()), children


def test_a_killed_child_is_restarted(stack: Stack) -> None:
    # tusd keeps its state in MinIO, so killing it between tests disturbs nothing else.
    before = stack.children()["tusd"]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    after = before
    while time.monotonic() < deadline:
        after = stack.children()["tusd"]
        if after["pid"] != before["pid"] and after["running"]:
            try:
                if requests.options(stack.tus_url, timeout=2).status_code in (200, 204):
                    break
            except requests.RequestException:
                pass
        time.sleep(0.25)
    else:
        pytest.fail(f"tusd not back within 30 s: {json.dumps(after)}")
    assert after["restarts"] == before["restarts"] + 1
