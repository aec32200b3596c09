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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.localstack import images
from tests.conftest import ROOT, Stack
from tests.e2e.client import Client, random_file
from tests.e2e.test_flow import download_results, tus_upload
from tests.e2e.test_volcal import FILES, SURVEY
from tests.integration.hooks.test_recorded_hooks import free_port

COMPOSE = ROOT / ".bin" / "docker-compose"
LOCAL_IMAGES = ROOT / "deploy" / "compose.local.yml"
API_KEY = "change-me-api-key"  # .env.example's


@dataclass(frozen=True)
class Deployment:
    project: str
    files: list[Path]
    env_file: Path
    api_url: str
    tus_url: str
    s3_url: str
    up_s: float

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(COMPOSE), "--project-directory", str(ROOT), "--env-file", str(self.env_file)]
        for f in self.files:
            argv += ["-f", str(f)]
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout, check=False
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


@pytest.fixture(scope="module")
def deployment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    assert COMPOSE.exists(), f"{COMPOSE} is not built (make install)"
    log_path = stack.profile.log("images")
    built = images.build_services(ROOT, dict(os.environ), log_path, print)
    built |= images.build_apps(ROOT, dict(os.environ), log_path, print)
    assert not [t for t, s in built.items() if s.startswith("failed")], built
    tmp = tmp_path_factory.mktemp("compose")
    # The pipeline containers are siblings on the host engine: the work dir is a host path.
    work = tmp / "work"
    work.mkdir()
    ports = {name: free_port() for name in ("postgres", "redis", "minio", "tusd", "api")}
    project = f"orch-compose-test-{os.getpid()}"
    env_file, ports_file = tmp / ".env", tmp / "ports.yml"
    _env_file(env_file, project, ports, work)
    _ports_file(ports_file, ports)
    files = [ROOT / "compose.yml", LOCAL_IMAGES, ports_file]
    d = Deployment(
        project,
        files,
        env_file,
        f"http://127.0.0.1:{ports['api']}",
        f"http://127.0.0.1:{ports['tusd']}/files/",
        f"http://127.0.0.1:{ports['minio']}",
        0.0,
    )
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
    final = client.wait_terminal(task["task_id"], timeout_s=180)
    assert final["status"] == "done", final
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
    final = client.wait_terminal(task["task_id"], timeout_s=600)
    assert final["status"] == "done", final
    files = download_results(final)
    truth = json.loads((survey / "truth.json").read_text())
    report: dict[str, Any] = json.loads(files["report.json"])
    assert report["cut_volume_m3"] == pytest.approx(truth["cut_volume_m3"], rel=0.015)
    assert report["fill_volume_m3"] == pytest.approx(truth["fill_volume_m3"], rel=0.015)
