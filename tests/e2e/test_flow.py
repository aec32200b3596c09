"""The whole flow through real HTTP and a real TUS client: create → upload → hook → queue →
container → results downloaded through presigned URLs and compared byte for byte."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from tests.e2e.client import Client, random_file, sha256_of

MiB = 1024 * 1024


def tus_upload(url: str, path: Path, chunk_size: int = 4 * MiB) -> str:
    """Upload as any user would: only the returned URL, the file and its filename."""
    uploader = TusClient(url).uploader(
        file_path=str(path), chunk_size=chunk_size, metadata={"filename": path.name}
    )
    uploader.upload()
    assert uploader.url
    return str(uploader.url)


def download_results(task: dict[str, Any]) -> dict[str, bytes]:
    out = {}
    for item in task["results"]:
        # No API key: the presigned URL alone must be enough.
        r = requests.get(item["url"], timeout=30)
        assert r.status_code == 200, (item["name"], r.status_code, r.text[:200])
        assert len(r.content) == item["bytes"]
        assert sha256_of(r.content) == item["sha256"]
        out[item["name"]] = r.content
    return out


def test_checksum_task_end_to_end(client: Client, tmp_path: Path) -> None:
    task = client.create("checksum")
    assert task["status"] == "waiting"
    assert set(task["upload_urls"]) == {"first", "second"}
    assert task["inputs"]["first"]["required"] is True

    first, second = tmp_path / "first.bin", tmp_path / "second.dat"
    sums = {"first": random_file(first, 9 * MiB + 123, 1), "second": random_file(second, 1000, 2)}
    tus_upload(task["upload_urls"]["first"], first)
    # post-finish is a non-blocking hook (in tusd too): the slot fills moments after the upload.
    mid = client.wait_for(task["task_id"], lambda t: t["inputs"]["first"]["done"], 30)
    assert mid["status"] == "waiting"
    assert mid["inputs"]["first"]["done"] is True
    assert mid["inputs"]["first"]["bytes_received"] == 9 * MiB + 123
    assert mid["inputs"]["second"]["done"] is False
    tus_upload(task["upload_urls"]["second"], second)

    # The last required input arriving queues the task: no start_task call.
    final = client.wait_terminal(task["task_id"])
    assert final["status"] == "done", final
    assert final["started_at"] and final["finished_at"]
    files = download_results(final)
    assert "checksums.json" in files and "logs.txt" in files
    checksums = json.loads(files["checksums.json"])
    assert checksums == {
        "first": {"sha256": sums["first"], "bytes": 9 * MiB + 123},
        "second": {"sha256": sums["second"], "bytes": 1000},
    }
    # start_task on a done task is idempotent and changes nothing.
    r = client.post(f"/start_task/{task['task_id']}")
    assert r.status_code == 200 and r.json()["status"] == "done"


def test_interrupted_upload_resumes(client: Client, tmp_path: Path) -> None:
    task = client.create("checksum")
    big = tmp_path / "big.bin"
    size = 20 * MiB + 7
    digest = random_file(big, size, 3)
    url = task["upload_urls"]["first"]

    tus = TusClient(url)
    first_try = tus.uploader(
        file_path=str(big), chunk_size=6 * MiB, metadata={"filename": big.name}
    )
    first_try.upload(stop_at=6 * MiB)
    upload_url = first_try.url
    assert upload_url

    # A connection cut in the middle of a PATCH body.
    def cut_stream() -> Any:
        with big.open("rb") as fh:
            fh.seek(6 * MiB)
            yield fh.read(3 * MiB)
        raise ConnectionError("network cut")

    with pytest.raises((requests.exceptions.RequestException, ConnectionError)):
        requests.patch(
            upload_url,
            data=cut_stream(),
            timeout=30,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": str(6 * MiB),
                "Content-Type": "application/offset+octet-stream",
            },
        )

    # A fresh client that knows only the upload URL asks the server where to go on. tusd may
    # still be storing what the cut PATCH carried when that first HEAD is answered; the offset
    # then moves on, the next PATCH gets 409, and the client asks again, as tus clients do on
    # any failed request (tus-js-client by default; tuspy with retries).
    resumed = tus.uploader(
        file_path=str(big), chunk_size=6 * MiB, url=upload_url, retries=3, retry_delay=1
    )
    assert 6 * MiB <= resumed.offset < size
    resumed.upload()

    other = tmp_path / "other.bin"
    other_digest = random_file(other, 10, 4)
    tus_upload(task["upload_urls"]["second"], other)
    final = client.wait_terminal(task["task_id"])
    assert final["status"] == "done", final
    checksums = json.loads(download_results(final)["checksums.json"])
    assert checksums["first"] == {"sha256": digest, "bytes": size}
    assert checksums["second"]["sha256"] == other_digest


def test_kill_running_task(client: Client, tmp_path: Path) -> None:
    ticks = 300  # a line a second: far longer than any kill may take
    task = client.create("checksum", {"tick_s": ticks})
    for slot in ("first", "second"):
        f = tmp_path / f"{slot}.txt"
        f.write_text(slot)
        tus_upload(task["upload_urls"][slot], f)
    client.wait_for(task["task_id"], lambda t: t["status"] == "running", timeout_s=120)
    client.wait_log_line(task["task_id"], "tick ")  # the container is going

    t0 = time.monotonic()
    r = client.post(f"/kill_task/{task['task_id']}")
    assert r.status_code in (200, 202), r.text
    final = client.wait_terminal(task["task_id"], timeout_s=30)
    assert final["status"] == "killed", final
    assert final["reason"] == "killed on request"
    print(f"kill request → killed: {time.monotonic() - t0:.2f} s")
    # The kill stopped the container mid-run rather than letting it print its ticks and end
    # by itself: the engine's run time is short of them, and its log stops before the output
    # was written.
    assert final["stats"]["wall_s"] < ticks, final["stats"]
    log = client.get(f"/tasks/{task['task_id']}/logs", params={"follow": "false"}).text
    assert "tick 1" in log and "wrote " not in log, log[-500:]

    # A finished task cannot be killed again, nor restarted.
    assert client.post(f"/kill_task/{task['task_id']}").status_code == 409
    assert client.post(f"/start_task/{task['task_id']}").status_code == 409


def test_kill_waiting_task_is_immediate(client: Client) -> None:
    task = client.create("checksum")
    r = client.post(f"/kill_task/{task['task_id']}")
    assert r.status_code == 200, r.text
    got = client.query(task["task_id"])
    assert got["status"] == "killed" and got["reason"] == "killed on request"


def test_start_with_missing_inputs_lists_them(client: Client, tmp_path: Path) -> None:
    task = client.create("checksum")
    f = tmp_path / "a.txt"
    f.write_text("a")
    tus_upload(task["upload_urls"]["first"], f)
    client.wait_for(task["task_id"], lambda t: t["inputs"]["first"]["done"], 30)
    r = client.post(f"/start_task/{task['task_id']}")
    assert r.status_code == 409
    assert r.json()["missing"] == ["second"]
    assert client.query(task["task_id"])["status"] == "waiting"


def test_upload_refusals_reach_the_tus_client(client: Client, tmp_path: Path) -> None:
    task = client.create("checksum")
    f = tmp_path / "a.txt"
    f.write_text("payload")
    url = task["upload_urls"]["first"]

    forged = url.replace("slot=first", "slot=second")  # token is for 'first' only
    with pytest.raises(TusCommunicationError) as err:
        tus_upload(forged, f)
    assert err.value.status_code == 403

    tus_upload(url, f)
    client.wait_for(task["task_id"], lambda t: t["inputs"]["first"]["done"], 30)
    with pytest.raises(TusCommunicationError) as err:
        tus_upload(url, f)  # the slot is filled
    assert err.value.status_code == 409

    # Over the slot's 1 GiB limit: refused at creation, before any byte is sent.
    r = requests.post(
        task["upload_urls"]["second"],
        timeout=30,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(2 * 1024**3),
            "Upload-Metadata": "filename YS5iaW4=",
        },
    )
    assert r.status_code == 413, (r.status_code, r.text)
    assert "accepts at most 1073741824 bytes" in r.text

    assert client.query(task["task_id"])["inputs"]["second"]["done"] is False


def test_api_key_required(stack: Any) -> None:
    r = requests.post(f"{stack.api_url}/create_task", json={"pipeline": "checksum"}, timeout=10)
    assert r.status_code == 401
    assert requests.get(f"{stack.api_url}/health", timeout=10).status_code == 200


def test_bad_requests_name_the_problem(client: Client) -> None:
    r = client.post("/create_task", json={"pipeline": "nope"})
    assert r.status_code == 422 and "nope" in r.text
    r = client.post("/create_task", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert client.get("/query_task/00000000-0000-4000-8000-000000000000").status_code == 404
