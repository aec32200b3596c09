"""What a tus client sees of the real tusd in front of the API, and what the service does when
tusd and the API fall out of step: progress while a file streams, two clients racing for one
slot, a refused DELETE, downloads off, a hook secret that never leaks, and an upload whose
finish the API missed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from minio import Minio

from orchestrator.settings import split_endpoint
from tests.e2e.client import Client, random_file
from tests.e2e.test_flow import download_results, tus_upload
from tests.tusd_process import free_port, own_tusd

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def create_upload(url: str, size: int, filename: str = "input.bin") -> requests.Response:
    meta = "filename " + base64.b64encode(filename.encode()).decode()
    return requests.post(
        url, headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": meta}, timeout=30
    )


def patch(location: str, offset: int, body: Any) -> requests.Response:
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return requests.patch(location, data=body, headers=headers, timeout=120)


def s3(stack: Any) -> Minio:
    host, secure = split_endpoint(stack.env["S3_ENDPOINT"])
    return Minio(
        host,
        stack.env["S3_ACCESS_KEY"],
        stack.env["S3_SECRET_KEY"],
        secure=secure,
        region=stack.env["S3_REGION"],
    )


def test_progress_shows_while_a_large_file_streams(client: Client) -> None:
    """One PATCH carries the whole file; half-way it waits until query_task has shown the
    progress tusd reported (post-receive), then sends the rest."""
    task = client.create("checksum")
    size, half = 32 * MiB, 16 * MiB
    created = create_upload(task["upload_urls"]["first"], size)
    assert created.status_code == 201, created.text
    seen = threading.Event()
    progress: list[int] = []

    def body() -> Iterator[bytes]:
        for sent in range(0, size, MiB):
            if sent == half:
                assert seen.wait(60), "no progress was shown while the upload streamed"
            yield b"p" * MiB

    result: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: result.append(patch(created.headers["Location"], 0, body()))
    )
    sender.start()
    try:
        shown = client.wait_for(
            task["task_id"], lambda t: t["inputs"]["first"]["bytes_received"] > 0, 60
        )
        progress.append(shown["inputs"]["first"]["bytes_received"])
        assert shown["inputs"]["first"]["state"] == "uploading"
        assert not shown["inputs"]["first"]["done"]
    finally:
        seen.set()
        sender.join(120)
    assert 0 < progress[0] <= half
    assert result and result[0].status_code == 204, result
    final = client.wait_for(task["task_id"], lambda t: t["inputs"]["first"]["done"], 30)
    assert final["inputs"]["first"]["bytes_received"] == size


def test_a_second_client_is_told_which_upload_holds_the_slot(client: Client) -> None:
    task = client.create("checksum")
    url = task["upload_urls"]["first"]
    first = create_upload(url, 3 * MiB)
    assert first.status_code == 201, first.text
    assert patch(first.headers["Location"], 0, b"a" * MiB).status_code == 204
    holder = client.wait_for(
        task["task_id"], lambda t: t["inputs"]["first"]["bytes_received"] == MiB, 30
    )["inputs"]["first"]
    second = create_upload(url, 5)
    assert second.status_code == 409, second.text
    assert first.headers["Location"] in second.text
    assert f"({MiB} of {3 * MiB} bytes" in second.text
    assert second.headers["Location"] == first.headers["Location"] == holder["upload_url"]
    assert second.headers["Upload-Offset"] == str(MiB)
    # The holder resumes where the server says it is, and finishes.
    head = requests.head(first.headers["Location"], headers=TUS, timeout=30)
    offset = int(head.headers["Upload-Offset"])
    assert patch(first.headers["Location"], offset, b"a" * (3 * MiB - offset)).status_code == 204
    assert client.wait_for(task["task_id"], lambda t: t["inputs"]["first"]["done"], 30)


def test_delete_of_a_queued_tasks_input_is_refused_and_the_object_kept(
    stack: Any, client: Client, tmp_path: Path
) -> None:
    task = client.create("checksum", {"tick_s": 300})
    locations = {}
    for slot in ("first", "second"):
        f = tmp_path / slot
        random_file(f, 1000, 7)
        locations[slot] = tus_upload(task["upload_urls"][slot], f)
    client.wait_for(task["task_id"], lambda t: t["status"] in ("pending", "running"), 60)
    r = requests.delete(locations["first"], headers=TUS, timeout=30)
    assert r.status_code == 409, r.text
    assert "needs this upload" in r.text
    key = locations["first"].split("/files/", 1)[1].rpartition("+")[0]
    assert s3(stack).stat_object(stack.env["UPLOADS_BUCKET"], key).size == 1000
    client.post(f"/kill_task/{task['task_id']}")
    client.wait_terminal(task["task_id"])


def test_uploads_cannot_be_downloaded_through_tusd(client: Client, tmp_path: Path) -> None:
    task = client.create("checksum")
    f = tmp_path / "secret-survey.bin"
    random_file(f, 500, 8)
    location = tus_upload(task["upload_urls"]["first"], f)
    r = requests.get(location, headers=TUS, timeout=30)
    assert r.status_code == 405
    assert b"\0" not in r.content and len(r.content) < 100


@pytest.fixture
def tusd_without_api(stack: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """tusd exactly as the stack runs it, with its hook URL pointing where no API answers."""
    hooks = f"http://tusd:{stack.env['HOOK_SECRET']}@127.0.0.1:{free_port()}/tusd_hook"
    log_path = tmp_path / "tusd.log"
    with own_tusd(stack.env, hooks, log_path) as url:
        yield url, log_path


def test_the_hook_secret_reaches_no_client_and_no_log(
    stack: Any, client: Client, tusd_without_api: tuple[str, Path]
) -> None:
    url, log_path = tusd_without_api
    secret = stack.env["HOOK_SECRET"]
    task = client.create("checksum")
    query = task["upload_urls"]["first"].split("?", 1)[1]
    r = create_upload(f"{url}?{query}", 10)
    assert r.status_code == 500  # what tusd answers when pre-create cannot reach the API
    assert "tusd:***@" in r.text
    assert secret not in r.text and secret not in str(r.headers)
    assert secret not in log_path.read_text()
    # The stack's own tusd and the supervisor's record of how it started it: no secret either.
    assert secret not in (stack.datadir / "logs" / "tusd.log").read_text()


def wait_api_log(
    stack: Any, match: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    """The first JSON line of the stack API's log that ``match`` accepts, once written."""
    path = stack.profile.log("api")
    deadline = time.monotonic() + timeout_s
    while True:
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the supervisor's own lines, a traceback
            if isinstance(entry, dict) and match(entry):
                return entry
        assert time.monotonic() < deadline, f"no such line in {path} after {timeout_s} s"
        time.sleep(0.2)


