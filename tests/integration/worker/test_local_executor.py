"""The local executor: the checksum pipeline as a subprocess under rlimits, no Docker."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from orchestrator.domain.status import TaskStatus
from pipelines.spec import MiB, Resources
from tests.integration.worker.conftest import MakeRequest, read_json
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
    t0 = time.monotonic()
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert time.monotonic() - t0 < 2 + 8
    assert settle(outcome, req.resources) == (TaskStatus.KILLED, "timed out after 2 s")


def test_stop_event_kills_within_seconds(
    executor: LocalExecutor, make_request: MakeRequest
) -> None:
    req = make_request(params={"sleep_s": 60})
    threading.Timer(1.0, req.stop.set).start()
    t0 = time.monotonic()
    outcome = executor.run(req)
    assert outcome.kind is OutcomeKind.KILLED
    assert time.monotonic() - t0 < 1 + 8


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
    seen: list[tuple[float, str]] = []
    req = make_request(
        params={"tick_s": 3},
        log_sink=lambda lines: seen.extend((time.monotonic(), line) for line in lines),
    )
    outcome = executor.run(req)
    ended = time.monotonic()
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXITED, 0), outcome.log_tail
    lines = [line for _, line in seen]
    assert lines[:3] == ["tick 1", "tick 2", "tick 3"] and lines[-1].startswith("wrote ")
    assert ended - seen[0][0] > 1.5  # "tick 1" arrived long before the end
