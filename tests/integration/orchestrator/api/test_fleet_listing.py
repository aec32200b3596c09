"""GET /tasks: filters and keyset pagination over the real database (in-process app).

Each test writes tasks of its own made-up pipeline name, so concurrent sessions on the shared
stack never appear in its pages, and deletes them afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from orchestrator.bootstrap import Services

from .fleet import delete_pipeline_tasks, insert_task

Local = tuple[TestClient[Any], Services]
T0 = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def pipeline(local: Local) -> Iterator[str]:
    name = f"listing-{uuid.uuid4().hex[:10]}"
    yield name
    delete_pipeline_tasks(local[1], name)


def _pages(client: TestClient[Any], **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get("/tasks", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["tasks"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def test_pages_cover_everything_once_newest_first(local: Local, pipeline: str) -> None:
    client, svc = local
    # Eleven tasks, three of them sharing one created_at: the id breaks the tie.
    times = [T0 + timedelta(minutes=i) for i in range(8)] + [T0 + timedelta(minutes=3)] * 3
    ids = {insert_task(svc, pipeline, created_at=t) for t in times}
    pages = _pages(client, pipeline=pipeline, limit=3)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    seen = [t["task_id"] for p in pages for t in p]
    assert len(seen) == len(set(seen)) == 11 and set(seen) == ids
    keys = [(t["created_at"], t["task_id"]) for p in pages for t in p]
    parsed = [(datetime.fromisoformat(c), i) for c, i in keys]
    assert parsed == sorted(parsed, reverse=True)
    first = pages[0][0]
    assert set(first) == {
        "task_id",
        "pipeline",
        "status",
        "reason",
        "queue",
        "created_at",
        "queued_at",
        "started_at",
        "finished_at",
        "priority",
        "priority_name",
    }
    assert first["pipeline"] == pipeline and first["status"] == "waiting"
    assert first["queue"] == "default"


def test_an_exact_page_has_no_empty_follower(local: Local, pipeline: str) -> None:
    client, svc = local
    for i in range(4):
        insert_task(svc, pipeline, created_at=T0 + timedelta(seconds=i))
    pages = _pages(client, pipeline=pipeline, limit=2)
    assert [len(p) for p in pages] == [2, 2]
    assert len(_pages(client, pipeline=pipeline)[0]) == 4  # default limit 50


def test_new_tasks_do_not_shift_later_pages(local: Local, pipeline: str) -> None:
    client, svc = local
    old = [insert_task(svc, pipeline, created_at=T0 + timedelta(seconds=i)) for i in range(4)]
    r = client.get("/tasks", params={"pipeline": pipeline, "limit": 2}).json()
    insert_task(svc, pipeline, created_at=T0 + timedelta(days=1))  # newer than everything
    rest = client.get(
        "/tasks", params={"pipeline": pipeline, "limit": 2, "cursor": r["next_cursor"]}
    ).json()
    got = [t["task_id"] for t in r["tasks"] + rest["tasks"]]
    assert got == old[::-1]


def test_status_and_time_filters(local: Local, pipeline: str) -> None:
    client, svc = local
    a = insert_task(svc, pipeline, created_at=T0, status="done")
    b = insert_task(svc, pipeline, created_at=T0 + timedelta(hours=1), status="error")
    c = insert_task(svc, pipeline, created_at=T0 + timedelta(hours=2))

    def ids(**params: Any) -> list[str]:
        r = client.get("/tasks", params={"pipeline": pipeline, **params})
        assert r.status_code == 200, r.text
        return [t["task_id"] for t in r.json()["tasks"]]

    assert ids() == [c, b, a]
    assert ids(status="done") == [a]
    assert ids(status="done,error") == [b, a]
    assert ids(status=["waiting", "done"]) == [c, a]
    assert ids(created_after=(T0 + timedelta(hours=1)).isoformat()) == [c, b]  # inclusive
    assert ids(created_before=(T0 + timedelta(hours=1)).isoformat()) == [a]  # exclusive
    assert ids(created_after="2020-01-01T00:30:00Z", created_before="2020-01-01T01:30:00Z") == [b]
    assert ids(status="killed") == []


def test_pipeline_filter_excludes_others(local: Local, pipeline: str) -> None:
    client, svc = local
    mine = insert_task(svc, pipeline)
    other = f"{pipeline}-other"
    try:
        insert_task(svc, other)
        r = client.get("/tasks", params={"pipeline": pipeline}).json()
        assert [t["task_id"] for t in r["tasks"]] == [mine]
    finally:
        delete_pipeline_tasks(svc, other)


def test_without_filters_lists_recent_tasks(local: Local, pipeline: str) -> None:
    client, svc = local
    newest = insert_task(svc, pipeline, created_at=datetime.now(UTC) + timedelta(days=365))
    r = client.get("/tasks", params={"limit": 1})
    assert r.status_code == 200
    assert [t["task_id"] for t in r.json()["tasks"]] == [newest]
    assert r.json()["next_cursor"] is not None


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"status": "finished"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"created_after": "last tuesday"}, "created_after"),
        ({"created_before": "2020-02-30"}, "created_before"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    local: Local, params: dict[str, str], name: str
) -> None:
    client, _ = local
    r = client.get("/tasks", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{name}: ")


def test_get_task_alias_still_answers(local: Local, pipeline: str) -> None:
    client, svc = local
    task_id = insert_task(svc, pipeline)
    r = client.get(f"/tasks/{task_id}")
    assert r.status_code == 200 and r.json()["task_id"] == task_id
