"""The hook requests the unit tests use are what the real tusd sends.

A tusd of its own (the project's build, the stack's flags) writes into the stack's MinIO and
sends its hooks to a recorder here that answers as the API would. One upload is created, sent
in two PATCHes and finished; a second is created and deleted. Every hook type must arrive, and
each must have the shape of its recording in ``tests/unit/hooks/recorded/``:
``RECORD_TUSD_HOOKS=1`` rewrites the recordings instead.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.hookdata import HOOK_TYPES, RECORDED, recorded
from tests.tusd_process import own_tusd

SECRET = "recorder-secret"
TASK_ID = "6f1c1a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
TUS = {"Tus-Resumable": "1.0.0"}


class Recorder(ThreadingHTTPServer):
    """Keeps the first body of each hook type; answers pre-create as the API does."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: dict[str, dict[str, Any]] = {}
        self.authorization: set[str] = set()
        self.changed = threading.Condition()

    def wait_for(self, types: tuple[str, ...], timeout: float) -> set[str]:
        with self.changed:
            self.changed.wait_for(lambda: set(types) <= set(self.bodies), timeout)
            return set(types) - set(self.bodies)


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        hook = body["Type"]
        answer: dict[str, Any] = {}
        if hook == "pre-create":
            slot = "pre" if "pre" in body["Event"]["HTTPRequest"]["URI"] else "post"
            answer = {
                "ChangeFileInfo": {
                    "ID": f"{TASK_ID}/{slot}/0123456789abcdef01234567",
                    "MetaData": {
                        **body["Event"]["Upload"]["MetaData"],
                        "task_id": TASK_ID,
                        "slot": slot,
                    },
                }
            }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.server.changed:
            self.server.authorization.add(self.headers.get("Authorization", ""))
            self.server.bodies.setdefault(hook, body)
            self.server.changed.notify_all()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tusd(stack: Any, recorder: Recorder, tmp_path: Path) -> Iterator[str]:
    hooks = f"http://tusd:{SECRET}@127.0.0.1:{recorder.server_address[1]}/tusd_hook"
    with own_tusd(stack.env, hooks, tmp_path / "tusd.log") as url:
        yield url


def _shape(value: Any) -> Any:
    """Keys and value types, recursively: what must not differ between two tusd requests."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items()) if k not in ("Header", "MetaData")}
    if isinstance(value, list):
        return ["list"]
    return type(value).__name__


def _exercise(url: str) -> None:
    meta = "filename " + base64.b64encode(b"scan.las").decode()
    created = requests.post(
        url + f"?task={TASK_ID}&slot=pre&token=x",
        headers={**TUS, "Upload-Length": str(6 * 1024 * 1024), "Upload-Metadata": meta},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    chunk = 3 * 1024 * 1024
    for offset in (0, chunk):
        sent = requests.patch(
            location,
            data=b"x" * chunk,
            timeout=60,
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert sent.status_code == 204, sent.text
    other = requests.post(
        url + f"?task={TASK_ID}&slot=post&token=x",
        headers={**TUS, "Upload-Length": "10", "Upload-Metadata": meta},
        timeout=30,
    )
    assert other.status_code == 201, other.text
    assert requests.delete(other.headers["Location"], headers=TUS, timeout=30).status_code == 204


def test_every_hook_type_is_sent_in_the_recorded_shape(tusd: str, recorder: Recorder) -> None:
    _exercise(tusd)
    missing = recorder.wait_for(HOOK_TYPES, timeout=30)
    assert not missing, f"tusd sent no {sorted(missing)} hook"
    # The secret arrives as Basic auth from the URL's userinfo, and only that way.
    assert recorder.authorization == {
        "Basic " + base64.b64encode(f"tusd:{SECRET}".encode()).decode()
    }
    live = recorder.bodies
    assert live["post-finish"]["Event"]["Upload"]["Storage"]["Key"] == (
        f"{TASK_ID}/pre/0123456789abcdef01234567"
    )
    if os.environ.get("RECORD_TUSD_HOOKS") == "1":
        RECORDED.mkdir(parents=True, exist_ok=True)
        for hook in HOOK_TYPES:
            (RECORDED / f"{hook}.json").write_text(json.dumps(live[hook], indent=2) + "\n")
    for hook in HOOK_TYPES:
        assert _shape(live[hook]) == _shape(recorded(hook)), hook
