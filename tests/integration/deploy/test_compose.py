"""compose.yml validated by the Compose users have, and what production needs of it.

Docker Compose v2 (the ``docker compose`` plugin), built from its Go module by
scripts/install.sh into ``.bin/docker-compose``, parses the file, interpolates ``.env``
variables, checks it against the compose-spec schema and resolves ``depends_on``, profiles and
merges. The rejection tests prove the validator is not a rubber stamp.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import images
from devstack.tusd import tusd_flags

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
WORKER_HOST_COMPOSE = ROOT / "deploy" / "worker-host.yml"
WORKER_HOST_ENV = ROOT / "deploy" / "worker-host.env.example"


def compose(
    *args: str, file: Path = COMPOSE, env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    exe = ROOT / ".bin" / "docker-compose"
    if not exe.exists():
        pytest.fail(f"{exe} is not built (scripts/install.sh builds it from its Go module)")
    return subprocess.run(
        [
            exe,
            "--project-directory",
            str(ROOT),
            "-f",
            str(file),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def resolved(*profiles: str) -> dict[str, Any]:
    flags = [arg for p in profiles for arg in ("--profile", p)]
    done = compose(*flags, "config")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_compose_file_is_valid() -> None:
    for flags in ([], ["--profile", "gpu"], ["--profile", "images"]):
        done = compose(*flags, "config", "-q")
        assert done.returncode == 0, f"{flags}: {done.stderr}"


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        # A condition Compose does not know.
        (
            "minio-init: {condition: service_completed_successfully}\n      # Every",
            "minio-init: {condition: service_finished}\n      # Every",
            "minio-init.condition value must be one of",
        ),
        # A key that is not in the compose spec.
        (
            '    restart: unless-stopped\n    command: ["server"',
            '    restart: unless-stopped\n    comand: ["server"',
            "comand",
        ),
        # depends_on a service that does not exist.
        (
            "      postgres: {condition: service_healthy}\n      redis:",
            "      postgress: {condition: service_healthy}\n      redis:",
            "postgress",
        ),
    ],
)
def test_validator_rejects_a_broken_copy(tmp_path: Path, old: str, new: str, why: str) -> None:
    text = COMPOSE.read_text()
    assert text.count(old) == 1, f"the mutation anchor for {why!r} is gone from compose.yml"
    broken = tmp_path / "compose.yml"
    broken.write_text(text.replace(old, new))
    done = compose("config", "-q", file=broken)
    assert done.returncode != 0, f"a compose file with {why!r} was accepted"
    assert why in done.stderr, done.stderr


def test_worker_host_file_is_valid() -> None:
    """The compose file of an additional worker host (only workers, remote services)."""
    for flags in ([], ["--profile", "gpu"], ["--profile", "images"]):
        done = compose(*flags, "config", file=WORKER_HOST_COMPOSE, env_file=WORKER_HOST_ENV)
        assert done.returncode == 0, f"{flags}: {done.stderr}"
    services = yaml.safe_load(
        compose(
            "--profile", "gpu", "config", file=WORKER_HOST_COMPOSE, env_file=WORKER_HOST_ENV
        ).stdout
    )["services"]
    for name in ("worker", "worker-gpu"):
        env = services[name]["environment"]
        # Remote services, not the main deployment's in-network names.
        assert "@10.0.0.5:5432/" in env["DATABASE_URL"] and "10.0.0.5" in env["REDIS_URL"]
        assert env["WORKER_HOST"] == "worker-host-1"
        assert "ports" not in services[name] and "container_name" not in services[name]
    assert services["worker-gpu"]["environment"]["WORKER_QUEUES"] == "default,gpu"


def test_missing_secret_is_refused(tmp_path: Path) -> None:
    """Secrets come from .env with ``${VAR:?}``: a missing one stops Compose, no silent default."""
    env = tmp_path / ".env"
    env.write_text(
        "\n".join(
            line
            for line in ENV_EXAMPLE.read_text().splitlines()
            if not line.startswith("HOOK_SECRET=")
        )
        + "\n"
    )
    done = compose("config", "-q", env_file=env)
    assert done.returncode != 0
    assert "HOOK_SECRET" in done.stderr


def test_production_shape() -> None:
    config = resolved("gpu")
    services = config["services"]
    expected = {"postgres", "redis", "minio", "minio-init", "tusd", "api", "worker", "worker-gpu"}
    assert expected <= set(services)
    # --scale worker=N: nothing on a worker may be unique per host.
    for name in ("worker", "worker-gpu"):
        worker = services[name]
        assert "container_name" not in worker and "ports" not in worker, name
        env = worker["environment"]
        assert env["EXECUTOR"] == "docker"
        # Pipeline containers are siblings on the host engine: socket and same-path work dir.
        mounts = {(v["source"], v["target"]) for v in worker["volumes"] if v["type"] == "bind"}
        assert ("/var/run/docker.sock", "/var/run/docker.sock") in mounts
        work = env["WORKER_WORK_DIR"]
        assert (work, work) in mounts, mounts
        # Pipeline files of the operator's, read-only, where PIPELINES_PATH looks.
        assert (str(ROOT / "deploy" / "pipelines"), "/etc/orchestrator/pipelines") in mounts
        assert env["PIPELINES_PATH"] == "shipped:/etc/orchestrator/pipelines"
        assert worker["depends_on"]["api"]["condition"] == "service_healthy"
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert services["worker"].get("profiles") is None  # CPU workers start by default
    assert gpu["environment"]["WORKER_QUEUES"].split(",") == ["default", "gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]

    # Every long-running service is probed, and start order waits on health, not on start.
    for name in ("postgres", "redis", "minio", "tusd", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert {k: v["condition"] for k, v in services["api"]["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "minio-init": "service_completed_successfully",
    }
    assert services["tusd"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )
    assert "appendonly yes" in " ".join(services["redis"]["command"])

    # Public names differ from the in-network ones: presigned and upload URLs work outside.
    api_env = services["api"]["environment"]
    assert api_env["S3_ENDPOINT"] == "http://minio:9000"
    assert api_env["S3_PUBLIC_ENDPOINT"] == "http://localhost:9000"
    assert api_env["TUS_PUBLIC_URL"] == "http://localhost:1080/files/"
    assert "uploads" in services["minio-init"]["command"][0]
    assert "results" in services["minio-init"]["command"][0]


def test_tusd_runs_with_the_local_stack_flags() -> None:
    """compose and the local stack give tusd the same flags; only addresses differ."""
    services = resolved()["services"]
    assert services["tusd"]["command"] == tusd_flags(
        host="0.0.0.0",
        port=8080,
        s3_endpoint="http://minio:9000",
        hooks_url="http://tusd:change-me-hook-secret@api:8001/tusd_hook",
    )
    # The hook listener is on the compose network only: tusd reaches it, clients never do.
    api = services["api"]
    assert api["environment"]["HOOK_HOST"] == "0.0.0.0"
    assert api["environment"]["HOOK_PORT"] == "8001"
    assert [p for p in api["ports"] if "8001" in str(p)] == []
    assert services["tusd"]["image"].endswith(":v2.9.1")


def test_behind_proxy_is_off_unless_asked_for(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        ENV_EXAMPLE.read_text().replace("TUSD_BEHIND_PROXY=false", "TUSD_BEHIND_PROXY=true")
    )
    done = compose("config", env_file=env)
    assert done.returncode == 0, done.stderr
    command = yaml.safe_load(done.stdout)["services"]["tusd"]["command"]
    assert "-behind-proxy=true" in command
    assert "-behind-proxy=false" in resolved()["services"]["tusd"]["command"]


def test_the_local_override_only_swaps_third_party_images() -> None:
    """deploy/compose.local.yml changes nothing but the images a registry would serve, and names
    exactly the stand-ins `python -m devstack images` builds."""
    override = yaml.safe_load((ROOT / "deploy" / "compose.local.yml").read_text())["services"]
    assert all(set(service) == {"image"} for service in override.values()), override
    assert {s["image"] for s in override.values()} == {i.tag for i in images.SERVICE_IMAGES}
    production = yaml.safe_load(COMPOSE.read_text())["services"]
    assert all("build" not in production[name] for name in override)  # registry images only
