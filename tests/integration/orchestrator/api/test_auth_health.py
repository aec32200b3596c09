"""API key, hook secret independence, /health and the OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from litestar.testing import TestClient

from orchestrator.app import create_app
from orchestrator.bootstrap import Services, build_services
from orchestrator.domain.status import TaskStatus

from .conftest import Api, settings_of

PROTECTED = [
    ("POST", "/create_task"),
    ("POST", "/start_task/{id}"),
    ("GET", "/query_task/{id}"),
    ("GET", "/tasks/{id}"),
    ("POST", "/kill_task/{id}"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_protected_endpoints_need_the_key(
    api: Api, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    url = api.url + path.format(id=uuid.uuid4())
    r = requests.request(method, url, headers=headers, json={"pipeline": "checksum"}, timeout=30)
    assert r.status_code == 401
    assert r.json()["detail"] == "missing, unknown or revoked X-API-Key"


def test_rejected_create_creates_nothing(api: Api, services: Services) -> None:
    def count() -> int:
        return len(services.tasks.by_status([TaskStatus.WAITING], limit=1_000_000))

    before = count()
    requests.post(api.url + "/create_task", json={"pipeline": "checksum"}, timeout=30)
    assert count() == before


@pytest.mark.parametrize("path", ["/health", "/schema/openapi.json"])
def test_open_endpoints_need_no_key(api: Api, path: str) -> None:
    assert requests.get(api.url + path, timeout=30).status_code == 200


def test_health_names_each_service(api: Api) -> None:
    r = requests.get(api.url + "/health", timeout=30)
    assert r.json() == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "s3": "ok", "lifecycle": "ok"},
    }


def test_health_warns_when_the_buckets_rules_differ_from_the_settings(stack: Any) -> None:
    """The running API set the rules for 30 days of results; a process configured for 5
    reports the drift, and stays in service."""
    services = build_services(settings_of(stack.env, result_retention_s=5 * 86_400))
    try:
        with TestClient(create_app(services, catalog={}, reconcile=False)) as client:
            r = client.get("/health")
    finally:
        services.close()
    assert r.status_code == 200, r.text
    results = services.settings.results_bucket
    assert r.json()["checks"]["lifecycle"] == (
        f"warning: bucket {results} expires objects after 30 days, not 5 as RESULT_RETENTION_S says"
    )


def test_openapi_has_explicit_operation_ids(api: Api) -> None:
    doc = requests.get(api.url + "/schema/openapi.json", timeout=30).json()
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "create_task",
        "start_task",
        "query_task",
        "get_task",
        "kill_task",
        "health",
    } <= ops
    # The hook endpoint lives on the internal listener only, outside the public API.
    assert "tusd_hook" not in ops


@pytest.mark.parametrize("down", ["postgres", "redis", "s3"])
def test_health_is_503_naming_the_failing_service(stack: Any, down: str) -> None:
    dead = "127.0.0.1:1"  # nothing listens on port 1
    overrides = {
        "postgres": {"database_url": f"postgresql+psycopg://x@{dead}/x?connect_timeout=2"},
        "redis": {"redis_url": f"redis://{dead}/0"},
        "s3": {"s3_endpoint": f"http://{dead}"},
    }[down]
    services = build_services(settings_of(stack.env, **overrides))
    try:
        with TestClient(create_app(services, catalog={}, reconcile=False)) as client:
            r = client.get("/health")
    finally:
        services.close()
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks[down].startswith("error:")
    assert all(v == "ok" for k, v in checks.items() if k != down)


def test_liveness_needs_no_key_and_no_backing_service(stack: Any) -> None:
    dead = "127.0.0.1:1"
    services = build_services(
        settings_of(
            stack.env,
            database_url=f"postgresql+psycopg://x@{dead}/x?connect_timeout=2",
            redis_url=f"redis://{dead}/0",
            s3_endpoint=f"http://{dead}",
        )
    )
    try:
        with TestClient(create_app(services, catalog={}, reconcile=False)) as client:
            live = client.get("/health/live")
            ready = client.get("/health")
    finally:
        services.close()
    assert live.status_code == 200 and live.json() == {"status": "ok", "checks": {}}
    assert ready.status_code == 503  # the same process, not ready
