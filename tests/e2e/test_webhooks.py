"""Webhooks end to end: a real checksum task, uploaded over TUS, whose terminal state the
running API POSTs (signed) to a receiver in this test process on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.settings import Settings
from tests.e2e.client import Client, random_file, sha256_of
from tests.e2e.test_flow import tus_upload


class Receiver:
    """What a user's webhook endpoint does: verify, then answer 204."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[dict[str, str], bytes, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = receiver.verify(dict(self.headers), body)
                receiver.received.append((dict(self.headers), body, ok))
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/orchestrator"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        # The README's recipe, written out with nothing from the project.
        ts = headers.get("X-Orchestrator-Timestamp", "")
        mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256)
        expected = "sha256=" + mac.hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        return fresh and hmac.compare_digest(expected, headers.get("X-Orchestrator-Signature", ""))


@pytest.fixture
def receiver(stack: Any) -> Iterator[Receiver]:
    # The stack's API signs with WEBHOOK_SECRET from its env, else the settings' default.
    default = Settings.model_fields["webhook_secret"].default
    r = Receiver(stack.env.get("WEBHOOK_SECRET", default))
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(10)


def test_done_task_is_posted_signed_with_results(
    client: Client, receiver: Receiver, tmp_path: Path
) -> None:
    r = client.post("/create_task", json={"pipeline": "checksum", "notify_url": receiver.url})
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    digest = random_file(first, 3 * 1024 * 1024 + 5, 11)
    random_file(second, 100, 12)
    tus_upload(r.json()["upload_urls"]["first"], first)
    tus_upload(r.json()["upload_urls"]["second"], second)

    final = client.wait_terminal(task_id)
    assert final["status"] == "done", final

    # The notifier runs about once a second in the API.
    deadline = time.monotonic() + 30
    while not receiver.received:
        assert time.monotonic() < deadline, "no webhook arrived"
        time.sleep(0.1)
    time.sleep(1.5)  # a second delivery of the same notification would show up now
    [(headers, body, verified)] = receiver.received
    assert verified, headers
    assert headers["X-Orchestrator-Event"] == "task.done"
    assert headers["Content-Type"] == "application/json"
    task = json.loads(body)
    assert task["task_id"] == task_id and task["status"] == "done"
    results = {item["name"]: item for item in task["results"]}
    assert "checksums.json" in results
    # The result URLs in the webhook are presigned and work on their own.
    got = requests.get(results["checksums.json"]["url"], timeout=30)
    assert got.status_code == 200
    assert sha256_of(got.content) == results["checksums.json"]["sha256"]
    assert json.loads(got.content)["first"]["sha256"] == digest

    queried = client.wait_for(
        task_id,
        lambda t: bool(t.get("notifications")) and t["notifications"][0]["state"] != "pending",
        timeout_s=30,
    )
    [n] = queried["notifications"]
    assert queried["notify_url"] == receiver.url
    assert n["event"] == "task.done" and n["state"] == "delivered"
    assert n["delivery_id"] == headers["X-Orchestrator-Delivery"]
    assert [a["status_code"] for a in n["attempts"]] == [204]
