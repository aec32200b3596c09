"""Two worker hosts: tasks spread across both, and a host that dies mid-task loses nothing.

Each host is a network namespace with its own address and host name running ``python -m
worker``, reaching PostgreSQL, Redis and S3 only over its own veth address
(devstack/fleet.py). The tasks go to a queue only these two workers listen on,
so the stack's own worker never takes them.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import fleet
from orchestrator.settings import Settings
from tests.conftest import Stack

HOSTS = ["host-a", "host-b"]
# Recovery as docs/deploy.md states it: the reconciler deems a worker dead once its heartbeat is
# HEARTBEAT_TIMEOUT_S old and looks every RECONCILE_INTERVAL_S, so a task held by a dead host is
# claimed again at most one pass after its heartbeat went stale. Measured between the two claims
# on PostgreSQL's clock, which stamped both, it also holds the victim's run up to the kill and
# the survivor's claim: this much on top of the two settings.
CLAIMS_SLACK_S = 20.0
TERMINAL = ("done", "error", "killed")


def setting(stack: Stack, name: str) -> float:
    """A setting of the stack's API: its environment's, else the product's default."""
    default = Settings.model_fields[name].default
    return float(stack.env.get(name.upper(), default))


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def fleet_hosts(stack: Stack) -> Iterator[tuple[list[fleet.FakeHost], fleet.Submitter]]:
    try:
        fleet.check_support()
    except fleet.FleetError as exc:
        pytest.fail(f"the two-host test needs network namespaces: {exc}", pytrace=False)
    queue = f"fleet-test-{uuid.uuid4().hex[:8]}"
    # One slot per worker: a task at a time, so that a busy host leaves the next to the other.
    worker_env = {"WORKER_QUEUES": queue, "WORKER_SLOTS": "1"}
    submitter = fleet.Submitter(stack.api_url, stack.api_key, queue)
    try:
        with fleet.fake_hosts(HOSTS, stack.env, stack.datadir, extra_env=worker_env) as hosts:
            try:
                fleet.wait_announced(stack.api_url, stack.api_key, HOSTS, queue)
            except fleet.FleetError as exc:
                logs = "\n".join(f"--- {h.name}\n{h.log_tail()}" for h in hosts)
                pytest.fail(f"{exc}\n{logs}", pytrace=False)
            yield hosts, submitter
    finally:
        submitter.close()


