from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.task import InputView, TaskView
from orchestrator.errors import StorageError
from pipelines.spec import InputSlot, Output, PipelineSpec
from tests.taskviews import task_view
from worker.provenance import StagedInput
from worker.staging import (
    DiskFull,
    InputUnreadable,
    RunDir,
    missing_outputs,
    output_files,
    stage_inputs,
    store_results,
    write_params,
)


class FakeStorage:
    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.content_types: dict[tuple[str, str], str] = {}

    def download(self, bucket: str, key: str, path: str) -> str:
        if (bucket, key) not in self.objects:
            raise StorageError(f"download of {bucket}/{key} failed: NoSuchKey")
        Path(path).write_bytes(self.objects[(bucket, key)])
        return hashlib.sha256(self.objects[(bucket, key)]).hexdigest()

    def upload(self, bucket: str, key: str, path: str, content_type: str) -> None:
        self.objects[(bucket, key)] = Path(path).read_bytes()
        self.content_types[(bucket, key)] = content_type


SPEC = PipelineSpec(
    name="t",
    description="",
    inputs=(
        InputSlot("pre", accept=(".las", ".laz")),
        InputSlot("mask", required=False, accept=(".shp",)),
    ),
)


def task(*inputs: InputView) -> TaskView:
    return task_view(
        pipeline="t", status=TaskStatus.RUNNING, attempts=1, worker_id="w", inputs=inputs
    )


def done(slot: str, filename: str, key: str, size: int) -> InputView:
    return InputView(
        slot=slot,
        required=True,
        state="done",
        filename=filename,
        size=size,
        bucket="uploads",
        key=key,
    )


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return RunDir.create(str(tmp_path), "t1")


def test_run_dir_is_usable_by_the_unprivileged_pipeline_user(run: RunDir) -> None:
    assert run.in_dir.stat().st_mode & 0o777 == 0o755
    assert run.out_dir.stat().st_mode & 0o1777 == 0o1777
    run.remove()
    assert not run.root.exists()


def test_inputs_land_under_slot_file_names(run: RunDir) -> None:
    storage = FakeStorage({("uploads", "k1"): b"lasdata"})
    staged = stage_inputs(
        storage,
        task(done("pre", "Survey 2024.LAZ", "k1", 7), InputView("mask", False, "empty")),
        SPEC,
        run,
    )
    assert staged.files == {"pre": "pre.laz", "mask": None}
    assert (run.in_dir / "pre.laz").read_bytes() == b"lasdata"
    # What provenance records: the uploaded name, and the sha256 of the bytes staged.
    assert staged.inputs == [
        StagedInput("pre", "Survey 2024.LAZ", 7, hashlib.sha256(b"lasdata").hexdigest())
    ]


def test_missing_object_names_the_slot(run: RunDir) -> None:
    with pytest.raises(InputUnreadable, match=r"input 'pre' could not be read: .*NoSuchKey"):
        stage_inputs(FakeStorage(), task(done("pre", "a.las", "gone", 3)), SPEC, run)


def test_truncated_object_is_unreadable(run: RunDir) -> None:
    storage = FakeStorage({("uploads", "k1"): b"abc"})
    with pytest.raises(InputUnreadable, match="got 3 bytes, expected 10"):
        stage_inputs(storage, task(done("pre", "a.las", "k1", 10)), SPEC, run)


class FullDisk(FakeStorage):
    """Writes half of each object, then the disk is full."""

    def download(self, bucket: str, key: str, path: str) -> str:
        data = self.objects[(bucket, key)]
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_a_disk_that_fills_while_staging_names_the_worker_and_the_input(run: RunDir) -> None:
    storage = FullDisk({("uploads", "k1"): b"x" * 1000})
    with pytest.raises(DiskFull) as caught:
        stage_inputs(storage, task(done("pre", "a.las", "k1", 1000)), SPEC, run, worker="h:1/s0")
    assert str(caught.value) == (
        "no space left on worker h:1/s0 while staging input 'pre' (a.las, 1000 bytes): "
        "No space left on device"
    )
    assert list(run.in_dir.iterdir()) == []  # the partial file is given back


def test_required_slot_never_uploaded(run: RunDir) -> None:
    with pytest.raises(InputUnreadable, match="input 'pre' could not be read"):
        stage_inputs(FakeStorage(), task(), SPEC, run)


