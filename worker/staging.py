"""A run's working directory: inputs streamed in from S3, outputs streamed back with a manifest.

Layout under ``settings.worker_work_dir``::

    <run>/in/<InputSlot.file_name(uploaded name)>   one file per filled slot (read-only to the run)
    <run>/in/params.json                             the validated parameters
    <run>/out/                                       whatever the pipeline writes
    <run>/logs.txt                                   the run's stdout and stderr

Results land in the results bucket under ``<task_id>/<relative path>`` plus ``logs.txt``,
``provenance.json`` (what ran, on what, where: ``worker.provenance``), the same as an RO-Crate
(``ro-crate-metadata.json``) and ``manifest.json`` (name, bytes, sha256, content_type and
picture of every file; it names the provenance file and the crate).
Content types and pictures come from the pipeline's declared outputs, else from the file name.
Files are hashed and moved in chunks: memory stays flat for multi-GB files; inputs are hashed
while they download.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import mimetypes
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from orchestrator.adapters.storage import LOCAL_DISK_FULL
from orchestrator.defaults import LOG_FILE, MANIFEST_FILE, PROVENANCE_FILE, result_key
from orchestrator.domain.task import InputView, ResultFile, TaskView
from orchestrator.errors import StorageError
from pipelines.spec import WEB_PICTURES, PipelineSpec
from worker.provenance import CRATE_FILE, StagedInput, ro_crate

log = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
CHUNK = 1024 * 1024
# Objects moved at once between the run directory and S3 (inputs in, results out): tiny
# files are bound by round trips, big ones by one connection's throughput.
TRANSFER_THREADS = 4
# Names the worker itself writes next to the outputs; a pipeline output of the same name is
# stored under "out/" instead, so neither is silently replaced.
RESERVED = frozenset({LOG_FILE, MANIFEST_FILE, PROVENANCE_FILE, CRATE_FILE})


T = TypeVar("T")
R = TypeVar("R")


class InputUnreadable(Exception):
    """An input slot's object could not be fetched; the message is the task's reason."""


class DiskFull(InputUnreadable):
    """The work dir filled while an input was being staged."""


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    @classmethod
    def create(cls, work_dir: str, task_id: str) -> RunDir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"{task_id}-", dir=work_dir))
        run = cls(root)
        run.in_dir.mkdir()
        run.out_dir.mkdir()
        # The pipeline runs as an unprivileged uid (10001) that owns neither directory: it
        # must traverse /in and read its files, and create files in /out.
        root.chmod(0o755)
        run.in_dir.chmod(0o755)
        run.out_dir.chmod(0o1777)
        return run

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            log.warning("run directory left behind", extra={"path": str(self.root)})


@dataclass(frozen=True)
class ManifestEntry:
    name: str  # path relative to the output directory, "/"-separated
    bytes: int
    sha256: str
    content_type: str
    picture: bool = False


@dataclass(frozen=True)
class Staged:
    """``files``: slot → file name in the run's input directory (None: an empty optional slot);
    ``inputs``: what was staged, in slot order."""

    files: dict[str, str | None]
    inputs: list[StagedInput]


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def describe(spec: PipelineSpec | None, name: str) -> tuple[str, bool]:
    """A result's content type and whether it is a picture: the first of the pipeline's
    outputs that matches says, what it leaves open follows from the name."""
    rule = spec.output(name) if spec is not None else None
    ctype = (rule.content_type if rule is not None else "") or content_type(name)
    picture = rule.picture if rule is not None and rule.picture is not None else None
    return ctype, ctype in WEB_PICTURES if picture is None else picture


def missing_outputs(spec: PipelineSpec, names: Sequence[str]) -> list[str]:
    """The globs of required outputs that no file matches."""
    return [o.glob for o in spec.outputs if o.required and not any(map(o.matches, names))]


class Downloads(Protocol):
    """The one storage call staging inputs makes (``ObjectStorage`` has it); it returns the
    sha256 of what it wrote."""

    def download(self, bucket: str, key: str, path: str) -> str: ...


class Uploads(Protocol):
    """The one storage call storing results makes (``ObjectStorage`` has it)."""

    def upload(self, bucket: str, key: str, path: str, content_type: str) -> None: ...


def stage_inputs(
    storage: Downloads, task: TaskView, spec: PipelineSpec, run: RunDir, worker: str = ""
) -> Staged:
    """Download every filled slot into ``run.in_dir``, several at once, hashing each.
    ``worker`` names this worker in the reason of a disk that fills."""
    names: dict[str, str | None] = {}
    wanted: list[tuple[str, InputView, Path]] = []
    for slot in spec.inputs:
        view = task.input(slot.name)
        if view is None or not view.done:
            if slot.required:
                raise InputUnreadable(
                    f"input '{slot.name}' could not be read: it was never uploaded"
                )
            names[slot.name] = None
            continue
        if not view.bucket or not view.key:
            raise InputUnreadable(f"input '{slot.name}' could not be read: no stored object")
        name = slot.file_name(view.filename or "")
        names[slot.name] = name
        wanted.append((slot.name, view, run.in_dir / name))
    staged = _each(wanted, lambda item: _fetch(storage, *item, worker=worker))
    return Staged(names, staged)


def _fetch(
    storage: Downloads, slot: str, view: InputView, target: Path, *, worker: str
) -> StagedInput:
    assert view.bucket and view.key  # checked by the caller
    try:
        digest = storage.download(view.bucket, view.key, str(target))
    except StorageError as exc:
        raise InputUnreadable(f"input '{slot}' could not be read: {exc}") from exc
    except OSError as exc:
        if exc.errno not in LOCAL_DISK_FULL:
            raise
        # What was written is useless: give the space back to the runs beside this one.
        target.unlink(missing_ok=True)
        raise DiskFull(
            f"no space left on worker {worker or 'this worker'} while staging input "
            f"{slot!r} ({view.filename or view.key}, {view.size} bytes): {exc.strerror}"
        ) from exc
    if view.size is not None and target.stat().st_size != view.size:
        raise InputUnreadable(
            f"input '{slot}' could not be read: got {target.stat().st_size} bytes, "
            f"expected {view.size}"
        )
    target.chmod(0o644)
    return StagedInput(slot, view.filename or "", target.stat().st_size, digest)


def _each(items: Sequence[T], work: Callable[[T], R]) -> list[R]:
    """``work`` on every item, up to ``TRANSFER_THREADS`` at once, results in order; the first
    failure (in item order) is raised once all have ended, so no transfer outlives the call."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(TRANSFER_THREADS, len(items)), "transfer") as pool:
        # Each in a copy of this thread's context: the task id of the log lines goes along.
        futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
        wait(futures)
    return [f.result() for f in futures]


