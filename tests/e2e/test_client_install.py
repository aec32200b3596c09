"""The client installs alone: ``pip install`` of the project, without extras, into a clean
virtualenv gives the ``orchestrator`` command and nothing of the server, and that command
submits a task to the test stack and sees it done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Stack
from tests.e2e.client import random_file

# What a client install must not pull in: the server's frameworks and drivers.
SERVER_ONLY = {
    "litestar",
    "uvicorn",
    "sqlalchemy",
    "psycopg",
    "alembic",
    "rq",
    "redis",
    "minio",
    "docker",
    "pydantic-settings",
    "nvidia-ml-py",
    "prometheus-client",
}
SOURCES = ("pyproject.toml", "README.md", "orchestrator", "hooks", "worker", "pipelines")


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kw)


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("client-install")
    # A copy of what the wheel is built from, so that the build writes nothing into the checkout.
    src = tmp / "src"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(
                path, src / name, ignore=shutil.ignore_patterns("node_modules", "__pycache__")
            )
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", str(src)])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def test_the_plain_install_is_the_client_only(client_venv: Path) -> None:
    listed = _run([str(client_venv / "bin" / "pip"), "list", "--format", "json"])
    names = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert "upload-orchestrator" in names
    assert not names & SERVER_ONLY, names & SERVER_ONLY
    (site,) = (client_venv / "lib").glob("python3*/site-packages")
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    others = names - {"pip", "setuptools", "upload-orchestrator"}
    print(f"client install: {len(others)} dependencies, site-packages {size / 2**20:.0f} MiB")

    helped = _run([str(client_venv / "bin" / "orchestrator"), "--help"])
    assert helped.returncode == 0, helped.stderr
    assert "submit" in helped.stdout


def test_the_client_alone_submits_to_the_stack(
    client_venv: Path, stack: Stack, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    sums = {"first": random_file(first, 200_000, 1), "second": random_file(second, 1000, 2)}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ORCHESTRATOR_URL": stack.api_url,
        "ORCHESTRATOR_API_KEY": stack.api_key,
        "ORCHESTRATOR_CACHE_DIR": str(tmp_path / "cache"),
    }
    submitted = _run(
        [
            str(client_venv / "bin" / "orchestrator"),
            *("submit", "checksum", "--first", str(first), "--second", str(second)),
            *("--wait", "--json"),
        ],
        env=env,
        cwd=tmp_path,  # nothing of the checkout on the path
    )
    assert submitted.returncode == 0, submitted.stderr
    task = json.loads(submitted.stdout)
    assert task["status"] == "done", task
    out = tmp_path / "out"
    fetched = _run(
        [
            str(client_venv / "bin" / "orchestrator"),
            *("results", task["task_id"], "--download", str(out), "--json"),
        ],
        env=env,
        cwd=tmp_path,
    )
    assert fetched.returncode == 0, fetched.stderr
    checksums = json.loads((out / "checksums.json").read_text())
    assert {slot: v["sha256"] for slot, v in checksums.items()} == sums
