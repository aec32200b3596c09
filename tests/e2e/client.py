"""A user's view of the service: plain HTTP against the API, nothing from the project."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


class Client:
    """What a user's script does: plain HTTP against the API, nothing from the project."""

    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = api_key

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.api_url + path, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.api_url + path, timeout=30, **kw)

    def create(self, pipeline: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"pipeline": pipeline}
        if params is not None:
            body["params"] = params
        r = self.post("/create_task", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def query(self, task_id: str) -> dict[str, Any]:
        r = self.get(f"/query_task/{task_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_for(
        self, task_id: str, until: Callable[[dict[str, Any]], bool], timeout_s: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            task = self.query(task_id)
            if until(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} never reached the condition: {task}")
            time.sleep(0.2)

    def wait_terminal(self, task_id: str, timeout_s: float = 180) -> dict[str, Any]:
        return self.wait_for(
            task_id, lambda t: t["status"] in ("done", "error", "killed"), timeout_s
        )

    def wait_log_line(self, task_id: str, prefix: str, timeout_s: float = 60) -> str:
        """The first line of the task's live log that starts with ``prefix``, once there."""
        deadline = time.monotonic() + timeout_s
        while True:
            r = self.get(f"/tasks/{task_id}/logs", params={"follow": "false"})
            assert r.status_code == 200, r.text
            line = next((x for x in r.text.splitlines() if x.startswith(prefix)), None)
            if line is not None:
                return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no {prefix!r} line in the log of {task_id}: {r.text!r}")
            time.sleep(0.2)


def random_file(path: Path, size: int, seed: int) -> str:
    """Write ``size`` pseudo-random bytes; return their sha256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB pattern seed
    rnd = os.urandom(64)
    with path.open("wb") as fh:
        written = 0
        while written < size:
            chunk = (rnd + block)[: min(len(block), size - written)]
            rnd = hashlib.sha256(rnd).digest() * 2
            fh.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
