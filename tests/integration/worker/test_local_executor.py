"""The local executor: the checksum pipeline as a subprocess under rlimits, no Docker."""

from __future__ import annotations

import hashlib
import threading

import pytest

from orchestrator.domain.status import TaskStatus
from pipelines.spec import MiB, Resources
from tests.integration.worker.conftest import MakeRequest, handshake_request, read_json
from worker.executors.base import OutcomeKind
from worker.executors.local import LocalExecutor
from worker.outcome import settle


@pytest.fixture
def executor() -> LocalExecutor:
    return LocalExecutor()


def test_runs_the_pipeline_on_host_paths(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    req = make_request(params={"allocate_mb": 30})
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    result = read_json(req.out_dir / "checksums.json")
    assert result["first"] == {"sha256": hashlib.sha256(b"hello\n").hexdigest(), "bytes": 6}
    assert f"wrote {req.out_dir}/checksums.json" in req.log_path.read_text()
    assert outcome.stats.peak_memory_bytes is not None
    assert outcome.stats.peak_memory_bytes >= 30 * MiB
    assert outcome.stats.cpu_seconds is not None and outcome.stats.cpu_seconds > 0


def test_memory_limit_is_an_oom_with_the_limit(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    req = make_request(params={"allocate_mb": 400}, memory_mib=128)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.OOM, outcome.log_tail
    assert settle(outcome, req.resources) == (TaskStatus.ERROR, "out of memory: limit 128 MiB")


def test_timeout_kills_the_process_group(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    req = make_request(params={"sleep_s": 60}, timeout_s=2)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert settle(outcome, req.resources) == (TaskStatus.KILLED, "timed out after 2 s")
    # Stopped at its limit, not after its own 60 s: the executor's run time lies between the
    # two, and the pipeline never got to write its output.
    assert 2 <= outcome.stats.wall_s < 60, outcome.stats
    assert not (req.out_dir / "checksums.json").exists()
    assert "wrote " not in req.log_path.read_text()


def test_stop_event_kills_the_running_process(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    stop = threading.Event()

    def stop_once_running(lines: list[str]) -> None:
        if "tick 1" in lines:  # printed by the pipeline: the run is going
            stop.set()

    req = make_request(params={"tick_s": 60}, stop=stop, log_sink=stop_once_running)
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.KILLED, outcome.log_tail
    # Stopped mid-run, not left to end by itself after its 60 ticks.
    assert outcome.stats.wall_s < 60, outcome.stats
    log = req.log_path.read_text()
    assert "tick 1" in log and "wrote " not in log, log
    assert not (req.out_dir / "checksums.json").exists()


def test_pipeline_error_line_becomes_the_reason(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    req = make_request(inputs={"first": "first", "second": "absent.bin"})
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 2)
    assert settle(outcome, req.resources) == (TaskStatus.ERROR, "input 'second' is missing")


def test_gpu_task_is_refused(executor: LocalExecutor, make_request: MakeRequest) -> None:
    req = make_request(resources=Resources(gpus=1))
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason is not None and "GPU" in outcome.reason


def test_output_reaches_the_live_sink_while_the_run_goes_on(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    # The process waits after "tick 1" until the sink has it: it could not end with 0 had its
    # output reached the sink only at the end.
    req, seen = handshake_request(make_request)
    outcome = executor.run(req)
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    assert seen == ["tick 1", "tick 2"]  # the last line too, flushed at the end
    assert "tick 2" in req.log_path.read_text()