def wait_rows(
    submitter: fleet.Submitter, task_ids: list[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {t: submitter.query(t) for t in task_ids}
        if all(r["status"] in TERMINAL for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks not finished after {timeout_s} s: {rows}")
        time.sleep(0.3)


def containers_of(task_id: str) -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label={fleet.LABEL_TASK}={task_id}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout.split()


def test_namespaces_reach_only_their_gateway(
    fleet_hosts: tuple[list[fleet.FakeHost], fleet.Submitter],
) -> None:
    hosts, _ = fleet_hosts
    for host in hosts:
        assert host.worker_alive(), host.log_tail()
        addrs = subprocess.run(
            ["ip", "-n", host.netns, "-4", "-o", "addr"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{host.address}/30" in addrs
        # 127.0.0.1 inside the namespace is its own loopback, where the stack is not: the
        # worker can reach the services only through its gateway address.
        port = host.forwarders[0].target[1]  # PostgreSQL's port
        connect = (
            "import socket,sys; s=socket.socket(); s.settimeout(2); "
            "sys.exit(s.connect_ex(({!r}, {})))"
        )
        inside = ["ip", "netns", "exec", host.netns, "python3", "-c"]
        probe = subprocess.run(
            [*inside, connect.format("127.0.0.1", port)],
            capture_output=True,
            text=True,
            check=False,
        )
        via_gateway = subprocess.run(
            [*inside, connect.format(host.gateway, port)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert via_gateway.returncode == 0, via_gateway.stderr
        assert probe.returncode != 0, "the stack's loopback services are visible in the netns"


def test_tasks_spread_across_both_hosts(
    fleet_hosts: tuple[list[fleet.FakeHost], fleet.Submitter], tmp_path: Path
) -> None:
    _, submitter = fleet_hosts
    submitted = [submitter.submit(tmp_path, {"sleep_s": 2}) for _ in range(6)]
    rows = wait_rows(submitter, [s.task_id for s in submitted], timeout_s=180)
    assert all(r["status"] == "done" for r in rows.values()), rows
    by_host = [fleet.worker_host(r["worker_id"]) for r in rows.values()]
    print("tasks per host:", {h: by_host.count(h) for h in HOSTS})
    assert set(by_host) == set(HOSTS), by_host
    # The results are right, whichever host computed them.
    for item in submitted:
        task = submitter.query(item.task_id)
        link = next(r for r in task["results"] if r["name"] == "checksums.json")
        assert requests.get(link["url"], timeout=30).json() == item.expected


def ticked(submitter: fleet.Submitter, task_id: str) -> bool:
    """Whether the task's container has printed a tick (its live log, as the API serves it)."""
    r = submitter.http.get(
        f"{submitter.api_url}/tasks/{task_id}/logs", params={"follow": "false"}, timeout=30
    )
    return r.status_code == 200 and "tick " in r.text


def test_killing_a_host_mid_task_moves_the_task(
    stack: Stack, fleet_hosts: tuple[list[fleet.FakeHost], fleet.Submitter], tmp_path: Path
) -> None:
    hosts, submitter = fleet_hosts
    heartbeat_timeout_s = setting(stack, "heartbeat_timeout_s")
    recovery_bound_s = heartbeat_timeout_s + setting(stack, "reconcile_interval_s")
    recovery_bound_s += CLAIMS_SLACK_S
    item = submitter.submit(tmp_path, {"tick_s": 8})
    deadline = time.monotonic() + 120
    while True:
        row = submitter.query(item.task_id)
        # Mid-task: the container is computing (it has printed a tick).
        running = row["status"] == "running" and containers_of(item.task_id)
        if running and ticked(submitter, item.task_id):
            break
        assert row["status"] in ("waiting", "pending", "running"), row
        assert time.monotonic() < deadline, f"task never ran: {row}"
        time.sleep(0.2)
    first_claim = stamp(row["started_at"])
    victim = next(h for h in hosts if h.name == fleet.worker_host(row["worker_id"]))
    survivor = next(h for h in hosts if h is not victim)

    killed_at = time.monotonic()
    removed = victim.kill([item.task_id])
    assert removed, "the victim's pipeline container was not found"
    assert not victim.worker_alive()

    rerun_s = None
    while True:
        row = submitter.query(item.task_id)
        elapsed = time.monotonic() - killed_at
        if (
            rerun_s is None
            and row["status"] == "running"
            and (fleet.worker_host(row["worker_id"]) == survivor.name)
        ):
            rerun_s = elapsed
        if row["status"] in TERMINAL:
            break
        # A safety net, not the bound: that is checked below on the product's own clock.
        assert elapsed < recovery_bound_s + 60, f"no recovery after {elapsed:.0f} s: {row}"
        time.sleep(0.2)
    print(
        f"host killed → running on {survivor.name}: {rerun_s} s; → {row['status']}: {elapsed:.1f} s"
    )
    # The task left the victim when the survivor claimed it (or when the reconciler failed it
    # for good); PostgreSQL stamped that moment as it stamped the victim's claim. Not before
    # the victim's heartbeat was HEARTBEAT_TIMEOUT_S old (no false alarm), and within a
    # reconciler pass of that.
    moved_at = stamp(row["started_at"] if row["attempts"] > 1 else row["finished_at"])
    moved_s = (moved_at - first_claim).total_seconds()
    print(f"claimed on {victim.name} → moved: {moved_s:.1f} s (PostgreSQL's clock)")
    assert moved_s >= heartbeat_timeout_s, (moved_s, row)
    assert moved_s <= recovery_bound_s, (moved_s, row)
    if row["status"] == "error":
        assert row["reason"], row  # the retry bound: an error must say why
    else:
        assert row["status"] == "done", row
        assert fleet.worker_host(row["worker_id"]) == survivor.name, row
        assert row["attempts"] == 2, row
        task = submitter.query(item.task_id)
        link = next(r for r in task["results"] if r["name"] == "checksums.json")
        assert requests.get(link["url"], timeout=30).json() == item.expected
