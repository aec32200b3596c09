"""compose.yml brought up for real, as users deploy it, and tasks run through it.

The only change to the production file is ``deploy/compose.local.yml``, which swaps the
third-party images for ones built locally (no registry answers here), plus a file of this test's
own that moves the published ports to free ones. The api, worker and pipeline images are those
the root Dockerfile and ``pipelines/*/Dockerfile`` build. Compose is Docker Compose v2
(``.bin/docker-compose``), on the test stack's Docker engine. A stock tus client gets only what
create_task returned and uploads through ``TUS_PUBLIC_URL``; results come through presigned URLs
on ``S3_PUBLIC_ENDPOINT``, checked by sha256.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from tusclient.client import TusClient

from devstack import images
from orchestrator.settings import Settings
from tests import frozen_db
from tests.conftest import ROOT, Stack
from tests.e2e.client import Client, random_file, sha256_of
from tests.e2e.test_flow import download_results, tus_upload
from tests.e2e.test_volcal import FILES, SURVEY
from tests.tusd_process import free_port

COMPOSE = ROOT / ".bin" / "docker-compose"
LOCAL_IMAGES = ROOT / "deploy" / "compose.local.yml"
API_KEY = "change-me-api-key"  # .env.example's
MiB = 1024 * 1024
CLAIMS_SLACK_S = 20.0  # a run's start up to the kill, and another worker's claim


@dataclass(frozen=True)
class Deployment:
    project: str
    files: list[Path]
    env_file: Path
    api_url: str
    tus_url: str
    s3_url: str
    up_s: float

    @property
    def command(self) -> list[str]:
        argv = [str(COMPOSE), "--project-directory", str(ROOT), "--env-file", str(self.env_file)]
        for f in self.files:
            argv += ["-f", str(f)]
        return argv

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def script(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """One of deploy/*.sh against this deployment, as an operator runs it."""
        return subprocess.run(
            [str(path), *args],
            cwd=ROOT,
            env={**os.environ, "COMPOSE": " ".join(self.command)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def _env_file(path: Path, project: str, ports: dict[str, int], work: Path) -> None:
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        value = {
            "COMPOSE_PROJECT_NAME": project,
            "TUS_PUBLIC_URL": f"http://127.0.0.1:{ports['tusd']}/files/",
            "S3_PUBLIC_ENDPOINT": f"http://127.0.0.1:{ports['minio']}",
            "WORKER_WORK_DIR": str(work),
        }.get(key)
        lines.append(line if value is None else f"{key}={value}")
    path.write_text("\n".join(lines) + "\n")


def _ports_file(path: Path, ports: dict[str, int]) -> None:
    published = {
        "postgres": f"127.0.0.1:{ports['postgres']}:5432",
        "redis": f"127.0.0.1:{ports['redis']}:6379",
        "minio": f"{ports['minio']}:9000",
        "tusd": f"{ports['tusd']}:8080",
        "api": f"{ports['api']}:8000",
    }
    path.write_text(
        "services:\n"
        + "".join(f'  {name}: {{ports: !override ["{p}"]}}\n' for name, p in published.items())
    )


def _configure(tmp: Path, project: str) -> Deployment:
    """A deployment's files on free ports, not started."""
    tmp.mkdir(parents=True, exist_ok=True)
    # The pipeline containers are siblings on the host engine: the work dir is a host path.
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("postgres", "redis", "minio", "tusd", "api")}
    env_file, ports_file = tmp / ".env", tmp / "ports.yml"
    _env_file(env_file, project, ports, work)
    _ports_file(ports_file, ports)
    return Deployment(
        project,
        [ROOT / "compose.yml", LOCAL_IMAGES, ports_file],
        env_file,
        f"http://127.0.0.1:{ports['api']}",
        f"http://127.0.0.1:{ports['tusd']}/files/",
        f"http://127.0.0.1:{ports['minio']}",
        0.0,
    )


@pytest.fixture(scope="module")
def deployment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    assert COMPOSE.exists(), f"{COMPOSE} is not built (make install)"
    log_path = stack.profile.log("images")
    built = images.build_services(ROOT, dict(os.environ), log_path, print)
    built |= images.build_apps(ROOT, dict(os.environ), log_path, print)
    assert not [t for t, s in built.items() if s.startswith("failed")], built
    d = _configure(tmp_path_factory.mktemp("compose"), f"orch-compose-test-{os.getpid()}")
    started = time.monotonic()
    up = d.compose("up", "-d", "--wait", "--wait-timeout", "240", timeout=300)
    up_s = time.monotonic() - started
    try:
        if up.returncode != 0:
            logs = d.compose("logs", "--tail", "40").stdout
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{logs[-6000:]}")
        print(f"compose up → every service healthy in {up_s:.1f} s")
        yield Deployment(**{**d.__dict__, "up_s": up_s})
    finally:
        d.compose("down", "-v", "--remove-orphans", timeout=180)


def test_every_service_becomes_healthy(deployment: Deployment) -> None:
    ps = deployment.compose("ps", "--all", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    states = {r["Service"]: (r["State"], r.get("Health", ""), r.get("ExitCode")) for r in rows}
    assert set(states) == {"postgres", "redis", "minio", "minio-init", "tusd", "api", "worker"}
    assert states.pop("minio-init")[::2] == ("exited", 0)
    # The worker has no healthcheck (nothing listens in it): running is all it can be.
    assert states.pop("worker")[0] == "running"
    # Each other healthcheck ran a program its image really contains, and passed.
    assert all(s[:2] == ("running", "healthy") for s in states.values()), states


def test_a_checksum_task_through_compose(deployment: Deployment, tmp_path: Path) -> None:
    client = Client(deployment.api_url, API_KEY)
    task = client.create("checksum")
    sums = {}
    for slot, size in (("first", 5 * 1024 * 1024 + 7), ("second", 999)):
        f = tmp_path / f"{slot}.bin"
        sums[slot] = random_file(f, size, len(slot))
        url = task["upload_urls"][slot]
        assert url.startswith(deployment.tus_url)
        assert tus_upload(url, f).startswith(deployment.tus_url)
    uploaded = time.monotonic()
    final = client.wait_terminal(task["task_id"], timeout_s=180)
    assert final["status"] == "done", final
    print(
        f"checksum through compose: last upload → done seen {time.monotonic() - uploaded:.2f} s "
        f"(polled every 0.2 s; the run itself {final['stats']['wall_s']} s)"
    )
    assert all(r["url"].startswith(deployment.s3_url) for r in final["results"])
    checksums = json.loads(download_results(final)["checksums.json"])
    assert {slot: v["sha256"] for slot, v in checksums.items()} == sums


def test_a_volcal_task_through_compose(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from pipelines.volcal_baseline.synthetic import generate

    survey = tmp_path_factory.mktemp("compose-survey")
    generate(survey, SURVEY)
    client = Client(deployment.api_url, API_KEY)
    task = client.create("volcal_baseline")
    for slot, name in FILES.items():
        tus_upload(task["upload_urls"][slot], survey / name)
    uploaded = time.monotonic()
    final = client.wait_terminal(task["task_id"], timeout_s=600)
    assert final["status"] == "done", final
    print(
        f"volcal_baseline through compose: last upload → done seen "
        f"{time.monotonic() - uploaded:.2f} s (the run itself {final['stats']['wall_s']} s)"
    )
    files = download_results(final)
    truth = json.loads((survey / "truth.json").read_text())
    report: dict[str, Any] = json.loads(files["report.json"])
    assert report["cut_volume_m3"] == pytest.approx(truth["cut_volume_m3"], rel=0.015)
    assert report["fill_volume_m3"] == pytest.approx(truth["fill_volume_m3"], rel=0.015)


# --- drills: what operators do to a running deployment every week --------------------------------
def _down_while(deployment: Deployment, action: Any) -> tuple[Any, float]:
    """Run ``action`` while a prober polls /health every 0.1 s, then wait until the API answers
    again; returns the action's result and the downtime a client saw (first to last failure)."""
    failures: list[float] = []
    stop = threading.Event()

    def healthy() -> bool:
        try:
            return requests.get(f"{deployment.api_url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def probe() -> None:
        while not stop.is_set():
            if not healthy():
                failures.append(time.monotonic())
            stop.wait(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        result = action()
        deadline = time.monotonic() + 180
        while not healthy():
            assert time.monotonic() < deadline, "the API did not come back"
            time.sleep(0.1)
    finally:
        stop.set()
        prober.join(10)
    return result, (failures[-1] - failures[0]) if failures else 0.0


def test_drill_restart_api_during_an_upload(deployment: Deployment, tmp_path: Path) -> None:
    client = Client(deployment.api_url, API_KEY)
    task = client.create("checksum")
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    sums = {"second": random_file(small, 100, 3), "first": random_file(big, 24 * MiB, 4)}
    tus_upload(task["upload_urls"]["second"], small)
    uploader = TusClient(task["upload_urls"]["first"]).uploader(
        file_path=str(big),
        chunk_size=4 * MiB,
        metadata={"filename": big.name},
        retries=10,
        retry_delay=1,
    )
    uploader.upload(stop_at=8 * MiB)
    restarted, down = _down_while(
        deployment, lambda: deployment.compose("restart", "api", timeout=120)
    )
    assert restarted.returncode == 0, restarted.stderr
    uploader.upload()  # the rest; tusd stored every byte while the API was away
    back = time.monotonic()
    final = client.wait_terminal(task["task_id"], timeout_s=120)
    assert final["status"] == "done", final
    print(
        f"restart api: /health failing {down:.1f} s; upload → done {time.monotonic() - back:.1f} s"
    )
    checksums = json.loads(download_results(final)["checksums.json"])
    assert {slot: v["sha256"] for slot, v in checksums.items()} == sums


def test_drill_kill_the_worker_running_a_task(deployment: Deployment, tmp_path: Path) -> None:
    scaled = deployment.compose("up", "-d", "--scale", "worker=2", "--wait", timeout=240)
    assert scaled.returncode == 0, scaled.stderr
    try:
        client = Client(deployment.api_url, API_KEY)
        task = client.create("checksum", {"sleep_s": 5})
        for slot in ("first", "second"):
            f = tmp_path / f"{slot}.bin"
            random_file(f, 1000, len(slot))
            tus_upload(task["upload_urls"][slot], f)
        running = client.wait_for(task["task_id"], lambda t: t["status"] == "running", 120)
        host = running["worker_id"].split("/")[0].split(":")[0]
        victim = _container_with_hostname(deployment, host)
        killed_at = time.monotonic()
        assert (
            subprocess.run(["docker", "kill", victim], capture_output=True, check=False).returncode
            == 0
        )
        final = client.wait_terminal(task["task_id"], timeout_s=120)
        took = time.monotonic() - killed_at
        assert final["status"] == "done", final
        assert final["worker_id"].split("/")[0].split(":")[0] != host
        assert final["attempts"] == 2
        print(f"kill the worker running a task: done on the other replica {took:.1f} s later")
        # Recovery as docs/deploy.md states it, between the two claims on PostgreSQL's clock,
        # which stamped both: not before the dead replica's heartbeat was HEARTBEAT_TIMEOUT_S
        # old (no false alarm), and within a reconciler pass of that; the slack holds the run
        # up to the kill and the other replica's claim.
        timeout_s = _setting(deployment, "heartbeat_timeout_s")
        bound_s = timeout_s + _setting(deployment, "reconcile_interval_s") + CLAIMS_SLACK_S
        claims_s = (
            datetime.fromisoformat(final["started_at"])
            - datetime.fromisoformat(running["started_at"])
        ).total_seconds()
        assert timeout_s <= claims_s <= bound_s, (claims_s, running, final)
    finally:
        deployment.compose("up", "-d", "--scale", "worker=1", "--wait", timeout=240)


def _setting(deployment: Deployment, name: str) -> float:
    """A setting as the deployment's services have it: its .env's, else the product's default."""
    for line in deployment.env_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name.upper():
            return float(value)
    return float(Settings.model_fields[name].default)


def _container_with_hostname(deployment: Deployment, host: str) -> str:
    ids = deployment.compose("ps", "-q", "worker").stdout.split()
    for cid in ids:
        inspected = subprocess.run(
            ["docker", "inspect", "-f", "{{.Config.Hostname}}", cid],
            capture_output=True,
            text=True,
            check=False,
        )
        if inspected.stdout.strip() == host:
            return cid
    raise AssertionError(f"no worker container has host name {host!r} among {ids}")


def _submit(client: Client, tmp_path: Path, n: int, **params: Any) -> list[str]:
    ids = []
    for i in range(n):
        task = client.create("checksum", params)
        for slot in ("first", "second"):
            f = tmp_path / f"{i}-{slot}.bin"
            random_file(f, 500, i)
            tus_upload(task["upload_urls"][slot], f)
        ids.append(task["task_id"])
    return ids


def _all_done(client: Client, ids: list[str], timeout_s: float = 240) -> float:
    """Seconds until every task is done, polling as a client that retries a 503 would: each of
    the API's processes (API_WORKERS) finds a restarted backing service on its own, so one may
    still answer 503 after another answered /health."""
    started = time.monotonic()
    deadline = started + timeout_s
    for task_id in ids:
        while True:
            r = client.get(f"/query_task/{task_id}")
            assert r.status_code in (200, 503), r.text
            if r.status_code == 200 and r.json()["status"] in ("done", "error", "killed"):
                break
            assert time.monotonic() < deadline, f"{task_id}: {r.text}"
            time.sleep(0.2)
        assert r.json()["status"] == "done", r.text
    return time.monotonic() - started


def test_drill_restart_postgres_while_tasks_are_queued(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The restart in two steps, so that the API is seen answering while PostgreSQL is away."""
    client = Client(deployment.api_url, API_KEY)
    ids = _submit(client, tmp_path, 4, sleep_s=2)
    assert deployment.compose("stop", "postgres", timeout=120).returncode == 0
    r = requests.get(
        f"{deployment.api_url}/query_task/{ids[0]}", timeout=10, headers={"X-API-Key": API_KEY}
    )
    assert r.status_code == 503, r.text
    assert "service unavailable" in r.json()["detail"]
    # /health answers from a look up to HEALTH_CACHE_S old (1 s): wait for a look after the stop.
    deadline = time.monotonic() + 30
    while (health := requests.get(f"{deployment.api_url}/health", timeout=10)).status_code != 503:
        assert time.monotonic() < deadline, f"/health still says {health.text} after the stop"
        time.sleep(0.1)
    assert health.json()["checks"]["postgres"] != "ok"
    started, down = _down_while(deployment, lambda: deployment.compose("start", "postgres"))
    assert started.returncode == 0, started.stderr
    took = _all_done(client, ids)
    print(
        f"restart postgres (stop, then start): 503 while stopped; healthy again after the start "
        f"(failing {down:.1f} s of it); all {len(ids)} tasks done {took:.1f} s later, none lost"
    )


def test_drill_freeze_postgres_while_a_task_runs(deployment: Deployment, tmp_path: Path) -> None:
    client = Client(deployment.api_url, API_KEY)
    (task_id,) = _submit(client, tmp_path, 1, sleep_s=8)
    client.wait_for(task_id, lambda t: t["status"] == "running", 120)
    container = deployment.compose("ps", "-q", "postgres").stdout.strip()
    inspected = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", container],
        capture_output=True,
        text=True,
        check=True,
    )
    # Every process of the container, the postmaster and all its children, from the host.
    pids = frozen_db.process_tree(int(inspected.stdout))
    drill = frozen_db.run(deployment.api_url, API_KEY, task_id, lambda: frozen_db.stopped(pids))
    print(f"compose, PostgreSQL frozen 15 s: {frozen_db.check(drill)}")
    final = client.wait_terminal(task_id, timeout_s=120)
    assert final["status"] == "done", final
    assert final["attempts"] == 1, final


def test_drill_restart_redis_with_queued_jobs(deployment: Deployment, tmp_path: Path) -> None:
    client = Client(deployment.api_url, API_KEY)
    ids = _submit(client, tmp_path, 5, sleep_s=2)
    restarted = deployment.compose("restart", "redis", timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    took = _all_done(client, ids)
    print(f"restart redis: all {len(ids)} queued tasks done {took:.1f} s after the restart")


def test_drill_upgrade_the_api_while_a_task_runs(deployment: Deployment, tmp_path: Path) -> None:
    client = Client(deployment.api_url, API_KEY)
    (task_id,) = _submit(client, tmp_path, 1, sleep_s=8)
    client.wait_for(task_id, lambda t: t["status"] == "running", 120)
    log_path = tmp_path / "build.log"
    built = images.build_apps(ROOT, dict(os.environ), log_path, print, force=True)
    assert all(not s.startswith("failed") for s in built.values()), built
    up, down = _down_while(
        deployment,
        lambda: deployment.compose("up", "-d", "--force-recreate", "--no-deps", "--wait", "api"),
    )
    assert up.returncode == 0, up.stderr
    logs = deployment.compose("logs", "api").stdout
    assert "database migrated" in logs.split("listening on")[0]
    final = client.wait_terminal(task_id, timeout_s=120)
    assert final["status"] == "done", final
    print(f"upgrade api: /health failing {down:.1f} s; the running task finished")


def test_drill_backup_then_restore_into_a_fresh_deployment(
    deployment: Deployment, tmp_path: Path
) -> None:
    """deploy/backup.sh on the running deployment, deploy/restore.sh into a new one (its own
    volumes and ports): an old task is there, and its results download and match."""
    client = Client(deployment.api_url, API_KEY)
    (task_id,) = _submit(client, tmp_path, 1)
    done = client.wait_terminal(task_id, timeout_s=120)
    assert done["status"] == "done", done
    before = {name: sha256_of(data) for name, data in download_results(done).items()}

    backup = tmp_path / "backup"
    started = time.monotonic()
    made = deployment.script(ROOT / "deploy" / "backup.sh", str(backup))
    assert made.returncode == 0, made.stdout + made.stderr
    backup_s = time.monotonic() - started
    assert (backup / "orchestrator.dump").stat().st_size > 0
    assert any((backup / "results").rglob("*")) and any((backup / "uploads").rglob("*"))

    fresh = _configure(tmp_path / "fresh", f"{deployment.project}-restored")
    try:
        started = time.monotonic()
        restored = fresh.script(ROOT / "deploy" / "restore.sh", str(backup))
        restore_s = time.monotonic() - started
        assert restored.returncode == 0, restored.stdout + restored.stderr
        task = Client(fresh.api_url, API_KEY).query(task_id)
        assert task["status"] == "done", task
        assert all(r["url"].startswith(fresh.s3_url) for r in task["results"]), task["results"]
        after = {name: sha256_of(data) for name, data in download_results(task).items()}
        assert after == before
        # A second restore over the restored data is refused, and changes nothing.
        again = fresh.script(ROOT / "deploy" / "restore.sh", str(backup))
        assert again.returncode != 0 and "fresh deployment" in again.stderr, again.stderr
        assert Client(fresh.api_url, API_KEY).query(task_id)["status"] == "done"
        print(
            f"backup (pg_dump + mirror of both buckets) {backup_s:.1f} s; restore into a fresh "
            f"deployment up to healthy {restore_s:.1f} s; the old task's "
            f"{len(after)} results match by sha256"
        )
    finally:
        fresh.compose("down", "-v", "--remove-orphans", timeout=180)
