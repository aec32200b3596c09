from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipelines.checksum.spec import SPEC
from worker import provenance
from worker.provenance import StagedInput


def test_the_record_names_file_image_command_inputs_worker_limits_and_times(
    tmp_path: Path,
) -> None:
    start = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    end = datetime(2026, 12, 3, 6, 1, tzinfo=UTC)
    doc = provenance.document(
        task_id="t1",
        spec=SPEC,
        params={"algorithm": "sha256"},
        inputs=[StagedInput("first", "a.bin", 3, "ab" * 32)],
        resources=SPEC.resources,
        where=provenance.Where("host:1/0", "host", "docker"),
        ran=provenance.Ran(("python3", "-m", "x"), "sha256:" + "f" * 64, start, end, "done", 0),
    )
    path = provenance.write(tmp_path / "provenance.json", doc)
    back = json.loads(path.read_text())
    assert back["schema"] == "orchestrator.provenance/1"
    assert back["pipeline"] == {
        "name": "checksum",
        "version": SPEC.version,
        "file": SPEC.source,
        "sha256": SPEC.digest,
    }
    assert back["image"] == {"reference": "pipeline-checksum:latest", "id": "sha256:" + "f" * 64}
    assert back["command"] == ["python3", "-m", "x"]
    assert back["inputs"] == [
        {"slot": "first", "filename": "a.bin", "bytes": 3, "sha256": "ab" * 32}
    ]
    assert back["worker"] == {"id": "host:1/0", "host": "host", "executor": "docker"}
    assert back["resources"]["memory_bytes"] == SPEC.resources.memory_bytes
    assert (back["started_at"], back["ended_at"]) == (start.isoformat(), end.isoformat())
    assert back["outcome"] == {"status": "done", "exit_code": 0, "reason": None}
