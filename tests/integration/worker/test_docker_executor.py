"""The docker executor against a real dockerd and the real checksum image."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator

import docker
import pytest

from orchestrator.domain.status import TaskStatus
from pipelines.spec import MiB, Resources
from tests.integration.worker.conftest import MakeRequest, handshake_request, read_json
from worker.executors import docker as docker_executor
from worker.executors.base import OutcomeKind
from worker.executors.docker import LABEL_OWNER, LABEL_TASK, DockerExecutor
from worker.outcome import settle


@pytest.fixture
def executor(docker_client: docker.DockerClient) -> DockerExecutor:
    return DockerExecutor(docker_client, gpu_count=0)


def leftover_containers(client: docker.DockerClient, task_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{LABEL_TASK}={task_id}"})
    return [c.name for c in found]


def test_runs_the_pipeline_and_collects_outputs_and_stats(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    req = make_request(params={"allocate_mb": 40, "sleep_s": 2})
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    result = read_json(req.out_dir / "checksums.json")
    second = (req.in_dir / "second.bin").read_bytes()
    assert result["second"] == {"sha256": hashlib.sha256(second).hexdigest(), "bytes": 1024}
    assert result["first"]["bytes"] == 6
    assert "wrote /out/checksums.json" in req.log_path.read_text()
    # Resource accounting from the cgroup: it held 40 MiB for 2 s.
    assert outcome.stats.wall_s >= 2
    assert outcome.stats.peak_memory_bytes is not None
    assert outcome.stats.peak_memory_bytes >= 40 * MiB
    assert outcome.stats.cpu_seconds is not None and outcome.stats.cpu_seconds > 0
    assert leftover_containers(docker_client, req.task_id) == []


def test_real_oom_is_read_from_container_state(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    req = make_request(params={"allocate_mb": 200}, memory_mib=64)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.OOM, (outcome, outcome.log_tail)
    assert settle(outcome, req.resources) == (TaskStatus.ERROR, "out of memory: limit 64 MiB")
    assert leftover_containers(docker_client, req.task_id) == []


def test_real_timeout_stops_and_removes_the_container(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    req = make_request(params={"sleep_s": 60}, timeout_s=3)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert settle(outcome, req.resources) == (TaskStatus.KILLED, "timed out after 3 s")
    # Stopped at its limit, not after its own 60 s: the engine's run time (StartedAt to
    # FinishedAt) lies between the two, and the pipeline never got to write its output.
    assert 3 <= outcome.stats.wall_s < 60, outcome.stats
    assert not (req.out_dir / "checksums.json").exists()
    assert leftover_containers(docker_client, req.task_id) == []


def test_stop_event_kills_the_running_container(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    stop = threading.Event()

    def stop_once_running(lines: list[str]) -> None:
        if "tick 1" in lines:  # printed by the container: the run is going
            stop.set()

    req = make_request(params={"tick_s": 60}, stop=stop, log_sink=stop_once_running)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.KILLED, (outcome, outcome.log_tail)
    assert settle(outcome, req.resources) == (TaskStatus.KILLED, "killed on request")
    # Stopped mid-run, not left to end by itself after its 60 ticks: the engine's run time is
    # short of them and the pipeline never got to write its output.
    assert outcome.stats.wall_s < 60, outcome.stats
    log = req.log_path.read_text()
    assert "tick 1" in log and "wrote " not in log, log
    assert not (req.out_dir / "checksums.json").exists()
    assert leftover_containers(docker_client, req.task_id) == []


def test_pipeline_error_line_becomes_the_reason(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    req = make_request(inputs={"first": "first", "second": "absent.bin"})
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 2)
    assert settle(outcome, req.resources) == (TaskStatus.ERROR, "input 'second' is missing")
    assert "error: input 'second' is missing" in req.log_path.read_text()


def test_crash_reason_has_exit_code_and_log_tail(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    req = make_request(command=("python3", "-c", "print('step 1'); raise SystemExit(3)"))
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 3)
    assert settle(outcome, req.resources) == (
        TaskStatus.ERROR,
        "pipeline exited with code 3: step 1",
    )


def test_missing_image_has_a_clear_reason(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    req = make_request(image="pipeline-does-not-exist:latest")
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason == (
        "pipeline image 'pipeline-does-not-exist:latest' is not available on this worker"
    )


def test_gpu_task_on_a_worker_without_gpus_fails_clearly(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    req = make_request(resources=Resources(cpus=1, memory_bytes=128 * MiB, gpus=1, timeout_s=60))
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason == "task needs 1 GPU(s) but this worker has none"


def test_limits_are_applied_to_the_container(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    req = make_request(memory_mib=96)
    container = docker_client.containers.create(**executor.container_options(req))
    try:
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000
        assert host["Memory"] == host["MemorySwap"] == 96 * MiB
        assert host["PidsLimit"] == 64
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["Init"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert "/tmp" in host["Tmpfs"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert not host.get("DeviceRequests")
        binds = sorted(host["Binds"])
        assert binds == sorted([f"{req.in_dir}:/in:ro", f"{req.out_dir}:/out:rw"])
        assert container.labels[LABEL_TASK] == req.task_id
    finally:
        container.remove(force=True)


PROBE = """
import json, os
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return type(exc).__name__
def write_in():
    open("/in/x", "w")