def _pid(stack: Any, service: str) -> int:
    pid: int = stack.children()[service]["pid"]
    return pid


def test_an_upload_finished_while_the_api_is_down_is_found_and_done(
    stack: Any, client: Client, tmp_path: Path
) -> None:
    """The last PATCH lands while the API cannot answer: pre-finish fails, so tusd never sends
    post-finish. The API is killed and comes back; the service must find the complete upload
    in storage on its own (the reconciler's upload recovery, on its next passes)."""
    task = client.create("checksum")
    task_id = task["task_id"]
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    sums = {"first": random_file(a, 2 * MiB, 1), "second": random_file(b, 3 * MiB + 5, 2)}
    tus_upload(task["upload_urls"]["first"], a)
    created = create_upload(task["upload_urls"]["second"], b.stat().st_size)
    assert created.status_code == 201, created.text
    client.wait_for(task_id, lambda t: t["inputs"]["second"].get("upload_url") is not None, 30)

    api_pid = _pid(stack, "api")
    os.kill(api_pid, signal.SIGSTOP)  # frozen: tusd's hooks time out, as with a hung API
    try:
        last = patch(created.headers["Location"], 0, b.read_bytes())
    finally:
        os.kill(api_pid, signal.SIGKILL)
        os.kill(api_pid, signal.SIGCONT)
    # The bytes are all in; the client was told the finish failed (pre-finish unreachable).
    assert last.status_code == 500, last.text
    head = requests.head(created.headers["Location"], headers=TUS, timeout=30)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"]

    deadline = time.monotonic() + 120
    while True:  # the supervisor restarts the API
        try:
            if requests.get(f"{stack.api_url}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the API did not come back"
        time.sleep(0.2)
    back = time.monotonic()
    done = client.wait_for(task_id, lambda t: t["status"] in ("done", "error", "killed"), 60)
    assert done["status"] == "done", done
    print(f"API back → task done in {time.monotonic() - back:.1f} s")
    # Found by the service itself: its log records the slot filled without post-finish.
    recovered = wait_api_log(
        stack,
        lambda e: (
            e.get("msg") == "upload recovered without post-finish"
            and e.get("task_id") == task_id
            and e.get("slot") == "second"
        ),
    )
    assert recovered["bytes"] == b.stat().st_size, recovered
    checksums = download_results(done)["checksums.json"]
    assert sums["second"].encode() in checksums and sums["first"].encode() in checksums


def test_a_stock_tus_js_client_given_only_the_urls_completes_a_task(
    client: Client, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "node is installed by scripts/install.sh"
    tus_js = ROOT / "orchestrator" / "web" / "node_modules" / "tus-js-client"
    task = client.create("checksum")
    sums = {}
    for slot, size in (("first", 9 * MiB + 1), ("second", 1234)):
        f = tmp_path / f"{slot}.dat"
        sums[slot] = random_file(f, size, len(slot))
        done = subprocess.run(
            [
                node,
                str(Path(__file__).with_name("tus_js_upload.cjs")),
                str(tus_js),
                task["upload_urls"][slot],
                str(f),
                f.name,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith(task["upload_urls"][slot].split("?")[0])
    final = client.wait_terminal(task["task_id"])
    assert final["status"] == "done", final
    checksums = download_results(final)["checksums.json"]
    for digest in sums.values():
        assert digest.encode() in checksums
