"""Worker fleet figures on a running local stack: worker-loss recovery and throughput.

    python -m bench.fleet [--profile test|dev] [--tasks 20] [--recovery-runs 2]

Needs root (the worker hosts are network namespaces, see devstack/fleet.py) and a
running stack of the profile (`make up`, or `python -m devstack up --profile
test`). Every task goes to a queue of its own that only the fake hosts' workers listen on.

* **recovery**: a `checksum` task (sleep_s=8) runs on one of two hosts; that host is killed (its
  worker process tree and its containers, like a machine that dies); prints seconds from the kill
  until the task runs again on the other host and until it is done.
* **throughput**: `--tasks` small `checksum` tasks (64 KiB inputs, no sleep) are queued first,
  then 1 (resp. 2) workers with one slot each drain the queue; tasks per minute =
  tasks / (last finish - first start), from PostgreSQL's own timestamps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack import envfile, fleet
from devstack.profile import get_profile

TERMINAL = ("done", "error", "killed")


def wait_terminal(
    sub: fleet.Submitter, task_ids: list[str], timeout_s: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [sub.query(t) for t in task_ids]
        if all(r["status"] in TERMINAL for r in rows):
            return rows
        if time.monotonic() > deadline:
            pending = [r["status"] for r in rows if r["status"] not in TERMINAL]
            raise TimeoutError(f"{len(pending)} tasks unfinished after {timeout_s} s")
        time.sleep(0.2)


def recovery(env: dict[str, str], datadir: Path, tmp: Path) -> dict[str, Any]:
    queue = f"bench-recovery-{uuid.uuid4().hex[:8]}"
    sub = fleet.Submitter(env["API_URL"], env["API_KEY"], queue)
    hosts_env = {"WORKER_QUEUES": queue, "WORKER_SLOTS": "1"}
    try:
        with fleet.fake_hosts(["host-a", "host-b"], env, datadir, extra_env=hosts_env) as hosts:
            fleet.wait_announced(env["API_URL"], env["API_KEY"], [h.name for h in hosts], queue)
            item = sub.submit(tmp, {"sleep_s": 8})
            while (row := sub.query(item.task_id))["status"] != "running":
                time.sleep(0.1)
            time.sleep(2.0)  # mid-task
            victim = next(h for h in hosts if h.name == fleet.worker_host(row["worker_id"]))
            killed_at = time.monotonic()
            victim.kill([item.task_id])
            running_again = None
            while True:
                row = sub.query(item.task_id)
                now = time.monotonic() - killed_at
                if (
                    running_again is None
                    and row["status"] == "running"
                    and (fleet.worker_host(row["worker_id"]) != victim.name)
                ):
                    running_again = now
                if row["status"] in TERMINAL:
                    break
                if now > 300:
                    raise TimeoutError(f"no recovery after 300 s: {row}")
                time.sleep(0.1)
            return {
                "status": row["status"],
                "reason": row["reason"],
                "attempts": row["attempts"],
                "killed_host": victim.name,
                "final_host": fleet.worker_host(row["worker_id"]),
                "kill_to_running_s": round(running_again, 1) if running_again else None,
                "kill_to_done_s": round(now, 1),
            }
    finally:
        sub.close()


def throughput(
    env: dict[str, str], datadir: Path, tmp: Path, workers: int, tasks: int
) -> dict[str, Any]:
    queue = f"bench-throughput-{uuid.uuid4().hex[:8]}"
    sub = fleet.Submitter(env["API_URL"], env["API_KEY"], queue)
    names = [f"host-{chr(ord('a') + n)}" for n in range(workers)]
    hosts_env = {"WORKER_QUEUES": queue, "WORKER_SLOTS": "1"}
    try:
        with fleet.fake_hosts(names, env, datadir, extra_env=hosts_env) as hosts:
            # create_task takes a queue only while a live worker listens on it. The workers
            # are announced, then stalled while every task is queued, so that the figure is
            # their drain rate, not the upload rate of this script.
            fleet.wait_announced(env["API_URL"], env["API_KEY"], names, queue)
            for host in hosts:
                host.pause()
            try:
                with ThreadPoolExecutor(4) as pool:
                    items = list(pool.map(lambda _: sub.submit(tmp), range(tasks)))
            finally:
                for host in hosts:
                    host.resume()
            ids = [i.task_id for i in items]
            rows = wait_terminal(sub, ids, timeout_s=60 + 30 * tasks)
    finally:
        sub.close()
    failed = [r for r in rows if r["status"] != "done"]
    started = [datetime.fromisoformat(r["started_at"]) for r in rows]
    finished = [datetime.fromisoformat(r["finished_at"]) for r in rows]
    span = (max(finished) - min(started)).total_seconds()
    runs = [(f - s).total_seconds() for s, f in zip(started, finished, strict=True)]
    per_host = {n: sum(1 for r in rows if fleet.worker_host(r["worker_id"]) == n) for n in names}
    return {
        "workers": workers,
        "tasks": tasks,
        "failed": len(failed),
        "span_s": round(span, 1),
        "tasks_per_min": round(tasks * 60 / span, 1),
        "median_task_s": round(statistics.median(runs), 2),
        "per_host": per_host,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="test", choices=["dev", "test"])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--recovery-runs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    env = envfile.parse(profile.env_file.read_text())
    report: dict[str, Any] = {"cpus": os.cpu_count(), "recovery": [], "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.recovery_runs):
            result = recovery(env, profile.datadir, Path(tmp))
            report["recovery"].append(result)
            print(
                f"recovery: host {result['killed_host']} killed mid-task -> running on "
                f"{result['final_host']} after {result['kill_to_running_s']} s, "
                f"{result['status']} after {result['kill_to_done_s']} s",
                flush=True,
            )
        for workers in (1, 2):
            result = throughput(env, profile.datadir, Path(tmp), workers, args.tasks)
            report["throughput"].append(result)
            print(
                f"throughput: {workers} worker(s) x 1 slot: {result['tasks']} tasks in "
                f"{result['span_s']} s = {result['tasks_per_min']} tasks/min "
                f"(median task {result['median_task_s']} s, per host {result['per_host']}, "
                f"failed {result['failed']})",
                flush=True,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
