"""A small typed client of the orchestrator's HTTP API, over ``requests``.

    client = Client("http://127.0.0.1:8000", api_key)
    task = client.create_task("checksum", params={"sleep_s": 0})
    ...upload (see ``orchestrator.client.uploads``)...
    task = client.wait(task["task_id"])
    client.download_results(task, "out/")

Answers are the API's JSON as plain dicts (the shapes are in ``orchestrator/api/schemas.py``
and at ``/schema``); errors are ``orchestrator.client.errors`` exceptions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from orchestrator.client.errors import (
    ApiError,
    ClientError,
    IntegrityError,
    Unreachable,
    api_error,
)
from orchestrator.defaults import DEV_API_PORT

TERMINAL = frozenset({"done", "error", "killed"})
DEFAULT_URL = f"http://127.0.0.1:{DEV_API_PORT}"
# Connect, read timeouts (s) of ordinary calls; log following reads without a limit.
TIMEOUT = (10.0, 60.0)
_COPY_BLOCK = 1024 * 1024

Task = dict[str, Any]


@dataclass(frozen=True)
class Downloaded:
    """A result file written to ``path`` whose size and sha256 matched the manifest."""

    name: str
    path: Path
    bytes: int
    sha256: str


class Client:
    """One API server, one key; thread-safe for the calls the CLI makes in parallel."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        if api_key:
            self.http.headers["X-API-Key"] = api_key
        # Presigned S3 links and stored logs get no API key: it is not theirs to see.
        self.plain = requests.Session()

    # --- tasks ---------------------------------------------------------------------------
    def create_task(
        self,
        pipeline: str,
        params: dict[str, Any] | None = None,
        resources: dict[str, Any] | None = None,
        notify_url: str | None = None,
        queue: str | None = None,
        priority: str | int | None = None,
    ) -> Task:
        """Create a task; the answer has ``task_id``, ``upload_urls`` and ``inputs``.

        ``notify_url``: an http(s) URL the API POSTs the task to when it ends (webhook); the
        API refuses (422 ``InvalidRequest``) one it cannot use. ``queue``: the worker pool to
        run on, one some live worker listens on (422 otherwise). ``priority``: high, normal,
        low or an integer from -100 to 100."""
        body: dict[str, Any] = {"pipeline": pipeline}
        if params:
            body["params"] = params
        if resources:
            body["resources"] = resources
        if notify_url is not None:
            body["notify_url"] = notify_url
        if queue is not None:
            body["queue"] = queue
        if priority is not None:
            body["priority"] = priority
        return self._json("POST", "/create_task", json=body)

    def start_task(self, task_id: str) -> Task:
        """Queue a task whose required inputs are in (idempotent); 409 ``Conflict`` if not."""
        return self._json("POST", f"/start_task/{task_id}")

    def query_task(self, task_id: str) -> Task:
        return self._json("GET", f"/query_task/{task_id}")

    def kill_task(self, task_id: str) -> Task:
        return self._json("POST", f"/kill_task/{task_id}")

    def delete_task(self, task_id: str) -> Task:
        """Kill the task if it runs and remove all its data; afterwards its calls raise
        ``Gone``. The answer's ``data_removed`` is false while a running task is stopping."""
        return self._json("DELETE", f"/tasks/{task_id}")

    def list_tasks(
        self,
        status: str | list[str] | None = None,
        pipeline: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> Iterator[Task]:
        """Tasks newest first, following ``next_cursor`` until ``limit`` tasks or the end."""
        query: dict[str, Any] = {
            "status": status,
            "pipeline": pipeline,
            "created_after": created_after,
            "created_before": created_before,
        }
        query = {k: v for k, v in query.items() if v}
        given = 0
        cursor: str | None = None
        while True:
            size = page_size if limit is None else min(page_size, limit - given)
            page = self._json("GET", "/tasks", params={**query, "limit": size, "cursor": cursor})
            for task in page["tasks"]:
                yield task
                given += 1
                if limit is not None and given >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def wait(
        self,
        task_id: str,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task is terminal (or ``timeout_s`` passed); return its last state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            task = self.query_task(task_id)
            if on_update is not None:
                on_update(task)
            if task["status"] in TERMINAL or (deadline is not None and time.monotonic() > deadline):
                return task
            time.sleep(poll_s)

    # --- catalogue and fleet -------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        """Every pipeline with its input slots, parameters and default resources."""
        answer: list[dict[str, Any]] = self._json("GET", "/pipelines")["pipelines"]
        return answer

    def pipeline(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pipelines() if p.get("name") == name), None)

    def workers(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._json("GET", "/workers")["workers"]
        return answer

    def whoami(self) -> dict[str, Any]:
        """The project and role of this client's key."""
        answer: dict[str, Any] = self._json("GET", "/whoami")
        return answer

    # --- logs and results ----------------------------------------------------------------
    def logs(self, task_id: str, follow: bool = True) -> Iterator[str]:
        """The task's log, line by line; with ``follow`` it goes on until the run ends."""
        url = f"{self.base_url}/tasks/{task_id}/logs"
        params = {"follow": "true" if follow else "false"}
        resp = self._send(
            self.http,
            "GET",
            url,
            params=params,
            stream=True,
            allow_redirects=False,
            timeout=(TIMEOUT[0], None),
        )
        if resp.is_redirect:
            # After the run the API redirects to the stored logs.txt: a presigned link.
            location = resp.headers["Location"]
            resp.close()
            resp = self._send(self.plain, "GET", location, stream=True, timeout=TIMEOUT)
        with resp:
            resp.encoding = "utf-8"
            try:
                yield from resp.iter_lines(decode_unicode=True)
            except requests.RequestException as exc:
                raise Unreachable(f"log stream of {task_id} broke off: {exc}") from exc

    def download_results(
        self,
        task: Task | str,
        directory: str | os.PathLike[str],
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Downloaded]:
        """Download every result of ``task`` (a query_task answer or an id) into
        ``directory``, checking each file's size and sha256 against the manifest.

        Files are written as ``<name>.part`` and renamed once verified, so a file under its
        own name is always a good one; a mismatch raises ``IntegrityError``.
        """
        if isinstance(task, str):
            task = self.query_task(task)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        return [self._download(item, out, on_progress) for item in task.get("results") or []]

    def _download(
        self,
        item: dict[str, Any],
        out: Path,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> Downloaded:
        name = Path(item["name"]).name  # never write outside ``out``
        target, part = out / name, out / f"{name}.part"
        digest, size = hashlib.sha256(), 0
        resp = self._send(self.plain, "GET", item["url"], stream=True, timeout=TIMEOUT)
        try:
            with resp, part.open("wb") as fh:
                for block in resp.iter_content(_COPY_BLOCK):
                    fh.write(block)
                    digest.update(block)
                    size += len(block)
                    if on_progress is not None:
                        on_progress(name, size, item["bytes"])
        except requests.RequestException as exc:
            raise Unreachable(f"download of {name} broke off: {exc}") from exc
        if size != item["bytes"] or digest.hexdigest() != item["sha256"]:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{name}: got {size} bytes with sha256 {digest.hexdigest()}, expected "
                f"{item['bytes']} bytes with sha256 {item['sha256']}"
            )
        part.replace(target)
        return Downloaded(name=name, path=target, bytes=size, sha256=item["sha256"])

    # --- plumbing ------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._send(self.http, method, self.base_url + path, timeout=TIMEOUT, **kw)
        try:
            return resp.json()
        except ValueError as exc:
            raise ClientError(f"{method} {path}: not JSON: {resp.text[:200]}") from exc

    @staticmethod
    def _send(session: requests.Session, method: str, url: str, **kw: Any) -> requests.Response:
        try:
            resp = session.request(method, url, **kw)
        except requests.RequestException as exc:
            raise Unreachable(f"{method} {url}: {_reason(exc)}") from exc
        if resp.status_code >= 400:
            raise _error_of(resp)
        return resp


def _reason(exc: requests.RequestException) -> str:
    """``connection refused`` rather than urllib3's nested reprs: what a person can act on."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return found[1].strip().lower() if found else str(exc)


def _error_of(resp: requests.Response) -> ApiError:
    """The API's own message when it sent one (Litestar: ``{"status_code", "detail"}``)."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = resp.json()
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail:
        detail = resp.text.strip()[:500] or resp.reason or "error"
    if isinstance(body, dict) and isinstance(body.get("extra"), list):
        # Litestar's request validation lists the bad fields here; the detail alone is vague.
        notes = [e.get("message") for e in body["extra"] if isinstance(e, dict)]
        detail = "; ".join([detail, *[n for n in notes if n]])
    return api_error(resp.status_code, detail, body)
