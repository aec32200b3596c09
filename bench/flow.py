"""Latency of the whole flow on a running stack, as a client sees it.

    python -m bench.flow [--env .stack/env] [--runs 5]

Prints, for the `checksum` pipeline: the time from the last upload finishing to `done`
(each run and the median), and the time from a kill request to `killed` for a running task.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from tusclient.client import TusClient


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip().strip("'\"")
    return env


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = key

    def create(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self.http.post(
            f"{self.url}/create_task",
            json={"pipeline": "checksum", "params": params or {}},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()

    def status(self, task_id: str) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/query_task/{task_id}", timeout=30)
        r.raise_for_status()
        return r.json()

    def wait(self, task_id: str, statuses: set[str], timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            task = self.status(task_id)
            if task["status"] in statuses:
                return task
            time.sleep(0.05)
        raise TimeoutError(f"task {task_id} not in {statuses} after {timeout_s} s")


def upload(url: str, path: Path) -> None:
    TusClient(url).uploader(
        str(path), chunk_size=8 << 20, metadata={"filename": path.name}
    ).upload()


def check_results(task: dict[str, Any], inputs: dict[str, Path]) -> None:
    """Download every result through its presigned URL (no API key) and check it."""
    files = {}
    for item in task["results"]:
        body = requests.get(item["url"], timeout=60).content
        assert hashlib.sha256(body).hexdigest() == item["sha256"], item["name"]
        files[item["name"]] = body
    sums = json.loads(files["checksums.json"])
    for slot, path in inputs.items():
        assert sums[slot]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), slot
    print(f"results downloaded through presigned URLs and verified: {sorted(files)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default=".stack/env", type=Path)
    parser.add_argument("--runs", default=5, type=int)
    parser.add_argument("--size-mb", default=8, type=int, help="size of each input, MiB")
    args = parser.parse_args()
    env = read_env(args.env)
    api = Api(env["API_URL"], env.get("API_KEY", ""))

    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a.bin"), Path(tmp, "b.bin")
        a.write_bytes(os.urandom(args.size_mb << 20))
        b.write_bytes(os.urandom(args.size_mb << 20))

        latencies = []
        for i in range(args.runs):
            task = api.create()
            upload(task["upload_urls"]["first"], a)
            upload(task["upload_urls"]["second"], b)
            t0 = time.monotonic()
            final = api.wait(task["task_id"], {"done", "error", "killed"})
            latency = time.monotonic() - t0
            assert final["status"] == "done", final
            latencies.append(latency)
            if i == 0:
                check_results(final, {"first": a, "second": b})
            print(f"run {i + 1}: last upload finished → done in {latency:.2f} s")
        print(
            f"median last-upload → done: {statistics.median(latencies):.2f} s "
            f"over {args.runs} runs (inputs 2 x {args.size_mb} MiB)"
        )

        task = api.create({"sleep_s": 300})
        upload(task["upload_urls"]["first"], a)
        upload(task["upload_urls"]["second"], b)
        api.wait(task["task_id"], {"running"})
        time.sleep(1)
        t0 = time.monotonic()
        api.http.post(f"{api.url}/kill_task/{task['task_id']}", timeout=30).raise_for_status()
        final = api.wait(task["task_id"], {"done", "error", "killed"}, timeout_s=60)
        print(
            f"kill request → {final['status']} ({final.get('reason')}): "
            f"{time.monotonic() - t0:.2f} s"
        )


if __name__ == "__main__":
    main()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str, timeout_s: float = 60, server: subprocess.Popen[bytes] | None = None) -> None:
    """Until ``url`` answers below 500; fails at once if ``server`` (the process behind it)
    exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the server behind {url} exited with {server.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


HOOK_SECONDS = "orchestrator_hook_duration_seconds"


def hook_buckets(api: Api) -> dict[str, dict[float, float]]:
    """The API's hook-time histogram as scraped now: hook → {le: cumulative count}."""
    r = api.http.get(f"{api.url}/metrics", timeout=30)
    r.raise_for_status()
    found: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == f"{HOOK_SECONDS}_bucket":
                le = float(sample.labels["le"])
                found.setdefault(sample.labels["hook"], {})[le] = sample.value
    return found


def hook_p99(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> str:
    """Per hook type, the calls between two scrapes, the bucket bound their p99 is under, and
    how many were handled within each bound up to it."""
    lines = []
    for hook, buckets in sorted(after.items()):
        delta = {le: n - before.get(hook, {}).get(le, 0.0) for le, n in buckets.items()}
        count = delta.get(math.inf, 0.0)
        if count <= 0:
            continue
        bound = min(le for le, n in delta.items() if n >= 0.99 * count)
        shown = "+Inf" if math.isinf(bound) else f"{bound * 1000:g} ms"
        # How they spread up to that bound: calls handled within each bucket's bound.
        spread = ", ".join(
            f"≤{le * 1000:g}: {n:.0f}" for le, n in sorted(delta.items()) if le <= bound and n
        )
        lines.append(f"  {hook:13} {count:6.0f} calls, p99 ≤ {shown}  ({spread})")
    return "\n".join(lines)
