"""create_task's ``priority``: accepted forms, refusals, where it shows, and the queue band a
task is sent to once its inputs are in."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from orchestrator.bootstrap import Services
from tests.integration.orchestrator.api.conftest import enqueued
from tests.slots import fill_slot

Local = tuple[TestClient[Any], Services]


@pytest.mark.parametrize(
    ("given", "number", "name", "band_queue"),
    [
        ("high", 10, "high", "default.high"),
        (None, 0, "normal", "default"),
        ("low", -10, "low", "default.low"),
        (3, 3, "high (3)", "default.high"),
        ("-7", -7, "low (-7)", "default.low"),
    ],
)
def test_a_priority_is_kept_shown_and_routes_the_task_to_its_band(
    local: Local, given: Any, number: int, name: str, band_queue: str
) -> None:
    client, svc = local
    body: dict[str, Any] = {"pipeline": "checksum"}
    if given is not None:
        body["priority"] = given
    r = client.post("/create_task", json=body)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    task = client.get(f"/query_task/{task_id}").json()
    assert (task["priority"], task["priority_name"]) == (number, name)
    listed = client.get("/tasks", params={"status": "waiting", "limit": 500}).json()["tasks"]
    row = next(t for t in listed if t["task_id"] == task_id)
    assert (row["priority"], row["priority_name"]) == (number, name)

    for slot in ("first", "second"):
        fill_slot(svc.tasks, task_id, slot, key=f"{task_id}/{slot}/x", size=10)
    assert client.post(f"/start_task/{task_id}").status_code == 200
    assert [(t, q) for t, q, _ in enqueued(svc) if t == task_id] == [(task_id, band_queue)]


@pytest.mark.parametrize("bad", ["urgent", 101, -101, True, "1.5"])
def test_a_bad_priority_is_refused_naming_the_accepted_forms(local: Local, bad: Any) -> None:
    client, _ = local
    r = client.post("/create_task", json={"pipeline": "checksum", "priority": bad})
    assert r.status_code in (400, 422), r.text
    # Ours names the accepted forms (422); a JSON true fails the body's schema first (400),
    # whose details name the field.
    assert "priority" in r.text, r.text
