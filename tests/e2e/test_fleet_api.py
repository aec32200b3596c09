"""The fleet's view through real HTTP: a running checksum task's log followed live over
``GET /tasks/{id}/logs``, the finished task counted by ``GET /metrics``, listed by
``GET /tasks``, and the stack's worker listed ``up`` by ``GET /workers``.

Depends on the worker announcing itself and appending container output to the task's live log
(worker/), as the stack's worker does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.client import Client
from tests.e2e.test_flow import download_results, tus_upload

SLEEP_S = 3  # the checksum container sleeps this long: the log is followed while it runs


def metric(text: str, sample: str, **labels: str) -> float:
    """The sum of the samples named ``sample`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def scrape(client: Client, api_key: str) -> str:
    # As Prometheus sends it: authorization credentials as a bearer token, no custom header.
    r = requests.get(
        client.api_url + "/metrics", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    return r.text


def test_workers_lists_the_stack_worker_up(client: Client) -> None:
    r = client.get("/workers")
    assert r.status_code == 200, r.text
    workers = r.json()["workers"]
    up = [w for w in workers if w["state"] == "up" and "default" in w["queues"]]
    assert up, f"no worker up on the default queue: {workers}"
    w = up[0]
    assert w["hardware"]["cpus"] >= 1 and w["hardware"]["memory_bytes"] > 0
    assert isinstance(w["hardware"]["gpus"], list)
    assert w["capacity"]["cpus"] > 0 and w["capacity"]["memory_bytes"] > 0
    assert {"cpus", "memory_bytes"} <= set(w["free"])
    assert isinstance(w["running"], list)


def test_live_log_metrics_and_listing_of_a_real_task(
    client: Client, stack: Any, tmp_path: Path
) -> None:
    before = scrape(client, stack.api_key)
    done_before = metric(
        before, "orchestrator_task_duration_seconds_count", pipeline="checksum", status="done"
    )

    task = client.create("checksum", {"sleep_s": SLEEP_S})
    task_id = task["task_id"]
    for slot in ("first", "second"):
        f = tmp_path / f"{slot}.txt"
        f.write_text(f"{slot} input\n")
        tus_upload(task["upload_urls"][slot], f)
    running = client.wait_for(task_id, lambda t: t["status"] in ("running", "done", "error"), 120)
    assert running["status"] == "running", running  # it sleeps SLEEP_S s: caught running

    # Follow the log while the task runs; it must end by itself when the run is over.
    text: list[str] = []
    with client.http.get(
        f"{client.api_url}/tasks/{task_id}/logs", stream=True, timeout=(10, 60)
    ) as r:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        text.extend(r.iter_lines(decode_unicode=True))
    # The stream ended by itself (a client timeout raises instead), and only once the run was
    # over: the worker writes its end marker after the task's final state, and a stream without
    # one ends only at a terminal state. The task was running when we started following.
    assert client.query(task_id)["status"] in ("done", "error", "killed")
    final = client.wait_terminal(task_id, timeout_s=30)
    assert final["status"] == "done", final

    # What the worker appended: the container's one line ("wrote /out/checksums.json"), which
    # it prints after its sleep, so the stream was open and waiting for it.
    assert any(x.startswith("wrote ") for x in text), text
    # The stored log holds the same lines.
    stored = download_results(final)["logs.txt"].decode().splitlines()
    assert text == stored

    # Afterwards the log is still readable, without following.
    r = client.get(f"/tasks/{task_id}/logs", params={"follow": "false"})
    assert r.status_code == 200 and r.text.splitlines() == stored

    # Per-task accounting.
    stats = final["stats"]
    assert stats["wall_s"] >= SLEEP_S - 0.5
    assert stats["peak_memory_bytes"] is None or stats["peak_memory_bytes"] > 0
    assert final["queue"] == "default" and final["resources"]["cpus"] > 0

    after = scrape(client, stack.api_key)
    assert metric(after, "orchestrator_tasks", state="done") >= 1
    done_after = metric(
        after, "orchestrator_task_duration_seconds_count", pipeline="checksum", status="done"
    )
    assert done_after >= done_before + 1
    assert (
        metric(
            after,
            "orchestrator_task_duration_seconds_bucket",
            pipeline="checksum",
            status="done",
            le="+Inf",
        )
        == done_after
    )
    assert metric(after, "orchestrator_upload_to_start_seconds_count", pipeline="checksum") >= 1
    # Observed by the worker when the run ended done: at least the run's own sleep.
    created_to_done = "orchestrator_task_create_to_done_seconds"
    assert metric(after, f"{created_to_done}_count", pipeline="checksum") >= (
        metric(before, f"{created_to_done}_count", pipeline="checksum") + 1
    )
    assert metric(after, f"{created_to_done}_sum", pipeline="checksum") >= (
        metric(before, f"{created_to_done}_sum", pipeline="checksum") + SLEEP_S
    )
    assert metric(after, "orchestrator_workers", state="up") >= 1
    assert metric(after, "orchestrator_hook_calls_total", hook="post-finish") >= 1

    listed = client.get(
        "/tasks", params={"status": "done", "pipeline": "checksum", "limit": 500}
    ).json()
    row = next(t for t in listed["tasks"] if t["task_id"] == task_id)
    assert row["status"] == "done" and row["finished_at"] and row["queue"] == "default"


def test_log_lines_arrive_while_the_container_prints_them(client: Client, tmp_path: Path) -> None:
    """The checksum test aid ``tick_s`` prints "tick N" once a second, here for a minute. Once
    the follower has the third line the task is killed: it ends killed, not done, only if those
    lines reached the follower while the container was still printing, not all at its end."""
    ticks, kill_at = 60, "tick 3"
    task = client.create("checksum", {"tick_s": ticks})
    task_id = task["task_id"]
    for slot in ("first", "second"):
        f = tmp_path / f"{slot}.txt"
        f.write_text(slot)
        tus_upload(task["upload_urls"][slot], f)
    client.wait_for(task_id, lambda t: t["status"] != "waiting", 60)
    arrivals: list[str] = []
    with client.http.get(
        f"{client.api_url}/tasks/{task_id}/logs", stream=True, timeout=(10, 60)
    ) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            arrivals.append(line)
            if line == kill_at:
                killed = client.post(f"/kill_task/{task_id}")
                assert killed.status_code in (200, 202), killed.text
    final = client.wait_terminal(task_id, timeout_s=30)
    assert (final["status"], final["reason"]) == ("killed", "killed on request"), final
    tick_lines = [x for x in arrivals if x.startswith("tick ")]
    # In order, none lost, the kill's trigger among them; the run stopped short of its end.
    assert tick_lines == [f"tick {n}" for n in range(1, len(tick_lines) + 1)], arrivals
    assert kill_at in tick_lines and len(tick_lines) < ticks, arrivals