def test_params_file(run: RunDir) -> None:
    path = write_params(run, {"b": 1, "a": "x"})
    assert json.loads(path.read_text()) == {"a": "x", "b": 1}


def test_output_files_skip_symlinks_and_keep_reserved_names_apart(run: RunDir) -> None:
    (run.out_dir / "sub").mkdir()
    (run.out_dir / "sub" / "grid.tif").write_bytes(b"\x00" * 10)
    (run.out_dir / "report.json").write_text("{}")
    (run.out_dir / "logs.txt").write_text("pipeline's own log")
    os.symlink("/etc/passwd", run.out_dir / "steal.txt")
    names = [name for name, _ in output_files(run.out_dir)]
    assert names == ["out/logs.txt", "report.json", "sub/grid.tif"]


def test_manifest_has_streamed_sha256_and_types(run: RunDir, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # spans several read chunks
    (run.out_dir / "big.bin").write_bytes(data)
    (run.out_dir / "r.json").write_text('{"a": 1}')
    entries = store_results(FakeStorage(), "results", "t1", run, include_outputs=True)
    by_name = {e.name: e for e in entries}
    assert by_name["big.bin"].sha256 == hashlib.sha256(data).hexdigest()
    assert by_name["big.bin"].bytes == len(data)
    assert by_name["big.bin"].content_type == "application/octet-stream"
    assert by_name["r.json"].content_type == "application/json"


def test_store_results_uploads_outputs_log_and_manifest(run: RunDir) -> None:
    (run.out_dir / "checksums.json").write_text('{"x": 1}')
    run.log_path.write_text("hello\n")
    storage = FakeStorage()
    results = store_results(storage, "results", "t1", run, include_outputs=True)
    assert [r.name for r in results] == ["checksums.json", "logs.txt", "manifest.json"]
    for r in results:
        body = storage.objects[("results", r.key)]
        assert r.key == f"t1/{r.name}"
        assert r.sha256 == hashlib.sha256(body).hexdigest()
        assert r.bytes == len(body)
        assert set(r.as_dict()) == {"name", "key", "bytes", "sha256", "content_type", "picture"}
    manifest = json.loads(storage.objects[("results", "t1/manifest.json")])
    assert [f["name"] for f in manifest["files"]] == ["checksums.json", "logs.txt"]
    assert storage.content_types[("results", "t1/logs.txt")] == "text/plain"


def test_declared_outputs_give_types_and_pictures(run: RunDir) -> None:
    spec = replace(
        SPEC,
        outputs=(
            Output("dod.tif", "image/tiff", picture=False, required=True),
            Output("maps/*.png", picture=True),
            Output("*.dat", "application/x-survey"),
        ),
    )
    (run.out_dir / "maps").mkdir()
    for name in ("dod.tif", "maps/a.png", "b.dat", "c.png", "d.tif"):
        (run.out_dir / name).write_bytes(b"x")
    results = store_results(FakeStorage(), "results", "t1", run, include_outputs=True, spec=spec)
    seen = {r.name: (r.content_type, r.picture) for r in results}
    assert seen["dod.tif"] == ("image/tiff", False)
    assert seen["maps/a.png"] == ("image/png", True)
    assert seen["b.dat"] == ("application/x-survey", False)
    # Undeclared files: a PNG is a picture, a TIFF is not (browsers do not draw it).
    assert seen["c.png"] == ("image/png", True)
    assert seen["d.tif"] == ("image/tiff", False)
    assert missing_outputs(spec, list(seen)) == []
    assert missing_outputs(spec, ["maps/a.png"]) == ["dod.tif"]


def test_the_manifest_names_the_provenance_record_and_its_crate(run: RunDir) -> None:
    record = run.root / "provenance.json"
    record.write_text(json.dumps(RECORD))
    (run.out_dir / "out.tif").write_bytes(b"tiff")
    storage = FakeStorage()
    results = store_results(storage, "results", "t1", run, include_outputs=True, provenance=record)
    assert [r.name for r in results] == [
        "out.tif",
        "provenance.json",
        "ro-crate-metadata.json",
        "manifest.json",
    ]
    manifest = json.loads(storage.objects[("results", "t1/manifest.json")])
    assert (manifest["provenance"], manifest["ro_crate"]) == (
        "provenance.json",
        "ro-crate-metadata.json",
    )
    by_name = {f["name"]: f for f in manifest["files"]}
    assert by_name["provenance.json"]["sha256"] == hashlib.sha256(record.read_bytes()).hexdigest()
    crate = json.loads(storage.objects[("results", "t1/ro-crate-metadata.json")])
    graph = {e["@id"]: e for e in crate["@graph"]}
    # The files stored before it are its data entities, with the manifest's sizes and hashes.
    assert {p["@id"] for p in graph["./"]["hasPart"]} == {"out.tif", "provenance.json"}
    assert graph["out.tif"]["sha256"] == hashlib.sha256(b"tiff").hexdigest()
    assert graph["./"]["conformsTo"] == {"@id": "https://w3id.org/ro/wfrun/process/0.5"}
    run_action = graph[graph["./"]["mentions"]["@id"]]
    assert run_action["@type"] == "CreateAction"
    assert run_action["actionStatus"] == {"@id": "http://schema.org/CompletedActionStatus"}
    assert run_action["result"] == [{"@id": "out.tif"}, {"@id": "provenance.json"}]
    [given] = run_action["object"]
    assert graph[given["@id"]]["sha256"] == "ab" * 32
    tool = graph[run_action["instrument"]["@id"]]
    assert (tool["name"], tool["version"], tool["identifier"]) == ("tool", "1.2", "sha256:ff")


RECORD = {
    "schema": "orchestrator.provenance/1",
    "task_id": "t1",
    "pipeline": {"name": "tool", "version": "1.2", "file": "/p/tool.toml", "sha256": "cd" * 32},
    "image": {"reference": "tool:1", "id": "sha256:ff"},
    "command": ["tool", "/in/a.tif", "/out"],
    "parameters": {},
    "inputs": [{"slot": "raster", "filename": "a.tif", "bytes": 4, "sha256": "ab" * 32}],
    "worker": {"id": "w/0", "host": "h", "executor": "docker"},
    "resources": {},
    "started_at": "2026-12-03T06:00:00+00:00",
    "ended_at": "2026-12-03T06:01:00+00:00",
    "outcome": {"status": "done", "exit_code": 0, "reason": None},
}


def test_failed_run_stores_only_the_log(run: RunDir) -> None:
    (run.out_dir / "partial.bin").write_bytes(b"x")
    run.log_path.write_text("error: bad\n")
    storage = FakeStorage()
    results = store_results(storage, "results", "t1", run, include_outputs=False)
    assert [r.name for r in results] == ["logs.txt", "manifest.json"]


class MeetingStorage(FakeStorage):
    """Each download waits until every other one has begun: staging that fetched one input
    after another would break the barrier instead of finishing."""

    def __init__(self, objects: dict[tuple[str, str], bytes], parties: int) -> None:
        super().__init__(objects)
        self.barrier = threading.Barrier(parties, timeout=30)

    def download(self, bucket: str, key: str, path: str) -> str:
        self.barrier.wait()
        return super().download(bucket, key, path)


def both(mask_key: str) -> TaskView:
    mask = InputView(
        "mask", False, "done", filename="m.shp", size=2, bucket="uploads", key=mask_key
    )
    return task(done("pre", "a.las", "k1", 3), mask)


def test_inputs_are_fetched_at_once(run: RunDir) -> None:
    storage = MeetingStorage({("uploads", "k1"): b"abc", ("uploads", "k2"): b"mm"}, parties=2)
    staged = stage_inputs(storage, both("k2"), SPEC, run)
    assert staged.files == {"pre": "pre.las", "mask": "mask.shp"}
    assert [(i.slot, i.bytes) for i in staged.inputs] == [("pre", 3), ("mask", 2)]
    assert (run.in_dir / "mask.shp").read_bytes() == b"mm"


def test_a_failed_input_among_several_is_named(run: RunDir) -> None:
    storage = MeetingStorage({("uploads", "k1"): b"abc"}, parties=2)
    with pytest.raises(InputUnreadable, match=r"input 'mask' could not be read: .*NoSuchKey"):
        stage_inputs(storage, both("gone"), SPEC, run)
    # The other transfer ended before the call did: nothing is still writing into the run.
    assert (run.in_dir / "pre.las").read_bytes() == b"abc"
