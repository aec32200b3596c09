"""Fixtures of the worker's integration tests: a real Docker engine and the checksum image."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from devstack.images import build_pipelines
from pipelines.checksum.spec import SPEC
from pipelines.spec import MiB, Resources
from worker.executors.base import RunRequest
from worker.staging import PARAMS_FILE, RunDir, write_params

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def docker_client(stack: Any) -> Iterator[docker.DockerClient]:
    # The stack runs the Docker engine (there is no system daemon): it must be up first, also
    # when these tests run alone.
    client = docker.from_env(timeout=120)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def checksum_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The pipeline image, (re)built the way the stack builds it when missing or stale (its
    sources changed, e.g. a new test-aid parameter)."""
    log_path = tmp_path_factory.mktemp("image-build") / "build.log"
    result = build_pipelines(ROOT, os.environ, log_path, lambda _: None, only=[SPEC.name])
    assert result[SPEC.name] in ("built", "current"), (result, log_path.read_text()[-3000:])
    docker_client.images.get(SPEC.image)
    return SPEC.image


MakeRequest = Callable[..., RunRequest]


@pytest.fixture
def make_request(tmp_path: Path, checksum_image: str) -> MakeRequest:
    """A run of the checksum pipeline on two small files; keyword overrides for each field."""

    def make(
        *,
        params: dict[str, Any] | None = None,
        memory_mib: int = 128,
        timeout_s: int = 60,
        **overrides: Any,
    ) -> RunRequest:
        run = RunDir.create(str(tmp_path), "t")
        (run.in_dir / "first").write_bytes(b"hello\n")
        (run.in_dir / "second.bin").write_bytes(bytes(range(256)) * 4)
        for f in run.in_dir.iterdir():
            f.chmod(0o644)
        write_params(run, SPEC.validate_params(params))
        fields: dict[str, Any] = {
            "task_id": f"it-{tmp_path.name[-20:]}",
            "image": checksum_image,
            "command": SPEC.command,
            "inputs": {"first": "first", "second": "second.bin"},
            "in_dir": run.in_dir,
            "out_dir": run.out_dir,
            "params_file": PARAMS_FILE,
            "log_path": run.log_path,
            "resources": Resources(
                cpus=0.5, memory_bytes=memory_mib * MiB, timeout_s=timeout_s, pids=64
            ),
        }
        fields.update(overrides)
        return RunRequest(**fields)

    return make


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# A run that prints "tick 1", waits (at most 50 s) for the file its one argument names, then
# prints "tick 2": it ends with 0 only if something that saw "tick 1" created the file meanwhile.
HANDSHAKE = """
import os, sys, time
print("tick 1", flush=True)
for _ in range(500):
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.1)
else:
    sys.exit("never told to go on: 'tick 1' did not reach the live sink while the run went on")
print("tick 2", flush=True)
"""


def handshake_request(make_request: MakeRequest) -> tuple[RunRequest, list[str]]:
    """A run of ``HANDSHAKE`` whose live sink creates the file it waits for once "tick 1"
    reaches the sink; and the list of the lines the sink receives."""
    seen: list[str] = []
    req = make_request(command=("python3", "-c", HANDSHAKE, "{in:go}"), inputs={"go": "go"})
    go = req.in_dir / "go"

    def sink(lines: list[str]) -> None:
        seen.extend(lines)
        if "tick 1" in lines:
            go.touch()

    return dataclasses.replace(req, log_sink=sink), seen
