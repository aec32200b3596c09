"""What ``submit`` remembers on disk so that re-running the same command resumes.

Two maps in one JSON file (``uploads.json`` in the cache directory):

- ``submissions``: the identity of one ``submit`` (server, pipeline, parameters and every input
  file's path, size and mtime) → the task it created and that task's upload URLs. The same
  command with the same, unchanged files finds its task again instead of creating a new one; a
  changed file is a different submission, because the half-uploaded bytes are stale.
- ``uploads``: (task, slot, path, size, mtime) → the tus upload URL, written right after the
  upload is created and before any byte is sent, so that an interruption at any point leaves it.
  A re-run asks the tus server for that upload's offset (HEAD) and goes on from there.

The file is rewritten whole through a temporary file and an atomic rename under an exclusive
``flock``: upload threads and concurrent ``submit`` processes may all write to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "uploads.json"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ORCHESTRATOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/orchestrator``, else
    ``~/.cache/orchestrator``."""
    env = os.environ if env is None else env
    if env.get("ORCHESTRATOR_CACHE_DIR"):
        return Path(env["ORCHESTRATOR_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orchestrator"


@dataclass(frozen=True)
class LocalFile:
    """An input file as it is now; size and mtime tell whether it changed since last time."""

    slot: str
    path: Path  # absolute
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, slot: str, path: str | os.PathLike[str]) -> LocalFile:
        resolved = Path(path).resolve()
        st = resolved.stat()
        return cls(slot=slot, path=resolved, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def identity(self) -> list[Any]:
        return [self.slot, str(self.path), self.size, self.mtime_ns]


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submission_key(
    api_url: str,
    pipeline: str,
    params: Mapping[str, Any],
    files: list[LocalFile],
    notify_url: str | None = None,
) -> str:
    """The same command on the same unchanged files gives the same key, whatever the order
    of its options."""
    work: dict[str, Any] = {
        "api": api_url.rstrip("/"),
        "pipeline": pipeline,
        "params": dict(params),
        "files": sorted(f.identity() for f in files),
    }
    if notify_url is not None:  # absent otherwise: keys remembered before it stay valid
        work["notify_url"] = notify_url
    return _digest(work)


def upload_key(task_id: str, file: LocalFile) -> str:
    return _digest([task_id, *file.identity()])


class ResumeStore:
    """The on-disk memory of submissions and their tus uploads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def default(cls, env: Mapping[str, str] | None = None) -> ResumeStore:
        return cls(cache_dir(env) / FILE_NAME)

    # --- submissions ---------------------------------------------------------------------
    def submission(self, key: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._read()["submissions"].get(key)
        return found

    def remember_submission(self, key: str, record: dict[str, Any]) -> None:
        with self._edit() as data:
            data["submissions"][key] = record

    def forget_submission(self, key: str) -> None:
        """Drop a submission and the uploads of its task: done, or no longer resumable."""
        with self._edit() as data:
            record = data["submissions"].pop(key, None)
            if record is not None:
                task_id = record.get("task_id")
                data["uploads"] = {
                    k: v for k, v in data["uploads"].items() if v.get("task_id") != task_id
                }

    # --- uploads -------------------------------------------------------------------------
    def upload_url(self, task_id: str, file: LocalFile) -> str | None:
        entry = self._read()["uploads"].get(upload_key(task_id, file))
        return None if entry is None else str(entry["url"])

    def remember_upload(self, task_id: str, file: LocalFile, url: str) -> None:
        with self._edit() as data:
            data["uploads"][upload_key(task_id, file)] = {
                "task_id": task_id,
                "slot": file.slot,
                "path": str(file.path),
                "url": url,
            }

    def forget_upload(self, task_id: str, file: LocalFile) -> None:
        with self._edit() as data:
            data["uploads"].pop(upload_key(task_id, file), None)

    # --- file ----------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            # Missing or damaged: forgetting costs a re-upload at worst, never a wrong result.
            data = {}
        if not isinstance(data, dict):
            data = {}
        data.setdefault("submissions", {})
        data.setdefault("uploads", {})
        return data

    @contextlib.contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock, lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)
