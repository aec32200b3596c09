"""Projects and keys over the real database: every endpoint against own project, another
project, admin, bootstrap, revoked and no key, each expected code asserted; rate limiting."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import litestar.middleware.rate_limit as litestar_rate_limit
import pytest
from litestar.testing import TestClient

from orchestrator.app import create_app
from orchestrator.bootstrap import Services
from orchestrator.domain.access import Role
from orchestrator.settings import Settings
from pipelines.catalog import shipped
from tests.integration.orchestrator.api.conftest import RecordingQueue

ROOT_ENV_KEYS = ("DATABASE_URL",)


@dataclasses.dataclass(frozen=True)
class Keys:
    own: str  # member of project A
    other: str  # member of project B
    admin: str  # an admin key (of project A)
    bootstrap: str  # API_KEY
    revoked: str  # was a member of A


@pytest.fixture(scope="module")
def keys(services: Services, settings: Settings) -> Keys:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"mine-a-{suffix}", f"contractor-{suffix}"
    own = services.access.create_key(a, Role.MEMBER, "surveyor")
    revoked = services.access.create_key(a, Role.MEMBER, "left the company")
    services.access.revoke(revoked.view.id)
    return Keys(
        own=own.key,
        other=services.access.create_key(b, Role.MEMBER).key,
        admin=services.access.create_key(a, Role.ADMIN, "ops").key,
        bootstrap=settings.api_key,
        revoked=revoked.key,
    )


@pytest.fixture
def app(services: Services) -> Iterator[TestClient[Any]]:
    svc = dataclasses.replace(services, queue=RecordingQueue(services))
    with TestClient(
        create_app(svc, catalog=shipped(), reconcile=False), raise_server_exceptions=False
    ) as client:
        yield client


def call(client: TestClient[Any], key: str | None, method: str, path: str, **kw: Any) -> Any:
    headers = {"X-API-Key": key} if key is not None else {}
    return client.request(method, path, headers=headers, **kw)


def create(client: TestClient[Any], key: str) -> str:
    r = call(client, key, "POST", "/create_task", json={"pipeline": "checksum"})
    assert r.status_code == 201, r.text
    task_id: str = r.json()["task_id"]
    return task_id


def test_access_matrix(app: TestClient[Any], keys: Keys) -> None:
    mine = create(app, keys.own)
    theirs = create(app, keys.other)
    unknown = str(uuid.uuid4())
    who = {
        "own": keys.own,
        "other": keys.other,
        "admin": keys.admin,
        "bootstrap": keys.bootstrap,
        "revoked": keys.revoked,
        "none": None,
    }
    # (method, path) -> expected code per caller, about a task of project A ("mine").
    matrix: dict[tuple[str, str], dict[str, int]] = {
        ("GET", f"/query_task/{mine}"): {"own": 200, "other": 404, "admin": 200, "bootstrap": 200},
        ("GET", f"/tasks/{mine}"): {"own": 200, "other": 404, "admin": 200, "bootstrap": 200},
        ("GET", f"/tasks/{mine}/logs?follow=false"): {
            "own": 200,
            "other": 404,
            "admin": 200,
            "bootstrap": 200,
        },
        # Its inputs are not uploaded: 409 for whoever may see it, 404 for the others.
        ("POST", f"/start_task/{mine}"): {"own": 409, "other": 404, "admin": 409, "bootstrap": 409},
        ("GET", "/tasks"): {"own": 200, "other": 200, "admin": 200, "bootstrap": 200},
        ("GET", "/pipelines"): {"own": 200, "other": 200, "admin": 200, "bootstrap": 200},
        ("GET", "/whoami"): {"own": 200, "other": 200, "admin": 200, "bootstrap": 200},
        ("GET", "/workers"): {"own": 403, "other": 403, "admin": 200, "bootstrap": 200},
        ("GET", "/metrics"): {"own": 403, "other": 403, "admin": 200, "bootstrap": 200},
    }
    seen: dict[str, dict[str, int]] = {}
    for (method, path), expected in matrix.items():
        expected = {**expected, "revoked": 401, "none": 401}
        got = {name: call(app, key, method, path).status_code for name, key in who.items()}
        seen[f"{method} {path.replace(mine, '{A}')}"] = got
        assert got == expected, f"{method} {path}: {got}"
    print(json.dumps(seen, indent=1))

    # Another project's task is answered word for word as an unknown one.
    hidden = call(app, keys.other, "GET", f"/query_task/{mine}").json()["detail"]
    missing = call(app, keys.other, "GET", f"/query_task/{unknown}").json()["detail"]
    assert hidden.replace(mine, unknown) == missing

    # Listings: each member sees its own project's tasks; admins see every project's.
    def listed(key: str) -> set[str]:
        r = call(app, key, "GET", "/tasks?limit=500")
        return {t["task_id"] for t in r.json()["tasks"]}

    assert mine in listed(keys.own) and theirs not in listed(keys.own)
    assert theirs in listed(keys.other) and mine not in listed(keys.other)
    assert {mine, theirs} <= listed(keys.admin)

    # Kill: not another project's; the owner and admins may.
    assert call(app, keys.other, "POST", f"/kill_task/{mine}").status_code == 404
    assert call(app, keys.own, "GET", f"/query_task/{mine}").json()["status"] == "waiting"
    assert call(app, keys.revoked, "POST", f"/kill_task/{mine}").status_code == 401
    assert call(app, keys.own, "POST", f"/kill_task/{mine}").status_code == 200
    assert call(app, keys.admin, "POST", f"/kill_task/{theirs}").status_code == 200

    # whoami names the project and role; new tasks go to the key's project.
    assert call(app, keys.other, "GET", "/whoami").json()["role"] == "member"
    assert call(app, keys.admin, "GET", "/whoami").json()["role"] == "admin"
    assert call(app, keys.bootstrap, "GET", "/whoami").json() == {
        "project": "default",
        "role": "admin",
        "key_id": None,
    }


def test_a_finished_answer_kept_for_an_admin_is_not_served_to_another_project(
    app: TestClient[Any], keys: Keys
) -> None:
    task_id = create(app, keys.own)
    assert call(app, keys.own, "POST", f"/kill_task/{task_id}").status_code == 200
    # Killed is terminal: its answer may be kept whole (api/cache.py), per caller's scope.
    for _ in range(2):
        assert call(app, keys.admin, "GET", f"/query_task/{task_id}").status_code == 200
        assert call(app, keys.own, "GET", f"/query_task/{task_id}").status_code == 200
        assert call(app, keys.other, "GET", f"/query_task/{task_id}").status_code == 404


def test_rate_limit_per_key_with_retry_after(
    services: Services, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One second of the limiter's clock, frozen: the window cannot roll over mid-test.
    monkeypatch.setattr(litestar_rate_limit, "time", lambda: 1_800_000_000.0)
    svc = dataclasses.replace(
        services,
        queue=RecordingQueue(services),
        settings=services.settings.model_copy(update={"rate_limit_per_s": 3}),
    )
    with TestClient(create_app(svc, catalog=shipped(), reconcile=False)) as client:
        codes = [call(client, keys.own, "GET", "/whoami").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = call(client, keys.own, "GET", "/whoami")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "too many requests" in refused.json()["detail"]
        # Per key: another key has its own budget; the bootstrap key is not limited.
        assert call(client, keys.other, "GET", "/whoami").status_code == 200
        assert all(
            call(client, keys.bootstrap, "GET", "/whoami").status_code == 200 for _ in range(5)
        )
        # An unknown key is refused before it is counted.
        assert call(client, "ok_nope", "GET", "/whoami").status_code == 401


def test_admin_commands_create_list_and_revoke(settings: Settings, stack: Any) -> None:
    env = {**stack.env, "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "orchestrator.client.cli", "admin", "--json"]
    project = f"cli-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> Any:
        done = subprocess.run(
            [*cli, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    made = run("create-key", "--project", project, "--name", "drone team")
    assert made["key"].startswith("ok_") and made["role"] == "member"
    assert made["project"] == project and made["shown"] == made["key"][:11]
    listed = {k["id"]: k for k in run("list-keys")}
    assert listed[made["id"]]["revoked_at"] is None
    # The key itself is never listed, nor stored: only its first characters are shown.
    assert made["key"] not in json.dumps(listed)
    revoked = run("revoke-key", made["id"])
    assert revoked["revoked_at"] is not None
    assert run("revoke-key", made["id"])["revoked_at"] == revoked["revoked_at"]  # idempotent
    done = subprocess.run(
        [*cli, "revoke-key", str(uuid.uuid4())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "no key" in done.stderr
    quota = run("set-quota", "--project", project, "--max-running", "2", "--max-upload", "1GiB")
    assert (quota["max_running"], quota["max_upload_bytes"], quota["max_stored_bytes"]) == (
        2,
        1024**3,
        None,
    )
    lifted = run("set-quota", "--project", project, "--max-running", "none")
    assert (lifted["max_running"], lifted["max_upload_bytes"]) == (None, 1024**3)
    assert project in {p["name"] for p in run("list-projects")}