def write_params(run: RunDir, params: dict[str, Any]) -> Path:
    path = run.in_dir / PARAMS_FILE
    path.write_text(json.dumps(params, indent=2, sort_keys=True))
    path.chmod(0o644)
    return path


def output_files(out_dir: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every regular file under ``out_dir``, sorted.

    Symlinks are skipped, never followed: the pipeline is untrusted, and a link to a host path
    would otherwise make the worker upload that host file.
    """
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(out_dir, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                log.warning("skipping non-regular output", extra={"path": str(path)})
                continue
            rel = path.relative_to(out_dir).as_posix()
            found.append((f"out/{rel}" if rel in RESERVED else rel, path))
    return found


def manifest_entry(name: str, path: Path, spec: PipelineSpec | None = None) -> ManifestEntry:
    digest, size = sha256_file(path)
    ctype, picture = describe(spec, name)
    return ManifestEntry(name=name, bytes=size, sha256=digest, content_type=ctype, picture=picture)


def store_results(
    storage: Uploads,
    bucket: str,
    task_id: str,
    run: RunDir,
    *,
    include_outputs: bool,
    spec: PipelineSpec | None = None,
    provenance: Path | None = None,
) -> list[ResultFile]:
    """Upload outputs (when asked), the log, the provenance record and the manifest; the
    task's ``results`` list.

    The manifest covers the outputs, the log and the provenance record (and names the latter);
    the returned list adds the manifest itself.
    """
    files = output_files(run.out_dir) if include_outputs else []
    if run.log_path.is_file():
        files.append((LOG_FILE, run.log_path))
    if provenance is not None:
        files.append((PROVENANCE_FILE, provenance))

    def put(item: tuple[str, Path]) -> ManifestEntry:
        # Hashed and sent by the same thread, each file while the others are: a multi-GB
        # output is read twice (hash, upload) but no file waits for another's transfer.
        name, path = item
        entry = manifest_entry(name, path, spec)
        storage.upload(bucket, result_key(task_id, entry.name), str(path), entry.content_type)
        return entry

    entries = _each(files, put)
    if provenance is not None:
        # The same record as an RO-Crate over the files just stored.
        crate_path = run.root / CRATE_FILE
        record = json.loads(provenance.read_text())
        crate = ro_crate(record, [asdict(e) for e in entries])
        crate_path.write_text(json.dumps(crate, indent=2) + "\n")
        entries += _each([(CRATE_FILE, crate_path)], put)
    results = [ResultFile(**asdict(e), key=result_key(task_id, e.name)) for e in entries]
    manifest_path = run.root / MANIFEST_FILE
    document: dict[str, Any] = {"task_id": task_id, "files": [asdict(e) for e in entries]}
    if provenance is not None:
        document["provenance"] = PROVENANCE_FILE
        document["ro_crate"] = CRATE_FILE
    manifest_path.write_text(json.dumps(document, indent=2))
    manifest = manifest_entry(MANIFEST_FILE, manifest_path)
    key = result_key(task_id, MANIFEST_FILE)
    storage.upload(bucket, key, str(manifest_path), "application/json")
    results.append(ResultFile(**{**asdict(manifest), "content_type": "application/json"}, key=key))
    return results
