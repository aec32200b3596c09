"""The ``orchestrator`` command against the real stack, run as a user runs it: a subprocess
with the server and key in its environment, a private upload memory (ORCHESTRATOR_CACHE_DIR),
and its exit code, stdout (JSON) and stderr read back."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from pipelines.volcal_baseline.synthetic import generate
from tests.e2e.client import Client, random_file
from tests.e2e.test_volcal import SURVEY

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "orchestrator.client.cli"]


def cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_of(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), f"no JSON on stdout; stderr:\n{proc.stderr}"
    return json.loads(proc.stdout)  # the whole of stdout: nothing else may be there


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def test_submit_wait_then_results_download_and_list(env: dict[str, str], tmp_path: Path) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.dat"
    sums = {"first": random_file(first, 3 * MiB + 5, 11), "second": random_file(second, 1000, 12)}

    proc = cli(
        env,
        "submit",
        "checksum",
        "--first",
        str(first),
        "--second",
        str(second),
        "--wait",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    task = json_of(proc)
    assert task["status"] == "done"
    results = {r["name"]: r for r in task["results"]}
    checksums = json.loads(requests.get(results["checksums.json"]["url"], timeout=30).content)
    assert checksums == {
        "first": {"sha256": sums["first"], "bytes": 3 * MiB + 5},
        "second": {"sha256": sums["second"], "bytes": 1000},
    }
    # Uploads complete: nothing is left to resume.
    store = json.loads((Path(env["ORCHESTRATOR_CACHE_DIR"]) / "uploads.json").read_text())
    assert store == {"submissions": {}, "uploads": {}}

    out = tmp_path / "out"
    proc = cli(env, "results", task["task_id"], "--download", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    downloaded = json_of(proc)["downloaded"]
    assert {d["name"] for d in downloaded} == set(results)
    for d in downloaded:
        path = Path(d["path"])
        assert path.parent == out and path.stat().st_size == results[d["name"]]["bytes"]
        assert sha256_file(path) == results[d["name"]]["sha256"] == d["sha256"]
    assert json.loads((out / "checksums.json").read_text()) == checksums
    assert not list(out.glob("*.part"))

    human = cli(env, "results", task["task_id"])
    assert human.returncode == 0 and "checksums.json" in human.stdout
    assert results["checksums.json"]["sha256"] in human.stdout

    listed = cli(env, "list", "--pipeline", "checksum", "--limit", "200", "--json")
    assert listed.returncode == 0, listed.stderr
    assert task["task_id"] in {t["task_id"] for t in json_of(listed)}
    status = cli(env, "status", task["task_id"], "--json")
    assert status.returncode == 0 and json_of(status)["status"] == "done"


def _wait_for_submission(cache: Path, proc: subprocess.Popen[str]) -> str:
    """The id of the task the running ``submit`` created, read from its upload memory."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            subs = json.loads((cache / "uploads.json").read_text())["submissions"]
        except (OSError, ValueError, KeyError):
            subs = {}
        if subs:
            (record,) = subs.values()
            return str(record["task_id"])
        time.sleep(0.1)
    raise AssertionError("submit never remembered its task")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_upload_resumes_on_rerun(
    env: dict[str, str], client: Client, tmp_path: Path
) -> None:
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    size = 60 * MiB + 3
    sums = {"first": random_file(big, size, 21), "second": random_file(small, 77, 22)}
    command = ["submit", "checksum", "--first", str(big), "--second", str(small)]
    cache = Path(env["ORCHESTRATOR_CACHE_DIR"])

    # The interrupt follows the first progress report: tusd sends post-receive every second
    # while bytes stream (-progress-hooks-interval=1s), so query_task shows progress within
    # about 2 s of the first byte. The rate cap makes the whole file take 60 s, so the upload
    # is certainly mid-file then; the wait is for that event, not for a time.
    proc = subprocess.Popen(
        [*CLI, *command, "--max-rate", "1", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background (`make test &`, CI
        # runners) inherits SIGINT ignored, and Python then leaves it ignored in the child.
        preexec_fn=_default_sigint,
    )
    try:
        task_id = _wait_for_submission(cache, proc)
        mid = client.wait_for(task_id, lambda t: t["inputs"]["first"]["bytes_received"] > 0, 50)
        assert not mid["inputs"]["first"]["done"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out == ""
    assert "Run the same command again to resume" in " ".join(err.split())

    # The upload stays on the tus server where it stopped, and its URL in the memory.
    (remembered,) = [
        u["url"]
        for u in json.loads((cache / "uploads.json").read_text())["uploads"].values()
        if u["slot"] == "first"
    ]
    head = requests.head(remembered, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < size
    assert client.query(task_id)["status"] == "waiting"

    proc2 = cli(env, *command, "--wait", "--json")
    assert proc2.returncode == 0, proc2.stderr
    task = json_of(proc2)
    assert task["task_id"] == task_id and task["status"] == "done"
    assert f"resuming the uploads of task {task_id}" in proc2.stderr
    # The same upload went on from the server's offset: no byte before it was sent again.
    resumed_at = re.search(r"first: resuming at byte (\d+) of (\d+)", proc2.stderr)
    assert resumed_at, proc2.stderr
    assert (int(resumed_at[1]), int(resumed_at[2])) == (offset, size)
    assert task["inputs"]["first"]["bytes_received"] == size
    results = {r["name"]: r for r in task["results"]}
    checksums = json.loads(requests.get(results["checksums.json"]["url"], timeout=30).content)
    assert checksums == {
        "first": {"sha256": sums["first"], "bytes": size},
        "second": {"sha256": sums["second"], "bytes": 77},
    }


def test_kill_a_running_task_while_watching(
    env: dict[str, str], client: Client, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    random_file(a, 100, 31)
    random_file(b, 100, 32)
    # tick_s prints a line a second and keeps the task running long enough to kill it.
    proc = cli(
        env,
        "submit",
        "checksum",
        "--first",
        str(a),
        "--second",
        str(b),
        "--param",
        "tick_s=300",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    task_id = json_of(proc)["task_id"]
    assert json_of(proc)["params"]["tick_s"] == 300  # k=v parsed as JSON: a number

    watch = subprocess.Popen(
        [*CLI, "watch", task_id],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watched: dict[str, str] = {}
    reader = threading.Thread(
        target=lambda: watched.update(
            zip(("out", "err"), watch.communicate(timeout=120), strict=True)
        ),
        daemon=True,
    )
    reader.start()
    try:
        client.wait_for(task_id, lambda t: t["status"] == "running", 120)
        client.wait_log_line(task_id, "tick ")  # a tick for the log panel
        killed = cli(env, "kill", task_id, "--json")
        assert killed.returncode == 0, killed.stderr
        assert json_of(killed)["task_id"] == task_id
        reader.join(timeout=120)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 3, watched
    assert "killed" in watched["out"] and "tick" in watched["out"]

    status = cli(env, "status", task_id, "--json")
    assert status.returncode == 3
    assert json_of(status)["status"] == "killed"
    again = cli(env, "watch", task_id, "--json")
    assert again.returncode == 3 and json_of(again)["status"] == "killed"
    # A finished task cannot be killed again: the API's 409, exit 4.
    twice = cli(env, "kill", task_id)
    assert twice.returncode == 4, twice.stderr


def test_bad_input(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    unknown = cli(env, "submit", "no_such_pipeline", "--first", str(f), "--json")
    assert unknown.returncode == 4, unknown.stderr
    assert "unknown pipeline 'no_such_pipeline'" in unknown.stderr
    assert unknown.stdout == ""

    missing = cli(
        env, "submit", "checksum", "--first", str(tmp_path / "nope.bin"), "--second", str(f)
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr

    no_task = cli(env, "status", "00000000-0000-0000-0000-000000000000")
    assert no_task.returncode == 4

    bad_key = cli(env | {"ORCHESTRATOR_API_KEY": "wrong"}, "list")
    assert bad_key.returncode == 4

    down = cli(env, "--url", "http://127.0.0.1:9", "workers")
    assert down.returncode == 5

    # The API judges the webhook URL: its 422 is exit 4 with its message.
    hook = cli(
        env,
        "submit",
        "checksum",
        "--first",
        str(f),
        "--second",
        str(f),
        "--notify-url",
        "ftp://x",
        "--json",
    )
    assert hook.returncode == 4, hook.stderr
    assert "notify_url: must be an absolute http:// or https:// URL" in hook.stderr
    assert hook.stdout == ""


def test_workers_and_pipelines(env: dict[str, str], stack: Any) -> None:
    workers = cli(env, "workers", "--json")
    assert workers.returncode == 0, workers.stderr
    assert any(w["state"] == "up" for w in json_of(workers))

    r = requests.get(f"{stack.api_url}/pipelines", headers={"X-API-Key": stack.api_key}, timeout=10)
    if r.status_code == 404:
        pipelines = cli(env, "pipelines")
        assert pipelines.returncode == 4 and "GET /pipelines" in pipelines.stderr
        pytest.skip("this stack's API predates GET /pipelines")
    listed = cli(env, "pipelines", "--json")
    assert listed.returncode == 0, listed.stderr
    checksum = next(p for p in json_of(listed) if p["name"] == "checksum")
    assert set(checksum["inputs"]) == {"first", "second"}
    human = cli(env, "pipelines")
    assert "--first FILE" in human.stdout


def test_python_client(stack: Any, tmp_path: Path) -> None:
    """The README's Python client example, step by step."""
    from orchestrator.client import Client as PyClient
    from orchestrator.client import Conflict
    from orchestrator.client.resume import LocalFile, ResumeStore
    from orchestrator.client.uploads import Options, UploadJob, upload_all

    client = PyClient(stack.api_url, api_key=stack.api_key)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    sums = {"first": random_file(a, 2 * MiB + 1, 41), "second": random_file(b, 10, 42)}
    task = client.create_task("checksum", params={"sleep_s": 0})
    files = [LocalFile.of("first", a), LocalFile.of("second", b)]
    jobs = [UploadJob(task["task_id"], f, task["upload_urls"][f.slot]) for f in files]

    class Seen:
        def __init__(self) -> None:
            self.offsets: dict[str, list[int]] = {}

        def started(self, slot: str, offset: int, total: int) -> None:
            self.offsets[slot] = [offset]

        def advanced(self, slot: str, offset: int) -> None:
            self.offsets[slot].append(offset)

    seen = Seen()
    urls = upload_all(
        jobs, ResumeStore(tmp_path / "u.json"), seen, Options(parallel=2, chunk_size=MiB)
    )
    assert set(urls) == {"first", "second"}
    assert seen.offsets["first"][0] == 0 and seen.offsets["first"][-1] == 2 * MiB + 1
    assert seen.offsets["first"] == sorted(seen.offsets["first"])

    deadline = time.monotonic() + 30
    while True:  # the last upload's finish is recorded moments after its PATCH
        try:
            client.start_task(task["task_id"])
            break
        except Conflict:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    final = client.wait(task["task_id"], poll_s=0.3, timeout_s=180)
    assert final["status"] == "done"
    saved = {d.name: d for d in client.download_results(final, tmp_path / "out")}
    assert json.loads(saved["checksums.json"].path.read_text()) == {
        "first": {"sha256": sums["first"], "bytes": 2 * MiB + 1},
        "second": {"sha256": sums["second"], "bytes": 10},
    }
    assert (
        list(client.logs(task["task_id"], follow=False))
        == saved["logs.txt"].path.read_text().splitlines()
    )
    assert task["task_id"] in {t["task_id"] for t in client.list_tasks(limit=300, page_size=7)}
    with pytest.raises(Conflict):
        client.kill_task(task["task_id"])


def test_shapefile_parts_found_beside_the_shp(env: dict[str, str], tmp_path: Path) -> None:
    """A surveyor's one command: --shp brings its .shx/.dbf/.prj from the same directory."""
    site = tmp_path / "site"
    site.mkdir()
    generate(site, SURVEY)
    assert {p.name for p in site.glob("stable.*")} == {
        "stable.shp",
        "stable.shx",
        "stable.dbf",
        "stable.prj",
    }
    proc = cli(
        env,
        "submit",
        "volcal_baseline",
        "--pre",
        str(site / "pre.las"),
        "--post",
        str(site / "post.laz"),
        "--shp",
        str(site / "stable.shp"),
        "--wait",
        "--json",
        timeout=660,
    )
    assert proc.returncode == 0, proc.stderr
    task = json_of(proc)
    assert task["status"] == "done", task
    assert {slot: i["done"] for slot, i in task["inputs"].items()} == dict.fromkeys(
        ("pre", "post", "shp", "shx", "dbf", "prj"), True
    )

    out = tmp_path / "out"
    got = cli(env, "results", task["task_id"], "--download", str(out), "--json")
    assert got.returncode == 0, got.stderr
    truth = json.loads((site / "truth.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["cut_volume_m3"] == pytest.approx(truth["cut_volume_m3"], rel=0.015)
    assert report["fill_volume_m3"] == pytest.approx(truth["fill_volume_m3"], rel=0.015)