def write_root():
    open("/etc/x", "w")
def write_tmp():
    open("/tmp/x", "w").write("x")
json.dump({"uid": os.getuid(), "net": sorted(os.listdir("/sys/class/net")),
           "root": attempt(write_root),
           "in": attempt(write_in), "tmp": attempt(write_tmp)}, open("/out/probe.json", "w"))
"""


def test_limits_hold_inside_the_container(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    req = make_request(command=("python3", "-c", PROBE))
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    probe = read_json(req.out_dir / "probe.json")
    assert probe["uid"] == 10001
    assert probe["net"] == ["lo"]  # no network interface but loopback
    assert probe["root"] != "ok"
    assert probe["in"] != "ok"
    assert probe["tmp"] == "ok"


def test_orphans_of_dead_processes_are_removed(
    executor: DockerExecutor, make_request: MakeRequest, docker_client: docker.DockerClient
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    made = {}
    for owner in (f"{host}:{dead.pid}", f"{host}:{os.getpid()}", f"other-host:{dead.pid}"):
        options = executor.container_options(make_request())
        options["labels"][LABEL_OWNER] = owner
        made[owner] = docker_client.containers.create(**options)
    try:
        removed = executor.remove_orphans()
        assert made[f"{host}:{dead.pid}"].name in removed
        left = {c.name for c in docker_client.containers.list(all=True)}
        assert made[f"{host}:{dead.pid}"].name not in left
        assert made[f"{host}:{os.getpid()}"].name in left  # its supervisor is alive
        assert made[f"other-host:{dead.pid}"].name in left  # not this host's to judge
    finally:
        for c in made.values():
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)


def test_output_reaches_the_live_sink_while_the_container_runs(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    # The container waits after "tick 1" until the sink has it: it could not end with 0 had
    # its output reached the sink only at the end.
    req, seen = handshake_request(make_request)
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    assert seen == ["tick 1", "tick 2"]  # the last line too, flushed at the end
    assert "tick 2" in req.log_path.read_text()  # the stored log is complete as before


def test_a_failing_live_sink_never_breaks_the_run(
    executor: DockerExecutor, make_request: MakeRequest
) -> None:
    def broken(lines: list[str]) -> None:
        raise ConnectionError("redis down")

    req = make_request(params={"tick_s": 1}, log_sink=broken)
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    assert "tick 1" in req.log_path.read_text()


def test_the_log_is_read_again_when_following_it_broke(
    executor: DockerExecutor, make_request: MakeRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hung_up(container: object) -> Iterator[bytes]:
        raise ConnectionError("the engine hung up on the log stream")
        yield b""  # a generator, as the real follower is

    monkeypatch.setattr(docker_executor, "_follow_logs", hung_up)
    req = make_request(params={"tick_s": 1})
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    assert "tick 1" in req.log_path.read_text()
    assert not req.log_path.with_name(req.log_path.name + ".part").exists()
