"""Running uploads in parallel: bounded, the first real failure wins, the rest stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from orchestrator.client.errors import UploadError
from orchestrator.client.resume import LocalFile, ResumeStore
from orchestrator.client.uploads import Cancelled, Options, Progress, UploadJob, upload_all


class Quiet:
    def started(self, slot: str, offset: int, total: int) -> None: ...

    def advanced(self, slot: str, offset: int) -> None: ...


def jobs(n: int) -> list[UploadJob]:
    return [
        UploadJob("t", LocalFile(f"s{i}", Path(f"/f{i}"), 1, 1), f"http://tus/{i}")
        for i in range(n)
    ]


def test_all_done_at_most_parallel_at_once(tmp_path: Path) -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def fake(
        job: UploadJob,
        store: ResumeStore,
        progress: Progress,
        stop: threading.Event,
        options: Options,
    ) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return f"url-{job.file.slot}"

    got = upload_all(
        jobs(7), ResumeStore(tmp_path / "u.json"), Quiet(), Options(parallel=3), upload=fake
    )
    assert got == {f"s{i}": f"url-s{i}" for i in range(7)}
    assert peak[0] == 3


def test_first_real_failure_is_raised_and_stops_the_others(tmp_path: Path) -> None:
    def fake(
        job: UploadJob,
        store: ResumeStore,
        progress: Progress,
        stop: threading.Event,
        options: Options,
    ) -> str:
        if job.file.slot == "s0":
            time.sleep(0.05)
            raise UploadError("tus server answered 415", 415)
        # The others notice ``stop`` at their next chunk.
        assert stop.wait(5)
        raise Cancelled("stopped")

    with pytest.raises(UploadError, match="415"):
        upload_all(
            jobs(3), ResumeStore(tmp_path / "u.json"), Quiet(), Options(parallel=3), upload=fake
        )
