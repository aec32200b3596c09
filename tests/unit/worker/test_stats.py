"""Pure parts of the docker executor's accounting: engine timestamps and cgroup files."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.executors.docker import cgroup_files, container_wall_s, read_cgroup


def test_wall_time_from_the_engine_timestamps_in_nanoseconds() -> None:
    state = {
        "StartedAt": "2026-11-22T09:26:31.888933038Z",
        "FinishedAt": "2026-11-22T09:26:33.435716255Z",
    }
    assert container_wall_s(state) == pytest.approx(1.546783)


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"StartedAt": "2026-11-22T09:26:31Z", "FinishedAt": "0001-01-01T00:00:00Z"},
        {"StartedAt": "garbage", "FinishedAt": "2026-11-22T09:26:31Z"},
        {"StartedAt": "2026-11-22T09:26:32Z", "FinishedAt": "2026-11-22T09:26:31Z"},
    ],
)
def test_wall_time_unknown(state: dict[str, str]) -> None:
    assert container_wall_s(state) is None


def test_cgroup_v1_files(tmp_path: Path) -> None:
    cpu = tmp_path / "cpuacct" / "docker" / "abc" / "cpuacct.usage"
    mem = tmp_path / "memory" / "docker" / "abc" / "memory.max_usage_in_bytes"
    for f, text in ((cpu, "2500000000\n"), (mem, "73400320\n")):
        f.parent.mkdir(parents=True)
        f.write_text(text)
    files = cgroup_files("abc", tmp_path)
    assert files == (cpu, mem)
    assert read_cgroup(*files) == (2.5, 73400320)
    assert cgroup_files("other", tmp_path) is None


def test_cgroup_v2_files(tmp_path: Path) -> None:
    scope = tmp_path / "system.slice" / "docker-abc.scope"
    scope.mkdir(parents=True)
    (scope / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (scope / "memory.peak").write_text("1048576\n")
    files = cgroup_files("abc", tmp_path)
    assert files is not None
    assert read_cgroup(*files) == (1.5, 1048576)


def test_cgroup_gone_reads_as_unknown(tmp_path: Path) -> None:
    assert read_cgroup(tmp_path / "cpuacct.usage", tmp_path / "memory.peak") == (None, None)
