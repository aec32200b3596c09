from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.db.repository import RunningTask
from pipelines.spec import MiB, Resources
from worker.disk import WorkDir, tree_bytes


def test_a_work_dir_not_made_yet_is_made_and_measured(tmp_path: Path) -> None:
    fresh = tmp_path / "not" / "there"
    work = WorkDir(str(fresh))
    assert work.size() == shutil.disk_usage(tmp_path).total
    assert fresh.is_dir()


def test_room_counts_what_running_tasks_may_still_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system of fixed size and use: the machine's own changes under other processes.
    fixed = shutil._ntuple_diskusage(100 * MiB, 40 * MiB, 60 * MiB)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: fixed)
    work = WorkDir(str(tmp_path))
    run = tmp_path / "t1-abc" / "in"
    run.mkdir(parents=True)
    (run / "a.bin").write_bytes(b"x" * MiB)  # one of its 3 MiB of inputs staged so far
    task = RunningTask(
        id="t1",
        worker_id="h:1/slot0",
        resources=Resources(disk_margin_bytes=MiB),
        input_bytes=3 * MiB,
    )
    assert tree_bytes(tmp_path / "t1-abc") == MiB
    # It needs 3 MiB + 1 MiB margin and holds 1 MiB: 3 MiB are still owed.
    assert work.room([]) == 60 * MiB
    assert work.room([task]) == 57 * MiB
    assert work.size() == 100 * MiB
